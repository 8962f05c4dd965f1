"""The switchable outgoing track keeps one continuous clock across source changes."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

from aiortc.contrib.media import MediaPlayer
from hypothesis import given
from hypothesis import strategies as st

from relay_service.media import SAMPLE_RATE, SwitchableAudioTrack, ToneTrack, rms
from relay_service.metrics import Metrics
from relay_service.whatsapp.events import Deduplicator


def write_wav(path: Path, rate: int = 16000, seconds: float = 0.3) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        count = int(rate * seconds)
        samples = (int(9000 * math.sin(2 * math.pi * 300 * i / rate)) for i in range(count))
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))


async def test_timestamps_continue_across_switches(tmp_path: Path) -> None:
    wav = tmp_path / "greeting.wav"
    write_wav(wav)
    track = SwitchableAudioTrack()
    player = MediaPlayer(str(wav))
    tone = ToneTrack(frequency=1000)
    expected_pts = 0
    levels: list[tuple[str, float]] = []

    async def take(count: int) -> None:
        nonlocal expected_pts
        for _ in range(count):
            frame = await track.recv()
            assert frame.sample_rate == SAMPLE_RATE
            assert frame.pts == expected_pts
            expected_pts += frame.samples
            levels.append((track.source_name, rms(frame)))

    try:
        await take(3)  # silence
        assert player.audio is not None
        track.set_source(player.audio, "greeting")
        await take(30)  # the 0.3 s file, then silence again when it ends
        track.set_source(tone, "agent")
        await take(5)
    finally:
        track.stop()
        tone.stop()
    assert all(level == 0 for name, level in levels[:3])
    assert any(name == "greeting" and level > 1000 for name, level in levels)
    assert levels[-1][0] == "agent" and levels[-1][1] > 1000


def test_metrics_render_prometheus_text() -> None:
    metrics = Metrics()
    metrics.webhooks.inc(result="accepted")
    metrics.webhooks.inc(result='odd"label')
    metrics.calls_active.set(2)
    text = metrics.render()
    assert "# TYPE relay_webhooks_total counter" in text
    assert 'relay_webhooks_total{result="accepted"} 1' in text
    assert 'relay_webhooks_total{result="odd\\"label"} 1' in text
    assert "relay_calls_active 2" in text


@given(st.lists(st.text(max_size=3), max_size=60))
def test_each_key_is_new_exactly_once_within_capacity(keys: list[str]) -> None:
    dedup = Deduplicator(capacity=100)
    firsts = [key for key in keys if dedup.first_time(key)]
    assert sorted(firsts) == sorted(set(keys))
