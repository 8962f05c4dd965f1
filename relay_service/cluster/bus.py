"""Messages between replicas over Redis pub/sub: to one replica, to all, and requests with replies.

Every replica listens on its own channel and on the shared one. A message is a JSON object with
``kind``; a request (``kind: "request"``) is answered by a ``reply`` on the sender's channel.
Pub/sub keeps nothing for a replica that is not listening: :meth:`EventBus.send` says whether
anyone received the message, so that the sender can act itself instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from ..whatsapp.events import (
    CallConnect,
    CallError,
    CallStatus,
    CallTerminate,
    UnknownEvent,
    WebhookEvent,
)

logger = logging.getLogger(__name__)

Message = dict[str, Any]
MessageHandler = Callable[[Message], Awaitable[None]]
RequestHandler = Callable[[str, Message], Awaitable[Message]]


class RemoteError(Exception):
    """The replica asked could not do it (its message says why), or did not answer in time."""


class EventBus:
    """This replica's end of the pub/sub channels."""

    def __init__(self, redis: Redis, replica_id: str, prefix: str = "relay:") -> None:
        self.redis = redis
        self.id = replica_id
        self.prefix = prefix
        self.everyone = prefix + "all"
        self.on_message: MessageHandler | None = None
        self.on_request: RequestHandler | None = None
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._subscribed = asyncio.Event()

    def channel(self, replica_id: str) -> str:
        """The channel of one replica."""
        return f"{self.prefix}to:{replica_id}"

    async def start(self) -> None:
        """Listen on this replica's channel and the shared one."""
        self._reader = asyncio.ensure_future(self._read())
        await self._subscribed.wait()

    async def close(self) -> None:
        """Stop listening; pending requests fail."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        for future in self._pending.values():
            if not future.done():
                future.set_exception(RemoteError("this replica is stopping"))
        for task in list(self._handlers):
            task.cancel()

    async def send(self, replica_id: str, message: Message) -> bool:
        """Send to one replica; false if it is not listening."""
        receivers = await self.redis.publish(self.channel(replica_id), _encode(message, self.id))
        return int(receivers) > 0

    async def broadcast(self, message: Message) -> None:
        """Send to every replica (this one included)."""
        await self.redis.publish(self.everyone, _encode(message, self.id))

    async def request(
        self, replica_id: str, op: str, args: Message, timeout: float = 15.0
    ) -> Message:
        """Ask ``replica_id`` to do ``op``; its result, or :class:`RemoteError`."""
        request_id = secrets.token_hex(8)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            message = {"kind": "request", "id": request_id, "op": op, "args": args}
            if not await self.send(replica_id, message):
                raise RemoteError(f"replica {replica_id} is not listening")
            async with asyncio.timeout(timeout):
                reply = await future
        except TimeoutError:
            raise RemoteError(f"replica {replica_id} did not answer {op} in time") from None
        finally:
            self._pending.pop(request_id, None)
        if not reply.get("ok"):
            raise RemoteError(str(reply.get("error", "failed")))
        result = reply.get("result")
        return result if isinstance(result, dict) else {}

    async def _read(self) -> None:
        """Listen until closed; a lost connection to Redis is opened again."""
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.error("listening on Redis failed (%s); again in 0.5 s", exc)
            await asyncio.sleep(0.5)

    async def _listen(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel(self.id), self.everyone)
            self._subscribed.set()
            async for raw in pubsub.listen():
                if raw.get("type") != "message":
                    continue
                try:
                    message = json.loads(raw["data"])
                    assert isinstance(message, dict)
                except (ValueError, TypeError, AssertionError):
                    logger.warning("unreadable message on %s ignored", raw.get("channel"))
                    continue
                self._dispatch(message)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _dispatch(self, message: Message) -> None:
        kind = message.get("kind")
        if kind == "reply":
            future = self._pending.get(str(message.get("id")))
            if future is not None and not future.done():
                future.set_result(message)
            return
        if kind == "request":
            coroutine: Awaitable[None] = self._answer(message)
        elif self.on_message is not None:
            coroutine = self.on_message(message)
        else:
            return
        task = asyncio.ensure_future(coroutine)
        self._handlers.add(task)
        task.add_done_callback(self._handled)

    def _handled(self, task: asyncio.Task[None]) -> None:
        self._handlers.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "handling a message from another replica failed", exc_info=task.exception()
            )

    async def _answer(self, message: Message) -> None:
        reply: Message = {"kind": "reply", "id": message.get("id")}
        try:
            if self.on_request is None:
                raise RemoteError("this replica takes no requests")
            args = message.get("args")
            reply["result"] = await self.on_request(
                str(message.get("op")), args if isinstance(args, dict) else {}
            )
            reply["ok"] = True
        except Exception as exc:  # the asker gets the reason; this replica goes on
            reply.update(ok=False, error=str(exc) or type(exc).__name__)
        await self.send(str(message.get("from")), reply)


def _encode(message: Message, sender: str) -> str:
    return json.dumps({**message, "from": sender})


_EVENT_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls for cls in (CallConnect, CallTerminate, CallStatus, UnknownEvent)
}


def event_to_wire(event: WebhookEvent) -> Message:
    """A parsed webhook event as JSON, to hand it to the replica that owns its call."""
    return {"type": type(event).__name__, "fields": dataclasses.asdict(event)}


def event_from_wire(wire: Message) -> WebhookEvent:
    """The webhook event :func:`event_to_wire` encoded; ``ValueError`` if it is not one."""
    cls = _EVENT_TYPES.get(str(wire.get("type")))
    fields = wire.get("fields")
    if cls is None or not isinstance(fields, dict):
        raise ValueError(f"not a webhook event: {wire.get('type')!r}")
    if cls is CallTerminate:
        errors = fields.get("errors") or []
        fields = {
            **fields,
            "errors": tuple(CallError(e.get("code"), e.get("title", "")) for e in errors),
        }
    try:
        event: WebhookEvent = cls(**fields)
    except TypeError as exc:
        raise ValueError(f"bad {cls.__name__}: {exc}") from None
    return event
