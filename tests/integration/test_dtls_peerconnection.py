"""RTCPeerConnection with a configured certificate and DTLS MTU: a real call over loopback."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.support import LOOPBACK, audio_call
from webrtc_ext import (
    PeerConnectionConfig,
    RTCCertificate,
    RTCDtlsTransport,
    RTCPeerConnection,
    RTCSessionDescription,
)

pytestmark = pytest.mark.integration


def dtls_transport(pc: RTCPeerConnection) -> RTCDtlsTransport:
    transport = pc.getTransceivers()[0].receiver.transport
    assert isinstance(transport, RTCDtlsTransport)
    return transport


@pytest.mark.parametrize("mtu", [1200, 600])
async def test_call_with_rsa_4096_certificate_keeps_datagrams_within_mtu(mtu: int) -> None:
    certificate = RTCCertificate.generateCertificate({"name": "RSA", "modulusLength": 4096})
    offerer_config = LOOPBACK.with_changes(certificates=[certificate], dtls_mtu=mtu)
    answerer_config = LOOPBACK.with_changes(dtls_mtu=mtu)

    async with audio_call(offerer_config, answerer_config, timeout=30) as call:
        sha256 = certificate.getFingerprints()[0].value
        assert f"a=fingerprint:sha-256 {sha256}" in call.offerer.localDescription.sdp
        for pc in (call.offerer, call.answerer):
            transport = dtls_transport(pc)
            assert transport.state == "connected"
            assert transport.mtu == mtu
            assert 0 < transport.counters.max_datagram_bytes <= mtu
        peer = dtls_transport(call.answerer)._connection.get_peer_certificate(as_cryptography=True)
        assert peer == certificate.certificate


async def test_large_data_channel_messages_travel_in_datagrams_within_mtu() -> None:
    """SCTP packets are sized so that each DTLS application record fits the MTU."""
    offerer, answerer = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    received: asyncio.Queue[bytes] = asyncio.Queue()
    answerer.on("datachannel", lambda channel: channel.on("message", received.put_nowait))
    try:
        channel = offerer.createDataChannel("bulk")
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        await asyncio.wait_for(opened.wait(), 30)
        message = bytes(range(256)) * 40  # 10 kB: several full-size DATA chunks
        channel.send(message)
        assert await asyncio.wait_for(received.get(), 30) == message
        for pc in (offerer, answerer):
            transport = pc.sctp.transport  # type: ignore[union-attr]
            assert isinstance(transport, RTCDtlsTransport)
            assert transport.counters.max_datagram_bytes <= 1200
    finally:
        await offerer.close()
        await answerer.close()


async def test_connections_sharing_a_certificate_share_one_openssl_context() -> None:
    """Media flows on both, over one context (not one per connection, ~20 KB of C heap each)."""
    shared = LOOPBACK.with_changes(certificates=[RTCCertificate.generateCertificate()])
    async with audio_call(shared, shared) as first, audio_call(shared) as second:
        sharing = [dtls_transport(pc) for pc in (first.offerer, first.answerer, second.offerer)]
        own = dtls_transport(second.answerer)
        assert all(t.state == "connected" for t in (*sharing, own))
        assert len({id(t._connection.get_context()) for t in sharing}) == 1
        assert own._connection.get_context() is not sharing[0]._connection.get_context()


@pytest.mark.parametrize("certificate", ["own", "shared"])
async def test_tampered_fingerprint_in_the_answer_fails_the_call_with_a_clear_error(
    certificate: str,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        config = LOOPBACK
        if certificate == "shared":  # a live call uses the same certificate and context
            config = LOOPBACK.with_changes(certificates=[RTCCertificate.generateCertificate()])
            live = await stack.enter_async_context(audio_call(config))
        await tampered_answer_fails(config)
        if certificate == "shared":
            assert dtls_transport(live.offerer).state == "connected"


async def tampered_answer_fails(config: PeerConnectionConfig) -> None:
    offerer, answerer = RTCPeerConnection(config), RTCPeerConnection(LOOPBACK)
    failed = asyncio.Event()

    @offerer.on("connectionstatechange")
    def on_state() -> None:
        if offerer.connectionState == "failed":
            failed.set()

    try:
        offerer.addTransceiver("audio")
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        real = answerer.localDescription.sdp
        genuine = dtls_transport(answerer).getLocalParameters().fingerprints[0].value
        forged = RTCCertificate.generateCertificate().getFingerprints()[0].value
        assert genuine in real
        await offerer.setRemoteDescription(
            RTCSessionDescription(real.replace(genuine, forged), "answer")
        )
        await asyncio.wait_for(failed.wait(), 30)
        error = dtls_transport(offerer).error
        assert error is not None and error.errorDetail == "fingerprint-failure"
        assert forged in error.message
        # The alert reaches the other side: it fails too instead of waiting for its timeout.
        for _ in range(100):
            if dtls_transport(answerer).state == "failed":
                break
            await asyncio.sleep(0.1)
        peer_error = dtls_transport(answerer).error
        assert peer_error is not None and "alert" in peer_error.message
    finally:
        await offerer.close()
        await answerer.close()


async def test_one_fingerprint_when_configured_and_the_peer_still_verifies_it() -> None:
    one = LOOPBACK.with_changes(fingerprint_algorithms=("sha-256",))
    async with audio_call(one, LOOPBACK.with_changes(fingerprint_algorithms=["sha-512"])) as call:
        offer, answer = call.offerer.localDescription.sdp, call.answerer.localDescription.sdp
        assert [line.split()[0] for line in offer.splitlines() if "fingerprint" in line] == [
            "a=fingerprint:sha-256"
        ]
        assert [line.split()[0] for line in answer.splitlines() if "fingerprint" in line] == [
            "a=fingerprint:sha-512"
        ]
        for pc in (call.offerer, call.answerer):
            assert dtls_transport(pc).state == "connected"


async def test_all_three_fingerprints_by_default() -> None:
    async with audio_call() as call:
        sdp = call.offerer.localDescription.sdp
        algorithms = [line.split()[0] for line in sdp.splitlines() if "fingerprint" in line]
        assert algorithms == [f"a=fingerprint:{a}" for a in ("sha-256", "sha-384", "sha-512")]
