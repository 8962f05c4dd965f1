"""Access rules of the console and its API, sans-I/O: sessions, sign-in rate limits, origins.

The aiohttp glue is in :mod:`relay_service.agents` (sign-in, sessions) and
:func:`origin_middleware` (every state-changing request).
"""

from __future__ import annotations

import math
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class AccessPolicy:
    """The access settings of one service."""

    public_url: str
    """The service's URL; its origin is the only one allowed when set explicitly."""
    explicit_public_url: bool
    session_ttl: float
    login_failures_per_name: int
    login_failures_per_address: int
    login_window: float

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessPolicy:
        """The policy ``settings`` describe."""
        return cls(
            public_url=settings.base_url,
            explicit_public_url=bool(settings.public_url),
            session_ttl=settings.session_ttl,
            login_failures_per_name=settings.login_failures_per_name,
            login_failures_per_address=settings.login_failures_per_address,
            login_window=settings.login_window,
        )

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over TLS when the service is reached over https."""
        return self.public_url.lower().startswith("https://")

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """Whether a browser request from ``origin`` to ``Host: host`` is same-origin.

        No ``Origin`` at all is a client that is not a browser (browsers send it with every
        state-changing and WebSocket request), which a cross-site page cannot be.
        """
        if origin is None:
            return True
        ours = origin_of(self.public_url)
        if origin_of(origin) == ours:
            return True
        if self.explicit_public_url or host is None:
            return False
        # Without RELAY_PUBLIC_URL the page may be opened under any name of this host.
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower case, the default port left out."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def origin_middleware(policy: AccessPolicy) -> Middleware:
    """A middleware refusing (403) state-changing requests a page of another origin sent."""

    @web.middleware
    async def check_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in SAFE_METHODS and not policy.origin_allowed(
            request.headers.get("Origin"), request.headers.get("Host")
        ):
            raise web.HTTPForbidden(text="cross-origin request refused")
        return await handler(request)

    return check_origin


class SlidingWindow:
    """At most ``limit`` events per key within any ``window`` seconds (time passed in).

    Keys are names and addresses of failed sign-ins; no key is ever locked for longer than
    ``window``. At most ``max_keys`` keys are remembered (the least recently used goes first),
    so a flood of made-up names cannot grow memory.
    """

    def __init__(self, limit: int, window: float, *, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        """How many keys are remembered."""
        return len(self._events)

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again; 0 if it may now."""
        times = self._events.get(key)
        if times is None:
            return 0.0
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._events[key]
            return 0.0
        if len(times) < self.limit:
            return 0.0
        return times[-self.limit] + self.window - now

    def record(self, key: str, now: float) -> None:
        """One more event for ``key`` at ``now``."""
        times = self._events.get(key)
        if times is None:
            times = self._events[key] = deque(maxlen=self.limit)
        self._events.move_to_end(key)
        times.append(now)
        while len(self._events) > self.max_keys:
            self._events.popitem(last=False)


def retry_after_header(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


@dataclass
class _Session:
    agent: str
    expires_at: float


class Sessions:
    """Session tokens of signed-in agents, each valid until ``ttl`` seconds pass without use
    (time passed in).

    At most ``max_sessions`` are held; past that the oldest sign-in is forgotten first.
    """

    def __init__(self, ttl: float, *, max_sessions: int = 10_000) -> None:
        self.ttl = ttl
        self.max_sessions = max_sessions
        self._sessions: dict[str, _Session] = {}

    def __len__(self) -> int:
        """How many sessions are held (expired ones until the next sign-in)."""
        return len(self._sessions)

    def create(self, agent: str, now: float) -> str:
        """A new token for ``agent``; expired sessions are forgotten on the way."""
        for token in [t for t, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[token]
        token = secrets.token_urlsafe(32)
        self._sessions[token] = _Session(agent, now + self.ttl)
        while len(self._sessions) > self.max_sessions:  # insertion order is sign-in order
            del self._sessions[next(iter(self._sessions))]
        return token

    def agent(self, token: str | None, now: float) -> str | None:
        """The agent of a valid, unexpired token; using it extends it by ``ttl``."""
        session = self._sessions.get(token) if token else None
        if session is None:
            return None
        if session.expires_at <= now:
            del self._sessions[token or ""]
            return None
        session.expires_at = now + self.ttl
        return session.agent

    def drop(self, token: str | None) -> None:
        """Forget a token (sign-out)."""
        self._sessions.pop(token or "", None)
