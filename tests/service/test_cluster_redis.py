"""Leases, ownership, the bus and agent sessions against a real Redis (started by the test)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from relay_service.cluster.bus import EventBus, RemoteError, event_from_wire, event_to_wire
from relay_service.cluster.registry import ReplicaRegistry
from relay_service.cluster.sessions import MemorySessionStore, RedisSessionStore, SessionStore
from relay_service.whatsapp.events import (
    CallConnect,
    CallError,
    CallStatus,
    CallTerminate,
    UnknownEvent,
    WebhookEvent,
)

from ..servers import Redis as RedisServer
from ..servers import redis_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(Path(tmp_path_factory.mktemp("redis"))) as running:
        yield running


@pytest.fixture
async def redis(server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(server.url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


# -- sessions --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_sessions_expire_unless_used_and_can_end(redis: Redis, kind: str) -> None:
    def store(ttl: float) -> SessionStore:
        return MemorySessionStore(ttl) if kind == "memory" else RedisSessionStore(redis, ttl)

    lasting, short = store(60), store(0.3)
    token = await lasting.create("alice")
    assert await lasting.agent(token) == "alice"
    assert await lasting.agent("forged") is None
    await lasting.delete(token)
    assert await lasting.agent(token) is None
    brief = await short.create("bob")
    await asyncio.sleep(0.6)
    assert await short.agent(brief) is None


async def test_redis_sessions_are_seen_by_every_replica_and_survive_a_restart(
    redis: Redis, server: RedisServer
) -> None:
    token = await RedisSessionStore(redis).create("alice")
    other = Redis.from_url(server.url)  # another replica, or this one restarted
    try:
        assert await RedisSessionStore(other).agent(token) == "alice"
    finally:
        await other.aclose()


# -- leases and owners -----------------------------------------------------------------------


async def test_a_lease_expires_without_renewal_and_says_whether_draining(redis: Redis) -> None:
    a = ReplicaRegistry(redis, "a", lease_ttl=0.4, url="http://a")
    b = ReplicaRegistry(redis, "b", lease_ttl=60)
    await a.renew()
    await b.renew()
    assert await b.alive("a")
    assert await a.taking_calls() == ["b"]
    assert await b.taking_calls() == ["a"]
    await a.renew(draining=True)
    assert (await b.replicas())["a"].draining
    assert await b.taking_calls() == []
    await asyncio.sleep(0.8)
    assert not await b.alive("a")
    assert set(await b.replicas()) == {"b"}
    await b.leave()
    assert not await a.alive("b")


async def test_ownership_is_recorded_and_released_only_by_its_owner(redis: Redis) -> None:
    a, b = ReplicaRegistry(redis, "a", lease_ttl=5), ReplicaRegistry(redis, "b", lease_ttl=5)
    await a.claim("wacid.1")
    assert await b.owner("wacid.1") == "a"
    await b.release("wacid.1")  # b does not own it
    assert await b.owners() == {"wacid.1": "a"}
    await b.release("wacid.1", owner="a")  # b ended it for the dead a
    assert await a.owner("wacid.1") is None


async def test_one_replica_recovers_a_call_and_one_handles_an_event(redis: Redis) -> None:
    replicas = [ReplicaRegistry(redis, name, lease_ttl=5) for name in "abc"]
    takers = await asyncio.gather(*(r.take_recovery("wacid.9") for r in replicas))
    assert sorted(takers) == [False, False, True]
    firsts = await asyncio.gather(*(r.first_time("terminate:wacid.9") for r in replicas))
    assert sorted(firsts) == [False, False, True]


# -- the bus ---------------------------------------------------------------------------------


@pytest.fixture
async def buses(redis: Redis) -> AsyncIterator[tuple[EventBus, EventBus]]:
    a, b = EventBus(redis, "a"), EventBus(redis, "b")
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_messages_reach_one_replica_or_all(buses: tuple[EventBus, EventBus]) -> None:
    a, b = buses
    got: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}

    async def keep(name: str, message: dict[str, Any]) -> None:
        got[name].append(message)

    a.on_message = lambda m: keep("a", m)
    b.on_message = lambda m: keep("b", m)
    assert await a.send("b", {"kind": "hello", "n": 1})
    assert not await a.send("nobody", {"kind": "hello"})
    await a.broadcast({"kind": "news"})
    for _ in range(50):
        if len(got["b"]) == 2 and len(got["a"]) == 1:
            break
        await asyncio.sleep(0.05)
    assert [m["kind"] for m in got["b"]] == ["hello", "news"]
    assert got["b"][0] == {"kind": "hello", "n": 1, "from": "a"}
    assert [m["kind"] for m in got["a"]] == ["news"]


async def test_a_request_gets_its_reply_or_the_reason_it_failed(
    buses: tuple[EventBus, EventBus],
) -> None:
    a, b = buses

    async def answer(op: str, args: dict[str, Any]) -> dict[str, Any]:
        if op == "answer":
            return {"sdp": "v=0 for " + str(args["call_id"])}
        raise ValueError(f"call {args['call_id']} is not waiting for an agent")

    b.on_request = answer
    assert await a.request("b", "answer", {"call_id": "wacid.1"}) == {"sdp": "v=0 for wacid.1"}
    with pytest.raises(RemoteError, match="not waiting for an agent"):
        await a.request("b", "hangup", {"call_id": "wacid.2"})
    with pytest.raises(RemoteError, match="not listening"):
        await a.request("gone", "answer", {})
    silent = EventBus(b.redis, "silent")  # subscribed, never answers
    silent.on_request = lambda op, args: asyncio.sleep(3600)  # type: ignore[assignment,return-value]
    await silent.start()
    try:
        with pytest.raises(RemoteError, match="did not answer"):
            await a.request("silent", "answer", {}, timeout=0.3)
    finally:
        await silent.close()


# -- events on the wire ----------------------------------------------------------------------

text = st.text(max_size=40)
maybe_int = st.none() | st.integers(min_value=0, max_value=2**40)
maybe_text = st.none() | text
events: st.SearchStrategy[WebhookEvent] = st.one_of(
    st.builds(CallConnect, text, text, text, text, maybe_int, text, text, maybe_text, maybe_text),
    st.builds(
        CallTerminate,
        text,
        text,
        text,
        text,
        maybe_int,
        maybe_int,
        maybe_int,
        maybe_int,
        st.lists(st.builds(CallError, maybe_int, text), max_size=3).map(tuple),
        maybe_text,
    ),
    st.builds(CallStatus, text, text, maybe_int, maybe_text),
    st.builds(UnknownEvent, text, text),
)


@given(events)
def test_every_webhook_event_crosses_the_bus_unchanged(event: WebhookEvent) -> None:
    import json

    assert event_from_wire(json.loads(json.dumps(event_to_wire(event)))) == event


@pytest.mark.parametrize(
    "wire",
    [{}, {"type": "Nope", "fields": {}}, {"type": "CallStatus", "fields": {"x": 1}}, {"type": 3}],
)
def test_a_bad_forwarded_event_is_refused_clearly(wire: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        event_from_wire(wire)
