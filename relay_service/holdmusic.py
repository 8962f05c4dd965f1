"""What a caller on hold hears: a short, soft chime melody, written once as a WAV file and
played in a loop (encoded to Opus once per playback, then sent as RTP through the munger)."""

from __future__ import annotations

import math
import wave
from array import array
from pathlib import Path

RATE = 48000
NOTES = (523.25, 659.25, 783.99, 659.25, 587.33, 698.46, 880.0, 698.46)
"""C5 E5 G5 E5 D5 F5 A5 F5: two broken chords, half a second each."""
NOTE_SECONDS = 0.5
AMPLITUDE = 7000


def hold_music_samples() -> array[int]:
    """The melody as 16-bit mono samples at 48 kHz (each note fades in and out: no clicks)."""
    samples = array("h")
    per_note = int(RATE * NOTE_SECONDS)
    for frequency in NOTES:
        for i in range(per_note):
            envelope = min(1.0, i / 960, (per_note - i) / 4800)  # 20 ms attack, 100 ms release
            tone = math.sin(2 * math.pi * frequency * i / RATE)
            tone += 0.3 * math.sin(4 * math.pi * frequency * i / RATE)  # a soft overtone
            samples.append(int(AMPLITUDE * envelope * tone / 1.3))
    return samples


def hold_music_path(directory: Path) -> Path | None:
    """The hold music WAV in ``directory`` if :func:`hold_music_file` wrote it."""
    path = directory / "hold-music.wav"
    return path if path.is_file() else None


def hold_music_file(directory: Path) -> Path:
    """The hold music WAV in ``directory`` (written the first time: about half a second of CPU,
    so the service does it at start, in a thread)."""
    path = directory / "hold-music.wav"
    if not path.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        with wave.open(str(partial), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(hold_music_samples().tobytes())
        partial.replace(path)
    return path
