"""Agent sessions with an expiry: in memory (one process) or in Redis (shared by every replica)."""

from __future__ import annotations

import secrets
import time
from typing import Protocol

from redis.asyncio import Redis

from ..access import Sessions

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
    """Sessions in this process only (the single-process default): the bounded, sliding
    :class:`~relay_service.access.Sessions` with the clock read here."""

    def __init__(self, ttl: float = DEFAULT_TTL, *, max_sessions: int = 10_000) -> None:
        self.ttl = ttl
        self._sessions = Sessions(ttl, max_sessions=max_sessions)

    def __len__(self) -> int:
        """How many sessions are held."""
        return len(self._sessions)

    async def create(self, agent: str) -> str:
        """A new session for ``agent``; its token."""
        return self._sessions.create(agent, time.monotonic())

    async def agent(self, token: str) -> str | None:
        """The agent of a live session (its expiry starts again), else ``None``."""
        return self._sessions.agent(token, time.monotonic())

    async def delete(self, token: str) -> None:
        """End a session."""
        self._sessions.drop(token)


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
