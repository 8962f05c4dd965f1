"""RTP packets as bytes plus header fields, and the sans-I/O writer of one outgoing stream.

:class:`RawRtpPacket` is what raw receivers deliver and raw senders take: the packet's bytes
untouched, its RFC 3550 §5.1 header fields, and its arrival time. Parsing reads only the fixed
header and walks the extension block once, so forwarding a packet costs a few microseconds.
:class:`OutboundRtpStream` writes packets for one sender: its SSRC and payload type, the header
extensions that sender negotiated (RFC 8285), and the counters an RTCP sender report needs.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters

RTP_VERSION = 2
_FIXED = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

#: How many sent packets are kept for retransmission on NACK (RFC 4585 §6.2.1).
HISTORY_SIZE = 256


#: Seconds from the NTP epoch (1900) to the Unix epoch (1970), RFC 5905 §6.
NTP_UNIX_OFFSET = 2208988800


def ntp_now() -> int:
    """The wall clock as a 64-bit NTP timestamp (RFC 3550 §4), as aiortc's sender reports use."""
    return int((time.time() + NTP_UNIX_OFFSET) * 4294967296.0)


class RawRtpPacket:
    """An RTP packet: its bytes, header fields and arrival time (RFC 3550 §5.1)."""

    __slots__ = (
        "arrival_time",
        "audio_level",
        "data",
        "marker",
        "payload_end",
        "payload_start",
        "payload_type",
        "sequence_number",
        "ssrc",
        "timestamp",
    )

    def __init__(
        self,
        data: bytes,
        *,
        payload_type: int,
        marker: bool,
        sequence_number: int,
        timestamp: int,
        ssrc: int,
        payload_start: int,
        payload_end: int,
        arrival_time: float = 0.0,
        audio_level: int | None = None,
    ) -> None:
        self.data = data
        self.payload_type = payload_type
        self.marker = marker
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.payload_start = payload_start
        self.payload_end = payload_end
        self.arrival_time = arrival_time
        self.audio_level = audio_level
        """The ssrc-audio-level byte (RFC 6464: V bit and level in -dBov), when known."""

    @classmethod
    def parse(cls, data: bytes, arrival_time: float = 0.0, audio_level_id: int = 0) -> RawRtpPacket:
        """Parse an RTP packet; raises ``ValueError`` if it is malformed."""
        if len(data) < 12:
            raise ValueError("RTP packet is shorter than its 12-byte fixed header")
        first, second, seq, ts, ssrc = _FIXED.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise ValueError(f"RTP version {first >> 6} is not 2 (RFC 3550 §5.1)")
        start = 12 + 4 * (first & 0x0F)
        end = len(data)
        level = None
        if first & 0x10:
            if end < start + 4:
                raise ValueError("RTP header extension is truncated (RFC 3550 §5.3.1)")
            profile, words = _EXT_HEADER.unpack_from(data, start)
            ext_start, start = start + 4, start + 4 + 4 * words
            if start > end:
                raise ValueError("RTP header extension is truncated (RFC 3550 §5.3.1)")
            if audio_level_id and profile == 0xBEDE:
                level = _one_byte_element(data, ext_start, start, audio_level_id)
        if first & 0x20:
            if end <= start or data[-1] == 0 or data[-1] > end - start:
                raise ValueError("RTP padding length is invalid (RFC 3550 §5.1)")
            end -= data[-1]
        if start > end:
            raise ValueError("RTP packet is shorter than its header")
        return cls(
            data,
            payload_type=second & 0x7F,
            marker=bool(second & 0x80),
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload_start=start,
            payload_end=end,
            arrival_time=arrival_time,
            audio_level=level,
        )

    @classmethod
    def create(
        cls,
        payload: bytes,
        *,
        payload_type: int,
        sequence_number: int,
        timestamp: int,
        ssrc: int = 0,
        marker: bool = False,
        arrival_time: float = 0.0,
    ) -> RawRtpPacket:
        """A packet with a plain 12-byte header around ``payload``."""
        header = _FIXED.pack(
            0x80,
            (0x80 if marker else 0) | (payload_type & 0x7F),
            sequence_number & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc & 0xFFFFFFFF,
        )
        return cls(
            header + payload,
            payload_type=payload_type & 0x7F,
            marker=marker,
            sequence_number=sequence_number & 0xFFFF,
            timestamp=timestamp & 0xFFFFFFFF,
            ssrc=ssrc & 0xFFFFFFFF,
            payload_start=12,
            payload_end=12 + len(payload),
            arrival_time=arrival_time,
        )

    @property
    def payload(self) -> bytes:
        """The payload, without header, extensions or padding."""
        return self.data[self.payload_start : self.payload_end]

    def __repr__(self) -> str:
        return (
            f"RawRtpPacket(seq={self.sequence_number}, ts={self.timestamp}, ssrc={self.ssrc}, "
            f"pt={self.payload_type}, marker={self.marker}, "
            f"payload={self.payload_end - self.payload_start}B)"
        )


