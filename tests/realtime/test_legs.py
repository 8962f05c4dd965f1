"""The assistant and transcription legs against the Realtime simulator, over real WebRTC."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from aiortc.contrib.media import MediaPlayer

from relay_service.assistant.keypad import KeypadEntry
from relay_service.assistant.legs import AssistantLeg, TranscriptionLeg, TranscriptSegment
from relay_service.assistant.tools import (
    Toolbox,
    ToolCall,
    lookup_case_tool,
    transfer_to_human_tool,
)
from relay_service.realtime.client import RealtimeError, RealtimeSettings
from relay_service.realtime.events import client_user_text
from relay_service.simulators.openai_realtime import RealtimeSimulator
from tests.realtime.conftest import KEY, speech_wav
from tests.support import LOOPBACK

pytestmark = pytest.mark.integration


def settings(url: str) -> RealtimeSettings:
    return RealtimeSettings(url, KEY, LOOPBACK)


async def next_event(
    leg: AssistantLeg | TranscriptionLeg, name: str, timeout: float = 20
) -> object:
    future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    leg.once(name, lambda *args: future.done() or future.set_result(args[0] if args else None))
    return await asyncio.wait_for(future, timeout)


async def test_keypad_reference_reaches_the_business_tool_exactly(
    simulator: tuple[RealtimeSimulator, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, url = simulator
    looked_up: list[str] = []
    transfers: list[str] = []

    async def on_transfer(reason: str, summary: str) -> None:
        transfers.append(reason)

    toolbox = Toolbox()
    toolbox.add(lookup_case_tool({"4711": "open, visit booked"}, looked_up.append))
    toolbox.add(transfer_to_human_tool(on_transfer))
    leg = AssistantLeg(settings(url), "You help callers of a health ministry.", toolbox)
    try:
        await leg.start()
        said = await next_event(leg, "segment")
        assert isinstance(said, TranscriptSegment) and said.speaker == "assistant"
        leg.keypad(KeypadEntry("4711", "#"))
        call = await next_event(leg, "toolcall")
        assert isinstance(call, ToolCall) and call.ok
        assert looked_up == ["4711"]
        confirmation = await next_event(leg, "segment")
        assert isinstance(confirmation, TranscriptSegment)
        assert "open, visit booked" in confirmation.text
        leg.client.send(client_user_text("Can I talk to a person please"))
        leg.client.send({"type": "response.create"})
        transfer = await next_event(leg, "toolcall")
        assert isinstance(transfer, ToolCall) and transfer.name == "transfer_to_human"
        assert transfers and leg.tool_calls[-1] is transfer
    finally:
        with caplog.at_level(logging.INFO, "relay_service.assistant.legs"):
            await leg.stop()
    assert leg.stopped_reason == "stopped"
    # Hanging up on purpose is no warning.
    stopped = [r for r in caplog.records if r.getMessage() == "AssistantLeg stopped: stopped"]
    assert [r.levelname for r in stopped] == ["INFO"]


async def test_transcription_leg_gives_segments(
    simulator: tuple[RealtimeSimulator, str],
    tmp_path: Path,
) -> None:
    _, url = simulator
    player = MediaPlayer(
        str(await speech_wav(tmp_path, "my reference number is one two three four five"))
    )
    leg = TranscriptionLeg(settings(url), "caller")
    deltas: list[str] = []
    leg.on("delta", lambda item_id, text: deltas.append(text))
    try:
        await leg.start(player.audio)
        segment = await next_event(leg, "segment", timeout=30)
        assert isinstance(segment, TranscriptSegment) and segment.speaker == "caller"
        assert "reference number" in segment.text
        assert "".join(deltas).strip() == segment.text
    finally:
        await leg.stop()
        player.audio.stop()


async def test_a_leg_that_cannot_connect_or_drops_says_so(
    simulator: tuple[RealtimeSimulator, str],
) -> None:
    sim, url = simulator
    sim.fail_next_calls = 2
    failed = TranscriptionLeg(settings(url), "agent")
    with pytest.raises(RealtimeError):
        await failed.start()
    assert failed.stopped_reason and not failed.active

    leg = AssistantLeg(settings(url), "Be brief.", Toolbox())
    await leg.start()
    await next_event(leg, "segment")
    kept = list(leg.segments)
    stopped = asyncio.ensure_future(next_event(leg, "stopped"))
    (call,) = [c for c in sim.calls.values() if not c.closed.is_set()]
    await sim._close(call)  # the Realtime side drops the call mid-way
    assert "dropped" in str(await stopped)
    assert leg.segments == kept and kept, "what was already transcribed is kept"
    await leg.stop()


async def test_transcription_leg_asks_the_session_for_no_audio(
    simulator: tuple[RealtimeSimulator, str],
) -> None:
    # Nobody listens to a transcription session: any audio it sent back would be decrypted
    # and dropped by the service (a quarter of a relayed call's packets, benchmarks/relay_load).
    _, url = simulator
    leg = TranscriptionLeg(settings(url), "caller")
    try:
        await leg.start()
        (transceiver,) = leg.client.pc.getTransceivers()
        assert transceiver.currentDirection == "sendonly", "the answer agreed to send nothing"
        assert leg.client.remote_track is None
        assert leg.client.sender is not None and leg.client.sender.transport is not None
    finally:
        await leg.stop()
