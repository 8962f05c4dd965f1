"""Typed service configuration read from environment variables and an optional ``.env`` file."""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

META_GRAPH_BASE_URL = "https://graph.facebook.com"
OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_INSTRUCTIONS = (
    "You answer phone calls for the organisation. Be brief and friendly. Ask for the case "
    "reference number and look it up with lookup_case. When the caller asks for a person, or "
    "you cannot help, call transfer_to_human."
)
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
    agents: Mapping[str, str] = field(default_factory=lambda: {"agent": "agent"})
    no_media_timeout: float = 20.0
    ring_timeout: float = 60.0
    openai_base_url: str = ""
    openai_api_key: str = ""
    assistant_enabled: bool = False
    assistant_instructions: str = DEFAULT_INSTRUCTIONS
    transcription_enabled: bool = False
    case_directory: Mapping[str, str] = field(default_factory=lambda: dict(DEMO_CASES))
    """Reference number → case status, for the assistant's ``lookup_case`` tool."""
    media_bridge: str = "rtp"
    """``rtp``: RTP forwarded between the legs undecoded, through one munger; ``decoded``."""
    ice_nomination: str = "aggressive"
    """ICE nomination of every leg we control: ``aggressive`` or ``regular``."""
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
        cls, environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
    ) -> Settings:
        """Read and validate the settings; ``environ`` wins over the ``.env`` file."""
        values: dict[str, str] = {}
        if dotenv is not None and dotenv.is_file():
            values.update(read_dotenv(dotenv))
        values.update(os.environ if environ is None else environ)
        return _Parser(values).settings()


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines (``#`` comments, optional quotes, optional ``export``)."""
    result: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        result[key] = value
    return result


class _Parser:
    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values
        self.problems: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        return self.values.get(name, default).strip()

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be an integer, not {raw!r}")
            return default
        if not low <= value <= high:
            self.problems.append(f"{name} must be between {low} and {high}, not {value}")
        return value

    def number(self, name: str, default: float, *, allow_zero: bool = False) -> float:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name} must be a number, not {raw!r}")
            return default
        if value < 0 or (value == 0 and not allow_zero):
            self.problems.append(f"{name} must be positive, not {value}")
        return value

    def redis_url(self, name: str) -> str:
        raw = self.text(name)
        if raw and not raw.startswith(("redis://", "rediss://", "unix://")):
            self.problems.append(f"{name} must look like redis://host:6379/0, not {raw!r}")
            return ""
        return raw

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw in {"1", "on", "true", "yes"}:
            return True
        if raw in {"0", "off", "false", "no"}:
            return False
        self.problems.append(f"{name} must be on/off (or true/false, 1/0), not {raw!r}")
        return default

    def port_range(self, name: str) -> tuple[int, int] | None:
        raw = self.text(name)
        if not raw:
            return None
        low, sep, high = raw.partition("-")
        try:
            result = (int(low), int(high))
        except ValueError:
            result = (0, 0)
        if not sep or not 1 <= result[0] <= result[1] <= 65535:
            self.problems.append(f"{name} must look like 40000-40100, not {raw!r}")
            return None
        return result

    def agents(self, name: str) -> dict[str, str]:
        raw = self.text(name, "agent:agent")
        agents: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in raw.split(","))):
            user, sep, password = item.partition(":")
            if not sep or not user or not password:
                self.problems.append(f"{name} entries must be name:password, not {item!r}")
                continue
            agents[user] = password
        if not agents:
            self.problems.append(f"{name} must list at least one agent as name:password")
        return agents

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        raw = self.text(name, choices[0]).lower()
        if raw not in choices:
            self.problems.append(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
            return choices[0]
        return raw

    def cases(self, name: str) -> dict[str, str]:
        raw = self.text(name)
        if not raw:
            return dict(DEMO_CASES)
        try:
            cases = json.loads(Path(raw).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.problems.append(f"{name} must be a JSON file {{reference: status}}: {exc}")
            return {}
        if not isinstance(cases, dict):
            self.problems.append(f"{name} must hold a JSON object {{reference: status}}")
            return {}
        return {str(key): str(value) for key, value in cases.items()}

    def settings(self) -> Settings:
        simulators = self.boolean("SIMULATORS", True)
        data_dir = Path(self.text("RELAY_DATA_DIR", "relay-data"))
        database_url = self.text("RELAY_DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir}/relay.db"
        if "+" not in database_url.split(":", 1)[0]:
            self.problems.append(
                "RELAY_DATABASE_URL must name an async driver, e.g. sqlite+aiosqlite:///relay.db "
                f"or postgresql+asyncpg://..., not {database_url!r}"
            )
        secrets_ = {
            name: self.text(name)
            for name in ("WHATSAPP_VERIFY_TOKEN", "WHATSAPP_APP_SECRET", "WHATSAPP_ACCESS_TOKEN")
        }
        for name, value in secrets_.items():
            if not value:
                if simulators:
                    # The simulator shares them in-process, so random ones are enough.
                    secrets_[name] = secrets.token_urlsafe(24)
                else:
                    self.problems.append(f"{name} is required when SIMULATORS=off")
        phone_number_id = self.text("WHATSAPP_PHONE_NUMBER_ID", "100000000000001")
        if not simulators and not self.text("WHATSAPP_PHONE_NUMBER_ID"):
            self.problems.append("WHATSAPP_PHONE_NUMBER_ID is required when SIMULATORS=off")
        greeting_raw = self.text("GREETING_FILE")
        greeting = Path(greeting_raw) if greeting_raw else None
        if greeting is not None and not greeting.is_file():
            self.problems.append(f"GREETING_FILE {greeting_raw!r} does not exist")
        media = tuple(a.strip() for a in self.text("RELAY_MEDIA_ADDRESSES", "127.0.0.1").split(","))
        assistant = self.boolean("ASSISTANT_ENABLED", False)
        transcription = self.boolean("TRANSCRIPTION_ENABLED", False)
        openai_key = self.text("OPENAI_API_KEY")
        if not openai_key and (assistant or transcription):
            if simulators and not self.text("OPENAI_BASE_URL"):
                openai_key = secrets.token_urlsafe(24)  # shared with the in-process simulator
            else:
                self.problems.append(
                    "OPENAI_API_KEY is required for ASSISTANT_ENABLED / TRANSCRIPTION_ENABLED "
                    "unless the embedded simulator is the Realtime API"
                )
        settings = Settings(
            host=self.text("RELAY_HOST", "127.0.0.1"),
            port=self.integer("RELAY_PORT", 8080, 0, 65535),
            public_url=self.text("RELAY_PUBLIC_URL"),
            data_dir=data_dir,
            database_url=database_url,
            media_addresses=None if media == ("*",) else tuple(a for a in media if a),
            udp_port_range=self.port_range("RELAY_UDP_PORT_RANGE"),
            whatsapp_verify_token=secrets_["WHATSAPP_VERIFY_TOKEN"],
            whatsapp_app_secret=secrets_["WHATSAPP_APP_SECRET"],
            whatsapp_access_token=secrets_["WHATSAPP_ACCESS_TOKEN"],
            whatsapp_phone_number_id=phone_number_id,
            whatsapp_graph_base_url=self.text("WHATSAPP_GRAPH_BASE_URL"),
            whatsapp_graph_version=self.text("WHATSAPP_GRAPH_VERSION", "v23.0"),
            graph_timeout=self.number("WHATSAPP_GRAPH_TIMEOUT", 10.0),
            greeting_file=greeting,
            simulators=simulators,
            agents=self.agents("RELAY_AGENTS"),
            no_media_timeout=self.number("RELAY_NO_MEDIA_TIMEOUT", 20.0),
            ring_timeout=self.number("RELAY_RING_TIMEOUT", 60.0),
            openai_base_url=self.text("OPENAI_BASE_URL"),
            openai_api_key=openai_key,
            assistant_enabled=assistant,
            assistant_instructions=self.text("ASSISTANT_INSTRUCTIONS") or DEFAULT_INSTRUCTIONS,
            transcription_enabled=transcription,
            case_directory=self.cases("CASE_DIRECTORY"),
            keypad_pause=self.number("KEYPAD_PAUSE", 3.0),
            ice_nomination=self.choice("RELAY_ICE_NOMINATION", ("aggressive", "regular")),
            media_bridge=self.choice("RELAY_MEDIA_BRIDGE", ("rtp", "decoded")),
            drain_timeout=self.number("RELAY_DRAIN_TIMEOUT", 25.0, allow_zero=True),
            redis_url=self.redis_url("RELAY_REDIS_URL"),
            replica_id=self.text("RELAY_REPLICA_ID") or f"{socket.gethostname()}-{os.getpid()}",
            lease_ttl=self.number("RELAY_LEASE_TTL", 10.0),
            session_ttl=self.number("RELAY_SESSION_TTL", 12 * 3600.0),
        )
        if self.problems:
            raise SettingsError(self.problems)
        return settings
