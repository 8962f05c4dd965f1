"""RtpCounters, the sans-I/O RTP/RTCP tap: retransmissions, wrap, NACKs, reports, bad input."""

from __future__ import annotations

import struct

from aiortc.rtp import (
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
)
from hypothesis import given
from hypothesis import strategies as st

from webrtc_ext.stats.rtpcounters import RtpCounters, is_rtcp


def rtp(ssrc: int, seq: int, payload: bytes = b"\x00" * 10, pt: int = 96) -> bytes:
    return RtpPacket(payload_type=pt, sequence_number=seq, ssrc=ssrc, payload=payload).serialize()


def test_first_sends_are_media_and_repeats_are_retransmissions() -> None:
    counters = RtpCounters()
    for seq in (10, 11, 12):
        counters.rtp_sent(rtp(1, seq), now=1.0)
    counters.rtp_sent(rtp(1, 11, b"\x00" * 7), now=2.0)
    sent = counters.sent[1]
    assert (sent.packets, sent.payload_bytes, sent.header_bytes) == (4, 37, 48)
    assert (sent.retransmitted_packets, sent.retransmitted_payload_bytes) == (1, 7)
    assert sent.last_sent == 2.0


def test_received_sequence_wrap_extends_the_expected_count() -> None:
    counters = RtpCounters()
    for seq in (65534, 65535, 1, 2):  # 0 is lost
        counters.rtp_received(rtp(5, seq), now=0.0)
    counters.rtp_received(rtp(5, 65535), now=0.0)  # late duplicate: not a new cycle
    stream = counters.received[5]
    assert stream.packets == 5
    assert stream.packets_expected == 5
    assert stream.cycles == 1 << 16


def test_nacks_are_counted_per_media_ssrc_inside_compound_packets() -> None:
    counters = RtpCounters()
    nack = RtcpRtpfbPacket(fmt=1, ssrc=9, media_ssrc=1234)
    nack.lost = [3, 4, 9]
    pli_like = RtcpRtpfbPacket(fmt=15, ssrc=9, media_ssrc=1234)
    compound = bytes(RtcpRrPacket(ssrc=9)) + bytes(nack) + bytes(pli_like)
    counters.rtcp_received(compound, now=0.0)
    counters.rtcp_sent(bytes(nack), now=0.0)
    assert counters.nacks_received == {1234: 1}
    assert counters.nacks_sent == {1234: 1}


def test_round_trip_time_from_lsr_and_dlsr() -> None:
    counters = RtpCounters()
    ntp = 0x0001_2345_6789_0000
    sr = RtcpSrPacket(
        ssrc=77, sender_info=RtcpSenderInfo(ntp, rtp_timestamp=0, packet_count=5, octet_count=50)
    )
    counters.rtcp_sent(bytes(sr), now=100.0)
    block = RtcpReceiverInfo(
        ssrc=77,
        fraction_lost=64,
        packets_lost=3,
        highest_sequence=1000,
        jitter=480,
        lsr=(ntp >> 16) & 0xFFFFFFFF,
        dlsr=65536 // 2,  # the peer held the report 0.5 s
    )
    counters.rtcp_received(bytes(RtcpRrPacket(ssrc=88, reports=[block])), now=100.75)
    report = counters.reception_reports[77]
    assert report.round_trip_time is not None
    assert abs(report.round_trip_time - 0.25) < 1e-3
    assert (report.packets_lost, report.fraction_lost, report.jitter) == (3, 64, 480)
    assert report.round_trip_time_measurements == 1


def test_sender_reports_of_the_peer_are_kept() -> None:
    counters = RtpCounters()
    sr = RtcpSrPacket(ssrc=5, sender_info=RtcpSenderInfo(1 << 32, 0, 42, 4200))
    counters.rtcp_received(bytes(sr), now=3.0)
    counters.rtcp_received(bytes(sr), now=4.0)
    report = counters.sender_reports[5]
    assert (report.packets_sent, report.bytes_sent, report.reports_sent) == (42, 4200, 2)


def test_rtcp_is_told_from_rtp_by_payload_type() -> None:
    assert is_rtcp(bytes(RtcpRrPacket(ssrc=1)))
    assert not is_rtcp(rtp(1, 1))
    assert not is_rtcp(b"\x80")


def test_padding_and_extension_are_header_not_payload() -> None:
    packet = bytearray(rtp(1, 1, b"\x01" * 8))
    packet[0] |= 0x30  # padding + extension flags: add a 1-word extension and 4 bytes padding
    body = bytes(packet[:12]) + struct.pack("!HH", 0xBEDE, 1) + b"\x00" * 4
    data = body + b"\x01" * 8 + b"\x00\x00\x00\x04"
    counters = RtpCounters()
    counters.rtp_received(data, now=0.0)
    assert counters.received[1].payload_bytes == 8
    assert counters.received[1].header_bytes == 12 + 8 + 4


@given(st.binary(max_size=80))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    counters = RtpCounters()
    counters.rtp_sent(data, now=0.0)
    counters.rtp_received(data, now=0.0)
    counters.rtcp_sent(data, now=0.0)
    counters.rtcp_received(data, now=0.0)


@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=200))
def test_expected_is_never_less_than_distinct_in_order_packets(sequences: list[int]) -> None:
    counters = RtpCounters()
    for seq in sequences:
        counters.rtp_received(rtp(1, seq), now=0.0)
    stream = counters.received[1]
    assert stream.packets == len(sequences)
    assert stream.packets_expected >= 1
