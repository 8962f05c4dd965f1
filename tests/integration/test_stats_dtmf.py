"""Key presses over a real call end up in the diagnostic file of both ends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.stats_support import wait_for
from tests.support import audio_call
from webrtc_ext.stats import StatsRecorder, format_summary, load_diagnostic_file
from webrtc_ext.stats.summary import summarise_connection

pytestmark = pytest.mark.integration


async def test_dtmf_sent_and_received_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "dtmf.json.gz"
    recorder = StatsRecorder(path, interval=0.2)
    digits: list[str] = []
    async with audio_call() as call:
        recorder.record(call.offerer, "caller")
        recorder.record(call.answerer, "agent")
        call.answerer.on("dtmf", lambda event: digits.append(event.digit))
        dtmf = call.offerer.getTransceivers()[0].sender.dtmf
        await wait_for(lambda: _true(dtmf.canInsertDTMF))
        dtmf.insertDTMF("1,2#", duration=100, interToneGap=70)
        await wait_for(lambda: _true(len(digits) == 3 and dtmf.toneBuffer == ""), timeout=20)
        await asyncio.sleep(0.3)
    assert digits == ["1", "2", "#"]

    loaded = load_diagnostic_file(path)
    caller = summarise_connection(loaded.connections["caller"])
    agent = summarise_connection(loaded.connections["agent"])
    assert (caller.dtmf_sent, agent.dtmf_received) == (3, 3), "the pause is not a key"
    assert [e.value for e in loaded.connections["agent"].events_of("dtmf")] == ["1", "2", "#"]
    assert "DTMF: 3 received, 0 sent" in format_summary(loaded)


async def _true(value: bool) -> bool:
    return value
