"""Interceptors on a real call: several observers at once, beside the statistics, no patching."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.raw_support import connect
from tests.support import LOOPBACK
from webrtc_ext import RTCPeerConnection
from webrtc_ext.interceptor import ReceiverInterceptor, RtpPacketView, TransportInterceptor
from webrtc_ext.rawrtp import RtpFastPathMixin
from webrtc_ext.rtcsctptransport import RTCSctpTransport

pytestmark = pytest.mark.integration


class Counter(TransportInterceptor):
    def __init__(self) -> None:
        self.sent = self.received = self.rtcp_sent_count = 0

    def rtp_sent(self, data: bytes, now: float) -> None:
        self.sent += 1

    def rtp_received(self, data: bytes, now: float) -> None:
        self.received += 1

    def rtcp_sent(self, data: bytes, now: float) -> None:
        self.rtcp_sent_count += 1


class Seen(ReceiverInterceptor):
    def __init__(self) -> None:
        self.sequence_numbers: list[int] = []

    def rtp_received(self, packet: RtpPacketView, now: float) -> bool:
        self.sequence_numbers.append(packet.sequence_number)
        return True


def _shadowed_methods(obj: object) -> list[str]:
    """Instance attributes that hide a method of the object's class (a patched method)."""
    return [
        name
        for name, value in vars(obj).items()
        if callable(value) and callable(getattr(type(obj), name, None))
    ]


@pytest.mark.parametrize("raw", [False, True], ids=["decoded", "raw"])
async def test_observers_see_what_the_statistics_count(raw: bool) -> None:
    from aiortc.mediastreams import AudioStreamTrack

    offerer, answerer = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    offerer.addTrack(AudioStreamTrack())
    channel = offerer.createDataChannel("chat")
    try:
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        receiver = answerer.getTransceivers()[0].receiver
        if raw:
            receiver.enable_raw()  # type: ignore[attr-defined]
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        await connect(offerer, answerer)
        sending = offerer.getTransceivers()[0].sender.transport
        receiving = receiver.transport
        assert isinstance(sending, RtpFastPathMixin) and isinstance(receiving, RtpFastPathMixin)
        observers = [Counter(), Counter()]
        for observer in observers:
            sending.interceptors.add(observer)
            receiving.interceptors.add(observer)
        seen = Seen()
        receiver.interceptors.add(seen)  # type: ignore[attr-defined]
        packets_before = sum(s.packets for s in offerer._stats.counters(sending).sent.values())
        inbound = answerer._stats.counters(receiving).received
        received_before = sum(s.packets for s in inbound.values())
        await asyncio.sleep(1.0)
        for _ in range(3):
            channel.send("hello")
        await asyncio.sleep(0.3)
        packets = sum(s.packets for s in offerer._stats.counters(sending).sent.values())
        received = sum(s.packets for s in answerer._stats.counters(receiving).received.values())
        # Each observer saw exactly what the statistics counted, both ways.
        for observer in observers:
            assert observer.sent == packets - packets_before > 25
            assert observer.received == received - received_before > 25
        assert len(seen.sequence_numbers) == observers[0].received
        sctp = offerer.sctp
        assert isinstance(sctp, RTCSctpTransport)
        (channel_stats,) = [
            s for s in (await offerer.getStats()).values() if s.type == "data-channel"
        ]
        assert channel_stats.messagesSent == 3
        # Nothing was counted by replacing a method on a live object.
        transceiver = offerer.getTransceivers()[0]
        for obj in (sending, receiving, channel, sctp, transceiver.sender, transceiver.receiver):
            assert _shadowed_methods(obj) == [], type(obj)
    finally:
        await offerer.close()
        await answerer.close()
    # Every observer is gone with the call: nothing keeps running for it.
    await asyncio.sleep(0.1)
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert leftover == []
