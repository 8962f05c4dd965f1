"""Per-SSRC RTP/RTCP counters fed with the plaintext packets a DTLS transport sends and receives.

:class:`RtpCounters` is sans-I/O: it is given packets and the time, and keeps what really went
over the wire (payload bytes, retransmissions, NACKs, receiver reports, SR round trips).
:class:`RtpStatsInterceptor` feeds it as one stage of a DTLS transport's interceptor chain
(:mod:`webrtc_ext.interceptor`), beside any other observers.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass

from ..interceptor import TransportInterceptor

logger = logging.getLogger(__name__)

#: RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1).
RTCP_SR = 200
RTCP_RR = 201
RTCP_RTPFB = 205
#: RTPFB FMT of the Generic NACK (RFC 4585 §6.2.1).
RTPFB_NACK = 1

_RTP_HEADER = struct.Struct("!BBHII")
_RTCP_HEADER = struct.Struct("!BBHI")
_REPORT_BLOCK = struct.Struct("!IIIIII")
_SENDER_INFO = struct.Struct("!QIII")
#: How many SR send times to remember for round-trip matching (RFC 3550 §6.4.1 LSR).
_SR_HISTORY = 16


def is_rtcp(data: bytes) -> bool:
    """Whether a demultiplexed RTP/RTCP datagram is RTCP (RFC 5761 §4: PT 192-223)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


@dataclass(slots=True)
class SentStream:
    """What we sent on one SSRC."""

    packets: int = 0
    payload_bytes: int = 0
    header_bytes: int = 0
    retransmitted_packets: int = 0
    """Packets sent again with a sequence number already sent (retransmission without RTX)."""
    retransmitted_payload_bytes: int = 0
    highest_sequence: int | None = None
    last_sent: float | None = None


@dataclass(slots=True)
class ReceivedStream:
    """What arrived on one SSRC, with the RFC 3550 §A.3 extended sequence range."""

    packets: int = 0
    payload_bytes: int = 0
    header_bytes: int = 0
    base_sequence: int | None = None
    highest_sequence: int = 0
    cycles: int = 0
    last_received: float | None = None

    @property
    def packets_expected(self) -> int:
        """Extended highest sequence number minus the first one, plus one (RFC 3550 §A.3)."""
        if self.base_sequence is None:
            return 0
        return self.cycles + self.highest_sequence - self.base_sequence + 1


@dataclass
class ReceptionReport:
    """The last RTCP report block a peer sent about one of our SSRCs (RFC 3550 §6.4.1)."""

    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    """In RTP timestamp units, as on the wire."""
    reports_received: int
    round_trip_time: float | None
    total_round_trip_time: float
    round_trip_time_measurements: int


@dataclass
class RemoteSenderReport:
    """The last RTCP sender report a peer sent for one of its SSRCs."""

    packets_sent: int
    bytes_sent: int
    ntp_timestamp: int
    reports_sent: int
    received_at: float


def _ntp_middle(ntp: int) -> int:
    return (ntp >> 16) & 0xFFFFFFFF


