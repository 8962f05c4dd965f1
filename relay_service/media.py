"""Audio tracks used by the router and the simulator: a switchable source, a tone, energy."""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from array import array
from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, AudioResampler

SAMPLE_RATE = 48_000
PTIME = 0.020
SAMPLES = int(SAMPLE_RATE * PTIME)
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)


def rms(frame: AudioFrame) -> float:
    """Root-mean-square level of a signed 16-bit frame, 0..32767."""
    if frame.format.name != "s16":
        return 0.0
    samples = array("h", bytes(frame.planes[0])[: frame.samples * 2 * len(frame.layout.channels)])
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def _frame(samples: array[int], pts: int) -> AudioFrame:
    frame = AudioFrame(format="s16", layout="mono", samples=len(samples))
    frame.planes[0].update(samples.tobytes())
    frame.sample_rate = SAMPLE_RATE
    frame.pts = pts
    frame.time_base = TIME_BASE
    return frame


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class ToneTrack(MediaStreamTrack):
    """A paced sine tone (``frequency`` Hz, 48 kHz mono), or silence with ``amplitude=0``."""

    kind = "audio"

    def __init__(self, frequency: float = 440.0, amplitude: int = 8000) -> None:
        super().__init__()
        self.frequency = frequency
        self.amplitude = amplitude
        self._start: float | None = None
        self._pts = 0

    async def recv(self) -> AudioFrame:
        """The next 20 ms of tone, paced in real time."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += SAMPLES
            await asyncio.sleep(max(0.0, self._start + self._pts / SAMPLE_RATE - time.monotonic()))
        step = 2 * math.pi * self.frequency / SAMPLE_RATE
        samples = array(
            "h", (int(self.amplitude * math.sin(step * (self._pts + i))) for i in range(SAMPLES))
        )
        return _frame(samples, self._pts)


class SwitchableAudioTrack(MediaStreamTrack):
    """An outgoing track whose source can change during the call, silence when there is none.

    Frames are resampled to 48 kHz mono and re-stamped with one continuous clock, so the
    encoder behind it sees one stream across every switch (the decoded-audio counterpart of
    the library's ``RtpMunger``).
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._source: MediaStreamTrack | None = None
        self._resampler: AudioResampler | None = None
        self._changed = asyncio.Event()
        self._pts = 0
        self._next_silence: float | None = None
        self.source_name = "silence"

    def set_source(self, source: MediaStreamTrack | None, name: str = "silence") -> None:
        """Take frames from ``source`` from now on (``None``: silence)."""
        self._source = source
        self._resampler = AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self.source_name = name if source is not None else "silence"
        self._changed.set()

    async def recv(self) -> AudioFrame:
        """The next frame of the current source, or paced silence."""
        while self.readyState == "live":
            source = self._source
            if source is None:
                return await self._silence()
            self._changed.clear()
            receive = asyncio.ensure_future(source.recv())
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                done, _ = await asyncio.wait(
                    {receive, changed}, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for future in (receive, changed):
                    if not future.done():
                        future.cancel()
                        future.add_done_callback(_consume)
            if receive not in done:
                continue
            try:
                frame = receive.result()
            except MediaStreamError:
                if self._source is source:
                    self.set_source(None)
                continue
            if self._source is not source or self._resampler is None:
                continue
            if not isinstance(frame, AudioFrame):
                continue
            for out in self._resampler.resample(frame):
                self._next_silence = None
                return self._stamp(out)
        raise MediaStreamError

    def _stamp(self, frame: AudioFrame) -> AudioFrame:
        frame.pts = self._pts
        frame.time_base = TIME_BASE
        self._pts += frame.samples
        return frame

    async def _silence(self) -> AudioFrame:
        now = time.monotonic()
        if self._next_silence is None:
            self._next_silence = now
        # A plain sleep: Python 3.11's wait_for can swallow a cancellation, which would
        # keep aiortc's sender task alive after RTCRtpSender.stop().
        await asyncio.sleep(max(0.0, self._next_silence - now))
        self._next_silence += PTIME
        return self._stamp(_frame(array("h", bytes(2 * SAMPLES)), 0))

    def stop(self) -> None:
        """End the track (and wake a pending ``recv``)."""
        super().stop()
        self._changed.set()
