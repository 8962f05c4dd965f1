"""A sans-I/O tone player: the W3C ``RTCDTMFSender`` playout algorithm, producing RFC 4733 packets.

:class:`TonePlayer` is fed the time and returns what to do: fire ``tonechange`` or send an
event packet. It sends packets the way Chromium does: no packet at the instant a tone
begins, then an update every :attr:`TonePlayer.interval` with the duration so far (the
first carrying the marker bit), then the end packet (E bit) three times. A tone shorter
than the interval is sent as end packets only, the first carrying the marker. Tones longer
than the 16-bit duration field are split into segments (RFC 4733 §2.5.2.3).
"""

from __future__ import annotations

from dataclasses import dataclass

from .rfc4733 import DTMF_EVENTS, MAX_DURATION, TelephoneEventPayload

#: Characters ``insertDTMF`` accepts (W3C webrtc-pc §7.2), after upper-casing.
VALID_TONES = frozenset(DTMF_EVENTS + ",")

#: W3C limits, in milliseconds.
MIN_DURATION_MS, MAX_DURATION_MS, MIN_GAP_MS, COMMA_DELAY_MS = 40, 6000, 30, 2000

END_PACKET_COPIES = 3


@dataclass(frozen=True)
class ToneChange:
    """Fire ``tonechange`` with this tone (``""`` when the buffer ran empty)."""

    tone: str


@dataclass(frozen=True)
class EventPacket:
    """Send one RFC 4733 packet.

    All packets with the same ``segment`` share one RTP timestamp: the sender's media
    timestamp at ``segment_began`` (a time on the player's clock).
    """

    payload: bytes
    marker: bool
    segment: int
    segment_began: float


@dataclass
class _Playing:
    code: int
    began: float
    duration: float
    gap: float
    next_update: float
    segment: int
    segment_base: int = 0
    sent: bool = False


class TonePlayer:
    """The playout state of one ``RTCDTMFSender``."""

    # In a slot: the C fan-out (webrtc_ext._native) reads it for every packet at its offset;
    # the rest stays in ``__dict__``.
    __slots__ = ("__dict__", "__weakref__", "_playing")

    def __init__(self, clock_rate: int = 8000, interval: float = 0.05, volume: int = 10) -> None:
        self.clock_rate = clock_rate
        self.interval = interval
        self.volume = volume
        self.tone_buffer = ""
        self._duration = 0.1
        self._gap = 0.07
        self._next_tone_at: float | None = None
        self._playing: _Playing | None = None
        self._segments = 0

    @property
    def playing(self) -> bool:
        """A tone is being sent now (media packets should pause)."""
        return self._playing is not None

    @property
    def idle(self) -> bool:
        """No tone playing and none scheduled."""
        return self._playing is None and self._next_tone_at is None

    def insert(self, tones: str, duration_ms: int, gap_ms: int, now: float) -> None:
        """Replace the tone buffer (already validated and clamped) and start playout if idle."""
        self.tone_buffer = tones
        self._duration = duration_ms / 1000
        self._gap = gap_ms / 1000
        if self.idle and tones:
            self._next_tone_at = now

    def get_timer(self) -> float | None:
        """When :meth:`poll` has something to do next, or ``None``."""
        if self._playing is not None:
            playing = self._playing
            return min(playing.next_update, playing.began + playing.duration)
        return self._next_tone_at

    def poll(self, now: float) -> list[ToneChange | EventPacket]:
        """Everything due at ``now``: tone changes and packets, in order."""
        out: list[ToneChange | EventPacket] = []
        for _ in range(1000):
            if self._playing is not None:
                if not self._advance(self._playing, now, out):
                    break
            elif self._next_tone_at is not None and now >= self._next_tone_at:
                self._next_tone(now, out)
            else:
                break
        return out

    def _next_tone(self, now: float, out: list[ToneChange | EventPacket]) -> None:
        if not self.tone_buffer:
            self._next_tone_at = None
            out.append(ToneChange(""))
            return
        tone, self.tone_buffer = self.tone_buffer[0], self.tone_buffer[1:]
        out.append(ToneChange(tone))
        if tone == ",":
            self._next_tone_at = now + COMMA_DELAY_MS / 1000
            return
        self._next_tone_at = None
        self._segments += 1
        self._playing = _Playing(
            code=DTMF_EVENTS.index(tone),
            began=now,
            duration=self._duration,
            gap=self._gap,
            next_update=now + self.interval,
            segment=self._segments,
        )

    def _advance(self, playing: _Playing, now: float, out: list[ToneChange | EventPacket]) -> bool:
        """Send what is due for the playing tone; ``False`` when nothing is due yet."""
        ends_at = playing.began + playing.duration
        if now >= ends_at:
            samples = self._samples(playing, playing.duration, out)
            for _ in range(END_PACKET_COPIES):
                out.append(self._packet(playing, samples, end=True))
            self._playing = None
            self._next_tone_at = ends_at + playing.gap
            return True
        if now >= playing.next_update:
            samples = self._samples(playing, now - playing.began, out)
            out.append(self._packet(playing, samples, end=False))
            while playing.next_update <= now:
                playing.next_update += self.interval
            return True
        return False

    def _samples(
        self, playing: _Playing, elapsed: float, out: list[ToneChange | EventPacket]
    ) -> int:
        """Duration so far within the current segment, starting new segments as needed."""
        samples = round(elapsed * self.clock_rate) - playing.segment_base
        while samples > MAX_DURATION:
            out.append(self._packet(playing, MAX_DURATION, end=False))
            playing.segment_base += MAX_DURATION
            samples -= MAX_DURATION
            self._segments += 1
            playing.segment = self._segments
        return samples

    def _packet(self, playing: _Playing, samples: int, end: bool) -> EventPacket:
        payload = TelephoneEventPayload(
            event=playing.code, end=end, volume=self.volume, duration=samples
        )
        marker = not playing.sent
        playing.sent = True
        return EventPacket(
            payload=payload.serialize(),
            marker=marker,
            segment=playing.segment,
            segment_began=playing.began + playing.segment_base / self.clock_rate,
        )
