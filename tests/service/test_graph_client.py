"""The Graph API client against the WhatsApp simulator: bodies, errors, timeouts."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay_service.simulators.caller import CallerPeer
from relay_service.whatsapp.graph import (
    GraphApiError,
    GraphClient,
    GraphTimeout,
    RetryPolicy,
    is_transient,
)
from relay_service.whatsapp.sdp import answer_problems, fingerprint_count, prepare_answer
from webrtc_ext import PeerConnectionConfig, RTCPeerConnection, RTCSessionDescription

from .conftest import Running, make_settings, start

pytestmark = pytest.mark.integration


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Running]:
    import aiohttp

    # Silence the webhook target: these tests talk to the simulator only.
    service, runner = await start(make_settings(tmp_path))
    async with aiohttp.ClientSession() as session:
        yield Running(service, session)
    await runner.cleanup()


def client(running: Running, token: str = "test-access-token", timeout: float = 10) -> GraphClient:
    settings = running.service.settings
    return GraphClient(
        settings.graph_base_url, "v23.0", settings.whatsapp_phone_number_id, token, timeout=timeout
    )


ONE_FINGERPRINT = ("sha-256",)  # what the service's WhatsApp leg uses


async def business_answer(
    offer: str, fingerprints: tuple[str, ...] = ONE_FINGERPRINT
) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(
        PeerConnectionConfig(host_addresses=["127.0.0.1"], fingerprint_algorithms=fingerprints)
    )
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    return pc, pc.localDescription.sdp


async def test_actions_send_protocol_bodies(sim: Running) -> None:
    simulator = sim.service.simulator
    assert simulator is not None
    sim.service.router.listeners.clear()
    call_id = "wacid.GRAPH"
    caller = CallerPeer("silence")
    from relay_service.simulators.whatsapp import SimulatedCall

    simulator.calls[call_id] = SimulatedCall(call_id, "491", "USER_INITIATED", caller)
    offer = await caller.offer()
    several, several_answer = await business_answer(offer, ("sha-256", "sha-384", "sha-512"))
    pc, raw_answer = await business_answer(offer)
    graph = client(sim)
    try:
        assert fingerprint_count(several_answer) == 3  # aiortc's default; Meta refuses that
        with pytest.raises(GraphApiError) as refused:
            await graph.pre_accept(call_id, several_answer)
        assert refused.value.code == 138008 and refused.value.status == 400
        assert fingerprint_count(raw_answer) == 1
        answer = prepare_answer(raw_answer)
        assert answer_problems(answer) == []
        await graph.pre_accept(call_id, answer)
        await graph.accept(call_id, answer, biz_opaque_callback_data="ticket-1")
        await graph.terminate(call_id)
        sent = simulator.requests
        assert sent[1] == {
            "messaging_product": "whatsapp",
            "call_id": call_id,
            "action": "pre_accept",
            "session": {"sdp_type": "answer", "sdp": answer},
        }
        assert sent[2]["biz_opaque_callback_data"] == "ticket-1"
        assert sent[3] == {
            "messaging_product": "whatsapp",
            "call_id": call_id,
            "action": "terminate",
        }
    finally:
        await graph.close()
        await pc.close()
        await several.close()
        await caller.close()


async def test_errors_carry_the_graph_code(sim: Running) -> None:
    graph = client(sim)
    try:
        with pytest.raises(GraphApiError) as unknown:
            await graph.reject("wacid.NOPE")
        assert unknown.value.code == 138004
        assert unknown.value.fbtrace_id
        bad = client(sim, token="wrong")
        with pytest.raises(GraphApiError) as auth:
            await bad.terminate("wacid.NOPE")
        assert (auth.value.code, auth.value.status) == (190, 401)
        await bad.close()
    finally:
        await graph.close()


async def test_timeout_is_a_typed_error(sim: Running) -> None:
    assert sim.service.simulator is not None
    sim.service.simulator.faults["terminate"] = "timeout*4"  # every retry times out too
    graph = client(sim, timeout=0.5)
    try:
        with pytest.raises(GraphTimeout):
            await graph.terminate("wacid.SLOW")
    finally:
        await graph.close()


async def test_business_initiated_connect_returns_a_call_id(sim: Running) -> None:
    pc = RTCPeerConnection(
        PeerConnectionConfig(host_addresses=["127.0.0.1"], audio_codecs=("audio/opus",))
    )
    pc.addTransceiver("audio")
    await pc.setLocalDescription(await pc.createOffer())
    graph = client(sim)
    try:
        with pytest.raises(GraphApiError) as refused:
            await graph.connect("491", pc.localDescription.sdp)
        assert refused.value.code == 138008
        single = RTCPeerConnection(
            PeerConnectionConfig(
                host_addresses=["127.0.0.1"],
                audio_codecs=("audio/opus",),
                fingerprint_algorithms=ONE_FINGERPRINT,
            )
        )
        single.addTransceiver("audio")
        await single.setLocalDescription(await single.createOffer())
        await pc.close()
        pc = single
        offer = prepare_answer(pc.localDescription.sdp).replace("a=setup:active", "a=setup:actpass")
        call_id = await graph.connect("491", offer)
        assert call_id.startswith("wacid.")
    finally:
        await graph.close()
        await pc.close()


async def test_terminate_gives_up_after_the_policy_s_attempts(sim: Running) -> None:
    simulator = sim.service.simulator
    assert simulator is not None
    simulator.faults["reject"] = "unavailable*10"
    graph = client(sim)
    graph.retry = RetryPolicy(attempts=3, base=0.01, cap=0.02)
    try:
        with pytest.raises(GraphApiError) as failed:
            await graph.reject("wacid.DOWN")
        assert (failed.value.status, failed.value.code) == (503, 2)
        assert [r["action"] for r in simulator.requests] == ["reject"] * 3
    finally:
        await graph.close()


async def test_a_permanent_error_is_not_retried(sim: Running) -> None:
    simulator = sim.service.simulator
    assert simulator is not None
    simulator.faults["terminate"] = "error:131009*3"
    graph = client(sim)
    graph.retry = RetryPolicy(base=0.01)
    try:
        with pytest.raises(GraphApiError) as failed:
            await graph.terminate("wacid.BAD")
        assert failed.value.code == 131009
        assert len(simulator.requests) == 1
    finally:
        await graph.close()


async def test_accept_is_not_retried(sim: Running) -> None:
    """Only idempotent actions are retried: accepting twice is not harmless."""
    simulator = sim.service.simulator
    assert simulator is not None
    simulator.faults["accept"] = "unavailable*3"
    graph = client(sim)
    try:
        with pytest.raises(GraphApiError):
            await graph.accept("wacid.ONCE", "v=0")
        assert len(simulator.requests) == 1
    finally:
        await graph.close()


@settings(deadline=None)  # a loaded machine is not a failure
@given(
    attempt=st.integers(1, 30),
    base=st.floats(0.001, 5),
    cap=st.floats(0.001, 60),
    seed=st.integers(0, 2**32),
)
def test_backoff_is_jittered_within_the_exponential_bound(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    policy = RetryPolicy(base=base, cap=cap)
    delay = policy.delay(attempt, random.Random(seed))
    assert 0.0 <= delay <= min(cap, base * 2 ** (attempt - 1))


def test_transient_errors_are_the_ones_worth_repeating() -> None:
    assert is_transient(GraphTimeout("slow"))
    assert is_transient(GraphApiError("reset"))  # transport failure: no HTTP status
    assert is_transient(GraphApiError("x", code=2, status=503))
    assert is_transient(GraphApiError("x", code=130429, status=400))  # rate limited
    assert not is_transient(GraphApiError("x", code=190, status=401))
    assert not is_transient(GraphApiError("x", code=138004, status=400))
