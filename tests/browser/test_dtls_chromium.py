"""Interop: headless Chromium completes DTLS with the library holding an RSA-4096 certificate.

The library is DTLS server when it offers (Chromium answers ``setup:active``) and DTLS client
when Chromium offers. A data channel carries messages both ways; Chromium's own stats show
the certificate it verified.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, serve_page
from tests.support import LOOPBACK
from webrtc_ext import (
    RTCCertificate,
    RTCDtlsTransport,
    RTCPeerConnection,
    RTCSessionDescription,
)

pytestmark = [pytest.mark.browser, pytest.mark.interop]


PAGE = """<!doctype html><title>dtls</title><script>
window.messages = [];
function gathered(pc) {
  return new Promise(resolve => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange",
      () => pc.iceGatheringState === "complete" && resolve());
  });
}
function listen(channel) {
  channel.onmessage = m => { window.messages.push(m.data); channel.send("echo:" + m.data); };
}
window.offer = async () => {
  window.pc = new RTCPeerConnection();
  const channel = pc.createDataChannel("chat");
  listen(channel);
  channel.onopen = () => channel.send("hello from chromium");
  await pc.setLocalDescription();
  await gathered(pc);
  return pc.localDescription.sdp;
};
window.answer = async sdp => {
  window.pc = new RTCPeerConnection();
  pc.ondatachannel = e => listen(e.channel);
  await pc.setRemoteDescription({type: "offer", sdp});
  await pc.setLocalDescription();
  await gathered(pc);
  return pc.localDescription.sdp;
};
window.accept = sdp => pc.setRemoteDescription({type: "answer", sdp});
window.dtls = async () => {
  const stats = [...(await pc.getStats()).values()];
  const transport = stats.find(s => s.type === "transport");
  const remote = stats.find(s => s.id === transport.remoteCertificateId);
  return {state: transport.dtlsState, role: transport.dtlsRole, cipher: transport.dtlsCipher,
          version: transport.tlsVersion, fingerprint: remote && remote.fingerprint,
          certificate: remote && remote.base64Certificate};
};
</script>"""


def loopback_only(sdp: str) -> str:
    """Keep only UDP candidates on 127.0.0.1: tests send traffic to loopback only."""
    lines = [
        line
        for line in sdp.splitlines()
        if not line.startswith("a=candidate:")
        or (" udp " in line.lower() and " 127.0.0.1 " in line)
    ]
    return "\r\n".join(lines) + "\r\n"


@contextlib.asynccontextmanager
async def chromium_page() -> AsyncIterator[Any]:
    playwright_api = pytest.importorskip("playwright.async_api")
    async with serve_page(PAGE) as url, playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            await page.goto(url)
            yield page
        finally:
            await browser.close()


@pytest.fixture(scope="module")
def rsa4096() -> RTCCertificate:
    return RTCCertificate.generateCertificate({"name": "RSA", "modulusLength": 4096})


async def wait_for(condition: Any, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("library_role", ["server", "client"])
async def test_chromium_handshake_with_rsa_4096_at_mtu_1200(
    rsa4096: RTCCertificate, library_role: str
) -> None:
    pc = RTCPeerConnection(LOOPBACK.with_changes(certificates=[rsa4096], dtls_mtu=1200))
    received: list[str] = []
    channels: list[Any] = []
    opened = asyncio.Event()

    def attach(channel: Any) -> None:
        channels.append(channel)
        channel.on("message", received.append)
        if channel.readyState == "open":
            opened.set()
        channel.on("open", opened.set)

    pc.on("datachannel", lambda channel: (attach(channel), opened.set()))
    try:
        async with chromium_page() as page:
            if library_role == "server":  # we offer actpass; Chromium answers active
                channel = pc.createDataChannel("chat")
                attach(channel)
                await pc.setLocalDescription(await pc.createOffer())
                answer = await page.evaluate("sdp => answer(sdp)", pc.localDescription.sdp)
                await pc.setRemoteDescription(
                    RTCSessionDescription(loopback_only(answer), "answer")
                )
                await asyncio.wait_for(opened.wait(), 30)
            else:  # Chromium offers actpass; we answer active
                offer = await page.evaluate("offer()")
                await pc.setRemoteDescription(RTCSessionDescription(loopback_only(offer), "offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                await page.evaluate("sdp => accept(sdp)", pc.localDescription.sdp)
                await asyncio.wait_for(opened.wait(), 30)
                await wait_for(lambda: asyncio.sleep(0, bool(received)))
                channel = channels[0]

            channel.send("hello from webrtc_ext")
            await wait_for(lambda: asyncio.sleep(0, "echo:hello from webrtc_ext" in received))
            assert "hello from webrtc_ext" in await page.evaluate("window.messages")
            dtls = await page.evaluate("dtls()")
    finally:
        await pc.close()

    transport = pc.sctp.transport  # type: ignore[union-attr]
    assert isinstance(transport, RTCDtlsTransport)
    assert transport._role == library_role
    assert 0 < transport.counters.max_datagram_bytes <= 1200
    # Chromium verified our RSA-4096 certificate against the SDP fingerprint.
    ours = rsa4096.getFingerprints()[0].value
    assert dtls["state"] == "connected"
    assert dtls["fingerprint"].upper() == ours
    assert dtls["role"] == ("client" if library_role == "server" else "server")
    print(library_role, dtls["cipher"], dtls["version"], transport.counters)
