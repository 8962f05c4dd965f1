"""The RTP munger: one continuous outgoing stream while the source behind it changes.

A sans-I/O value in the shape of Elixir WebRTC's ``ExWebRTC.RTP.Munger`` (``new`` / ``update`` /
``munge``), with time passed in. Unlike that munger it knows which source each packet comes
from, so a late packet of a previous source arriving after a switch is dropped instead of being
renumbered into the new stream.
"""

from __future__ import annotations

from collections.abc import Hashable

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
#: How many sources the munger remembers the newest sequence number of.
MAX_REMEMBERED_SOURCES = 64


def _signed16(value: int) -> int:
    value &= 0xFFFF
    return value - SEQ_MOD if value >= 0x8000 else value


class RtpMunger:
    """Rewrites sequence numbers and timestamps so a receiver sees one stream across switches.

    Within a *segment* (the packets of one source between two switches) the output keeps the
    input's relative order and gaps: ``out = in + offset``. When a new segment starts, its first
    packet gets the sequence number after the highest one sent so far and a timestamp advanced
    by the real time elapsed since the newest packet sent, in whole packet durations (RFC 3550
    §5.1: the timestamp follows the sampling clock; a receiver's jitter buffer then sees neither
    overlap nor a sliver of a gap). Everything is modulo 2^16 and 2^32.

    Dropped (``munge`` returns ``None``): packets of any source but the current one; packets of
    the current source that it sent before the switch to it (not newer than the newest one seen
    before the switch); packets older than the first packet of the current segment, whose
    numbers would collide with what was already sent.
    """

    # Slots: the C send path (webrtc_ext._native) reads and writes these at their offsets.
    __slots__ = (
        "_first_in_seq",
        "_high_in_seq",
        "_high_in_seq16",
        "_high_in_ts",
        "_high_in_ts32",
        "_high_out_seq",
        "_high_out_time",
        "_high_out_ts",
        "_newest_seen",
        "_retired_ssrcs",
        "_seen_at_switch",
        "_segment_floor_ts",
        "_segment_ssrc",
        "_segment_started",
        "_sent_any",
        "_seq_offset",
        "_source",
        "_ts_offset",
        "clock_rate",
        "dropped",
        "frame_ticks",
        "initial_sequence_number",
        "initial_timestamp",
    )

    def __init__(
        self,
        clock_rate: int,
        *,
        initial_sequence_number: int | None = None,
        initial_timestamp: int | None = None,
    ) -> None:
        if clock_rate <= 0:
            raise ValueError("clock_rate must be positive")
        self.clock_rate = clock_rate
        #: Where the output starts (RFC 3550 §5.1: random); ``None`` keeps the first input's.
        self.initial_sequence_number = initial_sequence_number
        self.initial_timestamp = initial_timestamp
        self._source: Hashable | None = None
        self._newest_seen: dict[Hashable, int] = {}
        # Newest sequence number of each source (or (source, ssrc)) seen before the last switch.
        self._seen_at_switch: dict[Hashable, int] = {}
        self._segment_started = False
        self._segment_ssrc: int | None = None
        self._retired_ssrcs: set[int] = set()
        # Current segment, in extended (unwrapped) input numbers.
        self._first_in_seq = 0
        self._high_in_seq = 0
        self._high_in_seq16 = 0
        self._high_in_ts = 0
        self._high_in_ts32 = 0
        self._seq_offset = 0
        self._ts_offset = 0
        # Output so far, extended.
        self._sent_any = False
        self._high_out_seq = 0
        self._high_out_ts = 0
        self._high_out_time = 0.0
        self._segment_floor_ts = 0  # out timestamps of this segment must stay above this
        #: The timestamp step between consecutive packets, learned from the input (20 ms
        #: until then): a switch advances the timestamp by whole steps.
        self.frame_ticks = max(1, clock_rate // 50)
        self.dropped = 0

    @property
    def source(self) -> Hashable | None:
        """The source whose packets are passed through now."""
        return self._source

    def update(self, source: Hashable) -> None:
        """Switch to ``source``: its next packet starts a new segment (Elixir's ``update``)."""
        if self._segment_started:
            # The common case skips _remember: note the current segment's newest here.
            current = self._source
            key = current if self._segment_ssrc is None else (current, self._segment_ssrc)
            self._remember(key, self._high_in_seq16)
        self._source = source
        self._seen_at_switch = dict(self._newest_seen)
        self._segment_started = False
        self._retired_ssrcs.clear()

    def munge(
        self,
        sequence_number: int,
        timestamp: int,
        now: float,
        source: Hashable,
        ssrc: int | None = None,
    ) -> tuple[int, int] | None:
        """The outgoing ``(sequence_number, timestamp)`` of a packet, or ``None`` to drop it.

        ``ssrc``, when given, is the packet's own SSRC: if the current source changes it (a
        restarted stream, a new sequence space), a new segment starts, and late packets of the
        SSRC it left are dropped.
        """
        if self._segment_started and source == self._source and ssrc == self._segment_ssrc:
            return self._in_segment(sequence_number, timestamp, now)  # the common case
        key = source if ssrc is None else (source, ssrc)
        self._remember(key, sequence_number)
        if self._source is None:
            self.update(source)
            self._seen_at_switch.clear()
        if source != self._source:
            self.dropped += 1
            return None
        if ssrc is not None and self._segment_started and ssrc != self._segment_ssrc:
            if ssrc in self._retired_ssrcs:
                self.dropped += 1
                return None
            if self._segment_ssrc is not None:
                self._retired_ssrcs.add(self._segment_ssrc)
            self._segment_started = False
        if not self._segment_started:
            fence = self._seen_at_switch.get(key)
            if fence is not None and _signed16(sequence_number - fence) <= 0:
                self.dropped += 1
                return None
            self._start_segment(sequence_number, timestamp, now)
            self._segment_ssrc = ssrc
            return self._high_out_seq & 0xFFFF, self._high_out_ts & 0xFFFFFFFF
        return self._in_segment(sequence_number, timestamp, now)

    def _in_segment(
        self, sequence_number: int, timestamp: int, now: float
    ) -> tuple[int, int] | None:
        delta = (sequence_number - self._high_in_seq16) & 0xFFFF
        in_seq = self._high_in_seq + (delta - SEQ_MOD if delta >= 0x8000 else delta)
        if in_seq < self._first_in_seq:
            self.dropped += 1
            return None
        delta = (timestamp - self._high_in_ts32) & 0xFFFFFFFF
        in_ts = self._high_in_ts + (delta - TS_MOD if delta >= 0x80000000 else delta)
        out_ts = in_ts + self._ts_offset
        if out_ts <= self._segment_floor_ts:
            self.dropped += 1
            return None
        if in_seq > self._high_in_seq:
            step = in_ts - self._high_in_ts
            if in_seq == self._high_in_seq + 1 and 0 < step < self.clock_rate:
                self.frame_ticks = step
            self._high_in_seq, self._high_in_seq16 = in_seq, sequence_number & 0xFFFF
        if in_ts > self._high_in_ts:
            self._high_in_ts, self._high_in_ts32 = in_ts, timestamp & 0xFFFFFFFF
        out_seq = in_seq + self._seq_offset
        if out_seq > self._high_out_seq:
            self._high_out_seq = out_seq
        if out_ts > self._high_out_ts:
            self._high_out_ts, self._high_out_time = out_ts, now
        return out_seq & 0xFFFF, out_ts & 0xFFFFFFFF

    def insert(self, now: float) -> tuple[int, int]:
        """Reserve the next outgoing sequence number for a packet of no source.

        For packets the sender makes itself inside the stream, such as RFC 4733 events:
        returns ``(sequence_number, timestamp)``, the timestamp being the output timeline's
        position at ``now``. The current source's later packets follow the reserved number;
        its packets from before the insertion are dropped, so no number is used twice.
        """
        if not self._sent_any:
            seq = self.initial_sequence_number or 0
            ts = self.initial_timestamp or 0
            self._high_out_seq, self._high_out_ts, self._high_out_time = seq, ts, now
            self._sent_any = True
            return seq & 0xFFFF, ts & 0xFFFFFFFF
        self._high_out_seq += 1
        ts = self._high_out_ts + max(0, round((now - self._high_out_time) * self.clock_rate))
        if self._segment_started:
            self._seq_offset += 1
            self._first_in_seq = self._high_in_seq + 1
        return self._high_out_seq & 0xFFFF, ts & 0xFFFFFFFF

    def _start_segment(self, sequence_number: int, timestamp: int, now: float) -> None:
        if self._sent_any:
            # Whole frames: the new source's first frame starts where the last one sent ends
            # when they are back to back, and the gap stays when there was silence between.
            frame = self.frame_ticks
            elapsed = (now - self._high_out_time) * self.clock_rate
            out_seq = self._high_out_seq + 1
            out_ts = self._high_out_ts + frame * max(1, round(elapsed / frame))
        else:
            out_seq = (
                sequence_number
                if self.initial_sequence_number is None
                else self.initial_sequence_number
            )
            out_ts = timestamp if self.initial_timestamp is None else self.initial_timestamp
            out_seq, out_ts = out_seq & 0xFFFF, out_ts & 0xFFFFFFFF
        self._segment_floor_ts = self._high_out_ts if self._sent_any else out_ts - 1
        self._first_in_seq = self._high_in_seq = sequence_number & 0xFFFF
        self._high_in_seq16 = sequence_number & 0xFFFF
        self._high_in_ts = self._high_in_ts32 = timestamp & 0xFFFFFFFF
        self._seq_offset = out_seq - self._first_in_seq
        self._ts_offset = out_ts - self._high_in_ts
        self._high_out_seq, self._high_out_ts, self._high_out_time = out_seq, out_ts, now
        self._segment_started = self._sent_any = True

    def _remember(self, source: Hashable, sequence_number: int) -> None:
        newest = self._newest_seen.get(source)
        if newest is None:
            if len(self._newest_seen) >= MAX_REMEMBERED_SOURCES:
                del self._newest_seen[next(iter(self._newest_seen))]
            self._newest_seen[source] = sequence_number & 0xFFFF
        elif _signed16(sequence_number - newest) > 0:
            self._newest_seen[source] = sequence_number & 0xFFFF
