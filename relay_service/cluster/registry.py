"""Replica leases and call ownership in Redis.

Each replica holds a lease, a key that expires ``lease_ttl`` seconds after its last renewal and
says whether the replica is draining. A call belongs to the replica that holds its media; the
owner is recorded when the call starts and removed when it ends. A call whose owner's lease has
expired has no live owner: another replica ends it (:mod:`.recovery`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis.asyncio import Redis


@dataclass(frozen=True)
class Replica:
    """A live replica as its lease describes it."""

    id: str
    draining: bool
    url: str


class ReplicaRegistry:
    """One replica's view of the leases and call owners that every replica shares."""

    def __init__(
        self,
        redis: Redis,
        replica_id: str,
        *,
        lease_ttl: float,
        url: str = "",
        prefix: str = "relay:",
    ) -> None:
        self.redis = redis
        self.id = replica_id
        self.lease_ms = max(100, int(lease_ttl * 1000))
        self.url = url
        self.prefix = prefix
        self.owners_key = prefix + "owners"

    def _lease_key(self, replica_id: str) -> str:
        return f"{self.prefix}replica:{replica_id}"

    async def renew(self, *, draining: bool = False) -> None:
        """Renew this replica's lease (and say whether it is draining)."""
        lease = json.dumps({"draining": draining, "url": self.url})
        await self.redis.set(self._lease_key(self.id), lease, px=self.lease_ms)

    async def leave(self) -> None:
        """Give the lease up (clean exit, every call ended)."""
        await self.redis.delete(self._lease_key(self.id))

    async def replicas(self) -> dict[str, Replica]:
        """Every replica whose lease is live."""
        keys = [key async for key in self.redis.scan_iter(match=self._lease_key("*"), count=100)]
        if not keys:
            return {}
        values = await self.redis.mget(keys)
        live: dict[str, Replica] = {}
        for key, value in zip(keys, values, strict=True):
            if value is None:
                continue
            replica_id = _text(key).removeprefix(self._lease_key(""))
            try:
                lease = json.loads(value)
                live[replica_id] = Replica(
                    replica_id, bool(lease.get("draining")), str(lease.get("url", ""))
                )
            except (ValueError, AttributeError):
                live[replica_id] = Replica(replica_id, False, "")
        return live

    async def alive(self, replica_id: str) -> bool:
        """Whether ``replica_id`` holds a live lease."""
        return bool(await self.redis.exists(self._lease_key(replica_id)))

    async def taking_calls(self) -> list[str]:
        """Live replicas that are not draining, this one excluded."""
        return sorted(
            r.id for r in (await self.replicas()).values() if not r.draining and r.id != self.id
        )

    async def claim(self, call_id: str) -> None:
        """Record this replica as the owner of ``call_id``."""
        await self.redis.hset(self.owners_key, call_id, self.id)

    async def claim_all(self, call_ids: list[str]) -> None:
        """Record this replica as the owner of ``call_ids`` again (Redis may have restarted)."""
        if call_ids:
            await self.redis.hset(self.owners_key, mapping=dict.fromkeys(call_ids, self.id))

    async def release(self, call_id: str, owner: str | None = None) -> None:
        """Forget the owner of an ended call (only if it is still ``owner``, default this one)."""
        expected = owner or self.id
        if await self.owner(call_id) == expected:
            await self.redis.hdel(self.owners_key, call_id)

    async def owner(self, call_id: str) -> str | None:
        """The replica that owns ``call_id``, if any is recorded."""
        value = await self.redis.hget(self.owners_key, call_id)
        return None if value is None else _text(value)

    async def owners(self) -> dict[str, str]:
        """Every recorded call id → owner."""
        raw = await self.redis.hgetall(self.owners_key)
        return {_text(k): _text(v) for k, v in raw.items()}

    async def take_recovery(self, call_id: str, hold: float = 60.0) -> bool:
        """Whether this replica is the one to end ``call_id`` (one replica per orphaned call)."""
        key = f"{self.prefix}recovering:{call_id}"
        return bool(await self.redis.set(key, self.id, nx=True, px=int(hold * 1000)))

    async def first_time(self, key: str, ttl: float = 3600.0) -> bool:
        """Whether any replica saw ``key`` before (webhooks are delivered at least once)."""
        return bool(
            await self.redis.set(f"{self.prefix}seen:{key}", self.id, nx=True, px=int(ttl * 1000))
        )


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