class RtpCounters:
    """Counters for every SSRC seen on one transport, fed with plaintext RTP/RTCP datagrams."""

    # In slots: the C path (webrtc_ext._native) reads these for every packet at their
    # offsets rather than in the instance dictionary; the rest stays in ``__dict__``.
    __slots__ = ("__dict__", "__weakref__", "received", "sent")

    def __init__(self) -> None:
        self.sent: dict[int, SentStream] = {}
        self.received: dict[int, ReceivedStream] = {}
        self.nacks_sent: dict[int, int] = {}
        """NACK feedback packets we sent, by media SSRC."""
        self.nacks_received: dict[int, int] = {}
        """NACK feedback packets we received, by media SSRC."""
        self.reception_reports: dict[int, ReceptionReport] = {}
        """The peer's report blocks about our SSRCs, by our SSRC."""
        self.sender_reports: dict[int, RemoteSenderReport] = {}
        """The peer's sender reports, by its SSRC."""
        self.malformed = 0
        self._sr_sent: dict[tuple[int, int], float] = {}

    # -- RTP --------------------------------------------------------------------------------

    def rtp_sent(self, data: bytes, now: float) -> None:
        """Account one RTP packet we sent."""
        parsed = _parse_rtp(data)
        if parsed is None:
            self.malformed += 1
            return
        ssrc, sequence, header = parsed
        payload = len(data) - header
        stream = self.sent.get(ssrc)
        if stream is None:
            stream = self.sent[ssrc] = SentStream()
        stream.packets += 1
        stream.payload_bytes += payload
        stream.header_bytes += header
        stream.last_sent = now
        highest = stream.highest_sequence
        if highest is None or 0 < (sequence - highest) & 0xFFFF < 0x8000:
            stream.highest_sequence = sequence
        else:
            stream.retransmitted_packets += 1
            stream.retransmitted_payload_bytes += payload

    def rtp_received(self, data: bytes, now: float) -> None:
        """Account one RTP packet we received."""
        parsed = _parse_rtp(data)
        if parsed is None:
            self.malformed += 1
            return
        ssrc, sequence, header = parsed
        stream = self.received.get(ssrc)
        if stream is None:
            stream = self.received[ssrc] = ReceivedStream()
        stream.packets += 1
        stream.payload_bytes += len(data) - header
        stream.header_bytes += header
        stream.last_received = now
        if stream.base_sequence is None:
            stream.base_sequence = stream.highest_sequence = sequence
        elif 0 < (sequence - stream.highest_sequence) & 0xFFFF < 0x8000:
            if sequence < stream.highest_sequence:
                stream.cycles += 1 << 16
            stream.highest_sequence = sequence

    # -- RTCP -------------------------------------------------------------------------------

    def rtcp_sent(self, data: bytes, now: float) -> None:
        """Account one (compound) RTCP packet we sent."""
        for packet_type, fmt, ssrc, body in self._rtcp_packets(data):
            if packet_type == RTCP_RTPFB and fmt == RTPFB_NACK and len(body) >= 4:
                media = int.from_bytes(body[:4], "big")
                self.nacks_sent[media] = self.nacks_sent.get(media, 0) + 1
            elif packet_type == RTCP_SR and len(body) >= _SENDER_INFO.size:
                ntp = _SENDER_INFO.unpack_from(body)[0]
                self._sr_sent[(ssrc, _ntp_middle(ntp))] = now
                if len(self._sr_sent) > _SR_HISTORY:
                    del self._sr_sent[next(iter(self._sr_sent))]

    def rtcp_received(self, data: bytes, now: float) -> None:
        """Account one (compound) RTCP packet we received."""
        for packet_type, fmt, ssrc, body in self._rtcp_packets(data):
            if packet_type == RTCP_RTPFB and fmt == RTPFB_NACK and len(body) >= 4:
                media = int.from_bytes(body[:4], "big")
                self.nacks_received[media] = self.nacks_received.get(media, 0) + 1
            elif packet_type == RTCP_SR and len(body) >= _SENDER_INFO.size:
                ntp, _, packets, octets = _SENDER_INFO.unpack_from(body)
                previous = self.sender_reports.get(ssrc)
                self.sender_reports[ssrc] = RemoteSenderReport(
                    packets_sent=packets,
                    bytes_sent=octets,
                    ntp_timestamp=ntp,
                    reports_sent=(previous.reports_sent if previous else 0) + 1,
                    received_at=now,
                )
                self._report_blocks(body[_SENDER_INFO.size :], fmt, now)
            elif packet_type == RTCP_RR:
                self._report_blocks(body, fmt, now)

    def _report_blocks(self, body: bytes, count: int, now: float) -> None:
        for index in range(count):
            offset = index * _REPORT_BLOCK.size
            if offset + _REPORT_BLOCK.size > len(body):
                self.malformed += 1
                return
            ssrc, lost_word, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(body, offset)
            lost = lost_word & 0xFFFFFF
            if lost & 0x800000:
                lost -= 1 << 24
            previous = self.reception_reports.get(ssrc)
            rtt = None
            total = previous.total_round_trip_time if previous else 0.0
            measurements = previous.round_trip_time_measurements if previous else 0
            sent_at = self._sr_sent.get((ssrc, lsr)) if lsr else None
            if sent_at is not None:
                # RFC 3550 §6.4.1: RTT = arrival - LSR - DLSR (DLSR in 1/65536 s).
                rtt = max(0.0, now - sent_at - dlsr / 65536)
                total += rtt
                measurements += 1
            elif previous is not None:
                rtt = previous.round_trip_time
            self.reception_reports[ssrc] = ReceptionReport(
                fraction_lost=lost_word >> 24,
                packets_lost=lost,
                highest_sequence=highest,
                jitter=jitter,
                reports_received=(previous.reports_received if previous else 0) + 1,
                round_trip_time=rtt,
                total_round_trip_time=total,
                round_trip_time_measurements=measurements,
            )

    def _rtcp_packets(self, data: bytes) -> list[tuple[int, int, int, bytes]]:
        """Split a compound RTCP packet into ``(type, count/fmt, sender ssrc, body)``."""
        packets = []
        offset = 0
        while offset + _RTCP_HEADER.size <= len(data):
            first, packet_type, length, ssrc = _RTCP_HEADER.unpack_from(data, offset)
            end = offset + 4 * (length + 1)
            if first >> 6 != 2 or end > len(data):
                self.malformed += 1
                break
            packets.append((packet_type, first & 0x1F, ssrc, data[offset + 8 : end]))
            offset = end
        return packets


def _parse_rtp(data: bytes) -> tuple[int, int, int] | None:
    """``(ssrc, sequence number, header length incl. padding)`` of an RTP packet, or None."""
    if len(data) < _RTP_HEADER.size:
        return None
    first, _, sequence, _, ssrc = _RTP_HEADER.unpack_from(data)
    header = 12 + 4 * (first & 0x0F)
    if first & 0x10:
        if len(data) < header + 4:
            return None
        header += 4 + 4 * int.from_bytes(data[header + 2 : header + 4], "big")
    if first & 0x20 and len(data) > header:
        header += data[-1]
    if header > len(data):
        return None
    return ssrc, sequence, header


class RtpStatsInterceptor(TransportInterceptor):
    """The stage of a transport's interceptor chain that feeds one :class:`RtpCounters`."""

    def __init__(self, counters: RtpCounters, clock: Callable[[], float]) -> None:
        self.counters = counters
        self._clock = clock  # wall-clock seconds: the stats report's timestamps

    def rtp_sent(self, data: bytes, now: float) -> None:
        """Count one RTP packet sent."""
        self.counters.rtp_sent(data, self._clock())

    def rtcp_sent(self, data: bytes, now: float) -> None:
        """Count one RTCP packet sent."""
        self.counters.rtcp_sent(data, self._clock())

    def rtp_received(self, data: bytes, now: float) -> None:
        """Count one RTP packet received."""
        self.counters.rtp_received(data, self._clock())

    def rtcp_received(self, data: bytes, now: float) -> None:
        """Count one RTCP packet received."""
        self.counters.rtcp_received(data, self._clock())
