"""Interop with Pion, a real third-party agent that sends no media until a pair is nominated.

Pion as the controlled answerer only selects a pair (and so only starts DTLS and media) when the
controlling agent nominates one with USE-CANDIDATE (pion/ice ``controlledSelector``): getting
audio from it proves our nomination, in both modes, reaches a real implementation.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from tests.interop.pion import pion_peer
from tests.support import LOOPBACK
from webrtc_ext import CandidatePairInfo, NominationMode, RTCPeerConnection

# Generous: the first test also waits for the session fixture that compiles the Pion peer.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]

MODES = [NominationMode.AGGRESSIVE, NominationMode.REGULAR]
MEDIA_TIMEOUT = 30.0
FRAMES = 10


async def _count_frames(track: MediaStreamTrack, frames: asyncio.Queue[None]) -> None:
    while True:
        try:
            await track.recv()
        except MediaStreamError:
            return
        frames.put_nowait(None)


def _receive_audio(pc: RTCPeerConnection) -> tuple[asyncio.Queue[None], list[asyncio.Task[None]]]:
    frames: asyncio.Queue[None] = asyncio.Queue()
    readers: list[asyncio.Task[None]] = []

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        readers.append(asyncio.ensure_future(_count_frames(track, frames)))

    return frames, readers


async def _wait_frames(frames: asyncio.Queue[None], count: int = FRAMES) -> None:
    async with asyncio.timeout(MEDIA_TIMEOUT):
        for _ in range(count):
            await frames.get()


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
async def test_library_controlling_gets_media_from_pion(
    pion_executable: Path, mode: NominationMode
) -> None:
    pc = RTCPeerConnection(LOOPBACK.with_changes(nomination=mode))
    frames, readers = _receive_audio(pc)
    try:
        async with pion_peer(pion_executable, role="answer") as pion:
            pc.addTransceiver("audio", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            await pion.send_description(pc.localDescription)
            await pc.setRemoteDescription(await pion.description())

            await _wait_frames(frames)

            (transport,) = pc.ice_transports
            assert transport.role == "controlling"
            (selected,) = [p for p in transport.candidate_pairs() if p.selected]
            assert selected.nominated and selected.state == "succeeded"
            assert selected.remote.host == "127.0.0.1"
            assert selected.packets_received > FRAMES
            assert "connected" in pion.states("iceconnectionstatechange")
            assert "connected" in pion.states("connectionstatechange")
    finally:
        await pc.close()
        for reader in readers:
            reader.cancel()


async def test_pion_controlling_library_controlled_gets_media(pion_executable: Path) -> None:
    pc = RTCPeerConnection(LOOPBACK)
    frames, readers = _receive_audio(pc)
    try:
        async with pion_peer(pion_executable, role="offer") as pion:
            await pc.setRemoteDescription(await pion.description())
            await pc.setLocalDescription(await pc.createAnswer())
            await pion.send_description(pc.localDescription)

            await _wait_frames(frames)

            (transport,) = pc.ice_transports
            assert transport.role == "controlled"
            (selected,) = [p for p in transport.candidate_pairs() if p.selected]
            assert selected.nominated
            assert transport.getSelectedCandidatePair() is not None
            await pion.wait_for_state("connectionstatechange", "connected")
    finally:
        await pc.close()
        for reader in readers:
            reader.cancel()


def _key(pair: CandidatePairInfo) -> tuple[str, int, str, int]:
    return (pair.local.host, pair.local.port, pair.remote.host, pair.remote.port)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
async def test_pion_and_library_agree_on_the_selected_pair(
    pion_executable: Path, mode: NominationMode
) -> None:
    # Several local addresses give several pairs; Pion switches to any later nominated pair of
    # equal priority, so host candidates must have unique priorities (RFC 8445 §5.1.2.1) for
    # both agents to end on the same pair.
    addresses = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    pc = RTCPeerConnection(LOOPBACK.with_changes(nomination=mode, host_addresses=addresses))
    frames, readers = _receive_audio(pc)
    try:
        async with pion_peer(pion_executable, role="answer") as pion:
            pc.addTransceiver("audio", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            await pion.send_description(pc.localDescription)
            await pc.setRemoteDescription(await pion.description())

            await _wait_frames(frames, count=5)
            (transport,) = pc.ice_transports
            # With aggressive nomination Pion may answer the first DTLS flight on a pair it
            # selected a moment before switching; what must stay on one pair is the media.
            before = {_key(p): p.packets_received for p in transport.candidate_pairs()}
            await _wait_frames(frames, count=25)

            pairs = transport.candidate_pairs()
            assert len(pairs) >= len(addresses)
            (selected,) = [p for p in pairs if p.selected]
            assert selected.local.host == "127.0.0.1", "the first address is preferred"
            stray = {
                p.local.host: p.packets_received - before.get(_key(p), 0)
                for p in pairs
                if not p.selected
            }
            assert sum(stray.values()) == 0, f"Pion sends media on another pair: {stray}"
    finally:
        await pc.close()
        for reader in readers:
            reader.cancel()
