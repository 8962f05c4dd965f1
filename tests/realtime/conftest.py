"""Fixtures of the Realtime tests: a running simulator, and synthesised speech."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from relay_service.simulators.openai_realtime import RealtimeSimulator
from relay_service.simulators.speech import synthesize
from tests.support import LOOPBACK

KEY = "sk-test-simulator"


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[RealtimeSimulator, str]]:
    sim = RealtimeSimulator(api_keys={KEY}, peer_config=LOOPBACK)
    runner = web.AppRunner(sim.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield sim, f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


async def speech_wav(tmp_path: Path, text: str) -> Path:
    """``text`` spoken by espeak-ng between silences, as a 48 kHz WAV file."""
    pcm = await synthesize(text, 48000)
    silence = b"\x00" * 48000 * 2  # 1 s of quiet so the VAD closes the utterance
    path = tmp_path / "speech.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(silence[:48000] + pcm + silence + silence)
    return path
