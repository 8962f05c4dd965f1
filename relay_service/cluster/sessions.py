"""Agent sessions with an expiry: in memory (one process) or in Redis (shared by every replica)."""

from __future__ import annotations

import secrets
import time
from typing import Protocol

from redis.asyncio import Redis

DEFAULT_TTL = 12 * 3600.0


class SessionStore(Protocol):
    """Session token → agent name, each session expiring ``ttl`` seconds after its last use."""

    async def create(self, agent: str) -> str:
        """A new session for ``agent``; its token."""

    async def agent(self, token: str) -> str | None:
        """The agent of a live session (its expiry starts again), else ``None``."""

    async def delete(self, token: str) -> None:
        """End a session."""


class MemorySessionStore:
    """Sessions in this process only (the single-process default)."""

    def __init__(self, ttl: float = DEFAULT_TTL) -> None:
        self.ttl = ttl
        self._sessions: dict[str, tuple[str, float]] = {}

    async def create(self, agent: str) -> str:
        """A new session for ``agent``; its token."""
        self._forget_expired()
        token = secrets.token_urlsafe(32)
        self._sessions[token] = (agent, time.monotonic() + self.ttl)
        return token

    async def agent(self, token: str) -> str | None:
        """The agent of a live session (its expiry starts again), else ``None``."""
        entry = self._sessions.get(token)
        if entry is None or entry[1] < time.monotonic():
            self._sessions.pop(token, None)
            return None
        self._sessions[token] = (entry[0], time.monotonic() + self.ttl)
        return entry[0]

    async def delete(self, token: str) -> None:
        """End a session."""
        self._sessions.pop(token, None)

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for token in [t for t, (_, expires) in self._sessions.items() if expires < now]:
            del self._sessions[token]


class RedisSessionStore:
    """Sessions in Redis: they survive a restart and work on every replica."""

    def __init__(self, redis: Redis, ttl: float = DEFAULT_TTL, prefix: str = "relay:") -> None:
        self.redis = redis
        self.ttl_ms = max(1, int(ttl * 1000))
        self.prefix = prefix + "session:"

    async def create(self, agent: str) -> str:
        """A new session for ``agent``; its token."""
        token = secrets.token_urlsafe(32)
        await self.redis.set(self.prefix + token, agent, px=self.ttl_ms)
        return token

    async def agent(self, token: str) -> str | None:
        """The agent of a live session (its expiry starts again), else ``None``."""
        value = await self.redis.getex(self.prefix + token, px=self.ttl_ms)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def delete(self, token: str) -> None:
        """End a session."""
        await self.redis.delete(self.prefix + token)
