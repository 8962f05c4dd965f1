"""PeerConnectionConfig.rtcp_interval: how often sender and receiver reports go out."""

from __future__ import annotations

import asyncio

import pytest
from aiortc.mediastreams import AudioStreamTrack

from tests.integration.raw_support import connect
from tests.support import LOOPBACK
from webrtc_ext import ConfigurationError, PeerConnectionConfig, RTCPeerConnection
from webrtc_ext.interceptor import TransportInterceptor
from webrtc_ext.rawrtp import RtpFastPathMixin

pytestmark = pytest.mark.integration


class ReportTypes(TransportInterceptor):
    """Counts the RTCP packet types (SR 200, RR 201, ...) in each compound packet received."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def rtcp_received(self, data: bytes, now: float) -> None:
        offset = 0
        while offset + 4 <= len(data):
            self.counts[data[offset + 1]] = self.counts.get(data[offset + 1], 0) + 1
            offset += 4 * (int.from_bytes(data[offset + 2 : offset + 4], "big") + 1)


async def _reports_in(seconds: float, interval: float) -> tuple[ReportTypes, ReportTypes]:
    """Two-way audio for ``seconds``; the RTCP each side received from the other."""
    config = LOOPBACK.with_changes(rtcp_interval=interval)
    a, b = RTCPeerConnection(config), RTCPeerConnection(config)
    a.addTrack(AudioStreamTrack())
    b.addTrack(AudioStreamTrack())
    try:
        await connect(a, b)
        seen = ReportTypes(), ReportTypes()
        for pc, observer in zip((a, b), seen, strict=True):
            transport = pc.getTransceivers()[0].receiver.transport
            assert isinstance(transport, RtpFastPathMixin)
            transport.interceptors.add(observer)
        await asyncio.sleep(seconds)
        return seen
    finally:
        await a.close()
        await b.close()


async def test_a_short_interval_sends_sender_and_receiver_reports_that_often() -> None:
    for observer in await _reports_in(2.0, 0.1):
        # 2 s at a mean of 0.1 s: ~20 of each (each wait is 0.05-0.15 s).
        assert observer.counts.get(200, 0) >= 10, observer.counts  # SR, from the sender
        assert observer.counts.get(201, 0) >= 10, observer.counts  # RR, from the receiver


async def test_libwebrtcs_audio_interval_sends_none_in_the_first_two_seconds() -> None:
    # 5 s: the first wait is at least 2.5 s. aiortc's fixed 0.5-1.5 s would have sent ~2.
    for observer in await _reports_in(2.0, 5.0):
        assert observer.counts.get(200, 0) == 0, observer.counts
        assert observer.counts.get(201, 0) == 0, observer.counts


async def test_reports_at_a_long_interval_still_give_the_round_trip_time() -> None:
    config = LOOPBACK.with_changes(rtcp_interval=0.2)
    a, b = RTCPeerConnection(config), RTCPeerConnection(config)
    a.addTrack(AudioStreamTrack())
    try:
        await connect(a, b)
        rtt = None
        for _ in range(50):
            await asyncio.sleep(0.1)
            report = await a.getStats()
            remote = [s for s in report.values() if s.type == "remote-inbound-rtp"]
            rtt = getattr(remote[0], "roundTripTime", None) if remote else None
            if rtt is not None:
                break
        assert rtt is not None and 0 <= rtt < 0.5
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("interval", [0, -1, 31])
def test_an_interval_out_of_range_is_refused(interval: float) -> None:
    with pytest.raises(ConfigurationError, match="rtcp_interval"):
        PeerConnectionConfig(rtcp_interval=interval)
