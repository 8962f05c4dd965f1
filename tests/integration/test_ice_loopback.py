"""ICE over real loopback sockets: both nomination modes, both roles, full and ICE-lite peers."""

from __future__ import annotations

import pytest

from tests.support import LOOPBACK, audio_call
from webrtc_ext import NominationMode

pytestmark = pytest.mark.integration

MODES = [NominationMode.AGGRESSIVE, NominationMode.REGULAR]


def _selected(pc):  # type: ignore[no-untyped-def]
    (transport,) = pc.ice_transports
    return [p for p in transport.candidate_pairs() if p.selected]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
async def test_controlling_library_connects_to_full_peer(mode: NominationMode) -> None:
    config = LOOPBACK.with_changes(nomination=mode)
    async with audio_call(config, LOOPBACK) as call:
        (transport,) = call.offerer.ice_transports
        assert transport.role == "controlling"
        (pair,) = _selected(call.offerer)
        assert pair.nominated and pair.state == "succeeded"
        # Aggressive nominates with the first check; regular needs a second, nominating one.
        assert pair.requests_sent == (1 if mode is NominationMode.AGGRESSIVE else 2)
        assert call.offerer.connectionState == call.answerer.connectionState == "connected"


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
async def test_controlled_library_connects_to_full_peer(mode: NominationMode) -> None:
    remote = LOOPBACK.with_changes(nomination=mode)
    async with audio_call(remote, LOOPBACK.with_changes(nomination=mode)) as call:
        (transport,) = call.answerer.ice_transports
        assert transport.role == "controlled"
        (pair,) = _selected(call.answerer)
        assert pair.nominated and pair.requests_received >= 1
        assert transport.getSelectedCandidatePair() is not None


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
async def test_controlling_library_connects_to_lite_answerer(mode: NominationMode) -> None:
    async with audio_call(
        LOOPBACK.with_changes(nomination=mode), LOOPBACK.with_changes(ice_lite=True)
    ) as call:
        assert "a=ice-lite" in call.answerer.localDescription.sdp
        (lite,) = call.answerer.ice_transports
        assert lite.role == "controlled"
        (pair,) = _selected(call.answerer)
        assert pair.requests_sent == 0, "an ICE-lite agent sends no checks"
        (pair,) = _selected(call.offerer)
        assert pair.requests_sent == (1 if mode is NominationMode.AGGRESSIVE else 2)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
async def test_library_answering_a_lite_offer_takes_control(mode: NominationMode) -> None:
    async with audio_call(
        LOOPBACK.with_changes(ice_lite=True), LOOPBACK.with_changes(nomination=mode)
    ) as call:
        (transport,) = call.answerer.ice_transports
        assert transport.role == "controlling"
        (pair,) = _selected(call.answerer)
        assert pair.nominated


async def test_port_range_is_honoured() -> None:
    config = LOOPBACK.with_changes(port_range=(42100, 42103))
    async with audio_call(config, config) as call:
        for pc in (call.offerer, call.answerer):
            for candidate in pc.ice_transports[0].iceGatherer.getLocalCandidates():
                assert 42100 <= candidate.port <= 42103
