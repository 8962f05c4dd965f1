"""The library on uvloop's event loop (as uvicorn and many voice apps run): ICE, DTLS, media.

uvloop's timer handles have no ``when()``; the ICE connection's timer used it, so under uvloop
every check list stalled and no call ever connected.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.support import LOOPBACK, audio_call
from webrtc_ext import NominationMode

uvloop = pytest.importorskip("uvloop")

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("mode", [NominationMode.AGGRESSIVE, NominationMode.REGULAR])
def test_call_connects_and_carries_audio_on_uvloop(mode: NominationMode) -> None:
    async def call() -> tuple[str, bool, int]:
        loop_name = type(asyncio.get_running_loop()).__module__
        config = LOOPBACK.with_changes(nomination=mode)
        async with audio_call(config, LOOPBACK) as call:
            (transport,) = call.offerer.ice_transports
            nominated = any(p.selected and p.nominated for p in transport.candidate_pairs())
            await asyncio.sleep(0.5)
            received = sum(
                s.packetsReceived
                for s in (await call.answerer.getStats()).values()
                if s.type == "inbound-rtp"
            )
            return loop_name, nominated, received

    loop_name, nominated, received = uvloop.run(call())
    assert loop_name.startswith("uvloop")
    assert nominated
    assert received >= 20  # 20 ms frames for at least half a second
