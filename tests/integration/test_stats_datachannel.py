"""A data-channel-only connection reports its transport, ICE grid, certificates and channels."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCCertificate

from tests.stats_support import wait_for
from tests.support import LOOPBACK
from webrtc_ext import RTCPeerConnection

pytestmark = pytest.mark.integration


async def test_data_channel_only_connection_has_full_stats() -> None:
    certificate = RTCCertificate.generateCertificate()
    offerer = RTCPeerConnection(LOOPBACK.with_changes(certificates=[certificate]))
    answerer = RTCPeerConnection(LOOPBACK)
    received: list[str | bytes] = []
    answered = asyncio.get_running_loop().create_future()

    @answerer.on("datachannel")
    def on_channel(channel):  # type: ignore[no-untyped-def]
        channel.on("message", received.append)
        answered.set_result(channel)

    try:
        channel = offerer.createDataChannel("chat")
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        remote_channel = await asyncio.wait_for(answered, 20)
        await wait_for(lambda: _is_open(channel))
        for text in ("hello", "wörld", b"\x00\x01\x02"):
            channel.send(text)
        remote_channel.send("back")
        await wait_for(lambda: _true(len(received) == 3))
        await asyncio.sleep(0.2)

        report = await offerer.getStats()
        (stats,) = report.of_type("data-channel")
        assert (stats.label, stats.state, stats.dataChannelIdentifier) == ("chat", "open", 1)
        assert (stats.messagesSent, stats.bytesSent) == (3, 5 + 6 + 3)
        assert (stats.messagesReceived, stats.bytesReceived) == (1, 4)
        assert report["P"].dataChannelsOpened == 1
        (transport,) = report.of_type("transport")
        assert transport.dtlsState == "connected"
        assert transport.selectedCandidatePairId in report
        assert {transport.localCertificateId, transport.remoteCertificateId} <= set(report)
        assert len(report.of_type("certificate")) == 2
        ours = report[transport.localCertificateId]
        (sha256,) = [f for f in certificate.getFingerprints() if f.algorithm == "sha-256"]
        assert ours.fingerprint == sha256.value, "the configured certificate is the one used"
        assert f"a=fingerprint:sha-256 {ours.fingerprint}" in offerer.localDescription.sdp
        (peer_transport,) = (await answerer.getStats()).of_type("transport")
        assert peer_transport.remoteCertificateId == transport.localCertificateId
        assert report.of_type("local-candidate") and report.of_type("remote-candidate")
        remote = (await answerer.getStats()).of_type("data-channel")[0]
        assert (remote.messagesReceived, remote.messagesSent) == (3, 1)
        channel.close()
        await wait_for(lambda: _closed(offerer))
    finally:
        await offerer.close()
        await answerer.close()


async def _true(value: bool) -> bool:
    return value


async def _is_open(channel) -> bool:  # type: ignore[no-untyped-def]
    return bool(channel.readyState == "open")


async def _closed(pc: RTCPeerConnection) -> bool:
    return bool((await pc.getStats())["P"].dataChannelsClosed == 1)
