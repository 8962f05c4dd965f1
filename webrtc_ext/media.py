"""Files as RTP and RTP as files, sending without re-encoding where the file already holds Opus.

- :class:`OggOpusFileSource`: an Ogg/Opus file's packets as RTP, untouched (no decoder, no
  encoder).
- :class:`EncodedFileSource`: any file PyAV can read (WAV, MP3, ...) encoded to Opus once.
- :func:`play`: the thin asyncio shell that paces a source's packets in real time through a
  :class:`~webrtc_ext.rawrtp.RtpSender`.
- :class:`OggOpusRecorder`: received Opus RTP written to an Ogg file without decoding.

The sources are sans-I/O iterators of :class:`~webrtc_ext.rtp.RawRtpPacket`; only ``play``
and the recorder touch the clock and the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any, BinaryIO

from .ogg import OPUS_CLOCK_RATE, OggOpusReader, OggOpusWriter, OpusHead, opus_packet_samples
from .rawrtp import RawRtpReceiverMixin, RawRtpSenderMixin
from .rtp import RawRtpPacket

logger = logging.getLogger(__name__)

#: The payload type files are packetised with; senders rewrite it to the negotiated one.
OPUS_PAYLOAD_TYPE = 111
#: Opus frame length the encoding source produces, in 48 kHz samples (20 ms, WebRTC's ptime).
FRAME_SAMPLES = 960


def packetize(
    packets: Iterator[tuple[bytes, int]],
    *,
    ssrc: int = 0,
    first_sequence_number: int = 0,
    first_timestamp: int = 0,
) -> Iterator[RawRtpPacket]:
    """Opus ``(payload, samples)`` pairs as RTP packets (RFC 7587: 48 kHz timestamps)."""
    timestamp = first_timestamp
    for index, (payload, samples) in enumerate(packets):
        yield RawRtpPacket.create(
            payload,
            payload_type=OPUS_PAYLOAD_TYPE,
            sequence_number=(first_sequence_number + index) & 0xFFFF,
            timestamp=timestamp & 0xFFFFFFFF,
            ssrc=ssrc,
            marker=index == 0,
        )
        timestamp += samples


class OggOpusFileSource:
    """An Ogg/Opus file as RTP packets, without decoding or re-encoding."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        with open(path, "rb") as file:
            self._data = file.read()
        self.head = OggOpusReader(self._data).head

    def opus_packets(self) -> Iterator[tuple[bytes, int]]:
        """``(opus_packet, samples)`` for each audio packet of the file."""
        return OggOpusReader(self._data).packets()

    def packets(self) -> Iterator[RawRtpPacket]:
        """The file as RTP packets (timestamps at 48 kHz, from 0)."""
        return packetize(self.opus_packets())


class EncodedFileSource:
    """Any audio file PyAV can read, encoded to 20 ms Opus packets once (libopus)."""

    def __init__(
        self, path: str | os.PathLike[str], *, bitrate: int = 32000, channels: int = 1
    ) -> None:
        self.path = os.fspath(path)
        self.bitrate = bitrate
        self.channels = channels

    def opus_packets(self) -> Iterator[tuple[bytes, int]]:
        """``(opus_packet, samples)`` for each encoded packet."""
        import av

        layout = "mono" if self.channels == 1 else "stereo"
        encoder = av.CodecContext.create("libopus", "w")
        encoder.sample_rate, encoder.layout, encoder.format = OPUS_CLOCK_RATE, layout, "s16"
        encoder.bit_rate = self.bitrate
        resampler = av.AudioResampler(format="s16", layout=layout, rate=OPUS_CLOCK_RATE)
        fifo = av.AudioFifo()
        pts = 0
        with av.open(self.path) as container:
            for frame in container.decode(audio=0):
                for resampled in resampler.resample(frame):
                    fifo.write(resampled)
                while fifo.samples >= FRAME_SAMPLES:
                    yield from self._encode(encoder, fifo.read(FRAME_SAMPLES), pts)
                    pts += FRAME_SAMPLES
        for resampled in resampler.resample(None):
            fifo.write(resampled)
        rest = fifo.read()
        if rest is not None and rest.samples:
            yield from self._encode(encoder, rest, pts)
        for packet in encoder.encode(None):
            yield bytes(packet), opus_packet_samples(bytes(packet))

    @staticmethod
    def _encode(encoder: Any, frame: Any, pts: int) -> Iterator[tuple[bytes, int]]:
        frame.pts = pts
        for packet in encoder.encode(frame):
            data = bytes(packet)
            yield data, opus_packet_samples(data)

    def packets(self) -> Iterator[RawRtpPacket]:
        """The file as RTP packets (timestamps at 48 kHz, from 0)."""
        return packetize(self.opus_packets())


def open_source(path: str | os.PathLike[str]) -> OggOpusFileSource | EncodedFileSource:
    """The right source for a file: untouched if it is Ogg/Opus, encoded otherwise."""
    with open(path, "rb") as file:
        start = file.read(64)
    if start.startswith(b"OggS") and b"OpusHead" in start:
        return OggOpusFileSource(path)
    return EncodedFileSource(path)


