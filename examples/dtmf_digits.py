"""Print the digits a caller presses, as they arrive (RFC 4733 over a real loopback call).

The caller is a second webrtc_ext peer that presses keys with the W3C
``RTCDTMFSender.insertDTMF`` API, like a browser would; ``--loss`` drops that fraction of
its RTP packets at random, to show the decoder does not miss or invent digits. Run:

    python examples/dtmf_digits.py [--digits 0123456789*#] [--duration 100] [--loss 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import random

from aiortc.mediastreams import AudioStreamTrack
from aiortc.rtp import is_rtcp

from webrtc_ext import PeerConnectionConfig, RTCPeerConnection
from webrtc_ext.dtmf import DtmfSenderMixin, RTCDTMFToneChangeEvent


async def print_digits(callee: RTCPeerConnection) -> None:
    """The part an application writes: iterate over the key presses of the call."""
    (transceiver,) = callee.getTransceivers()
    async for event in callee.dtmf_events(transceiver):
        print(
            f"  pressed {event.digit}  ({1000 * event.duration:.0f} ms, "
            f"-{event.volume} dBm0, ended by {event.end_reason})",
            flush=True,
        )


def drop_packets(caller: RTCPeerConnection, loss: float) -> None:
    """Simulate a lossy network: the caller's transport drops ``loss`` of its RTP packets."""
    transport = caller.getTransceivers()[0].sender.transport
    send = transport._send_rtp

    async def lossy(data: bytes) -> None:
        if is_rtcp(data) or random.random() >= loss:
            await send(data)

    transport._send_rtp = lossy  # type: ignore[method-assign]


async def call(digits: str, duration: int, loss: float) -> None:
    config = PeerConnectionConfig(host_addresses=["127.0.0.1"])
    caller = RTCPeerConnection(config)
    callee = RTCPeerConnection(config)
    caller.addTrack(AudioStreamTrack())
    callee.addTransceiver("audio", direction="recvonly")
    await caller.setLocalDescription(await caller.createOffer())
    await callee.setRemoteDescription(caller.localDescription)
    await callee.setLocalDescription(await callee.createAnswer())
    await caller.setRemoteDescription(callee.localDescription)
    printer = asyncio.ensure_future(print_digits(callee))

    sender = caller.getTransceivers()[0].sender
    assert isinstance(sender, DtmfSenderMixin) and sender.dtmf is not None
    for _ in range(100):  # until the media path is up
        if sender.dtmf.canInsertDTMF:
            break
        await asyncio.sleep(0.1)
    if loss:
        drop_packets(caller, loss)
    played = asyncio.Event()

    def on_tone(event: RTCDTMFToneChangeEvent) -> None:
        if event.tone == "":
            played.set()

    sender.dtmf.ontonechange = on_tone
    print(f"caller presses {digits!r} ({duration} ms each, {loss:.0%} packet loss)")
    sender.dtmf.insertDTMF(digits, duration=duration)
    await asyncio.wait_for(played.wait(), 120)
    await asyncio.sleep(1.0)  # let the last press end
    await caller.close()
    await callee.close()
    await asyncio.wait_for(printer, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--digits", default="0123456789*#")
    parser.add_argument("--duration", type=int, default=100, help="tone length, ms")
    parser.add_argument("--loss", type=float, default=0.0, help="fraction of RTP dropped")
    args = parser.parse_args()
    asyncio.run(call(args.digits, args.duration, args.loss))


if __name__ == "__main__":
    main()
