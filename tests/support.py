"""Helpers shared by the tests: loopback peer connections and media waiting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

from webrtc_ext import PeerConnectionConfig, RTCPeerConnection

LOOPBACK = PeerConnectionConfig(host_addresses=["127.0.0.1"])


@dataclass
class Call:
    """Two connected peer connections and when the answerer's first audio frame arrived."""

    offerer: RTCPeerConnection
    answerer: RTCPeerConnection
    answer_applied_at: float
    first_audio_at: float

    @property
    def first_audio_ms(self) -> float:
        return 1000 * (self.first_audio_at - self.answer_applied_at)


async def _first_frame(track: MediaStreamTrack, arrived: asyncio.Future[float]) -> None:
    while True:
        try:
            await track.recv()
        except MediaStreamError:
            return
        if not arrived.done():
            arrived.set_result(time.monotonic())


@contextlib.asynccontextmanager
async def audio_call(
    offerer_config: PeerConnectionConfig = LOOPBACK,
    answerer_config: PeerConnectionConfig = LOOPBACK,
    timeout: float = 10.0,
) -> AsyncIterator[Call]:
    """An audio call from ``offerer`` (sending) to ``answerer`` (receiving), closed on exit."""
    offerer = RTCPeerConnection(offerer_config)
    answerer = RTCPeerConnection(answerer_config)
    arrived: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    readers: list[asyncio.Task[None]] = []

    @answerer.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        readers.append(asyncio.ensure_future(_first_frame(track, arrived)))

    try:
        offerer.addTrack(AudioStreamTrack())
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        applied = time.monotonic()
        await offerer.setRemoteDescription(answerer.localDescription)
        first = await asyncio.wait_for(arrived, timeout)
        yield Call(offerer, answerer, applied, first)
    finally:
        await offerer.close()
        await answerer.close()
        for reader in readers:
            reader.cancel()
