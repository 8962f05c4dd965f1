"""Faults end calls cleanly on every leg, with state and diagnostics saved; the greeting."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import pytest

from relay_service.whatsapp.graph import RetryPolicy

from .agent import Agent, until
from .conftest import Running, running_service

pytestmark = pytest.mark.integration


async def answered_call(running: Running, agent: Agent) -> str:
    simulator = running.service.simulator
    assert simulator is not None
    await running.login()
    await agent.connect()
    call_id = await simulator.place_call(audio="tone")
    await agent.wait_for_call("ringing")
    await agent.answer(call_id)
    await until(lambda: agent.loud_frames >= 10, what="caller audio at the agent")
    return call_id


async def assert_ended(running: Running, call_id: str, reason: str) -> None:
    storage = running.service.storage

    async def ended() -> bool:
        record = await storage.find_call(call_id)
        return record is not None and record.state == "ended"

    await until(ended, what="call ended in the database")
    record = await storage.find_call(call_id)
    assert record is not None and reason in (record.end_reason or "")
    assert record.ended_at is not None
    assert await storage.diagnostics(record.id)
    simulator = running.service.simulator
    assert simulator is not None
    await until(lambda: simulator.calls[call_id].state == "ended", what="WhatsApp leg ended")
    assert not running.service.router.calls


async def test_caller_vanishes_and_the_call_ends_after_the_no_media_rule(tmp_path: Path) -> None:
    async with running_service(tmp_path, RELAY_NO_MEDIA_TIMEOUT="2") as running:
        agent = Agent(running.session, running.url)
        try:
            call_id = await answered_call(running, agent)
            assert running.service.simulator is not None
            running.service.simulator.vanish(call_id)
            ended = await agent.wait_for(lambda m: m["type"] == "ended", timeout=30)
            assert "no media" in ended["reason"]
        finally:
            await agent.close()
        await assert_ended(running, call_id, "no media from caller")


async def test_agent_tab_closes_mid_call(running: Running) -> None:
    agent = Agent(running.session, running.url)
    call_id = await answered_call(running, agent)
    await agent.close()
    await assert_ended(running, call_id, "agent")
    simulator = running.service.simulator
    assert simulator is not None
    assert simulator.requests[-1]["action"] == "terminate"


async def test_graph_error_on_pre_accept_ends_the_call(running: Running) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    simulator.faults["pre_accept"] = "error:138007"
    call_id = await simulator.place_call(audio="tone")
    await assert_ended(running, call_id, "138007")


async def test_graph_timeout_on_accept_ends_the_call(tmp_path: Path) -> None:
    async with running_service(tmp_path, WHATSAPP_GRAPH_TIMEOUT="1") as running:
        simulator = running.service.simulator
        assert simulator is not None
        simulator.faults["accept"] = "timeout"
        agent = await running.agent()
        try:
            call_id = await simulator.place_call(audio="tone")
            await agent.wait_for_call("ringing")
            with pytest.raises(AssertionError, match="refused to accept"):
                await agent.answer(call_id)
        finally:
            await agent.close()
        simulator.release()
        await assert_ended(running, call_id, "no answer within")


def write_tone(path: Path, seconds: float = 3.0, rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        samples = (
            int(9000 * math.sin(2 * math.pi * 500 * i / rate)) for i in range(int(seconds * rate))
        )
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))


async def test_greeting_plays_to_the_caller_before_an_agent_answers(tmp_path: Path) -> None:
    greeting = tmp_path / "greeting.wav"
    write_tone(greeting)
    async with running_service(tmp_path, GREETING_FILE=str(greeting)) as running:
        simulator = running.service.simulator
        assert simulator is not None
        agent = await running.agent()
        try:
            call_id = await simulator.place_call(audio="tone")
            await agent.wait_for_call("prerecorded")
            sim_call = simulator.calls[call_id]
            await until(lambda: sim_call.peer.loud_frames >= 25, what="greeting at the caller")
            assert [r["action"] for r in simulator.requests] == ["pre_accept", "accept"]
            await agent.answer(call_id)
            await agent.wait_for_call("human")
            await until(lambda: agent.loud_frames >= 10, what="caller audio at the agent")
            assert [r["action"] for r in simulator.requests] == ["pre_accept", "accept"]
        finally:
            await agent.close()


async def test_unanswered_call_is_declined_after_the_ring_timeout(tmp_path: Path) -> None:
    async with running_service(tmp_path, RELAY_RING_TIMEOUT="1.5") as running:
        simulator = running.service.simulator
        assert simulator is not None
        call_id = await simulator.place_call(audio="tone")
        await assert_ended(running, call_id, "an agent did not answer")
        assert simulator.requests[-1]["action"] == "reject"
        assert simulator.calls[call_id].end_status == "REJECTED"


async def test_simulator_ends_a_call_without_media_like_meta(running: Running) -> None:
    from relay_service.simulators.caller import CallerPeer
    from relay_service.simulators.whatsapp import SimulatedCall
    from relay_service.whatsapp.sdp import prepare_answer
    from webrtc_ext import PeerConnectionConfig, RTCPeerConnection, RTCSessionDescription

    simulator = running.service.simulator
    assert simulator is not None
    simulator.no_media_timeout = 1.0
    caller = CallerPeer("tone")
    call = SimulatedCall("wacid.SILENT", "491", "USER_INITIATED", caller)
    simulator.calls[call.call_id] = call
    business = RTCPeerConnection(
        PeerConnectionConfig(host_addresses=["127.0.0.1"], fingerprint_algorithms=("sha-256",))
    )
    try:
        await business.setRemoteDescription(
            RTCSessionDescription(sdp=await caller.offer(), type="offer")
        )
        await business.setLocalDescription(await business.createAnswer())  # sends nothing
        answer = prepare_answer(business.localDescription.sdp)
        async with running.session.post(
            running.service.settings.graph_base_url + "/v23.0/100000000000001/calls",
            json={
                "messaging_product": "whatsapp",
                "call_id": call.call_id,
                "action": "accept",
                "session": {"sdp_type": "answer", "sdp": answer},
            },
            headers={"Authorization": "Bearer test-access-token"},
        ) as response:
            assert response.status == 200
        await until(lambda: call.state == "ended", what="simulator's no-media rule")
        assert call.end_status == "FAILED"
    finally:
        await business.close()


async def test_hangup_reaches_whatsapp_through_a_failing_graph_api(running: Running) -> None:
    """terminate is idempotent: it is retried with backoff until WhatsApp takes it."""
    simulator = running.service.simulator
    assert simulator is not None
    running.service.graph.retry = RetryPolicy(base=0.05, cap=0.2)
    agent = await running.agent()
    try:
        call_id = await simulator.place_call(audio="tone")
        await agent.wait_for_call("ringing")
        await agent.answer(call_id)
        await agent.wait_for_call("human")
        simulator.faults["terminate"] = "unavailable*2"
        await agent.hangup(call_id)
        sim_call = simulator.calls[call_id]
        await until(lambda: sim_call.state == "ended", what="WhatsApp leg ended")
        assert sim_call.end_status == "COMPLETED"
    finally:
        await agent.close()
    terminates = [r for r in simulator.requests if r["action"] == "terminate"]
    assert len(terminates) == 3
    metrics = running.service.metrics
    assert metrics.graph_retries.value(action="terminate") == 2
    assert metrics.graph_requests.value(action="terminate", outcome="error") == 2
    assert metrics.graph_requests.value(action="terminate", outcome="ok") == 1
