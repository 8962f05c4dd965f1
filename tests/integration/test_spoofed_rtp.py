"""Spoofed RTP (the negotiated payload type, random SSRCs, any address) allocates nothing.

Issue 12, defect 3: the SRTP fast path learnt every unknown SSRC before authenticating the
packet, so a flood of forged packets grew the SSRC table (and the per-SSRC statistics) without
bound. Only a packet that authenticates may create per-SSRC state.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import struct

import pytest
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

from tests.support import LOOPBACK
from webrtc_ext import RTCPeerConnection
from webrtc_ext import RTCRtpReceiver as RtpReceiver
from webrtc_ext import RTCRtpSender as RtpSender
from webrtc_ext.rawrtp import RtpFastPathMixin
from webrtc_ext.rtp import RawRtpPacket

pytestmark = pytest.mark.integration

SPOOFED_PACKETS = 20_000


def _host_port(pc: RTCPeerConnection) -> tuple[str, int]:
    """The address of ``pc``'s first host candidate, as its peer (or an attacker) sees it."""
    assert pc.localDescription is not None
    match = re.search(r"a=candidate:\S+ 1 udp \d+ (\S+) (\d+) typ host", pc.localDescription.sdp)
    assert match is not None
    return match.group(1), int(match.group(2))


def _spoofed(payload_type: int, rng: random.Random) -> bytes:
    header = struct.pack(
        "!BBHII",
        0x80,
        payload_type,
        rng.getrandbits(16),
        rng.getrandbits(32),
        rng.getrandbits(32),
    )
    return header + os.urandom(60)  # an SRTP payload and tag that cannot authenticate


async def _flood(address: tuple[str, int], payload_type: int) -> None:
    rng = random.Random(12)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
        attacker.bind(("127.0.0.1", 0))
        for _batch in range(SPOOFED_PACKETS // 200):
            for _ in range(200):
                attacker.sendto(_spoofed(payload_type, rng), address)
            await asyncio.sleep(0.005)  # let the receiving side read its socket
    await asyncio.sleep(0.2)


def _per_ssrc_state(pc: RTCPeerConnection) -> dict[str, int]:
    transceiver = pc.getTransceivers()[0]
    transport = transceiver.receiver.transport
    assert isinstance(transport, RtpFastPathMixin)
    streams = pc._stats.counters(transport).received
    from webrtc_ext._internals import receiver_private

    return {
        "ssrc table": len(transport._rtp_router.ssrc_table),
        "receiver streams": len(receiver_private(transceiver.receiver, "remote_streams")),
        "stats streams": len(streams),
    }


async def _frames(track: MediaStreamTrack, counter: list[int]) -> None:
    while True:
        try:
            await track.recv()
        except MediaStreamError:
            return
        counter[0] += 1


@pytest.mark.parametrize("raw", [True, False], ids=["raw-fast-path", "decoded"])
async def test_a_spoofed_rtp_flood_allocates_nothing_and_the_call_goes_on(raw: bool) -> None:
    offerer, answerer = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    offerer.addTrack(AudioStreamTrack())
    delivered = [0]
    readers: list[asyncio.Task[None]] = []

    @answerer.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if not raw:
            readers.append(asyncio.ensure_future(_frames(track, delivered)))

    def count(packet: RawRtpPacket) -> None:
        delivered[0] += 1

    try:
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        receiver = answerer.getTransceivers()[0].receiver
        assert isinstance(receiver, RtpReceiver)
        if raw:
            receiver.on_rtp(count)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        sender = offerer.getTransceivers()[0].sender
        assert isinstance(sender, RtpSender)
        async with asyncio.timeout(10):
            while delivered[0] < 10:
                await asyncio.sleep(0.05)
        before = _per_ssrc_state(answerer)
        assert sender.codec is not None and sender.codec.payloadType is not None

        await _flood(_host_port(answerer), sender.codec.payloadType)

        assert _per_ssrc_state(answerer) == before
        assert before["ssrc table"] <= 1
        # The real call goes on: its packets still arrive and are delivered.
        after_flood = delivered[0]
        async with asyncio.timeout(10):
            while delivered[0] < after_flood + 25:
                await asyncio.sleep(0.05)
        assert answerer.connectionState == "connected"
    finally:
        await offerer.close()
        await answerer.close()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
