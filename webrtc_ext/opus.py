"""Opus RTP repacketization without decoding: several frames per RTP packet (RFC 6716, RFC 7587).

WebRTC sends one 20 ms Opus frame per RTP packet. A consumer that does not need 20 ms
latency (a transcription service, a recorder across a network) can take the same frames in
fewer, larger packets: each packet costs a relay one encryption and one system call whatever
its size, so three frames per packet cost a third. :class:`OpusRepacketizer` joins
consecutive single-frame packets into one code 3 packet (RFC 6716 §3.2.5) without touching
the frames; the receiver's decoder sees exactly the frames that were sent. RFC 7587 §4.2
lets an Opus RTP packet carry up to 120 ms, and every decoder must accept code 3 packets.

It is sans-I/O: packets in, packets out. :class:`~webrtc_ext.rawrtp.RtpFanOut` uses it when a
destination is added with ``opus_frames`` above 1.
"""

from __future__ import annotations

from .rtp import RawRtpPacket

#: RFC 6716 §3.2.5: at most 120 ms of audio in one Opus packet.
MAX_PACKET_SAMPLES = 5760
#: RFC 6716 §3.2.1: the longest frame a length can describe.
MAX_FRAME_BYTES = 1275
#: The most payload a joined packet carries: with RTP header, extensions and the SRTP tag it
#: stays within the 1200-byte datagrams WebRTC stacks assume (no IP fragmentation).
MAX_JOINED_BYTES = 1100


def frame_samples(toc: int) -> int:
    """Duration of one frame of a TOC byte's configuration, in 48 kHz samples (RFC 6716 §3.1)."""
    config = toc >> 3
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        return (480, 960, 1920, 2880)[config & 3]
    if config < 16:  # hybrid: 10, 20 ms
        return (480, 960)[config & 1]
    return (120, 240, 480, 960)[config & 3]  # CELT: 2.5, 5, 10, 20 ms


def frame_length_bytes(length: int) -> bytes:
    """A frame length as code 2/3 packets write it (RFC 6716 §3.2.1): one byte, or two."""
    if length < 252:
        return bytes([length])
    first = 252 + (length & 3)
    return bytes([first, (length - first) >> 2])


def join_frames(toc: int, frames: list[bytes]) -> bytes:
    """One code 3 Opus packet holding ``frames`` (all of configuration ``toc``, RFC 6716 §3.2.5).

    Frames of equal length are written as CBR (no lengths); otherwise VBR, with the length
    of every frame but the last.
    """
    count = len(frames)
    if not 1 <= count <= 48:
        raise ValueError(f"an Opus packet holds 1 to 48 frames, not {count}")
    head = bytes([(toc & 0xFC) | 3])
    if all(len(frame) == len(frames[0]) for frame in frames):
        return head + bytes([count]) + b"".join(frames)
    lengths = b"".join(frame_length_bytes(len(frame)) for frame in frames[:-1])
    return head + bytes([0x80 | count]) + lengths + b"".join(frames)


class OpusRepacketizer:
    """Joins consecutive one-frame Opus RTP packets into packets of up to ``frames`` frames.

    :meth:`push` takes the packets of one stream in arrival order and returns the packets to
    send (none while it holds frames). A group is sent as soon as it is full, and early
    when the next packet cannot join it: a sequence gap (loss or reordering), a timestamp
    that does not follow the previous frame (silence suppressed by DTX, a new talkspurt),
    another SSRC, payload type or frame configuration, a group that would grow past
    :data:`MAX_JOINED_BYTES`, or a packet that is not a single frame (passed on as it
    came). So no frame is held past the next packet's arrival, none is reordered or dropped,
    and the time between frames is kept.

    Packets out carry their own contiguous sequence numbers (a held group must not look like
    loss to the receiver), the timestamp and marker of their first frame and the packet's
    SSRC; the sender's munger maps them into its stream as usual.
    """

    def __init__(self, frames: int = 3) -> None:
        if not 1 <= frames <= 6:
            raise ValueError("frames per packet must be 1 to 6 (120 ms of 20 ms frames)")
        self.frames = frames
        self._held: list[RawRtpPacket] = []
        self._toc = 0
        self._bytes = 0
        self._sequence = 0
        self.packets_in = 0
        self.packets_out = 0

    def push(self, packet: RawRtpPacket) -> list[RawRtpPacket]:
        """The packets to send now, in order (empty while frames are held)."""
        self.packets_in += 1
        out: list[RawRtpPacket] = []
        data = packet.data
        start, end = packet.payload_start, packet.payload_end
        single = end > start and data[start] & 3 == 0 and end - start - 1 <= MAX_FRAME_BYTES
        if not single or self.frames == 1:
            self._flush_into(out)
            out.append(self._renumbered(packet))
            return out
        toc = data[start]
        held = self._held
        if held:
            # Every held frame has the group's configuration, so its duration.
            last, frame = held[-1], frame_samples(self._toc)
            if (
                packet.ssrc != last.ssrc
                or packet.payload_type != last.payload_type
                or (toc & 0xFC) != (self._toc & 0xFC)
                or packet.sequence_number != (last.sequence_number + 1) & 0xFFFF
                or packet.timestamp != (last.timestamp + frame) & 0xFFFFFFFF
                or (len(held) + 1) * frame > MAX_PACKET_SAMPLES
                or self._bytes + (end - start) + 2 > MAX_JOINED_BYTES
            ):
                self._flush_into(out)
        if not self._held:
            self._toc = toc
            self._bytes = 2  # the TOC and frame count bytes
        self._held.append(packet)
        self._bytes += end - start + 1  # the frame, and its length if the packet is VBR
        if len(self._held) >= self.frames:
            self._flush_into(out)
        return out

    def flush(self) -> list[RawRtpPacket]:
        """The frames held, as one packet (e.g. when the stream ends)."""
        out: list[RawRtpPacket] = []
        self._flush_into(out)
        return out

    def _flush_into(self, out: list[RawRtpPacket]) -> None:
        held = self._held
        if not held:
            return
        self._held = []
        if len(held) == 1:
            out.append(self._renumbered(held[0]))
            return
        first = held[0]
        payload = join_frames(
            self._toc, [p.data[p.payload_start + 1 : p.payload_end] for p in held]
        )
        joined = RawRtpPacket.create(
            payload,
            payload_type=first.payload_type,
            sequence_number=self._next_sequence(),
            timestamp=first.timestamp,
            ssrc=first.ssrc,
            marker=first.marker,
            arrival_time=held[-1].arrival_time,
        )
        joined.audio_level = first.audio_level
        self.packets_out += 1
        out.append(joined)

    def _renumbered(self, packet: RawRtpPacket) -> RawRtpPacket:
        copy = RawRtpPacket(
            packet.data,
            payload_type=packet.payload_type,
            marker=packet.marker,
            sequence_number=self._next_sequence(),
            timestamp=packet.timestamp,
            ssrc=packet.ssrc,
            payload_start=packet.payload_start,
            payload_end=packet.payload_end,
            arrival_time=packet.arrival_time,
            audio_level=packet.audio_level,
        )
        self.packets_out += 1
        return copy

    def _next_sequence(self) -> int:
        sequence = self._sequence
        self._sequence = (sequence + 1) & 0xFFFF
        return sequence
