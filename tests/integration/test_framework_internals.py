"""The aiortc internals Pipecat uses (webrtc_ext._internals.FRAMEWORK_INTERNALS) still behave
as Pipecat expects on the library's connections, so a fork change or an upgrade that moves
one fails here and not in a user's bot."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiortc.rtcsctptransport
import pytest
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import AudioStreamTrack
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import RtpPacket

from tests.support import LOOPBACK
from webrtc_ext import RTCPeerConnection
from webrtc_ext._internals import FRAMEWORK_INTERNALS

pytestmark = pytest.mark.integration


class CountingJitterBuffer(JitterBuffer):
    def __init__(self) -> None:
        super().__init__(capacity=16, prefetch=4)
        self.added = 0

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        self.added += 1
        return super().add(packet)


async def connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


def arrived_packets(pc: RTCPeerConnection) -> int:
    """Datagrams received on the selected candidate pair (before any RTP processing)."""
    return sum(p.packets_received for t in pc.ice_transports for p in t.candidate_pairs())


@pytest.fixture
async def pair() -> AsyncIterator[tuple[RTCPeerConnection, RTCPeerConnection]]:
    offerer, answerer = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    yield offerer, answerer
    await offerer.close()
    await answerer.close()


def test_every_framework_internal_is_covered_here() -> None:
    assert set(FRAMEWORK_INTERNALS) == {
        "aiortc.RTCRtpReceiver().__jitter_buffer",
        "aiortc.RTCRtpReceiver()._enabled",
        "aiortc.rtcrtpreceiver.RemoteStreamTrack()._queue",
        "aiortc.rtcsctptransport.USERDATA_MAX_LENGTH",
    }


async def test_receiver_disabled_decodes_nothing_and_enabled_again_decodes(
    pair: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    offerer, answerer = pair
    offerer.addTrack(AudioStreamTrack())
    tracks: list[RemoteStreamTrack] = []
    answerer.on("track", tracks.append)
    await connect(offerer, answerer)
    await asyncio.wait_for(tracks[0].recv(), 5)
    # What Pipecat's SmallWebRTCTrack does while nobody reads the track (after negotiation:
    # aiortc sets ``_enabled`` from the negotiated direction).
    answerer.getReceivers()[0]._enabled = False
    await asyncio.sleep(0.1)  # a packet already being decoded may still land
    queue = tracks[0]._queue
    while not queue.empty():
        queue.get_nowait()
    arrived_before = arrived_packets(answerer)
    await asyncio.sleep(0.5)
    assert arrived_packets(answerer) - arrived_before >= 10  # packets kept coming ...
    assert queue.qsize() == 0  # ... and none was decoded
    answerer.getReceivers()[0]._enabled = True
    frame = await asyncio.wait_for(tracks[0].recv(), 5)
    assert frame.samples > 0


async def test_replaced_jitter_buffer_is_the_one_used(
    pair: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    offerer, answerer = pair
    offerer.addTrack(AudioStreamTrack())
    buffer = CountingJitterBuffer()
    tracks: list[RemoteStreamTrack] = []

    @answerer.on("track")
    def on_track(track: RemoteStreamTrack) -> None:
        receiver = answerer.getReceivers()[0]
        receiver._RTCRtpReceiver__jitter_buffer = buffer  # type: ignore[attr-defined]
        tracks.append(track)

    await connect(offerer, answerer)
    for _ in range(10):
        await asyncio.wait_for(tracks[0].recv(), 5)
    assert buffer.added >= 10


async def test_draining_the_track_queue_discards_old_frames_and_keeps_receiving(
    pair: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    offerer, answerer = pair
    offerer.addTrack(AudioStreamTrack())
    tracks: list[RemoteStreamTrack] = []
    answerer.on("track", tracks.append)
    await connect(offerer, answerer)
    first = await asyncio.wait_for(tracks[0].recv(), 5)
    await asyncio.sleep(0.3)  # frames pile up unread
    queue = tracks[0]._queue
    assert isinstance(queue, asyncio.Queue) and queue.qsize() >= 5
    while not queue.empty():  # Pipecat's discard_old_frames
        queue.get_nowait()
        queue.task_done()
    following = await asyncio.wait_for(tracks[0].recv(), 5)
    # The frame after draining is recent, not the next one after the first.
    assert following.pts - first.pts >= 0.2 * following.sample_rate


async def test_sctp_user_data_limit_set_like_pipecat_bounds_the_data_chunks(
    pair: tuple[RTCPeerConnection, RTCPeerConnection], monkeypatch: pytest.MonkeyPatch
) -> None:
    offerer, answerer = pair
    monkeypatch.setattr(aiortc.rtcsctptransport, "USERDATA_MAX_LENGTH", 1100)
    channel = offerer.createDataChannel("chat")
    received: asyncio.Queue[Any] = asyncio.Queue()
    chunk_sizes: list[int] = []
    answerer.on("datachannel", lambda ch: ch.on("message", received.put_nowait))
    await connect(offerer, answerer)
    while channel.readyState != "open":
        await asyncio.sleep(0.01)
    sctp = answerer.sctp
    assert sctp is not None
    receive_chunk = sctp._receive_chunk

    async def observe(chunk: Any) -> None:  # test observer of the chunks on the wire
        if isinstance(chunk, aiortc.rtcsctptransport.DataChunk):
            chunk_sizes.append(len(chunk.user_data))
        await receive_chunk(chunk)

    monkeypatch.setattr(sctp, "_receive_chunk", observe)
    message = json.dumps({"text": "x" * 5000})
    channel.send(message)
    assert await asyncio.wait_for(received.get(), 5) == message
    assert max(chunk_sizes) == 1100
    assert sum(chunk_sizes) == len(message)
