"""A real sender: headless Chromium presses keys with ``insertDTMF`` toward the library."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, serve_page
from tests.support import LOOPBACK
from webrtc_ext import RTCPeerConnection, RTCSessionDescription
from webrtc_ext.dtmf import TelephoneEvent

playwright = pytest.importorskip("playwright.async_api")

pytestmark = [pytest.mark.browser, pytest.mark.interop]


PAGE = """<!doctype html><meta charset="utf-8"><title>dtmf</title><script>
async function makeOffer() {
  window.pc = new RTCPeerConnection();
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  window.sender = pc.addTrack(stream.getAudioTracks()[0], stream);
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== "complete") {
    await new Promise(r => pc.addEventListener("icegatheringstatechange",
      () => pc.iceGatheringState === "complete" && r()));
  }
  return pc.localDescription.sdp;
}
async function applyAnswer(sdp) {
  await pc.setRemoteDescription({type: "answer", sdp});
  if (pc.connectionState !== "connected") {
    await new Promise(r => pc.addEventListener("connectionstatechange",
      () => pc.connectionState === "connected" && r()));
  }
}
function press(tones) {
  return new Promise(resolve => {
    const changes = [];
    sender.dtmf.ontonechange = e => { changes.push(e.tone); if (e.tone === "") resolve(changes); };
    sender.dtmf.insertDTMF(tones);
  });
}
</script>"""


def loopback_candidates_only(sdp: str) -> str:
    """Keep only 127.0.0.1 candidates: the test sends no traffic beyond loopback."""
    return "".join(
        line
        for line in sdp.splitlines(keepends=True)
        if not line.startswith("a=candidate:") or " 127.0.0.1 " in line
    )


def without_telephone_event(sdp: str, clock_rate: int) -> str:
    (pt,) = re.findall(rf"a=rtpmap:(\d+) telephone-event/{clock_rate}", sdp)
    sdp = re.sub(rf"a=(rtpmap|fmtp):{pt} [^\r\n]*\r\n", "", sdp)
    return re.sub(rf"(m=audio [^\r\n]*) {pt}\b", r"\1", sdp)


@pytest.fixture
async def page_url() -> AsyncIterator[str]:
    async with serve_page(PAGE) as url:
        yield url


@pytest.mark.parametrize("offered", ["both", 8000, 48000])
async def test_chromium_insert_dtmf_reaches_the_library(page_url: str, offered: str | int) -> None:
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        pc = RTCPeerConnection(LOOPBACK)
        try:
            page = await browser.new_page()
            await page.goto(page_url)
            offer = loopback_candidates_only(await page.evaluate("makeOffer()"))
            if offered == 8000:  # as WhatsApp offers
                offer = without_telephone_event(offer, 48000)
            elif offered == 48000:
                offer = without_telephone_event(offer, 8000)
            received: list[TelephoneEvent] = []
            pc.on("dtmf", received.append)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            answer = pc.localDescription.sdp
            assert answer.count("telephone-event/") == (2 if offered == "both" else 1)
            await asyncio.wait_for(page.evaluate("sdp => applyAnswer(sdp)", answer), 30)
            tones = await asyncio.wait_for(page.evaluate("press('0123456789*#')"), 30)
            assert tones == [*"0123456789*#", ""]
            await asyncio.sleep(1.0)  # past the decoder's timeout: nothing more may come
            assert "".join(e.digit for e in received) == "0123456789*#"
            # With both negotiated, Chromium sends telephone-event/8000.
            assert {e.clock_rate for e in received} == {8000 if offered == "both" else offered}
            assert all(0.05 <= e.duration <= 0.2 for e in received)  # insertDTMF's 100 ms
        finally:
            await pc.close()
            await browser.close()
