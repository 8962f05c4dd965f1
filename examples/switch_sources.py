"""Switch one outgoing stream between two live sources through the RTP munger.

Two local peers each stream a tone (440 Hz and 660 Hz, numbered independently) to a relay;
the relay forwards both raw RTP streams to one sender and switches between them every
``--every`` seconds. The listening peer records what it gets to an Ogg file without decoding,
and the script prints what a receiver would notice: one SSRC, sequence numbers that never
skip, timestamps that only move forward.

    python examples/switch_sources.py [--switches 5] [--every 0.5] [--out switched.ogg]
"""

from __future__ import annotations

import argparse
import array
import asyncio
import math
import os
import sys
from collections.abc import Iterator

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import itertools

from webrtc_ext import (
    PeerConnectionConfig,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RtpFanOut,
)
from webrtc_ext.media import OggOpusRecorder, packetize, play
from webrtc_ext.rtp import RawRtpPacket

CONFIG = PeerConnectionConfig(host_addresses=["127.0.0.1"], audio_codecs=("audio/opus",))


def tone(freq: float, seconds: float) -> Iterator[tuple[bytes, int]]:
    """20 ms Opus packets of a sine wave (encoded once, with PyAV)."""
    import av

    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "mono", "s16"
    for i in range(int(seconds * 50)):
        # 16-bit samples built with the standard library: the library alone has no numpy.
        step = 2 * math.pi * freq / 48000
        pcm = array.array("h", (int(6000 * math.sin(step * (n + i * 960))) for n in range(960)))
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate, frame.pts = 48000, i * 960
        for packet in encoder.encode(frame):
            yield bytes(packet), 960


async def connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    """Offer/answer between two local connections; wait until media can flow."""
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)
    sender = offerer.getTransceivers()[0].sender
    assert isinstance(sender, RTCRtpSender)
    while sender.codec is None or answerer.connectionState != "connected":
        await asyncio.sleep(0.05)


def first_receiver(pc: RTCPeerConnection) -> RTCRtpReceiver:
    """The first transceiver's receiver, raw."""
    receiver = pc.getTransceivers()[0].receiver
    assert isinstance(receiver, RTCRtpReceiver)
    receiver.enable_raw()
    return receiver


def first_sender(pc: RTCPeerConnection) -> RTCRtpSender:
    """The first transceiver's sender."""
    sender = pc.getTransceivers()[0].sender
    assert isinstance(sender, RTCRtpSender)
    return sender


async def run(switches: int, every: float, out: str) -> None:
    """Build the five connections, switch, report."""
    seconds = every * (switches + 1) + 1
    origins = {"440 Hz": (1000, 0), "660 Hz": (65500, 0xFFFF0000)}  # unrelated numbering
    peers = {name: RTCPeerConnection(CONFIG) for name in origins}
    relay_ins = {name: RTCPeerConnection(CONFIG) for name in origins}
    relay_out, listener = RTCPeerConnection(CONFIG), RTCPeerConnection(CONFIG)
    for pc in [*peers.values(), relay_out]:
        pc.addTransceiver("audio", direction="sendonly")
    received: list[RawRtpPacket] = []
    try:
        for name in origins:
            await connect(peers[name], relay_ins[name])
        await connect(relay_out, listener)
        receiver = first_receiver(listener)
        receiver.on_rtp(received.append)
        with open(out, "wb") as file:
            recorder = OggOpusRecorder(receiver, file)
            sender = first_sender(relay_out)
            fan_outs = {name: RtpFanOut(first_receiver(relay_ins[name])) for name in origins}
            for fan_out in fan_outs.values():
                fan_out.add(sender, switch=False)
            freqs = {"440 Hz": 440.0, "660 Hz": 660.0}
            players = [
                asyncio.ensure_future(
                    play(
                        packetize(
                            tone(freqs[name], seconds),
                            first_sequence_number=seq,
                            first_timestamp=ts,
                        ),
                        first_sender(peers[name]),
                    )
                )
                for name, (seq, ts) in origins.items()
            ]
            names = list(origins)
            for i in range(switches + 1):
                current = names[i % 2]
                sender.switch_source(fan_outs[current].source)
                print(f"now forwarding the {current} source")
                await asyncio.sleep(every)
            await asyncio.gather(*players)
            await asyncio.sleep(0.3)
            recorder.close()
    finally:
        for pc in [*peers.values(), *relay_ins.values(), relay_out, listener]:
            await pc.close()
    seqs = [p.sequence_number for p in received]
    gaps = sum(1 for a, b in itertools.pairwise(seqs) if (b - a) & 0xFFFF != 1)
    stamps = [p.timestamp for p in received]
    backwards = sum(1 for a, b in itertools.pairwise(stamps) if (b - a) & 0xFFFFFFFF >= 1 << 31)
    print(
        f"received {len(received)} packets, SSRCs {len({p.ssrc for p in received})}, "
        f"sequence gaps {gaps}, timestamps going back {backwards}; recorded to {out}"
    )


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=5)
    parser.add_argument("--every", type=float, default=0.5, help="seconds between switches")
    parser.add_argument("--out", default="switched.ogg")
    args = parser.parse_args()
    asyncio.run(run(args.switches, args.every, args.out))


if __name__ == "__main__":
    main()
