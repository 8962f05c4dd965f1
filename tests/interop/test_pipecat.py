"""Pipecat's SmallWebRTC connection on webrtc_ext (through ``webrtc_ext.installed``) and on
plain aiortc as the baseline, each answering a webrtc_ext client over loopback: audio both
ways, an app message both ways, a clean close.

Needs the ``[pipecat]`` extra (``pipecat-ai[webrtc]``), which ``.ci/run`` installs.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aioice.ice
import aiortc
import aiortc.rtcsctptransport
import numpy as np
import pytest
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack
from av import AudioFrame

import webrtc_ext
from tests.support import LOOPBACK
from webrtc_ext import RTCPeerConnection, RTCSessionDescription
from webrtc_ext.substitution import AIORTC_PEER_CONNECTION

pytestmark = [pytest.mark.interop, pytest.mark.integration]

TONE_HZ = 440


class ToneTrack(AudioStreamTrack):
    """A 440 Hz sine at 48 kHz, 20 ms per frame, paced like aiortc's AudioStreamTrack."""

    def __init__(self) -> None:
        super().__init__()
        self._sample = 0

    async def recv(self) -> AudioFrame:
        silence = await super().recv()  # paces and stamps the frame
        count = silence.samples
        t = (self._sample + np.arange(count)) / 48000
        self._sample += count
        samples = (8000 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)
        frame = AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, silence.pts
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


def rms(frame: AudioFrame) -> float:
    return float(np.sqrt(np.mean(frame.to_ndarray().astype(np.float64) ** 2)))


@pytest.fixture(scope="module")
def pipecat_connection() -> Iterator[Any]:
    """Pipecat's connection module; aiortc's SCTP chunk size is restored after the module."""
    saved = aiortc.rtcsctptransport.USERDATA_MAX_LENGTH
    module = pytest.importorskip(
        "pipecat.transports.smallwebrtc.connection",
        reason="the [pipecat] extra (pipecat-ai[webrtc]) is not installed",
    )
    yield module
    aiortc.rtcsctptransport.USERDATA_MAX_LENGTH = saved


async def loud_frames(track: MediaStreamTrack, wanted: int, timeout: float = 10) -> int:
    """Receive until ``wanted`` frames carry the tone (RMS well above silence)."""
    loud = 0

    async def read() -> None:
        nonlocal loud
        while loud < wanted:
            frame = await track.recv()
            if isinstance(frame, AudioFrame) and rms(frame) > 1000:
                loud += 1

    await asyncio.wait_for(read(), timeout)
    return loud


async def run_session(connection_module: Any) -> dict[str, Any]:
    """One Pipecat connection answering a webrtc_ext client; what each side observed."""
    client = RTCPeerConnection(LOOPBACK)
    client.addTrack(ToneTrack())
    channel = client.createDataChannel("pipecat")
    to_client: asyncio.Queue[Any] = asyncio.Queue()
    client_audio: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    channel.on("message", to_client.put_nowait)
    client.on("track", client_audio.set_result)

    bot = connection_module.SmallWebRTCConnection()
    to_bot: asyncio.Queue[Any] = asyncio.Queue()
    connected = asyncio.Event()

    @bot.event_handler("app-message")  # type: ignore[untyped-decorator]
    async def on_app_message(_: Any, message: Any) -> None:
        await to_bot.put(message)

    @bot.event_handler("connected")  # type: ignore[untyped-decorator]
    async def on_connected(_: Any) -> None:
        connected.set()

    try:
        await client.setLocalDescription(await client.createOffer())
        await bot.initialize(sdp=client.localDescription.sdp, type="offer")
        answer = bot.get_answer()
        started = time.monotonic()
        await client.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        await bot.connect()
        await asyncio.wait_for(connected.wait(), 10)
        connected_ms = 1000 * (time.monotonic() - started)
        bot.replace_audio_track(ToneTrack())

        heard_by_bot = await loud_frames(bot.audio_input_track(), 10)
        heard_by_client = await loud_frames(await asyncio.wait_for(client_audio, 10), 10)

        bot.send_app_message({"type": "greeting", "text": "hello from the bot"})
        from_bot = json.loads(await asyncio.wait_for(to_client.get(), 10))
        channel.send(json.dumps({"type": "greeting", "text": "hello from the client"}))
        from_client = await asyncio.wait_for(to_bot.get(), 10)

        stats = await bot.pc.getStats()
        inbound = [s for s in stats.values() if s.type == "inbound-rtp"]
        await bot.disconnect()
        return {
            "pc_class": type(bot.pc),
            "connected_ms": connected_ms,
            "heard_by_bot": heard_by_bot,
            "heard_by_client": heard_by_client,
            "from_bot": from_bot,
            "from_client": from_client,
            "inbound_packets": sum(s.packetsReceived for s in inbound),
            "bot_state": bot.pc.connectionState,
        }
    finally:
        await bot.disconnect()
        await client.close()


def _expect_conversation(result: dict[str, Any]) -> None:
    assert result["heard_by_bot"] == 10
    assert result["heard_by_client"] == 10
    assert result["from_bot"] == {"type": "greeting", "text": "hello from the bot"}
    assert result["from_client"] == {"type": "greeting", "text": "hello from the client"}
    assert result["inbound_packets"] > 0
    assert result["bot_state"] == "closed"


async def test_pipecat_connection_on_webrtc_ext(pipecat_connection: Any) -> None:
    with webrtc_ext.installed(LOOPBACK) as installation:
        assert pipecat_connection.RTCPeerConnection is installation.peer_connection_class
        result = await run_session(pipecat_connection)
    assert issubclass(result["pc_class"], webrtc_ext.RTCPeerConnection)
    # Leaving the block gives Pipecat aiortc's own class back.
    assert pipecat_connection.RTCPeerConnection is AIORTC_PEER_CONNECTION
    assert aiortc.RTCPeerConnection is AIORTC_PEER_CONNECTION
    _expect_conversation(result)
    print(f"webrtc_ext: answer -> connected {result['connected_ms']:.1f} ms", file=sys.stderr)


async def test_pipecat_connection_on_plain_aiortc(pipecat_connection: Any) -> None:
    if not aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False):
        pytest.skip("plain aiortc gathers on non-loopback interfaces only; there is none")
    result = await run_session(pipecat_connection)
    assert result["pc_class"] is AIORTC_PEER_CONNECTION
    _expect_conversation(result)
    print(f"aiortc: answer -> connected {result['connected_ms']:.1f} ms", file=sys.stderr)


def test_pipecat_bot_example_echoes_and_talks(pipecat_connection: Any) -> None:
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "examples/pipecat_bot.py", "--seconds", "2"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the bot's peer connection is webrtc_ext's: True" in result.stdout
    assert "'you said': {'type': 'chat', 'text': 'hi bot'}" in result.stdout
    echoed = re.search(r"(\d+) of them carrying the tone", result.stdout)
    assert echoed is not None and int(echoed.group(1)) > 0, result.stdout
