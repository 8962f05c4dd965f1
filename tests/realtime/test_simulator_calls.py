"""The OpenAI Realtime simulator over real WebRTC, reached through the openai SDK."""

from __future__ import annotations

import asyncio
import json
import math
from array import array
from pathlib import Path

import aiohttp
import pytest
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamTrack

from relay_service.realtime import events as client_events
from relay_service.realtime.client import RealtimeClient, RealtimeError, RealtimeSettings
from relay_service.simulators.openai_realtime import RealtimeSimulator
from tests.realtime.conftest import KEY, speech_wav
from tests.realtime.test_session_logic import TOOLS
from tests.realtime.validation import assert_client_event, assert_server_event
from tests.support import LOOPBACK

pytestmark = pytest.mark.integration


async def loudest_dbfs(track: MediaStreamTrack, frames: int) -> float:
    loudest = -math.inf
    for _ in range(frames):
        frame = await track.recv()
        samples = array(
            "h", bytes(frame.planes[0])[: frame.samples * 2 * len(frame.layout.channels)]
        )
        if samples:
            rms = math.sqrt(sum(s * s for s in samples) / len(samples))
            if rms:
                loudest = max(loudest, 20 * math.log10(rms / 32768))
    return loudest


def client_for(url: str, session: dict[str, object], key: str = KEY) -> RealtimeClient:
    return RealtimeClient(RealtimeSettings(url, key, LOOPBACK), session)


async def test_transcription_session_transcribes_speech(
    simulator: tuple[RealtimeSimulator, str], tmp_path: Path
) -> None:
    sim, url = simulator
    player = MediaPlayer(str(await speech_wav(tmp_path, "please connect me to a human agent")))
    realtime = client_for(url, {"type": "transcription"})
    received: list[dict[str, object]] = []
    realtime.on("event", received.append)
    try:
        await realtime.connect(player.audio)
        assert realtime.call_id and realtime.call_id.startswith("rtc_")
        done = await realtime.wait_for(
            "conversation.item.input_audio_transcription.completed", timeout=30
        )
        assert "human" in str(done["transcript"])
    finally:
        await realtime.hangup()
        player.audio.stop()
    for event in received:
        assert_server_event(event)
    assert next(e["type"] for e in received) == "session.created"
    (call,) = sim.calls.values()
    assert call.closed.is_set()


async def test_assistant_speaks_calls_tools_and_confirms(
    simulator: tuple[RealtimeSimulator, str],
) -> None:
    sim, url = simulator
    session = {"type": "realtime", "model": "gpt-realtime", "tools": TOOLS,
               "instructions": "You answer calls for a health ministry."}  # fmt: skip
    realtime = client_for(url, session)
    sent: list[dict[str, object]] = []
    try:
        await realtime.connect()
        await realtime.wait_for("session.created")
        for event in [
            client_events.client_response_create(),
        ]:
            sent.append(event)
            realtime.send(event)
        await realtime.wait_for("output_audio_buffer.started")
        assert realtime.remote_track is not None
        assert await loudest_dbfs(realtime.remote_track, 100) > -30, "the greeting is audible"
        typed = client_events.client_user_text("The caller typed on the keypad: 4711")
        create = client_events.client_response_create()
        sent += [typed, create]
        realtime.send(typed)
        realtime.send(create)
        call = await realtime.wait_for("response.function_call_arguments.done")
        assert call["name"] == "lookup_case"
        assert json.loads(str(call["arguments"])) == {"reference": "4711"}
        output = client_events.client_function_output(str(call["call_id"]), "Case 4711 is open")
        sent += [output, create]
        realtime.send(output)
        realtime.send(create)
        done = await realtime.wait_for("response.output_audio_transcript.done", timeout=30)
        assert "Case 4711 is open" in str(done["transcript"])
    finally:
        await realtime.hangup()
    for event in sent:
        assert_client_event(event)
    (call_state,) = sim.calls.values()
    assert [e["type"] for e in call_state.received_events] == [e["type"] for e in sent]


async def test_raw_sdp_with_an_ephemeral_key_and_errors(
    simulator: tuple[RealtimeSimulator, str],
) -> None:
    _, url = simulator
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/realtime/calls", data="v=0") as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "invalid_api_key"
        async with http.post(
            f"{url}/realtime/client_secrets",
            json={
                "expires_after": {"anchor": "created_at", "seconds": 60},
                "session": {"type": "transcription"},
            },
            headers={"Authorization": f"Bearer {KEY}"},
        ) as response:
            secret = await response.json()
            assert (
                secret["value"].startswith("ek_") and secret["session"]["type"] == "transcription"
            )
        async with http.post(
            f"{url}/realtime/calls",
            data="this is not sdp",
            headers={
                "Authorization": f"Bearer {secret['value']}",
                "Content-Type": "application/sdp",
            },
        ) as response:
            assert response.status == 400
    with pytest.raises(RealtimeError):
        await client_for(url, {"type": "realtime"}, key="sk-wrong").connect()


async def test_simulated_outage_is_reported(simulator: tuple[RealtimeSimulator, str]) -> None:
    sim, url = simulator
    sim.fail_next_calls = 2  # the first try and the SDK's one retry
    realtime = client_for(url, {"type": "realtime"})
    with pytest.raises(RealtimeError, match="refused"):
        await realtime.connect()
    assert realtime.pc.connectionState == "closed"
    await asyncio.sleep(0)
