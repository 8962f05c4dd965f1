"""Consent freshness (RFC 7675) honours aioice's CONSENT_INTERVAL and CONSENT_FAILURES."""

from __future__ import annotations

import asyncio

import aioice.ice
import aioice.stun
import pytest

from tests.support import audio_call

pytestmark = pytest.mark.integration


async def test_consent_expires_when_the_peer_goes_away(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 2)
    monkeypatch.setattr(aioice.stun, "RETRY_RTO", 0.1)
    async with audio_call() as call:
        (transport,) = call.answerer.ice_transports
        (gone,) = call.offerer.ice_transports
        # The offerer vanishes without a word (no DTLS close_notify): only consent can tell.
        for protocol in gone.connection._protocols:
            protocol.transport.close()
        async with asyncio.timeout(15):
            while transport.state not in ("failed", "closed"):
                await asyncio.sleep(0.05)