async def play(
    packets: Iterator[RawRtpPacket],
    sender: RawRtpSenderMixin,
    *,
    source: Hashable = None,
    clock_rate: int = OPUS_CLOCK_RATE,
    switch: bool = True,
) -> int:
    """Send ``packets`` through ``sender`` in real time; returns how many were sent.

    Each packet leaves when the wall clock reaches its timestamp. ``source`` names this
    playback for the sender's munger (default: a new object); with ``switch`` the sender
    switches to it first.
    """
    source = object() if source is None else source
    if switch:
        sender.switch_source(source)
    start: float | None = None
    first_ts = 0
    sent = 0
    for packet in packets:
        if start is None:
            start, first_ts = time.monotonic(), packet.timestamp
        due = start + ((packet.timestamp - first_ts) & 0xFFFFFFFF) / clock_rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if sender.send_rtp(packet, source=source):
            sent += 1
    return sent


#: Longest gap a recording fills with concealment frames (10 minutes at 48 kHz).
MAX_CONCEALED_GAP = 600 * OPUS_CLOCK_RATE


class OggOpusRecording:
    """Opus RTP packets in, Ogg/Opus bytes out, without decoding (sans-I/O).

    Packets are put back in sequence order through a small reordering window; a gap left by a
    lost packet (or a timestamp jump) is filled with 20 ms packet-loss-concealment frames (a
    lone TOC byte, RFC 6716 §3.2.1), so the file keeps the stream's timing.
    """

    def __init__(self, *, channels: int = 2, reorder_window: int = 8) -> None:
        self._writer = OggOpusWriter(OpusHead(channels=channels))
        self._window = reorder_window
        self._buffer: dict[int, RawRtpPacket] = {}
        self._next_seq: int | None = None
        self._high_seq = 0
        self._last_ts: int | None = None
        self._last_samples = 0
        self._concealment = bytes([0xF8])  # CELT 20 ms, code 0, no frame: PLC
        self.packets_written = 0
        self.concealed_samples = 0

    def start(self) -> bytes:
        """The Ogg/Opus header pages."""
        return self._writer.start()

    def add(self, packet: RawRtpPacket) -> bytes:
        """Take one received packet; returns the Ogg bytes now ready (maybe none)."""
        if self._next_seq is None:
            self._next_seq = self._high_seq = packet.sequence_number
        ahead = (packet.sequence_number - self._next_seq) & 0xFFFF
        if ahead >= 0x8000:
            if self._last_ts is not None or ahead < 0x10000 - self._window:
                return b""  # older than what was written: too late
            self._next_seq -= 0x10000 - ahead  # nothing written yet: start earlier
            ahead = 0
        self._buffer[ahead + self._next_seq] = packet
        self._high_seq = max(self._high_seq, ahead + self._next_seq)
        out = b""
        if self._last_ts is None and self._high_seq - self._next_seq < self._window:
            return out  # the first packets may be reordered too: wait for a window's worth
        while self._buffer and (
            self._next_seq in self._buffer or self._high_seq - self._next_seq >= self._window
        ):
            out += self._page(self._buffer.pop(self._next_seq, None))
            self._next_seq += 1
        return out

    def end(self) -> bytes:
        """Everything still buffered, and the last page."""
        out = b"".join(self._page(self._buffer[seq]) for seq in sorted(self._buffer))
        self._buffer.clear()
        return out + self._writer.end()

    def _page(self, packet: RawRtpPacket | None) -> bytes:
        if packet is None:
            return b""  # lost: the timestamp gap of the next packet is concealed
        payload = packet.payload
        try:
            samples = opus_packet_samples(payload)
        except ValueError as exc:
            logger.info("dropped a packet that is not Opus: %s", exc)
            return b""
        out = b""
        if self._last_ts is not None:
            gap = ((packet.timestamp - self._last_ts) & 0xFFFFFFFF) - self._last_samples
            if 0 < gap <= MAX_CONCEALED_GAP:
                for _ in range(gap // FRAME_SAMPLES):
                    out += self._writer.packet(self._concealment, FRAME_SAMPLES)
                    self.concealed_samples += FRAME_SAMPLES
        self._last_ts, self._last_samples = packet.timestamp, samples
        toc = bytes([payload[0] & 0xFC])
        if opus_packet_samples(toc) == FRAME_SAMPLES:
            self._concealment = toc  # conceal in the stream's own mode
        self.packets_written += 1
        return out + self._writer.packet(payload, samples)


class OggOpusRecorder:
    """Writes the Opus RTP a receiver gets to an Ogg file, without decoding.

    The asyncio-free shell of :class:`OggOpusRecording`: it listens to a raw receiver and
    writes to an open binary file.
    """

    def __init__(
        self,
        receiver: RawRtpReceiverMixin,
        file: BinaryIO,
        *,
        channels: int = 2,
        reorder_window: int = 8,
    ) -> None:
        self.receiver = receiver
        self.recording = OggOpusRecording(channels=channels, reorder_window=reorder_window)
        self._file = file
        file.write(self.recording.start())
        self._callback: Callable[[RawRtpPacket], None] = self._received
        receiver.on_rtp(self._callback)

    @property
    def packets_written(self) -> int:
        """Packets written to the file so far."""
        return self.recording.packets_written

    @property
    def concealed_samples(self) -> int:
        """Samples of concealment frames written for gaps."""
        return self.recording.concealed_samples

    def _received(self, packet: RawRtpPacket) -> None:
        data = self.recording.add(packet)
        if data:
            self._file.write(data)

    def close(self) -> None:
        """Write what is buffered and the last page; stop listening. The file stays open."""
        self.receiver.remove_rtp_callback(self._callback)
        self._file.write(self.recording.end())
        self._file.flush()
