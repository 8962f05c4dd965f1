"""Issue 12's defects, each against the real service over loopback: bad SDP, a read-only
database, a terminate before its connect, refused requests that must not detach a call, and
hanging up someone else's call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relay_service.simulators.caller import CallerPeer
from relay_service.simulators.whatsapp import BUSINESS_NUMBER, SimulatedCall
from relay_service.storage import Storage
from relay_service.whatsapp import payloads

from .agent import Agent, until
from .conftest import Running, running_service
from .test_faults import answered_call, assert_ended

pytestmark = pytest.mark.integration

NOT_SDP = "this is not an SDP offer"


async def send(agent: Agent, message: dict[str, Any]) -> dict[str, Any]:
    """Send a raw console message and return the error or answer it gets."""
    assert agent.ws is not None
    await agent.ws.send_json(message)
    return await agent.wait_for(lambda m: m["type"] in ("error", "answer", "handed_back"))


async def close_console(agent: Agent) -> None:
    """The console's channel closes first (as when a tab closes); the media leg lingers."""
    assert agent.ws is not None
    await agent.ws.close()


def requests_for(running: Running, call_id: str) -> list[str]:
    simulator = running.service.simulator
    assert simulator is not None
    return [r["action"] for r in simulator.requests if r.get("call_id") == call_id]


async def test_an_unparseable_answer_is_refused_and_the_call_still_rings(
    running: Running,
) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    alice = await running.agent("alice", "wonderland")
    try:
        call_id = await simulator.place_call(audio="tone")
        await alice.wait_for_call("ringing")
        reply = await send(alice, {"type": "answer", "call_id": call_id, "sdp": NOT_SDP})
        assert reply["type"] == "error" and "offer" in reply["message"]
        call = running.service.router.calls[call_id]
        assert (call.state, call.agent) == ("ringing", None)
        # The console channel is still open, and the call can be answered (here by alice).
        await alice.answer(call_id)
        await until(lambda: alice.loud_frames >= 10, what="caller audio at the agent")
        assert running.service.router.calls[call_id].state == "human"
    finally:
        await alice.close()
    await assert_ended(running, call_id, "agent disconnected")


async def test_a_dial_with_a_bad_offer_never_leaves_a_call_behind(running: Running) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    alice = await running.agent()
    try:
        reply = await send(alice, {"type": "dial", "to": "4915100000000", "sdp": NOT_SDP})
        assert reply["type"] == "error" and "offer" in reply["message"]
        await asyncio.sleep(1.0)  # what a connected call would have had time to do
        assert not running.service.router.calls
        assert all(c.state == "ended" for c in simulator.calls.values())
        assert "relay_calls_active 1" not in running.service.metrics.render()
        # The tab still works: a good dial connects.
        call_id = await alice.dial("4915100000000")
        await until(lambda: alice.loud_frames >= 10, what="the user's audio at the agent")
        await alice.hangup(call_id)
        await assert_ended(running, call_id, "hung up by alice")
    finally:
        await alice.close()


async def test_a_read_only_database_loses_neither_the_hang_up_nor_the_next_call(
    tmp_path: Path,
) -> None:
    path = tmp_path / "relay.db"
    storage = Storage(f"sqlite+aiosqlite:///{path}")
    await storage.start()  # the tables exist; from now on the file is only read
    await storage.close()
    url = f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
    async with running_service(tmp_path, RELAY_DATABASE_URL=url) as running:
        simulator = running.service.simulator
        assert simulator is not None
        async with running.session.get(running.url + "/healthz") as response:
            assert response.status == 200
        agent = Agent(running.session, running.url)
        try:
            first = await answered_call(running, agent)  # it rang and was answered
            assert requests_for(running, first)[:2] == ["pre_accept", "accept"]
            async with running.session.get(running.url + "/healthz") as response:
                assert response.status == 503
                assert "readonly" in (await response.text()).replace("-", "")
            await agent.hangup(first)
            await until(lambda: simulator.calls[first].state == "ended", what="hang-up sent")
            assert requests_for(running, first)[-1] == "terminate"
            await until(lambda: not running.service.router.calls, what="call forgotten")
            second = await simulator.place_call(audio="tone")  # the next call rings too
            await agent.wait_for(
                lambda m: m["type"] == "calls" and any(c["id"] == second for c in m["calls"])
            )
            await until(lambda: "pre_accept" in requests_for(running, second), what="pre_accept")
            await simulator.hangup(second)
            await until(lambda: not running.service.router.calls, what="second call ended")
        finally:
            await agent.close()


