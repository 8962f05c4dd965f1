"""End to end with a real browser: Chromium signs in, answers a simulated WhatsApp call,
audio flows both ways, hang-up ends both legs, and the call is stored with diagnostics."""

from __future__ import annotations

import math
import struct
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS

from .agent import until
from .conftest import Running

pytestmark = pytest.mark.browser

# Tests only send to loopback: keep the page's loopback candidates, drop the others.
LOOPBACK_ONLY = """
(() => {
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    try {
      const message = JSON.parse(data);
      if (message.sdp) {
        message.sdp = message.sdp.split("\\r\\n").filter(
          (line) => !line.startsWith("a=candidate:") || line.includes(" 127.0.0.1 ")
        ).join("\\r\\n");
        data = JSON.stringify(message);
      }
    } catch (e) {}
    return send.call(this, data);
  };
})();
"""


def write_tone(path: Path, frequency: float = 800.0, seconds: float = 4.0) -> None:
    rate = 48000
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        samples = (
            int(12000 * math.sin(2 * math.pi * frequency * i / rate))
            for i in range(int(seconds * rate))
        )
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Any]:
    playwright_api = pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    wav = tmp_path / "agent-voice.wav"
    write_tone(wav)
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={wav}"],
        )
        try:
            context = await browser.new_context()
            await context.add_init_script(LOOPBACK_ONLY)
            yield await context.new_page()
        finally:
            await browser.close()


async def sign_in(page: Any, url: str, name: str, password: str) -> None:
    """Open the console at ``url`` and sign in as ``name``."""
    await page.goto(url + "/")
    await page.fill("#name", name)
    await page.fill("#password", password)
    await page.click("#signin-button")
    await page.wait_for_selector("#main:not([hidden])")


async def test_agent_handles_a_whatsapp_call_in_chromium(running: Running, page: Any) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    await sign_in(page, running.url, "alice", "wonderland")
    assert "alice" in await page.inner_text("#who")

    call_id = await simulator.place_call(audio="tone")
    answer = page.locator(f'#queue [data-call-id="{call_id}"] button.answer')
    await answer.wait_for(timeout=20_000)
    await answer.click()
    await page.wait_for_function(
        "() => document.querySelector('#status').textContent.includes('connected')",
        timeout=30_000,
    )

    async def browser_hears_caller() -> bool:
        return bool(await page.evaluate("relay.inboundEnergy()") > 0.05)

    sim_call = simulator.calls[call_id]
    await until(browser_hears_caller, timeout=30, what="caller's tone in the browser")
    await until(lambda: sim_call.peer.loud_frames >= 50, timeout=30, what="browser audio at caller")

    assert simulator.press(call_id, "42#"), "the simulated caller sends RFC 4733 events"
    # The keys show as one entry in the conversation, for the agent who heard them.
    keys = page.locator(f'#transcripts [data-call-id="{call_id}"] p.keys')
    await keys.locator("kbd:text-is('42 #')").wait_for(timeout=30_000)
    assert "for alice" in await keys.inner_text()

    await page.click("#hangup")
    await page.wait_for_function(
        f"() => relay.ended.includes('{call_id}') && relay.pc === null", timeout=30_000
    )
    await until(lambda: sim_call.state == "ended", what="WhatsApp leg ended")
    assert sim_call.end_status == "COMPLETED"

    storage = running.service.storage
    record = await storage.find_call(call_id)
    assert record is not None
    assert (record.state, record.agent, record.end_reason) == ("ended", "alice", "hung up by alice")
    assert {d.leg for d in await storage.diagnostics(record.id)} == {"whatsapp", "browser"}

    # The call detail in the page lists the diagnostic files for download.
    await page.click("#refresh-history")
    await page.click(f'#history tr[data-id="{record.id}"] a')
    await page.wait_for_selector("#detail a[download]")
    assert await page.locator("#detail a[download]").count() == 2


async def test_agent_calls_a_whatsapp_user_from_chromium(running: Running, page: Any) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    await sign_in(page, running.url, "bob", "builder")
    await page.fill("#dial-to", "4915112345678")
    await page.click("#dial")
    await page.wait_for_function("() => relay.callId !== null", timeout=30_000)
    call_id = await page.evaluate("relay.callId")

    async def browser_hears_user() -> bool:
        return bool(await page.evaluate("relay.inboundEnergy()") > 0.05)

    sim_call = simulator.calls[call_id]
    await until(browser_hears_user, timeout=30, what="user's tone in the browser")
    await until(lambda: sim_call.peer.loud_frames >= 50, timeout=30, what="browser audio at user")
    await page.click("#hangup")
    await until(lambda: sim_call.state == "ended", what="WhatsApp leg ended")
    record = await running.service.storage.find_call(call_id)
    assert record is not None
    assert (record.direction, record.agent) == ("BUSINESS_INITIATED", "bob")
