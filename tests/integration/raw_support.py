"""Helpers for the raw RTP tests: connect two local connections, reach their raw ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tests.support import LOOPBACK
from webrtc_ext import RTCPeerConnection
from webrtc_ext import RTCRtpReceiver as RtpReceiver
from webrtc_ext import RTCRtpSender as RtpSender


async def connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    """Offer/answer between two local connections; wait until both are connected."""
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)
    for _ in range(400):
        if offerer.connectionState == answerer.connectionState == "connected":
            sender = offerer.getTransceivers()[0].sender
            if not isinstance(sender, RtpSender) or sender.codec is not None:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the connections did not connect")


def raw_receiver_of(pc: RTCPeerConnection) -> RtpReceiver:
    """The first transceiver's receiver, switched to raw delivery."""
    receiver = pc.getTransceivers()[0].receiver
    assert isinstance(receiver, RtpReceiver)
    receiver.enable_raw()
    return receiver


def sender_of(pc: RTCPeerConnection) -> RtpSender:
    """The first transceiver's sender."""
    sender = pc.getTransceivers()[0].sender
    assert isinstance(sender, RtpSender)
    return sender


@dataclass
class FanOutRig:
    """A source sending to a relay, and the relay's two outgoing connections to two sinks."""

    source: RTCPeerConnection
    relay_in: RTCPeerConnection
    relay_outs: list[RTCPeerConnection]
    sinks: list[RTCPeerConnection]


@contextlib.asynccontextmanager
async def fan_out_rig() -> AsyncIterator[FanOutRig]:
    """Connected source → relay_in, and relay_outs[i] → sinks[i] (audio, sendonly); closed
    after."""
    rig = FanOutRig(
        RTCPeerConnection(LOOPBACK),
        RTCPeerConnection(LOOPBACK),
        [RTCPeerConnection(LOOPBACK) for _ in range(2)],
        [RTCPeerConnection(LOOPBACK) for _ in range(2)],
    )
    rig.source.addTransceiver("audio", direction="sendonly")
    for pc in rig.relay_outs:
        pc.addTransceiver("audio", direction="sendonly")
    try:
        await connect(rig.source, rig.relay_in)
        for out, sink in zip(rig.relay_outs, rig.sinks, strict=True):
            await connect(out, sink)
        yield rig
    finally:
        for pc in [rig.source, rig.relay_in, *rig.relay_outs, *rig.sinks]:
            await pc.close()
