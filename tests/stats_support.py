"""Helpers for the stats tests: a real call whose receive path loses every Nth RTP packet."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc.mediastreams import (
    AudioStreamTrack,
    MediaStreamError,
    MediaStreamTrack,
    VideoStreamTrack,
)

from tests.support import LOOPBACK
from webrtc_ext import PeerConnectionConfig, RTCPeerConnection


class SmallVideoTrack(VideoStreamTrack):
    """Tiny black frames: one VP8 packet per frame, cheap to encode on a loaded machine."""

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=64, height=48, format="yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts, frame.time_base = pts, time_base
        return frame


def _is_rtp(data: bytes) -> bool:
    return len(data) >= 12 and 128 <= data[0] < 192 and not 192 <= data[1] <= 223


@dataclass
class LossyNetwork:
    """What the test's own network saw: per-SSRC delivered and dropped RTP, NACKs."""

    media_ssrc: int
    rtx_ssrc: int | None
    drop_every: int
    dropping: bool = True
    media_seen: int = 0
    delivered: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    rtx_delivered: int = 0
    nacks_to_sender: int = 0

    def receive_filter(self, data: bytes) -> bool:
        """Whether a datagram arriving at the receiver gets through."""
        if not _is_rtp(data):
            return True
        ssrc = int.from_bytes(data[8:12], "big")
        sequence = int.from_bytes(data[2:4], "big")
        if ssrc == self.rtx_ssrc:
            self.rtx_delivered += 1
        elif ssrc == self.media_ssrc:
            self.media_seen += 1
            if self.dropping and self.media_seen % self.drop_every == 0:
                self.dropped.append(sequence)
                return False
            self.delivered.append(sequence)
        return True

    def sender_observer(self, data: bytes) -> bool:
        """Count the RTCP NACKs arriving at the sender (SRTCP keeps the first header clear)."""
        if len(data) >= 8 and data[1] == 205 and data[0] & 0x1F == 1:
            self.nacks_to_sender += 1
        return True

    @property
    def lost_in_range(self) -> int:
        """Dropped packets older than the newest delivered one (RFC 3550 counts only those)."""
        newest = max(self.delivered)
        return sum(1 for s in self.dropped if s < newest)


def install_filter(pc: RTCPeerConnection, accept: Callable[[bytes], bool]) -> None:
    """Pass every datagram arriving on ``pc``'s sockets through ``accept`` (False drops it)."""
    for protocol in pc.ice_transports[0].connection._protocols:
        # IceProtocol handles each datagram in _handle_datagram, also those it drains from
        # the socket after the one datagram_received was called with.
        original = protocol._handle_datagram

        def handle_datagram(data: Any, addr: Any, original: Any = original) -> None:
            if accept(data):
                original(data, addr)

        protocol._handle_datagram = handle_datagram  # type: ignore[method-assign]


def _ssrcs(sdp: str) -> tuple[int, int | None]:
    for line in sdp.splitlines():
        if line.startswith("a=ssrc-group:FID "):
            media, rtx = line.split()[1:3]
            return int(media), int(rtx)
    first = next(line for line in sdp.splitlines() if line.startswith("a=ssrc:"))
    return int(first.split()[0][len("a=ssrc:") :]), None


async def _consume(track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


@dataclass
class LossyCall:
    """A connected call from ``offerer`` to ``answerer`` over a lossy receive path."""

    offerer: RTCPeerConnection
    answerer: RTCPeerConnection
    network: LossyNetwork

    async def stop_media(self, settle: float = 1.0) -> None:
        """Stop sending, then wait until the receiver has seen nothing for ``settle`` s."""
        self.offerer.getTransceivers()[0].sender.replaceTrack(None)
        deadline = time.monotonic() + 15
        last = -1
        while time.monotonic() < deadline:
            count = self.network.media_seen + self.network.rtx_delivered
            if count == last:
                return
            last = count
            await asyncio.sleep(settle)


@contextlib.asynccontextmanager
async def lossy_call(
    kind: str,
    drop_every: int,
    config: PeerConnectionConfig = LOOPBACK,
    before_connect: Callable[[RTCPeerConnection, RTCPeerConnection], Awaitable[None]] | None = None,
) -> AsyncIterator[LossyCall]:
    """A call sending ``kind`` media whose receiver loses every ``drop_every``-th RTP packet."""
    offerer, answerer = RTCPeerConnection(config), RTCPeerConnection(config)
    readers: list[asyncio.Task[None]] = []
    answerer.on("track", lambda track: readers.append(asyncio.ensure_future(_consume(track))))
    try:
        if before_connect is not None:
            await before_connect(offerer, answerer)
        offerer.addTrack(SmallVideoTrack() if kind == "video" else AudioStreamTrack())
        await offerer.setLocalDescription(await offerer.createOffer())
        media_ssrc, rtx_ssrc = _ssrcs(offerer.localDescription.sdp)
        network = LossyNetwork(media_ssrc, rtx_ssrc, drop_every)
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        install_filter(answerer, network.receive_filter)
        install_filter(offerer, network.sender_observer)
        await offerer.setRemoteDescription(answerer.localDescription)
        deadline = time.monotonic() + 20
        while answerer.connectionState != "connected" or offerer.connectionState != "connected":
            assert time.monotonic() < deadline, "the call did not connect"
            await asyncio.sleep(0.05)
        yield LossyCall(offerer, answerer, network)
    finally:
        await offerer.close()
        await answerer.close()
        for reader in readers:
            reader.cancel()


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 15) -> None:
    """Poll ``predicate`` until it holds (generous bound: the machine may be loaded)."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.2)