async def test_a_terminate_that_overtakes_its_connect_ends_the_call_at_once(
    running: Running,
) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    call_id, user = "wacid.OVERTAKEN1", "4915112345678"
    peer = CallerPeer("tone", ["127.0.0.1"])
    simulator.calls[call_id] = SimulatedCall(call_id, user, "USER_INITIATED", peer)
    phone = simulator.phone_number_id
    await simulator.send_webhook(payloads.terminate(phone, call_id, user, BUSINESS_NUMBER))
    offer = await peer.offer()
    await simulator.send_webhook(payloads.connect(phone, call_id, user, BUSINESS_NUMBER, offer))
    storage = running.service.storage

    async def ended() -> bool:
        record = await storage.find_call(call_id)
        return record is not None and record.state == "ended"

    await until(ended, timeout=10, what="the overtaken call ended")  # the ring timeout is 60 s
    record = await storage.find_call(call_id)
    assert record is not None and (record.end_reason or "").startswith("whatsapp: COMPLETED")
    assert requests_for(running, call_id) == []  # never pre-accepted: it was over already
    assert not running.service.router.calls
    await peer.close()


async def test_a_refused_hand_back_keeps_the_call_with_the_agent(running: Running) -> None:
    agent = Agent(running.session, running.url)
    call_id = await answered_call(running, agent)
    reply = await send(agent, {"type": "handback", "call_id": call_id})
    assert reply["type"] == "error" and "assistant is not enabled" in reply["message"]
    call = running.service.router.calls[call_id]
    assert (call.state, call.agent) == ("human", "alice")
    await close_console(agent)  # the tab holding the call closes: the call ends, not orphaned
    await assert_ended(running, call_id, "agent disconnected")
    await agent.close()


async def test_answering_a_call_one_holds_keeps_it(running: Running) -> None:
    agent = Agent(running.session, running.url)
    call_id = await answered_call(running, agent)
    reply = await send(agent, {"type": "answer", "call_id": call_id, "sdp": NOT_SDP})
    assert reply["type"] == "error"
    assert running.service.router.calls[call_id].agent == "alice"
    await close_console(agent)
    await assert_ended(running, call_id, "agent disconnected")
    await agent.close()
    assert "you already hold this call" in reply["message"]


async def test_only_the_agent_holding_a_call_can_hang_it_up(running: Running) -> None:
    alice = Agent(running.session, running.url)
    call_id = await answered_call(running, alice)
    async with running_session(running) as other:
        bob = await other.agent("bob", "builder")
        try:
            reply = await send(bob, {"type": "hangup", "call_id": call_id})
            assert reply["type"] == "error" and "holding" in reply["message"]
            call = running.service.router.calls[call_id]
            assert (call.state, call.agent) == ("human", "alice")
            frames = alice.loud_frames
            await until(lambda: alice.loud_frames > frames + 10, what="the call goes on")
        finally:
            await bob.close()
    await alice.hangup(call_id)
    await assert_ended(running, call_id, "hung up by alice")
    await alice.close()


@contextlib.asynccontextmanager
async def running_session(running: Running) -> AsyncIterator[Running]:
    """A second browser: its own cookie jar toward the same service."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield Running(running.service, session)
