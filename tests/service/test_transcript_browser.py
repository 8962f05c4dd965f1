"""Live transcription on the agent's page in Chromium: a simulated WhatsApp caller speaks a
known sentence, the Realtime simulator transcribes it, and the words appear on the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import running_service
from .test_assistant_flow import speech_file
from .test_console_browser import page  # noqa: F401  (the Chromium page fixture)

pytestmark = pytest.mark.browser

SENTENCE = "my reference number is one two three four five"


async def test_caller_transcript_appears_live_on_the_agents_page(
    tmp_path: Path,
    page: Any,  # noqa: F811
) -> None:
    async with running_service(tmp_path, TRANSCRIPTION_ENABLED="on") as running:
        simulator = running.service.simulator
        assert simulator is not None
        await page.goto(running.url + "/")
        await page.fill("#name", "alice")
        await page.fill("#password", "wonderland")
        await page.click("#signin-button")
        await page.wait_for_selector("#main:not([hidden])")

        call_id = await simulator.place_call(audio=await speech_file(tmp_path, SENTENCE))
        answer = page.locator(f'tr[data-call-id="{call_id}"] button.answer')
        await answer.wait_for(timeout=20_000)
        await answer.click()
        line = page.locator(f'#transcripts [data-call-id="{call_id}"] p.seg.speaker-caller')
        await line.first.wait_for(timeout=45_000)
        text = await line.first.inner_text()
        assert "reference number" in text

        await page.click("#hangup")
        await page.wait_for_function(f"() => relay.ended.includes('{call_id}')", timeout=30_000)
        record = await running.service.storage.find_call(call_id)
        assert record is not None
        await page.click("#refresh-history")
        await page.click(f"#history a:text-is('{record.id}')")
        stored = page.locator("#detail .stored-transcript")
        await stored.wait_for(timeout=10_000)
        assert "caller: " + text.removeprefix("caller: ") in await stored.inner_text()
