"""Helpers for the raw RTP tests: connect two local connections, reach their raw ends."""

from __future__ import annotations

import asyncio

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