def _one_byte_element(data: bytes, pos: int, end: int, wanted: int) -> int | None:
    """The first byte of one-byte header extension ``wanted`` (RFC 8285 §4.2), if present."""
    while pos < end:
        byte = data[pos]
        if byte == 0:
            pos += 1
            continue
        ext_id, length = byte >> 4, (byte & 0x0F) + 1
        if ext_id == 15:
            return None
        if ext_id == wanted and pos + 1 < end:
            return data[pos + 1]
        pos += 1 + length
    return None


def extension_id(extensions: Iterable[RTCRtpHeaderExtensionParameters], uri: str) -> int:
    """The negotiated id of header extension ``uri``, or 0 if it was not negotiated."""
    return next((ext.id for ext in extensions if ext.uri == uri), 0)


class OutboundRtpStream:
    """Writes the packets of one sender: its SSRC, payload type and negotiated extensions.

    Sans-I/O: sequence numbers and timestamps come in already munged; the NTP time for
    abs-send-time is passed in. It keeps the RTCP sender-report counters (RFC 3550 §6.4.1) and
    the recent packets for retransmission.
    """

    # Slots: the C send path (webrtc_ext._native) reads and writes these at their offsets.
    __slots__ = (
        "_abs_send_time_id",
        "_audio_level_id",
        "_mid_element",
        "history",
        "history_size",
        "last_timestamp",
        "octet_count",
        "packet_count",
        "payload_type",
        "ssrc",
    )

    def __init__(
        self,
        *,
        ssrc: int,
        payload_type: int,
        mid: str | None = None,
        header_extensions: Iterable[RTCRtpHeaderExtensionParameters] = (),
        history_size: int = HISTORY_SIZE,
    ) -> None:
        extensions = list(header_extensions)
        #: Sent packets kept for NACK; 0 when the peer negotiated none (audio, usually).
        self.history_size = history_size
        self.ssrc = ssrc
        self.payload_type = payload_type
        mid_id = extension_id(extensions, URI_MID)
        self._abs_send_time_id = extension_id(extensions, URI_ABS_SEND_TIME)
        self._audio_level_id = extension_id(extensions, URI_AUDIO_LEVEL)
        self._mid_element = b""
        if mid_id and mid:
            encoded = mid.encode()[:16]
            self._mid_element = bytes([(mid_id << 4) | (len(encoded) - 1)]) + encoded
        self.packet_count = 0
        self.octet_count = 0
        self.last_timestamp = 0
        self.history: dict[int, bytes] = {}

    def write(
        self,
        packet: RawRtpPacket,
        sequence_number: int,
        timestamp: int,
        ntp_time: int = 0,
        payload_type: int | None = None,
    ) -> bytes:
        """The packet's bytes as this stream sends them (before SRTP)."""
        elements = self._mid_element
        if self._abs_send_time_id and ntp_time:
            value = (ntp_time >> 14) & 0xFFFFFF
            elements += bytes([(self._abs_send_time_id << 4) | 2]) + value.to_bytes(3, "big")
        if self._audio_level_id and packet.audio_level is not None:
            elements += bytes([self._audio_level_id << 4, packet.audio_level])
        first = 0x80
        if elements:
            first = 0x90
            pad = -len(elements) % 4
            elements = _EXT_HEADER.pack(0xBEDE, (len(elements) + pad) // 4) + elements
            elements += b"\x00" * pad
        pt = self.payload_type if payload_type is None else payload_type
        data = (
            _FIXED.pack(
                first,
                (0x80 if packet.marker else 0) | pt,
                sequence_number,
                timestamp,
                self.ssrc,
            )
            + elements
            + packet.data[packet.payload_start : packet.payload_end]
        )
        self.packet_count += 1
        self.octet_count += packet.payload_end - packet.payload_start
        self.last_timestamp = timestamp
        if self.history_size:
            self.history[sequence_number % self.history_size] = data
        return data

    def sent(self, sequence_number: int) -> bytes | None:
        """The bytes of a recently sent packet, for retransmission."""
        if not self.history_size:
            return None
        data = self.history.get(sequence_number % self.history_size)
        if data is not None and int.from_bytes(data[2:4], "big") == sequence_number:
            return data
        return None
