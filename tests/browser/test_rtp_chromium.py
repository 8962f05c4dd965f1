"""Chromium receives a raw RTP stream switched five times between two sources by the munger."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, serve_page
from tests.integration.test_munger_switching import tone
from webrtc_ext import PeerConnectionConfig, RTCPeerConnection, RTCRtpSender
from webrtc_ext.media import packetize, play

pytestmark = [pytest.mark.browser, pytest.mark.interop]

PAGE_ARGS = [*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]

PAGE = """<!doctype html><meta charset="utf-8"><audio id="audio" autoplay></audio><script>
window.pc = new RTCPeerConnection();
pc.addTransceiver("audio", {direction: "recvonly"});
pc.ontrack = (e) => { document.getElementById("audio").srcObject = new MediaStream([e.track]); };
window.makeOffer = async () => {
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => { if (pc.iceGatheringState === "complete") done();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done(); });
  return pc.localDescription.sdp;
};
window.inbound = async () => {
  for (const s of (await pc.getStats()).values()) if (s.type === "inbound-rtp") return s;
  return null;
};
</script>"""


@pytest.fixture
async def page_url() -> AsyncIterator[str]:
    async with serve_page(PAGE) as url:
        yield url


async def test_chromium_decodes_one_stream_across_five_switches(page_url: str) -> None:
    from playwright.async_api import async_playwright

    pc = RTCPeerConnection(PeerConnectionConfig(host_addresses=["127.0.0.1"]))
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=PAGE_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(page_url)
            offer = await page.evaluate("makeOffer()")
            from aiortc import RTCSessionDescription

            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            pc.getTransceivers()[0].direction = "sendonly"
            await pc.setLocalDescription(await pc.createAnswer())
            answer = json.dumps({"type": "answer", "sdp": pc.localDescription.sdp})
            await page.evaluate(f"pc.setRemoteDescription({answer})")
            sender = pc.getTransceivers()[0].sender
            assert isinstance(sender, RTCRtpSender)
            for _ in range(300):
                if sender.codec is not None:
                    break
                await asyncio.sleep(0.05)
            assert sender.codec is not None, "Chromium did not connect"

            players = [
                asyncio.ensure_future(
                    play(
                        packetize(iter(tone(f, 3.0)), first_sequence_number=s),
                        sender,
                        source=name,
                        switch=False,
                    )
                )
                for name, f, s in (("a", 440.0, 100), ("b", 660.0, 60000))
            ]
            for i in range(6):
                sender.switch_source("ab"[i % 2])
                await asyncio.sleep(0.4)
            await asyncio.wait_for(asyncio.gather(*players), 20)
            await asyncio.sleep(1.0)
            stats = await page.evaluate("inbound()")
        finally:
            await browser.close()
            await pc.close()
    assert stats is not None
    print(
        "chromium inbound-rtp:",
        {
            k: stats.get(k)
            for k in (
                "packetsReceived",
                "packetsLost",
                "concealedSamples",
                "concealmentEvents",
                "totalSamplesReceived",
                "jitter",
            )
        },
    )
    assert stats["packetsLost"] == 0  # no sequence gap across the switches
    assert stats["packetsReceived"] >= 140
    assert stats["totalSamplesReceived"] > 0  # its decoder produced audio
    # NetEq conceals once when the stream stops; a munger that broke the timeline at each
    # switch (overlap or a sliver of a gap) costs a concealment event per switch.
    assert stats["concealmentEvents"] < 5
