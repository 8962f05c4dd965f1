"""Typed service configuration read from environment variables and an optional ``.env`` file."""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import secrets
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from . import passwords

META_GRAPH_BASE_URL = "https://graph.facebook.com"
OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_INSTRUCTIONS = (
    "You answer phone calls for the organisation. Be brief and friendly. Ask for the case "
    "reference number and look it up with lookup_case. When the caller asks for a person, or "
    "you cannot help, call transfer_to_human."
)
DEMO_AGENT = ("agent", "agent")
"""The demo's sign-in, which ``relay-service serve`` refuses."""
DEMO_AGENTS = "agent:$argon2id$v=19$m=65536,t=3,p=4$Vm4XyFakLzv6uil2aQO7NQ$ll1er8jbpQAOijOBt2QDpq0BKBFKfLKWxj9OHrpOuIc"  # noqa: E501
"""The default ``RELAY_AGENTS``: the demo sign-in, its password hashed once here (so that reading
the settings does not spend Argon2's 0.1 s on it each time)."""
DEMO_CASES = {
    "4711": "open: a visit is booked for Monday",
    "12345": "closed: the refund was paid",
}


class SettingsError(ValueError):
    """One or more configuration values are missing or invalid; the message lists each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class Settings:
    """Everything the relay service is configured with (see docs/service.md)."""

    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    data_dir: Path = Path("relay-data")
    database_url: str = ""
    media_addresses: tuple[str, ...] | None = ("127.0.0.1",)
    """Local addresses for ICE host candidates; ``None`` (``*``): every non-loopback interface."""
    udp_port_range: tuple[int, int] | None = None
    whatsapp_verify_token: str = ""
    whatsapp_app_secret: str = ""
    whatsapp_access_token: str = ""
    whatsapp_phone_number_id: str = "100000000000001"
    whatsapp_graph_base_url: str = ""
    whatsapp_graph_version: str = "v23.0"
    graph_timeout: float = 10.0
    greeting_file: Path | None = None
    simulators: bool = True
    agents: Mapping[str, str] = field(default_factory=dict)
    """Agent name → Argon2 hash of the password (plain passwords are hashed when read)."""
    supervisors: Mapping[str, str] = field(default_factory=dict)
    """Supervisor accounts (name → Argon2 hash, like ``agents``): they see every call's quality
    and listen in."""
    no_media_timeout: float = 20.0
    ring_timeout: float = 60.0
    openai_base_url: str = ""
    openai_api_key: str = ""
    assistant_enabled: bool = False
    assistant_instructions: str = DEFAULT_INSTRUCTIONS
    transcription_enabled: bool = False
    transcription_ptime: int = 60
    """Milliseconds of audio per RTP packet toward the transcription sessions: Opus frames are
    joined undecoded (RFC 6716 code 3 packets), so 60 ms costs the relay a third of the
    packets of 20 ms, for 40 ms more transcript latency. 20 forwards packets as they come."""
    case_directory: Mapping[str, str] = field(default_factory=lambda: dict(DEMO_CASES))
    """Reference number → case status, for the assistant's ``lookup_case`` tool."""
    media_bridge: str = "rtp"
    """``rtp``: RTP forwarded between the legs undecoded, through one munger; ``decoded``."""
    ice_nomination: str = "aggressive"
    """ICE nomination of every leg we control: ``aggressive`` or ``regular``."""
    rtcp_interval: float = 5.0
    """Mean seconds between the RTCP reports of every leg (libwebrtc's for audio; aiortc's is
    1): fewer wake-ups and packets per call, with round-trip time and loss from the peers'
    reports updated as often as Chrome's own statistics update them."""
    keypad_pause: float = 3.0
    """Seconds without a key that end a keypad entry (``#`` ends one at once)."""
    drain_timeout: float = 25.0
    """Seconds live calls may go on after SIGTERM before every remaining one is ended."""
    redis_url: str = ""
    """Redis shared by the replicas; empty: one process, nothing shared (the default)."""
    replica_id: str = ""
    """This replica's name among its peers (default: host name and process id)."""
    lease_ttl: float = 10.0
    """Seconds a replica's lease on its calls lasts without renewal before others end them."""
    session_ttl: float = 12 * 3600.0
    """Seconds an agent's sign-in lasts without use."""
    login_failures_per_name: int = 5
    login_failures_per_address: int = 20
    login_window: float = 300.0
    """Failed sign-ins allowed per agent name and per client address within this many seconds."""
    log_format: str = "auto"
    """``json``, ``text``, or ``auto``: text when stderr is a terminal, JSON otherwise."""
    diagnostics_dir: Path | None = None
    """Where diagnostic files larger than ``diagnostics_inline_max`` are kept (the database
    keeps their path); default ``<data dir>/diagnostics``."""
    diagnostics_inline_max: int = 65536
    """Diagnostic files up to this many bytes are kept in the database row itself."""

    @property
    def realtime_base_url(self) -> str:
        """The OpenAI API base URL: configured, else the embedded simulator's, else OpenAI's."""
        if self.openai_base_url:
            return self.openai_base_url.rstrip("/")
        if self.simulators:
            return self.base_url + "/openai-sim/v1"
        return OPENAI_BASE_URL

    @property
    def realtime_used(self) -> bool:
        """Whether any call leg talks to the Realtime API."""
        return self.assistant_enabled or self.transcription_enabled

    @property
    def graph_base_url(self) -> str:
        """The Graph API base URL: configured, else the simulator's when on, else Meta's."""
        if self.whatsapp_graph_base_url:
            return self.whatsapp_graph_base_url.rstrip("/")
        if self.simulators:
            return self.base_url + "/whatsapp-sim"
        return META_GRAPH_BASE_URL

    @property
    def warnings(self) -> list[str]:
        """Settings that are valid but probably wrong; logged once when the service starts."""
        found = []
        graph_host = urllib.parse.urlsplit(self.graph_base_url).hostname or ""
        if (
            not self.simulators
            and self.media_addresses is not None
            and all(_is_loopback(a) for a in self.media_addresses)
            and not _is_loopback(graph_host)
        ):
            found.append(
                f"RELAY_MEDIA_ADDRESSES is loopback only ({', '.join(self.media_addresses)}) "
                f"while calls come from {graph_host}: WhatsApp's media servers and agents' "
                "browsers elsewhere cannot reach it, so calls will connect without audio. "
                "List the host's public address (or * for every interface)."
            )
        return found

    @property
    def base_url(self) -> str:
        """The URL this service is reachable at (``RELAY_PUBLIC_URL`` or host and port)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        # A wildcard listen address is reached locally through loopback.
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        dotenv: Path | None = Path(".env"),
        *,
        serve: bool = False,
    ) -> Settings:
        """Read and validate the settings; ``environ`` wins over the ``.env`` file.

        ``serve``: also apply the rules of ``relay-service serve`` (no demo sign-in).
        """
        given = os.environ if environ is None else environ
        values: dict[str, Any] = {
            k: v.strip() for k, v in given.items() if k in ENVIRONMENT_VARIABLES and v.strip()
        }
        try:
            # The environment comes in as init values; pydantic-settings reads the .env file.
            parsed = _Environment(_env_file=dotenv, **values)  # type: ignore[call-arg]
        except ValidationError as exc:
            raise SettingsError([_problem(error) for error in exc.errors()]) from None
        settings = parsed.settings()
        demo_name, demo_password = DEMO_AGENT
        hashed = settings.agents.get(demo_name)
        if serve and hashed is not None and passwords.verify_password(hashed, demo_password):
            raise SettingsError(
                [
                    f"RELAY_AGENTS: the demo sign-in {demo_name}/{demo_password} is refused by "
                    "serve; set RELAY_AGENTS to your agents (hash passwords with "
                    "`relay-service hash-password`)"
                ]
            )
        return settings


#: The longest RELAY_RTCP_INTERVAL: webrtc_ext.config.MAX_RTCP_INTERVAL, written out because
#: settings load without the media stack (``migrate``, ``hash-password``); a test keeps them equal.
MAX_RTCP_INTERVAL = 30.0


def _is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _problem(error: Any) -> str:
    """One line naming the variable and what is wrong with its value."""
    # A default checked by a rule is located by its field name, a given value by its variable.
    name = ".".join(_ALIASES.get(str(part), str(part)) for part in error["loc"]) or "configuration"
    if error["type"] == "value_error":
        return f"{name} {error['ctx']['error']}"
    return f"{name}: {error['msg']}"


def _to_int(raw: Any) -> int:
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ValueError(f"must be an integer, not {raw!r}") from None


def _integer(low: int, high: int) -> BeforeValidator:
    def parse(raw: Any) -> int:
        value = _to_int(raw)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, not {value}")
        return value

    return BeforeValidator(parse)


def _choice_int(*allowed: int) -> BeforeValidator:
    def parse(raw: Any) -> int:
        value = _to_int(raw)
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(map(str, allowed))}, not {value}")
        return value

    return BeforeValidator(parse)


def _number(*, allow_zero: bool = False, high: float = math.inf) -> BeforeValidator:
    def parse(raw: Any) -> float:
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise ValueError(f"must be a number, not {raw!r}") from None
        if value < 0 or (value == 0 and not allow_zero):
            raise ValueError(f"must be positive, not {value:g}")
        if value > high:
            raise ValueError(f"must be at most {high:g}, not {value:g}")
        return value

    return BeforeValidator(parse)


def _parse_boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "on", "true", "yes"}:
        return True
    if text in {"0", "off", "false", "no"}:
        return False
    raise ValueError(f"must be on/off (or true/false, 1/0), not {text!r}")


def _choice(*choices: str) -> BeforeValidator:
    def parse(raw: Any) -> str:
        text = str(raw).strip().lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {text!r}")
        return text

    return BeforeValidator(parse)


def _parse_port_range(raw: Any) -> tuple[int, int] | None:
    if raw is None or isinstance(raw, tuple):
        return raw
    low, sep, high = str(raw).partition("-")
    try:
        result = (int(low), int(high))
    except ValueError:
        result = (0, 0)
    if not sep or not 1 <= result[0] <= result[1] <= 65535:
        raise ValueError(f"must look like 40000-40100, not {raw!r}")
    return result


# A comma ends an entry only where a new ``name:`` follows: Argon2 hashes contain commas.
_AGENT_SEPARATOR = re.compile(r",(?=[^,]*:)")


def _parse_agents(raw: Any) -> dict[str, str]:
    """Agent name → password hash; plain passwords are hashed here and kept nowhere."""
    if isinstance(raw, dict):
        return raw
    agents: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in _AGENT_SEPARATOR.split(str(raw)))):
        user, sep, password = item.partition(":")
        user = user.strip()
        if not sep or not user or not password:
            # The name only: the item may hold a password.
            raise ValueError(f"entries must be name:password or name:<hash>, not {user or '?'!r}")
        if passwords.is_hash(password):
            problem = passwords.hash_problem(password)
            if problem is not None:
                raise ValueError(f"has a hash for {user!r} that is {problem}")
            agents[user] = password
        else:
            agents[user] = passwords.hash_password(password)
    if not agents:
        raise ValueError("must list at least one agent as name:password")
    return agents


def _parse_supervisors(raw: Any) -> dict[str, str]:
    return _parse_agents(raw) if raw else {}


def _parse_cases(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return raw
    try:
        cases = json.loads(Path(str(raw)).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"must be a JSON file {{reference: status}}: {exc}") from None
    if not isinstance(cases, dict):
        raise ValueError("must hold a JSON object {reference: status}")
    return {str(key): str(value) for key, value in cases.items()}


def _parse_redis_url(raw: Any) -> str:
    text = str(raw).strip()
    if text and not text.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"must look like redis://host:6379/0, not {text!r}")
    return text


Port = Annotated[int, _integer(0, 65535)]
Seconds = Annotated[float, _number()]
Switch = Annotated[bool, BeforeValidator(_parse_boolean)]


def _env(name: str, default: Any = None, **kwargs: Any) -> Any:
    """A field read from the environment variable ``name``."""
    if "default_factory" in kwargs:
        return Field(alias=name, **kwargs)
    return Field(default, alias=name, **kwargs)


class _Environment(BaseSettings):
    """The environment variables and their validation; :meth:`settings` makes the dataclass.

    Fields are validated in order, so a rule that depends on another variable comes after it.
    """

    model_config = SettingsConfigDict(
        case_sensitive=True,
        extra="ignore",
        env_ignore_empty=True,
        validate_default=True,
        populate_by_name=False,
        env_file_encoding="utf-8",
    )

    simulators: Switch = _env("SIMULATORS", True)
    host: str = _env("RELAY_HOST", "127.0.0.1")
    port: Port = _env("RELAY_PORT", 8080)
    public_url: str = _env("RELAY_PUBLIC_URL", "")
    data_dir: Path = _env("RELAY_DATA_DIR", Path("relay-data"))
    database_url: str = _env("RELAY_DATABASE_URL", "")
    media_addresses: str = _env("RELAY_MEDIA_ADDRESSES", "127.0.0.1")
    udp_port_range: Annotated[
        tuple[int, int] | None, NoDecode, BeforeValidator(_parse_port_range)
    ] = _env("RELAY_UDP_PORT_RANGE", None)
    whatsapp_verify_token: str = _env("WHATSAPP_VERIFY_TOKEN", "")
    whatsapp_app_secret: str = _env("WHATSAPP_APP_SECRET", "")
    whatsapp_access_token: str = _env("WHATSAPP_ACCESS_TOKEN", "")
    whatsapp_phone_number_id: str = _env("WHATSAPP_PHONE_NUMBER_ID", "")
    whatsapp_graph_base_url: str = _env("WHATSAPP_GRAPH_BASE_URL", "")
    whatsapp_graph_version: str = _env("WHATSAPP_GRAPH_VERSION", "v23.0")
    graph_timeout: Seconds = _env("WHATSAPP_GRAPH_TIMEOUT", 10.0)
    greeting_file: Path | None = _env("GREETING_FILE", None)
    agents: Annotated[dict[str, str], NoDecode, BeforeValidator(_parse_agents)] = _env(
        "RELAY_AGENTS", DEMO_AGENTS
    )
    supervisors: Annotated[dict[str, str], NoDecode, BeforeValidator(_parse_supervisors)] = _env(
        "RELAY_SUPERVISORS", ""
    )
    no_media_timeout: Seconds = _env("RELAY_NO_MEDIA_TIMEOUT", 20.0)
    ring_timeout: Seconds = _env("RELAY_RING_TIMEOUT", 60.0)
    assistant_enabled: Switch = _env("ASSISTANT_ENABLED", False)
    transcription_enabled: Switch = _env("TRANSCRIPTION_ENABLED", False)
    transcription_ptime: Annotated[int, _choice_int(20, 40, 60, 80, 100, 120)] = _env(
        "RELAY_TRANSCRIPTION_PTIME", 60
    )
    openai_base_url: str = _env("OPENAI_BASE_URL", "")
    openai_api_key: str = _env("OPENAI_API_KEY", "")
    assistant_instructions: str = _env("ASSISTANT_INSTRUCTIONS", DEFAULT_INSTRUCTIONS)
    case_directory: Annotated[dict[str, str], NoDecode, BeforeValidator(_parse_cases)] = _env(
        "CASE_DIRECTORY", default_factory=lambda: dict(DEMO_CASES)
    )
    keypad_pause: Seconds = _env("KEYPAD_PAUSE", 3.0)
    ice_nomination: Annotated[str, _choice("aggressive", "regular")] = _env(
        "RELAY_ICE_NOMINATION", "aggressive"
    )
    media_bridge: Annotated[str, _choice("rtp", "decoded")] = _env("RELAY_MEDIA_BRIDGE", "rtp")
    rtcp_interval: Annotated[float, _number(high=MAX_RTCP_INTERVAL)] = _env(
        "RELAY_RTCP_INTERVAL", 5.0
    )
    drain_timeout: Annotated[float, _number(allow_zero=True)] = _env("RELAY_DRAIN_TIMEOUT", 25.0)
    redis_url: Annotated[str, BeforeValidator(_parse_redis_url)] = _env("RELAY_REDIS_URL", "")
    replica_id: str = _env("RELAY_REPLICA_ID", "")
    lease_ttl: Seconds = _env("RELAY_LEASE_TTL", 10.0)
    session_ttl: Seconds = _env("RELAY_SESSION_TTL", 12 * 3600.0)
    login_failures_per_name: Annotated[int, _integer(1, 10_000)] = _env(
        "RELAY_LOGIN_FAILURES_PER_NAME", 5
    )
    login_failures_per_address: Annotated[int, _integer(1, 100_000)] = _env(
        "RELAY_LOGIN_FAILURES_PER_ADDRESS", 20
    )
    login_window: Seconds = _env("RELAY_LOGIN_WINDOW", 300.0)
    log_format: Annotated[str, _choice("auto", "json", "text")] = _env("RELAY_LOG_FORMAT", "auto")
    diagnostics_dir: Path | None = _env("RELAY_DIAGNOSTICS_DIR", None)
    diagnostics_inline_max: Annotated[int, _integer(0, 2**31)] = _env(
        "RELAY_DIAGNOSTICS_INLINE_MAX", 65536
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment (passed in by ``from_env``) wins over the ``.env`` file."""
        return init_settings, dotenv_settings

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            return f"sqlite+aiosqlite:///{info.data.get('data_dir', 'relay-data')}/relay.db"
        if "+" not in value.split(":", 1)[0]:
            raise ValueError(
                "must name an async driver, e.g. sqlite+aiosqlite:///relay.db "
                f"or postgresql+asyncpg://..., not {value!r}"
            )
        return value

    @field_validator("whatsapp_verify_token", "whatsapp_app_secret", "whatsapp_access_token")
    @classmethod
    def _whatsapp_secret(cls, value: str, info: ValidationInfo) -> str:
        if value:
            return value
        if info.data.get("simulators", True):
            # The simulator shares them in-process, so random ones are enough.
            return secrets.token_urlsafe(24)
        raise ValueError("is required when SIMULATORS=off")

    @field_validator("whatsapp_phone_number_id")
    @classmethod
    def _phone_number_id(cls, value: str, info: ValidationInfo) -> str:
        if value:
            return value
        if info.data.get("simulators", True):
            return "100000000000001"
        raise ValueError("is required when SIMULATORS=off")

    @field_validator("greeting_file")
    @classmethod
    def _greeting(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{str(value)!r} does not exist")
        return value

    @field_validator("openai_api_key")
    @classmethod
    def _openai_key(cls, value: str, info: ValidationInfo) -> str:
        used = info.data.get("assistant_enabled") or info.data.get("transcription_enabled")
        if value:
            return value
        if info.data.get("simulators", True) and not info.data.get("openai_base_url"):
            # Shared with the in-process simulator, which accepts no other key.
            return secrets.token_urlsafe(24)
        if not used:
            return value
        raise ValueError(
            "is required for ASSISTANT_ENABLED / TRANSCRIPTION_ENABLED "
            "unless the embedded simulator is the Realtime API"
        )

    def settings(self) -> Settings:
        """The validated values as the service's :class:`Settings`."""
        media = tuple(a.strip() for a in self.media_addresses.split(","))
        values = self.model_dump(exclude={"media_addresses", "replica_id", "diagnostics_dir"})
        return Settings(
            **values,
            diagnostics_dir=self.diagnostics_dir or self.data_dir / "diagnostics",
            media_addresses=None if media == ("*",) else tuple(a for a in media if a),
            replica_id=self.replica_id or f"{socket.gethostname()}-{os.getpid()}",
        )


_ALIASES = {name: str(info.alias) for name, info in _Environment.model_fields.items()}
ENVIRONMENT_VARIABLES = frozenset(_ALIASES.values())
"""The name of every environment variable the service reads."""
