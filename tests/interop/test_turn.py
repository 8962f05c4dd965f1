"""A real TURN server (Debian's coturn) on loopback: relay-only calls, every server used."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Coturn, coturn
from tests.support import LOOPBACK, audio_call
from webrtc_ext import PeerConnectionConfig, RTCIceTransportPolicy, RTCPeerConnection

pytestmark = pytest.mark.interop


@pytest.fixture
def turn(tmp_path: Path) -> Iterator[Coturn]:
    with coturn(tmp_path) as server:
        yield server


def relay_only(*servers: object) -> PeerConnectionConfig:
    return LOOPBACK.with_changes(
        ice_servers=tuple(servers), ice_transport_policy=RTCIceTransportPolicy.RELAY
    )


def tls_context(server: Coturn) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.cert_path))


def selected_types(pc: RTCPeerConnection) -> tuple[str, str]:
    (transport,) = pc.ice_transports
    pair = transport.getSelectedCandidatePair()
    assert pair is not None
    return pair.local.type, pair.remote.type


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_relay_only_call_carries_media(turn: Coturn, transport: str) -> None:
    config = relay_only(turn.ice_server(transport))
    async with audio_call(config, config, timeout=20) as call:
        assert selected_types(call.offerer) == ("relay", "relay")
        assert selected_types(call.answerer) == ("relay", "relay")
        for candidate in call.offerer.ice_transports[0].iceGatherer.getLocalCandidates():
            assert candidate.type == "relay"


async def test_relay_over_tls(turn: Coturn, monkeypatch: pytest.MonkeyPatch) -> None:
    config = relay_only(turn.ice_server("tls"))
    context = tls_context(turn)
    original = RTCPeerConnection.__init__

    def with_context(self: RTCPeerConnection, configuration: object = None, **kw: object) -> None:
        original(self, configuration, turn_ssl_context=context)  # type: ignore[arg-type]

    monkeypatch.setattr(RTCPeerConnection, "__init__", with_context)
    async with audio_call(config, config, timeout=20) as call:
        assert selected_types(call.offerer) == ("relay", "relay")


async def test_shared_secret_credentials(tmp_path: Path) -> None:
    with coturn(tmp_path, secret="s3cr3t-for-tests") as server:
        username, password = server.rest_credentials("agent-7")
        config = relay_only(server.ice_server("udp", username=username, password=password))
        async with audio_call(config, config, timeout=20) as call:
            assert selected_types(call.answerer) == ("relay", "relay")


async def test_every_turn_server_is_used(turn: Coturn) -> None:
    pc = RTCPeerConnection(
        relay_only(turn.ice_server("udp"), turn.ice_server("tcp"), turn.ice_server("tls")),
        turn_ssl_context=tls_context(turn),
    )
    try:
        pc.addTransceiver("audio")
        await pc.setLocalDescription(await pc.createOffer())
        candidates = pc.ice_transports[0].iceGatherer.getLocalCandidates()
        assert len(candidates) == 3, candidates
        assert {c.type for c in candidates} == {"relay"}
        # UDP relays are preferred to TCP ones, TCP to TLS (RFC 8445 §5.1.2.1).
        priorities = [c.priority for c in candidates]
        assert priorities == sorted(priorities, reverse=True)
        assert pc.gathering_errors == []
    finally:
        await pc.close()


async def test_wrong_password_fails_with_a_clear_error(turn: Coturn) -> None:
    bad = relay_only(turn.ice_server("udp", password="not-the-password"))
    good = relay_only(turn.ice_server("udp"))
    offerer, answerer = RTCPeerConnection(bad), RTCPeerConnection(good)
    errors: list[object] = []
    offerer.on("icecandidateerror", errors.append)
    failed = asyncio.Event()

    @offerer.on("connectionstatechange")
    def on_state() -> None:
        if offerer.connectionState == "failed":
            failed.set()

    try:
        offerer.addTransceiver("audio")
        await offerer.setLocalDescription(await offerer.createOffer())
        (error,) = offerer.gathering_errors
        assert error.errorCode == 401
        assert "credential" in error.errorText
        assert error.url.startswith("turn:127.0.0.1")
        assert errors == [error]
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        await asyncio.wait_for(failed.wait(), 30)
    finally:
        await offerer.close()
        await answerer.close()
