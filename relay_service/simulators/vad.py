"""An energy voice-activity detector shaped like OpenAI's ``server_vad`` (sans-I/O)."""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass


@dataclass(frozen=True)
class SpeechStarted:
    """Speech began ``audio_start_ms`` into the input stream."""

    audio_start_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    """Speech ended; ``audio`` is the utterance (16-bit mono PCM) with its prefix padding."""

    audio_end_ms: int
    audio: bytes


VadEvent = SpeechStarted | SpeechStopped


class EnergyVad:
    """Fed 16-bit mono PCM frames, reports where speech starts and stops.

    ``threshold`` in [0, 1] maps to a level between -60 dBFS (0) and -20 dBFS (1), so the
    default 0.5 triggers at -40 dBFS; ``prefix_padding_ms`` of audio before the start is kept
    with the utterance, and ``silence_duration_ms`` of quiet ends it — OpenAI's field names.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        threshold: float = 0.5,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 500,
        max_utterance_ms: int = 15000,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be within [0, 1]")
        self.sample_rate = sample_rate
        self.level_dbfs = -60.0 + 40.0 * threshold
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_duration_ms = silence_duration_ms
        self.max_utterance_ms = max_utterance_ms
        self._elapsed_ms = 0.0
        self._prefix: list[tuple[float, bytes]] = []
        self._utterance: list[bytes] | None = None
        self._utterance_ms = 0.0
        self._quiet_ms = 0.0

    @staticmethod
    def level(pcm: bytes) -> float:
        """The RMS level of 16-bit PCM in dBFS (-inf for digital silence)."""
        samples = array("h", pcm[: len(pcm) - len(pcm) % 2])
        if not samples:
            return -math.inf
        mean_square = sum(s * s for s in samples) / len(samples)
        if mean_square == 0:
            return -math.inf
        return 10 * math.log10(mean_square / (32768.0 * 32768.0))

    def feed(self, pcm: bytes) -> list[VadEvent]:
        """Account one frame of audio; return the events it caused."""
        frame_ms = 1000.0 * (len(pcm) // 2) / self.sample_rate
        loud = self.level(pcm) >= self.level_dbfs
        events: list[VadEvent] = []
        if self._utterance is None:
            self._prefix.append((frame_ms, pcm))
            while sum(ms for ms, _ in self._prefix) > self.prefix_padding_ms + frame_ms:
                self._prefix.pop(0)
            if loud:
                start = self._elapsed_ms - sum(ms for ms, _ in self._prefix[:-1])
                self._utterance = [p for _, p in self._prefix]
                self._utterance_ms = sum(ms for ms, _ in self._prefix)
                self._prefix = []
                self._quiet_ms = 0.0
                events.append(SpeechStarted(max(0, round(start))))
        else:
            self._utterance.append(pcm)
            self._utterance_ms += frame_ms
            self._quiet_ms = 0.0 if loud else self._quiet_ms + frame_ms
            if (
                self._quiet_ms >= self.silence_duration_ms
                or self._utterance_ms >= self.max_utterance_ms
            ):
                events.append(
                    SpeechStopped(round(self._elapsed_ms + frame_ms), b"".join(self._utterance))
                )
                self._utterance = None
        self._elapsed_ms += frame_ms
        return events
