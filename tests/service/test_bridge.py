"""The bridge's sources toward WhatsApp: greeting, assistant, agent, silence, one clock."""

from __future__ import annotations

import itertools
from pathlib import Path

from av import AudioFrame

from relay_service.bridge import RelayMediaBridge, Source
from relay_service.media import ToneTrack, rms

from .test_media import write_wav


async def levels(bridge: RelayMediaBridge, count: int, pts: list[int]) -> list[float]:
    """``count`` frames toward WhatsApp: their levels; their timestamps go to ``pts``."""
    out = []
    for _ in range(count):
        frame = await bridge.to_whatsapp.recv()
        assert isinstance(frame, AudioFrame)
        pts.append(int(frame.pts or 0))
        out.append(rms(frame))
    return out


async def test_sources_switch_on_one_continuous_clock(tmp_path: Path) -> None:
    wav = tmp_path / "greeting.wav"
    write_wav(wav, seconds=2.0)
    bridge = RelayMediaBridge()
    caller, assistant, agent = ToneTrack(300), ToneTrack(500), ToneTrack(700)
    pts: list[int] = []
    try:
        bridge.set_caller_track(caller)
        bridge.play_greeting(wav)
        assert bridge.source is Source.GREETING
        assert min((await levels(bridge, 10, pts))[2:]) > 1000

        bridge.connect_assistant(assistant)  # connected, not yet heard
        assert bridge.source is Source.GREETING
        bridge.use(Source.ASSISTANT)
        assert min((await levels(bridge, 10, pts))[2:]) > 1000

        bridge.use(Source.SILENCE)  # e.g. the assistant transferred the call
        assert max((await levels(bridge, 5, pts))[1:]) == 0

        bridge.connect_agent(agent)
        assert bridge.source is Source.AGENT
        assert min((await levels(bridge, 10, pts))[2:]) > 1000
        agent_fork = bridge.agent_audio()
        heard = await agent_fork.recv()
        assert isinstance(heard, AudioFrame) and rms(heard) > 1000

        bridge.disconnect_agent()
        assert bridge.source is Source.SILENCE
        assert max((await levels(bridge, 5, pts))[1:]) == 0
        assert all(b - a == 960 for a, b in itertools.pairwise(pts)), pts
    finally:
        await bridge.close()
        for track in (caller, assistant, agent):
            track.stop()


async def test_caller_audio_is_forked_to_each_consumer_until_released() -> None:
    bridge = RelayMediaBridge()
    early = bridge.caller_audio()  # before the caller's track arrives: silence
    first = await early.recv()
    assert isinstance(first, AudioFrame) and rms(first) == 0
    caller = ToneTrack(300)
    try:
        bridge.set_caller_track(caller)
        late = bridge.caller_audio()
        for fork in (early, late):
            frames = [await fork.recv() for _ in range(5)]
            assert rms(frames[-1]) > 1000  # type: ignore[arg-type]
        bridge.release(late)
        assert late.readyState == "ended" and early.readyState == "live"
    finally:
        await bridge.close()
        caller.stop()
