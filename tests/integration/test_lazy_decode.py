"""A remote track nobody reads costs no decoding and queues no frames; once read, it plays."""

from __future__ import annotations

import asyncio

import pytest
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from av import AudioFrame

from tests.support import LOOPBACK
from webrtc_ext import RTCPeerConnection, RTCRtpReceiver

from .raw_support import connect

pytestmark = pytest.mark.integration


async def _receiving_call() -> tuple[RTCPeerConnection, RTCPeerConnection, RTCRtpReceiver]:
    offerer, answerer = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    offerer.addTrack(AudioStreamTrack())
    answerer.addTransceiver("audio", direction="recvonly")
    await connect(offerer, answerer)
    receiver = answerer.getTransceivers()[0].receiver
    assert isinstance(receiver, RTCRtpReceiver)
    return offerer, answerer, receiver


async def _packets_received(receiver: RTCRtpReceiver, at_least: int) -> None:
    for _ in range(600):
        report = await receiver.getStats()
        inbound = [s for s in report.values() if s.type == "inbound-rtp"]
        if inbound and inbound[0].packetsReceived >= at_least:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} packets arrived")


def _queued(track: MediaStreamTrack) -> int:
    return int(track._queue.qsize())  # type: ignore[attr-defined]


async def test_an_unread_track_queues_no_frames_and_plays_once_read() -> None:
    offerer, answerer, receiver = await _receiving_call()
    try:
        track = receiver.track
        await _packets_received(receiver, 60)  # more than a second of audio, unread
        assert _queued(track) == 0, "frames were decoded for a track nobody reads"
        assert not receiver.decoding
        frames = [await asyncio.wait_for(track.recv(), 5) for _ in range(10)]
        assert all(isinstance(f, AudioFrame) and f.sample_rate == 48000 for f in frames)
        assert receiver.decoding
        # The backlog is what arrived since the first read, not the unread second before it.
        assert _queued(track) < 40
    finally:
        await offerer.close()
        await answerer.close()


async def test_the_unread_track_still_ends_when_the_connection_closes() -> None:
    offerer, answerer, receiver = await _receiving_call()
    track = receiver.track
    await _packets_received(receiver, 10)
    await offerer.close()
    await answerer.close()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(track.recv(), 5)
    assert track.readyState == "ended"
