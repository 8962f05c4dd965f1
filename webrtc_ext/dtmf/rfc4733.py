"""RFC 4733 telephone-event: the payload and a sans-I/O decoder of key presses.

The decoder is fed RTP packets with the time they arrived and returns one
:class:`TelephoneEvent` per key press. It keys presses on the RTP timestamp (RFC 4733
§2.5.1.3: every packet of one event carries the event's start timestamp), never on the
marker bit, so it survives loss (of the marker packet or of every end packet),
duplication, reordering, RTP timestamp wrap and long presses. It owns no clock: the
caller passes ``now`` and asks :meth:`TelephoneEventDecoder.get_timer` when to call
:meth:`TelephoneEventDecoder.handle_timer`.
"""

from __future__ import annotations

import logging
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal

from aiortc.rtp import RtpPacket

logger = logging.getLogger(__name__)

#: Event codes 0-15 (RFC 4733 §3.2): the DTMF keys. Other codes are ignored.
DTMF_EVENTS = "0123456789*#ABCD"

#: The duration field is 16 bits (RFC 4733 §2.3.5).
MAX_DURATION = 0xFFFF

#: Stream clock / event clock ratios seen in practice (8000/8000, 16000/8000, 48000/16000,
#: 48000/8000).
CLOCK_RATIOS = (1, 2, 3, 6)

#: How late (seconds) after saturating its duration a sender may start the next segment:
#: Chromium starts it at the first audio frame (20 ms) past the saturation.
SEGMENT_LATENESS = 0.02

EndReason = Literal["end", "timeout", "next"]


def _uint32_newer(a: int, b: int) -> bool:
    """RTP timestamp ``a`` is later than ``b`` in serial-number arithmetic (RFC 1982)."""
    return a != b and ((a - b) & 0xFFFFFFFF) < 0x80000000


@dataclass(frozen=True)
class TelephoneEventPayload:
    """The 4-byte payload of RFC 4733 §2.3: event, E bit, volume, duration."""

    event: int
    end: bool
    volume: int
    duration: int

    @classmethod
    def parse(cls, data: bytes) -> TelephoneEventPayload:
        """Parse a payload; raises ValueError when it is shorter than RFC 4733 §2.3 allows."""
        if len(data) < 4:
            raise ValueError(f"RFC 4733 §2.3: payload needs 4 bytes, got {len(data)}")
        event, flags, duration = struct.unpack("!BBH", data[:4])
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def serialize(self) -> bytes:
        """The 4 payload bytes (the R bit is always 0)."""
        flags = (0x80 if self.end else 0) | (self.volume & 0x3F)
        return struct.pack("!BBH", self.event, flags, self.duration & MAX_DURATION)


@dataclass(frozen=True)
class TelephoneEvent:
    """One key press, as decoded from RFC 4733 telephone-event packets."""

    digit: str
    """``0``-``9``, ``*``, ``#``, ``A``-``D``."""
    start: float
    """When the tone began, on the caller's clock (estimated from arrival and duration)."""
    end: float
    """When the tone ended: ``start + duration``."""
    duration: float
    """Length of the tone in seconds, from the duration field."""
    volume: int
    """Power level in -dBm0 (0 is loudest, 63 quietest)."""
    end_reason: EndReason
    """``end``: an end packet (E bit) arrived; ``timeout``: no packet came for the timeout;
    ``next``: a later event began before any end packet arrived."""
    rtp_timestamp: int
    """The event's RTP timestamp (its first segment)."""
    ssrc: int
    clock_rate: int
    mid: str | None = None
    """The media section of the transceiver it arrived on (filled in by the receiver)."""


@dataclass
class _Press:
    """A key press being received: possibly several segments (RFC 4733 §2.5.2.3)."""

    code: int
    ssrc: int
    first_timestamp: int
    segment_timestamp: int
    clock_rate: int
    volume: int
    last_arrival: float
    start: float
    segment_base: int = 0
    segment_duration: int = 0
    timestamps: set[int] = field(default_factory=set)
    reported: bool = False

    @property
    def total_duration(self) -> int:
        return self.segment_base + self.segment_duration

    def update(self, payload: TelephoneEventPayload, now: float) -> None:
        """Take the duration and volume of one more packet of the current segment."""
        extended = _extend_duration(self.segment_duration, payload.duration)
        self.segment_duration = max(self.segment_duration, extended)
        self.volume = payload.volume
        self.last_arrival = max(self.last_arrival, now)
        began = now - (self.segment_base + extended) / self.clock_rate
        self.start = min(self.start, began)

    def next_segment(self, timestamp: int, payload: TelephoneEventPayload, now: float) -> None:
        """Continue with the next segment of a long press (RFC 4733 §2.5.2.3)."""
        self.segment_base += self.segment_duration
        self.segment_duration = 0
        self.segment_timestamp = timestamp
        self.timestamps.add(timestamp)
        self.update(payload, now)

    def result(self, reason: EndReason) -> TelephoneEvent:
        duration = self.total_duration / self.clock_rate
        return TelephoneEvent(
            digit=DTMF_EVENTS[self.code],
            start=self.start,
            end=self.start + duration,
            duration=duration,
            volume=self.volume,
            end_reason=reason,
            rtp_timestamp=self.first_timestamp,
            ssrc=self.ssrc,
            clock_rate=self.clock_rate,
        )


