"""One replica among several: the shell between the router, the console, the webhook and Redis.

- A call belongs to the replica that holds its media (it answered the ``connect``, or dialled).
- A webhook event may reach any replica; it goes to the call's owner over the bus. A new call
  is taken here unless this replica drains; then by a replica that does not.
- Every replica's console shows every live call; an agent's signalling for a call another
  replica owns is forwarded there, and the browser's media goes to that replica.
- Each replica renews its lease; when one's lease expires, another ends its calls
  (:mod:`.recovery`), once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..callstate import Hold, Resume, SendKeys
from ..router import CallUnavailable
from ..storage import Storage, utcnow
from ..whatsapp.events import CallConnect, CallStatus, WebhookEvent, dedup_key
from ..whatsapp.graph import GraphClient
from .bus import EventBus, Message, RemoteError, event_from_wire, event_to_wire
from .recovery import REPLICA_LOST, end_records
from .registry import ReplicaRegistry

if TYPE_CHECKING:
    from ..agents import AgentConsole
    from ..call import Call
    from ..router import CallRouter

logger = logging.getLogger(__name__)

OWNER_WAIT = 3.0
"""Seconds an outbound call's early webhook waits for its owner to be recorded."""
FLUSH_TIMEOUT = 2.0


class ClusterNode:
    """This replica's membership: lease, ownership, forwarding, shared console, recovery."""

    def __init__(
        self,
        redis: Redis,
        replica_id: str,
        *,
        lease_ttl: float,
        url: str,
        router: CallRouter,
        console: AgentConsole,
        storage: Storage,
        graph: GraphClient,
        prefix: str = "relay:",
    ) -> None:
        self.redis = redis
        self.id = replica_id
        self.lease_ttl = lease_ttl
        self.router = router
        self.console = console
        self.storage = storage
        self.graph = graph
        self.registry = ReplicaRegistry(
            redis, replica_id, lease_ttl=lease_ttl, url=url, prefix=prefix
        )
        self.bus = EventBus(redis, replica_id, prefix=prefix)
        self.live_key = prefix + "live"
        self.remote_calls: dict[str, dict[str, Any]] = {}
        """Live calls of the other replicas: call id → what the console shows (with its owner)."""
        self.draining = False
        self._claimed: set[str] = set()
        self._unowned: set[str] = set()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    # -- life ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Take a lease, listen, load the other replicas' calls, end calls nobody holds."""
        await self.registry.renew()
        self.bus.on_message = self._on_message
        self.bus.on_request = self._on_request
        await self.bus.start()
        for call_id, raw in (await self.redis.hgetall(self.live_key)).items():
            with contextlib.suppress(ValueError):
                summary = json.loads(raw)
                if summary.get("replica") != self.id:
                    self.remote_calls[_text(call_id)] = summary
        self.router.listeners.append(self._on_call_event)
        self.router.hand_over = self.hand_over
        self.console.remote = self
        self.console.replica_id = self.id
        period = max(0.2, self.lease_ttl / 3)
        self._tasks = [
            asyncio.ensure_future(self._every(period, self._renew, "lease renewal")),
            asyncio.ensure_future(self._every(period, self.recover, "recovery", first=0.0)),
            asyncio.ensure_future(self._send_updates()),
        ]

    async def set_draining(self) -> None:
        """Tell the other replicas that this one takes no new call."""
        self.draining = True
        with contextlib.suppress(RedisError, OSError):
            await self.registry.renew(draining=True)

    async def close(self) -> None:
        """Flush updates, give the lease up if no call is left, stop listening."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FLUSH_TIMEOUT):
                await self._outbox.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if not self.router.calls:
            with contextlib.suppress(RedisError, OSError):
                await self.registry.leave()
        await self.bus.close()
        await self.redis.aclose()

    async def _every(self, period: float, job: Any, what: str, first: float | None = None) -> None:
        await asyncio.sleep(period if first is None else first)
        while True:
            try:
                await job()
            except Exception:
                logger.exception("%s failed", what)
            await asyncio.sleep(period)

    async def _renew(self) -> None:
        await self.registry.renew(draining=self.draining)
        # Ownership is recorded again each period: a Redis that restarted empty learns it back
        # before an unowned call is taken for an orphan (two checks in a row, see recover).
        await self.registry.claim_all([c for c in self.router.calls if c in self._claimed])

    # -- webhook events -----------------------------------------------------------------------

    async def handle_event(self, event: WebhookEvent) -> None:
        """A webhook event that reached this replica: handled here or by its call's owner."""
        try:
            if not await self._first_time(event):
                return
            if await self._forwarded(event):
                return
        except (RedisError, OSError) as exc:
            logger.error("Redis unavailable (%s): handling the event here", exc)
        await self.router.handle_event(event)

    async def _first_time(self, event: WebhookEvent) -> bool:
        key = dedup_key(event)
        if key is None or await self.registry.first_time(key):
            return True
        logger.info("duplicate webhook event %s ignored (seen by a replica)", key)
        return False

    async def _forwarded(self, event: WebhookEvent) -> bool:
        message = {"kind": "event", "event": event_to_wire(event)}
        if _is_new_call(event):
            return False  # taken here, or handed over by the router while draining
        call_id = getattr(event, "call_id", None)
        if not isinstance(call_id, str) or call_id in self.router.calls:
            return False
        owner = await self.registry.owner(call_id)
        if owner is None and isinstance(event, CallConnect | CallStatus):
            owner = await self._wait_for_owner(call_id)
        if owner is None or owner == self.id or not await self.registry.alive(owner):
            return False
        if await self.bus.send(owner, message):
            logger.info("event for call %s forwarded to its owner %s", call_id, owner)
            return True
        return False

    async def hand_over(self, event: CallConnect) -> bool:
        """Give a new call to a replica that is not draining; false if none takes it."""
        message = {"kind": "event", "event": event_to_wire(event)}
        try:
            others = await self.registry.taking_calls()
            for other in others:
                if await self.bus.send(other, message):
                    logger.info("new call handed to replica %s (draining here)", other)
                    return True
        except (RedisError, OSError) as exc:
            logger.error("Redis unavailable (%s): the new call cannot be handed over", exc)
            return False
        logger.warning("no replica takes new calls (live, not draining: %s)", others or "none")
        return False

    async def _wait_for_owner(self, call_id: str) -> str | None:
        """An outbound call's status may overtake the reply that names its owner."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + OWNER_WAIT
        while loop.time() < deadline:
            await asyncio.sleep(0.1)
            if call_id in self.router.calls:
                return self.id
            owner = await self.registry.owner(call_id)
            if owner is not None:
                return owner
        return None

    # -- messages from other replicas ---------------------------------------------------------

    async def _on_message(self, message: Message) -> None:
        kind = message.get("kind")
        if kind == "event":
            try:
                event = event_from_wire(message.get("event") or {})
            except ValueError as exc:
                logger.warning("bad forwarded event ignored: %s", exc)
                return
            await self.router.handle_event(event)
        elif kind == "console" and message.get("from") != self.id:
            self._remote_update(message)

    def _remote_update(self, message: Message) -> None:
        call_id, state = str(message.get("call_id")), str(message.get("state"))
        summary = message.get("summary")
        if state == "ended":
            self.remote_calls.pop(call_id, None)
        elif isinstance(summary, dict):
            self.remote_calls[call_id] = summary
        data = message.get("data")
        self.console.push(
            str(message.get("event")),
            call_id,
            state,
            message.get("end_reason"),
            data if isinstance(data, dict) else {},
            summary.get("agent") if isinstance(summary, dict) else None,
        )

    async def _on_request(self, op: str, args: Message) -> Message:
        call_id, agent = str(args.get("call_id")), str(args.get("agent"))
        if op == "answer":
            return {"sdp": await self.router.answer(call_id, agent, str(args.get("sdp")))}
        if op == "hangup":
            await self.router.hangup(call_id, agent)
        elif op == "handback":
            await self.router.hand_back(call_id, agent)
        elif op in ("hold", "resume"):
            await self.router.control(call_id, (Hold if op == "hold" else Resume)(agent))
        elif op == "keys":
            await self.router.control(call_id, SendKeys(agent, str(args.get("digits", ""))))
        elif op == "agent_gone":
            await self.router.agent_left(call_id, agent)
        else:
            raise CallUnavailable(f"unknown request {op!r}")
        return {}

    # -- the console's view of other replicas (agents.RemoteCalls) ----------------------------

    def summaries(self) -> list[dict[str, Any]]:
        """Every live call of the other replicas."""
        return [s for s in self.remote_calls.values() if s.get("state") != "ended"]

    def holds(self, call_id: str) -> bool:
        """Whether another replica owns ``call_id``."""
        return call_id in self.remote_calls

    async def forward(self, op: str, call_id: str, agent: str, **args: Any) -> dict[str, Any]:
        """Ask the owner of ``call_id`` to do ``op`` for ``agent``."""
        owner = str(self.remote_calls.get(call_id, {}).get("replica", ""))
        try:
            owner = await self.registry.owner(call_id) or owner
            return await self.bus.request(owner, op, {"call_id": call_id, "agent": agent, **args})
        except (RemoteError, RedisError, OSError) as exc:
            raise CallUnavailable(str(exc)) from exc

    # -- this replica's calls, told to the others ---------------------------------------------

    def _on_call_event(self, kind: str, call: Call, data: dict[str, Any]) -> None:
        if not call.wa_call_id:
            return
        summary = {**self.console.call_summary(call), "replica": self.id}
        self._outbox.put_nowait(
            {
                "kind": "console",
                "event": kind,
                "call_id": call.wa_call_id,
                "state": call.state,
                "end_reason": call.end_reason,
                "summary": summary,
                "data": data,
            }
        )

    async def _send_updates(self) -> None:
        """In order, per call: claim, publish its summary, tell the consoles, release."""
        while True:
            update = await self._outbox.get()
            try:
                await self._send_update(update)
            except Exception:
                logger.exception("sharing a call update failed")
            finally:
                self._outbox.task_done()

    async def _send_update(self, update: Message) -> None:
        call_id, ended = str(update["call_id"]), update["state"] == "ended"
        if call_id not in self._claimed and not ended:
            self._claimed.add(call_id)
            await self.registry.claim(call_id)
        if ended:
            await self.redis.hdel(self.live_key, call_id)
        elif update["event"] in ("call", "dtmf", "ai"):
            await self.redis.hset(
                self.live_key, call_id, json.dumps(update["summary"], default=str)
            )
        await self.bus.broadcast(json.loads(json.dumps(update, default=str)))
        if ended:
            self._claimed.discard(call_id)
            await self.registry.release(call_id)

    # -- recovery -----------------------------------------------------------------------------

    async def recover(self) -> list[str]:
        """End every call whose owner's lease expired (or that nobody owns); their ids."""
        # Owners first: a replica renews its lease before it records a call, so an owner read here
        # shows up in the leases read next unless it is really gone.
        owners = await self.registry.owners()
        live = await self.registry.replicas()
        orphans: dict[str, str] = {}
        for call_id, owner in owners.items():
            mine_but_gone = owner == self.id and call_id not in self.router.calls
            if (mine_but_gone and call_id not in self._claimed) or (
                owner != self.id and owner not in live
            ):
                orphans[call_id] = owner
        unfinished = {r.wa_call_id: r for r in await self.storage.unfinished_calls()}
        now = utcnow()
        unowned = {
            call_id
            for call_id, record in unfinished.items()
            if call_id not in owners
            and call_id not in self.router.calls
            and (now - record.created_at).total_seconds() > self.lease_ttl
        }
        for call_id in unowned & self._unowned:  # unowned at two checks in a row
            orphans[call_id] = ""
        self._unowned = unowned
        records = []
        for call_id in orphans:
            if await self.registry.take_recovery(call_id):
                if call_id in unfinished:
                    records.append(unfinished[call_id])
                else:  # ended already; only the ownership was left
                    await self._forget(call_id, orphans[call_id])
        if not records:
            return []
        logger.warning("ending %d calls whose replica is gone", len(records))
        ended = await end_records(self.storage, self.graph, records, REPLICA_LOST)
        for record in records:
            await self._forget(record.wa_call_id, orphans[record.wa_call_id])
        return ended

    async def _forget(self, call_id: str, owner: str) -> None:
        if owner:
            await self.registry.release(call_id, owner)
        await self.redis.hdel(self.live_key, call_id)
        update: Message = {
            "kind": "console",
            "event": "call",
            "call_id": call_id,
            "state": "ended",
            "end_reason": REPLICA_LOST,
            "summary": None,
            "data": {},
        }
        self._remote_update(update)  # the bus does not echo this replica's own updates
        await self.bus.broadcast(update)


def _is_new_call(event: WebhookEvent) -> bool:
    return (
        isinstance(event, CallConnect)
        and event.direction == "USER_INITIATED"
        and event.sdp_type == "offer"
    )


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
