"""Ogg/Opus without a codec: pages (RFC 3533) and the Opus mapping (RFC 7845), sans-I/O.

:class:`OggOpusReader` turns the bytes of an Ogg/Opus file into Opus packets with their
durations; :class:`OggOpusWriter` turns Opus packets into Ogg pages. Neither decodes audio.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from .opus import frame_samples

logger = logging.getLogger(__name__)

OPUS_CLOCK_RATE = 48000
_PAGE_HEADER = struct.Struct("<4sBBqIIIB")
_CONTINUED, _FIRST, _LAST = 0x01, 0x02, 0x04


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc_table()


def ogg_crc(data: bytes) -> int:
    """The Ogg page checksum (RFC 3533 §6: CRC-32, polynomial 0x04C11DB7, not reflected)."""
    crc = 0
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


def opus_packet_samples(packet: bytes) -> int:
    """Duration of an Opus packet in 48 kHz samples, from its TOC byte (RFC 6716 §3.1)."""
    if not packet:
        raise ValueError("empty Opus packet (RFC 6716 §3.1 needs a TOC byte)")
    frame = frame_samples(packet[0])
    code = packet[0] & 3
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        if len(packet) < 2:
            raise ValueError("Opus code 3 packet without a frame count (RFC 6716 §3.2.5)")
        frames = packet[1] & 0x3F
    return frame * frames


@dataclass(frozen=True)
class OpusHead:
    """The Opus identification header (RFC 7845 §5.1)."""

    channels: int = 2
    pre_skip: int = 312
    input_sample_rate: int = 48000
    output_gain: int = 0

    def to_bytes(self) -> bytes:
        """The header packet (channel mapping family 0)."""
        return b"OpusHead" + struct.pack(
            "<BBHIhB", 1, self.channels, self.pre_skip, self.input_sample_rate, self.output_gain, 0
        )

    @classmethod
    def parse(cls, packet: bytes) -> OpusHead:
        """Parse the header packet; raises ``ValueError`` if it is not one."""
        if len(packet) < 19 or not packet.startswith(b"OpusHead"):
            raise ValueError("not an OpusHead packet (RFC 7845 §5.1)")
        version, channels, pre_skip, rate, gain = struct.unpack_from("<BBHIh", packet, 8)
        if version >> 4 != 0 or channels == 0:
            raise ValueError("unsupported OpusHead version or zero channels (RFC 7845 §5.1)")
        return cls(channels, pre_skip, rate, gain)


def opus_tags(vendor: str = "webrtc_ext") -> bytes:
    """An OpusTags packet with no comments (RFC 7845 §5.2)."""
    encoded = vendor.encode()
    return b"OpusTags" + struct.pack("<I", len(encoded)) + encoded + struct.pack("<I", 0)


def ogg_packets(data: bytes) -> Iterator[bytes]:
    """The packets of the first logical stream of an Ogg file; bad pages are skipped."""
    pos, serial, partial = 0, None, b""
    while True:
        pos = data.find(b"OggS", pos)
        if pos < 0 or pos + _PAGE_HEADER.size > len(data):
            return
        _, version, flags, _, page_serial, _, crc, count = _PAGE_HEADER.unpack_from(data, pos)
        table_end = pos + _PAGE_HEADER.size + count
        lacing = data[pos + _PAGE_HEADER.size : table_end]
        end = table_end + sum(lacing)
        if version != 0 or len(lacing) < count or end > len(data):
            logger.info("skipped a truncated or unknown Ogg page at byte %d", pos)
            pos += 4
            continue
        page = bytearray(data[pos:end])
        page[22:26] = b"\0\0\0\0"
        if ogg_crc(bytes(page)) != crc:
            logger.info("skipped an Ogg page with a bad checksum at byte %d", pos)
            pos += 4
            continue
        serial = page_serial if serial is None else serial
        if page_serial == serial:
            if not flags & _CONTINUED:
                partial = b""
            offset = table_end
            for value in lacing:
                partial += data[offset : offset + value]
                offset += value
                if value < 255:
                    yield partial
                    partial = b""
        pos = end


class OggOpusReader:
    """The Opus packets of an Ogg/Opus file, with the header (RFC 7845)."""

    def __init__(self, data: bytes) -> None:
        packets = ogg_packets(data)
        self.head = OpusHead.parse(next(packets, b""))
        tags = next(packets, b"")
        if not tags.startswith(b"OpusTags"):
            raise ValueError("the second Ogg/Opus packet is not OpusTags (RFC 7845 §5.2)")
        self._packets = packets

    def packets(self) -> Iterator[tuple[bytes, int]]:
        """``(opus_packet, samples_at_48kHz)`` for each audio packet, in file order."""
        for packet in self._packets:
            try:
                yield packet, opus_packet_samples(packet)
            except ValueError as exc:
                logger.info("skipped an Opus packet: %s", exc)


class OggOpusWriter:
    """Builds an Ogg/Opus file from Opus packets, one page per packet (RFC 7845 §3)."""

    def __init__(self, head: OpusHead | None = None, serial: int = 0x5EB0C0DE) -> None:
        self.head = head or OpusHead()
        self._serial = serial
        self._sequence = 0
        self._granule = 0  # RFC 7845 §4: decoded samples, pre-skip included
        self._pending: bytes | None = None

    def start(self) -> bytes:
        """The two header pages."""
        return self._page(self.head.to_bytes(), 0, _FIRST) + self._page(opus_tags(), 0, 0)

    def packet(self, packet: bytes, samples: int) -> bytes:
        """The page(s) carrying one Opus packet of ``samples`` 48 kHz samples."""
        self._granule += samples
        previous, self._pending = self._pending, self._page(packet, self._granule, 0)
        return previous or b""

    def end(self) -> bytes:
        """The last page, flagged end-of-stream."""
        last = self._pending
        self._pending = None
        if last is None:
            return self._page(b"", self._granule, _LAST)
        page = bytearray(last)
        page[5] |= _LAST
        page[22:26] = b"\0\0\0\0"
        page[22:26] = struct.pack("<I", ogg_crc(bytes(page)))
        return bytes(page)

    def _page(self, packet: bytes, granule: int, flags: int) -> bytes:
        pages = b""
        chunks = [packet[i : i + 255 * 255] for i in range(0, len(packet), 255 * 255)] or [b""]
        for index, chunk in enumerate(chunks):
            full, rest = divmod(len(chunk), 255)
            last_chunk = index == len(chunks) - 1
            lacing = bytes([255] * full + ([rest] if last_chunk else []))
            header = _PAGE_HEADER.pack(
                b"OggS",
                0,
                flags | (_CONTINUED if index else 0),
                granule if last_chunk else -1,
                self._serial,
                self._sequence,
                0,
                len(lacing),
            )
            self._sequence += 1
            page = bytearray(header + lacing + chunk)
            page[22:26] = struct.pack("<I", ogg_crc(bytes(page)))
            pages += bytes(page)
        return pages
