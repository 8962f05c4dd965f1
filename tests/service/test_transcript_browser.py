"""Live transcription on the agent's page in Chromium: a simulated WhatsApp caller speaks a
known sentence, the Realtime simulator transcribes it, and the words appear on the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import running_service
from .test_assistant_flow import speech_file
from .test_console_browser import (
    page,  # noqa: F401  (the Chromium page fixture)
    sign_in,
)

pytestmark = pytest.mark.browser

SENTENCE = "my reference number is one two three four five"


async def test_caller_transcript_appears_live_on_the_agents_page(
    tmp_path: Path,
    page: Any,  # noqa: F811
) -> None:
    async with running_service(tmp_path, TRANSCRIPTION_ENABLED="on") as running:
        simulator = running.service.simulator
        assert simulator is not None
        await sign_in(page, running.url, "alice", "wonderland")

        call_id = await simulator.place_call(audio=await speech_file(tmp_path, SENTENCE))
        answer = page.locator(f'#queue [data-call-id="{call_id}"] button.answer')
        await answer.wait_for(timeout=20_000)
        await answer.click()
        line = page.locator(f'#transcripts [data-call-id="{call_id}"] p.seg.speaker-caller')
        await line.first.wait_for(timeout=45_000)
        text = await line.first.locator(".text").inner_text()
        assert "reference number" in text

        await page.click("#hangup")
        await page.wait_for_function(f"() => relay.ended.includes('{call_id}')", timeout=30_000)
        record = await running.service.storage.find_call(call_id)
        assert record is not None
        await page.click("#refresh-history")
        await page.click(f'#history tr[data-id="{record.id}"] a')
        stored = page.locator("#detail .stored-transcript")
        await stored.wait_for(timeout=10_000)
        stored_lines = stored.locator("p.seg.speaker-caller .text")
        assert text in await stored_lines.all_inner_texts()


async def test_agent_takes_over_from_the_assistant_and_hands_back_in_chromium(
    tmp_path: Path,
    page: Any,  # noqa: F811
) -> None:
    environ = {"ASSISTANT_ENABLED": "on", "TRANSCRIPTION_ENABLED": "on"}
    async with running_service(tmp_path, **environ) as running:
        simulator = running.service.simulator
        assert simulator is not None
        await sign_in(page, running.url, "bob", "builder")

        call_id = await simulator.place_call(audio=await speech_file(tmp_path, SENTENCE))
        row = f'#queue [data-call-id="{call_id}"]'
        transcript = f'#transcripts [data-call-id="{call_id}"]'
        # The agent watches the assistant's conversation live, then takes the call over.
        await page.locator(f"{transcript} p.seg.speaker-assistant").first.wait_for(timeout=30_000)
        await page.locator(f"{transcript} p.seg.speaker-caller").first.wait_for(timeout=45_000)
        takeover = page.locator(f"{row} button.takeover")
        await takeover.wait_for(timeout=10_000)
        await takeover.click()
        await page.wait_for_selector("#handback:not([hidden])", timeout=30_000)
        assert await page.get_attribute("#current-state", "data-state") == "human"
        await page.wait_for_function(
            "() => document.querySelector('#status').textContent.includes('connected')",
            timeout=30_000,
        )

        await page.click("#handback")
        await page.wait_for_function("() => relay.pc === null", timeout=30_000)
        await page.wait_for_selector(f"{row} .state-assistant", timeout=30_000)
        await page.locator(f"{row} button.takeover").wait_for(timeout=10_000)

        await simulator.hangup(call_id)
        await page.wait_for_function(f"() => relay.ended.includes('{call_id}')", timeout=30_000)
        record = await running.service.storage.find_call(call_id)
        assert record is not None
        events = [e["event"] for e in record.timeline]
        assert events.index("taken_over") < events.index("handed_back")
        assert {d.leg for d in await running.service.storage.diagnostics(record.id)} == {
            "whatsapp",
            "browser",
        }
