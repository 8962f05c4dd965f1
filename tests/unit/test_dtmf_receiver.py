"""The receiver counts telephone-event packets in its RTCP statistics but not in the jitter."""

from __future__ import annotations

from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import RtpPacket

from tests.support import LOOPBACK
from webrtc_ext import RTCPeerConnection
from webrtc_ext._internals import receiver_private
from webrtc_ext.dtmf import DtmfReceiverMixin, TelephoneEventPayload


async def test_telephone_event_counted_as_received_without_touching_jitter() -> None:
    pc = RTCPeerConnection(LOOPBACK)
    receiver = pc.addTransceiver("audio").receiver
    assert isinstance(receiver, DtmfReceiverMixin)
    stats = StreamStatistics(48000)
    receiver_private(receiver, "remote_streams")[5] = stats
    for seq in range(10):
        stats.add(RtpPacket(payload_type=111, sequence_number=seq, timestamp=960 * seq, ssrc=5))
    jitter = stats._jitter_q4
    for seq in range(10, 14):  # a tone: one timestamp, arrival moving on
        packet = RtpPacket(payload_type=126, sequence_number=seq, timestamp=9600, ssrc=5)
        packet.payload = TelephoneEventPayload(1, seq == 13, 10, 400 * (seq - 9)).serialize()
        receiver.telephone_events._count_without_jitter(packet)
    assert stats.packets_received == 14 and stats.max_seq == 13 and stats.packets_lost == 0
    assert stats._jitter_q4 == jitter
    assert stats._last_timestamp == 960 * 9  # the next audio packet compares with audio
    await pc.close()
