"""Offline speech for the simulators: espeak-ng to speak, pocketsphinx to listen.

Both ship with their own models (Debian's espeak-ng; pocketsphinx's bundled en-US model), so
nothing is downloaded at run time. Without espeak-ng, speech falls back to a tone so that a
call still carries audio.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import math
import shutil
import threading
import time
import wave
from array import array
from collections import deque
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from av import AudioFrame, AudioResampler

logger = logging.getLogger(__name__)

OUTPUT_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz
ASR_RATE = 16000

#: Phrases the recogniser is biased toward (with the session's transcription prompt).
DEFAULT_PHRASES = (
    "please connect me to a human agent",
    "i want to speak to a person",
    "my reference number is one two three four five",
    "hello i need help with my case",
    "thank you goodbye",
)


def resample(pcm: bytes, rate: int, to_rate: int) -> bytes:
    """Resample 16-bit mono PCM."""
    if rate == to_rate or not pcm:
        return pcm
    frame = AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
    frame.planes[0].update(pcm)
    frame.sample_rate = rate
    resampler = AudioResampler(format="s16", layout="mono", rate=to_rate)
    out = b"".join(bytes(f.planes[0])[: f.samples * 2] for f in resampler.resample(frame))
    out += b"".join(bytes(f.planes[0])[: f.samples * 2] for f in resampler.resample(None))
    return out


def tone(seconds: float, frequency: float = 440.0, rate: int = OUTPUT_RATE) -> bytes:
    """A sine tone as 16-bit mono PCM at -12 dBFS."""
    samples = array(
        "h",
        (
            int(8000 * math.sin(2 * math.pi * frequency * n / rate))
            for n in range(int(seconds * rate))
        ),
    )
    return samples.tobytes()


async def synthesize(text: str, rate: int = OUTPUT_RATE, voice: str = "en-us") -> bytes:
    """Speak ``text`` with espeak-ng as 16-bit mono PCM at ``rate`` (a tone without espeak-ng)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        logger.warning("espeak-ng is not installed: speaking %r as a tone", text)
        return tone(min(0.08 * len(text), 4.0), rate=rate)
    process = await asyncio.create_subprocess_exec(
        espeak, "-v", voice, "-s", "140", "--stdout", text,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    wav, _ = await process.communicate()
    with wave.open(BytesIO(wav)) as reader:
        pcm = reader.readframes(reader.getnframes())
        source_rate = reader.getframerate()
    return resample(pcm, source_rate, rate)


class Recognizer:
    """pocketsphinx with its bundled en-US model, biased toward known phrases.

    A grammar of the phrases is tried first; when the utterance matches none of them, the
    general language model's hypothesis is used.
    """

    def __init__(self, phrases: Sequence[str] = DEFAULT_PHRASES) -> None:
        from pocketsphinx import Decoder  # type: ignore[import-untyped]  # imported late: loading the model takes a moment

        self._decoder = Decoder(samprate=ASR_RATE, loglevel="FATAL")
        # One decoder, used from executor threads by every call that shares this recogniser.
        self._lock = threading.Lock()
        self._default_search = self._decoder.current_search()
        words = [" ".join(p.lower().split()) for p in phrases if p.strip()]
        cleaned = [w for w in words if all(self._decoder.lookup_word(x) for x in w.split())]
        self._has_grammar = bool(cleaned)
        if cleaned:
            alternatives = " | ".join(f"( {w} )" for w in cleaned)
            grammar = f"#JSGF V1.0;\ngrammar phrases;\npublic <phrase> = {alternatives};\n"
            self._decoder.add_jsgf_string("phrases", grammar)

    def _decode(self, pcm: bytes, search: str) -> str | None:
        self._decoder.activate_search(search)
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return hypothesis.hypstr.strip() if hypothesis and hypothesis.hypstr.strip() else None

    def recognize(self, pcm: bytes) -> str | None:
        """The words in 16 kHz 16-bit mono PCM, or ``None`` when nothing was recognised."""
        with self._lock:
            if self._has_grammar:
                text = self._decode(pcm, "phrases")
                if text:
                    return text
            return self._decode(pcm, self._default_search)


class SpeechTrack(AudioStreamTrack):
    """An audio track that plays queued speech and is silent in between (48 kHz mono)."""

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[tuple[str, bytes]] = deque()
        self._started_at: float | None = None
        self._timestamp = 0
        self._finished_callbacks: list[tuple[str, asyncio.Future[None]]] = []

    def play(self, key: str, pcm: bytes) -> asyncio.Future[None]:
        """Queue ``pcm``; the future resolves when it has been played out (or cleared)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        chunk = FRAME_SAMPLES * 2
        padded = pcm + b"\x00" * (-len(pcm) % chunk)
        for offset in range(0, len(padded), chunk):
            self._queue.append((key, padded[offset : offset + chunk]))
        self._finished_callbacks.append((key, done))
        return done

    def clear(self) -> None:
        """Stop playing at once (barge-in, ``output_audio_buffer.clear``)."""
        self._queue.clear()
        for _, done in self._finished_callbacks:
            if not done.done():
                done.set_result(None)
        self._finished_callbacks.clear()

    @property
    def playing(self) -> bool:
        """Whether speech is queued."""
        return bool(self._queue)

    async def recv(self) -> AudioFrame:
        """The next 20 ms frame, paced in real time."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._started_at is None:
            self._started_at = time.time()
            self._timestamp = 0
        else:
            self._timestamp += FRAME_SAMPLES
            wait = self._started_at + self._timestamp / OUTPUT_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        if self._queue:
            key, pcm = self._queue.popleft()
            if not any(k == key for k, _ in self._queue):
                for entry in [e for e in self._finished_callbacks if e[0] == key]:
                    self._finished_callbacks.remove(entry)
                    if not entry[1].done():
                        entry[1].set_result(None)
        else:
            pcm = b"\x00" * (FRAME_SAMPLES * 2)
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(pcm)
        frame.sample_rate = OUTPUT_RATE
        frame.pts = self._timestamp
        frame.time_base = fractions.Fraction(1, OUTPUT_RATE)
        return frame


async def write_speech_wav(path: Path, script: Sequence[str | float], rate: int = 48000) -> Path:
    """A mono WAV of ``script``: strings are spoken (espeak-ng), numbers are seconds of quiet."""
    pcm = bytearray()
    for part in script:
        if isinstance(part, str):
            pcm += await synthesize(part, rate)
        else:
            pcm += bytes(int(part * rate) * 2)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(pcm))
    return path
