"""Debian's Chromium for the browser tests: where it is and how it must be started here."""

from __future__ import annotations

import shutil

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