def _extend_duration(previous: int, raw: int) -> int:
    """Unwrap a 16-bit duration to the value nearest ``previous`` (senders that let it wrap)."""
    candidate = (previous & ~MAX_DURATION) + raw
    if candidate < previous - 0x8000:
        candidate += 0x10000
    elif candidate > previous + 0x8000 and candidate >= 0x10000:
        candidate -= 0x10000
    return candidate


class TelephoneEventDecoder:
    """Turns RFC 4733 packets into key presses: one press, one event, none invented."""

    def __init__(self, timeout: float = 0.5, memory: int = 64) -> None:
        self.timeout = timeout
        """Seconds without a packet after which a press whose end never came is over."""
        self._memory = memory
        self._active: _Press | None = None
        self._finished: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._recent: _Press | None = None

    def receive(
        self, packet: RtpPacket, now: float, clock_rate: int = 8000
    ) -> list[TelephoneEvent]:
        """Feed one telephone-event RTP packet that arrived at ``now``; return ended presses."""
        events = self.handle_timer(now)
        try:
            payload = TelephoneEventPayload.parse(packet.payload)
        except ValueError as exc:
            logger.info("dropped malformed telephone-event packet %r: %s", packet, exc)
            return events
        if payload.event >= len(DTMF_EVENTS):
            logger.debug("ignored telephone-event code %d (not a DTMF key)", payload.event)
            return events
        if clock_rate <= 0:
            logger.info("dropped telephone-event packet with clock rate %d", clock_rate)
            return events
        key = (packet.ssrc, packet.timestamp)
        if key in self._finished:
            return events  # a duplicate or late packet of a press already reported
        active = self._active
        if active is not None and active.ssrc == packet.ssrc:
            if packet.timestamp in active.timestamps:
                active.update(payload, now)
            elif self._continues(active, packet, payload, now, clock_rate):
                active.next_segment(packet.timestamp, payload, now)
            elif _uint32_newer(packet.timestamp, active.segment_timestamp):
                events += self._finish("next")
                self._active = self._begin(packet, payload, now, clock_rate)
            else:
                # A press that ended before the active one, whose packets came late.
                late = self._begin(packet, payload, now, clock_rate)
                events += self._finish_press(late, "end" if payload.end else "next")
                return events
        else:
            events += self._finish("next")
            recent = self._recent
            if recent is not None and self._continues(recent, packet, payload, now, clock_rate):
                # The next segment of a long press already reported (its packets were lost
                # for longer than the timeout): follow it without reporting it again.
                recent.next_segment(packet.timestamp, payload, now)
                self._active = recent
            else:
                self._active = self._begin(packet, payload, now, clock_rate)
        if payload.end:
            events += self._finish("end")
        return events

    def handle_timer(self, now: float) -> list[TelephoneEvent]:
        """End the active press if no packet of it came for :attr:`timeout` seconds."""
        timer = self.get_timer()
        if timer is not None and now >= timer:
            return self._finish("timeout")
        return []

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` should next be called, or ``None``."""
        if self._active is None:
            return None
        return self._active.last_arrival + self.timeout

    def flush(self) -> list[TelephoneEvent]:
        """End the active press now (the stream stopped)."""
        return self._finish("timeout")

    # -- internals ----------------------------------------------------------------------

    def _begin(
        self, packet: RtpPacket, payload: TelephoneEventPayload, now: float, clock_rate: int
    ) -> _Press:
        press = _Press(
            code=payload.event,
            ssrc=packet.ssrc,
            first_timestamp=packet.timestamp,
            segment_timestamp=packet.timestamp,
            clock_rate=clock_rate,
            volume=payload.volume,
            last_arrival=now,
            start=now,
            timestamps={packet.timestamp},
        )
        press.update(payload, now)
        return press

    def _continues(
        self,
        active: _Press,
        packet: RtpPacket,
        payload: TelephoneEventPayload,
        now: float,
        clock_rate: int,
    ) -> bool:
        """A new segment of a long press (RFC 4733 §2.5.2.3), not a new press."""
        if packet.marker or packet.ssrc != active.ssrc or payload.event != active.code:
            return False
        if clock_rate != active.clock_rate:
            return False
        if not _uint32_newer(packet.timestamp, active.segment_timestamp):
            return False
        # The new segment's timestamp is the previous one's plus the saturated duration, on
        # the stream's clock (a multiple of the event clock when they differ, e.g. 6 for
        # telephone-event/8000 beside Opus): Chromium starts it up to one update later.
        delta = (packet.timestamp - active.segment_timestamp) & 0xFFFFFFFF
        lateness = SEGMENT_LATENESS * clock_rate
        if not any(
            ratio * (MAX_DURATION - 2) <= delta <= ratio * (MAX_DURATION + lateness)
            for ratio in CLOCK_RATIOS
        ):
            return False
        # The new segment starts where the previous one saturated its 16-bit duration.
        segment_start = active.start + active.segment_base / clock_rate
        expected = segment_start + MAX_DURATION / clock_rate
        began = now - payload.duration / clock_rate
        return abs(began - expected) < 0.25

    def _finish(self, reason: EndReason) -> list[TelephoneEvent]:
        press, self._active = self._active, None
        if press is None:
            return []
        self._recent = press if reason != "end" else None
        return self._finish_press(press, reason)

    def _finish_press(self, press: _Press, reason: EndReason) -> list[TelephoneEvent]:
        for timestamp in press.timestamps:
            self._finished[(press.ssrc, timestamp)] = None
        while len(self._finished) > self._memory:
            self._finished.popitem(last=False)
        if press.reported:
            return []
        press.reported = True
        return [press.result(reason)]
