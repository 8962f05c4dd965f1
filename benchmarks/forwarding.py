"""CPU per forwarded RTP packet: raw forwarding through the munger vs aiortc's track relay.

The relay (this process) receives SRTP on one connection and sends SRTP on another. The source
and sink peers run in a child process, so the relay's CPU time (``time.process_time()``, all
threads) is its own. The same Opus stream crosses the relay twice, once per path:

- raw: ``RTCRtpReceiver.on_rtp`` -> ``RtpFanOut`` -> ``RTCRtpSender.send_rtp``
  (munge, rewrite, SRTP);
- track: aiortc's ``RemoteStreamTrack`` added to the outgoing connection (decode -> encode).

Usage: ``python benchmarks/forwarding.py [--quick] [--profile]``. Last line: JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import math
import multiprocessing
import os
import pstats
import resource
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from webrtc_ext import (
    PeerConnectionConfig,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RtpFanOut,
)
from webrtc_ext.rtp import RawRtpPacket

LOOPBACK = PeerConnectionConfig(host_addresses=["127.0.0.1"], audio_codecs=("audio/opus",))
#: Packets per second through the relay: twenty 20 ms Opus streams' worth (ten two-way calls),
#: sent as twenty packets per 20 ms tick.
RATE = 1000


def opus_packets(count: int) -> list[bytes]:
    """``count`` 20 ms Opus packets of a 440 Hz tone, encoded with PyAV's libopus."""
    import av
    import numpy as np

    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format = 48000, "mono", "s16"
    codec.bit_rate = 32000
    packets: list[bytes] = []
    n = 0
    while len(packets) < count:
        t = (np.arange(960) + n * 960) / 48000
        samples = (8000 * np.sin(2 * math.pi * 440 * t)).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, n * 960
        packets += [bytes(p) for p in codec.encode(frame)]
        n += 1
    return packets[:count]


async def wait_connected(*pcs: RTCPeerConnection) -> None:
    """Wait until every connection is connected."""
    for _ in range(400):
        if all(pc.connectionState == "connected" for pc in pcs):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("connections did not connect")


async def readable(pipe: Connection) -> None:
    """Wait until ``pipe`` has something to read, without polling."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(pipe.fileno(), lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(pipe.fileno())


def description(pc: RTCPeerConnection) -> tuple[str, str]:
    """The local description as a picklable pair."""
    return pc.localDescription.sdp, pc.localDescription.type


# -- the peers, in the child process -----------------------------------------------------------


async def run_peers(pipe: Connection, packets: list[bytes], count: int, rate: int) -> None:
    """Source and sink: send ``count`` packets at ``rate``, count what reaches the sink."""
    from aiortc import RTCSessionDescription

    source, sink = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    source.addTransceiver("audio", direction="sendonly")
    await source.setLocalDescription(await source.createOffer())
    pipe.send(description(source))
    await source.setRemoteDescription(RTCSessionDescription(*pipe.recv()))
    await sink.setRemoteDescription(RTCSessionDescription(*pipe.recv()))
    receiver = sink.getTransceivers()[0].receiver
    assert isinstance(receiver, RTCRtpReceiver)
    received = 0

    def count_packet(packet: RawRtpPacket) -> None:
        nonlocal received
        received += 1

    receiver.on_rtp(count_packet)
    await sink.setLocalDescription(await sink.createAnswer())
    pipe.send(description(sink))
    await wait_connected(source, sink)
    sender = source.getTransceivers()[0].sender
    assert isinstance(sender, RTCRtpSender)
    while sender.codec is None:
        await asyncio.sleep(0.01)
    pipe.send("ready")
    pipe.recv()  # go
    start = time.monotonic()
    burst = max(1, rate // 50)
    for i in range(count):
        payload = packets[i % len(packets)]
        sender.send_rtp(
            RawRtpPacket.create(payload, payload_type=111, sequence_number=i, timestamp=960 * i)
        )
        if i % burst == burst - 1:
            await asyncio.sleep(max(0.0, start + (i + 1) / rate - time.monotonic()))
    # Until the relay has caught up: nothing more arrived for half a second (at most 10 s).
    last, deadline = -1, time.monotonic() + 10
    while received != last and time.monotonic() < deadline:
        last = received
        await asyncio.sleep(0.5)
    pipe.send(received)
    pipe.recv()
    await source.close()
    await sink.close()


def peers_main(pipe: Connection, count: int, rate: int) -> None:
    """Child process entry point."""
    asyncio.run(run_peers(pipe, opus_packets(250), count, rate))


# -- the relay, in this process ----------------------------------------------------------------


async def relay(mode: str, count: int, rate: int, profile: bool = False) -> tuple[float, int]:
    """Run one relay in ``mode`` ('raw' or 'track'); return (CPU seconds, packets forwarded)."""
    from aiortc import RTCSessionDescription

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=peers_main, args=(child, count, rate), daemon=True)
    process.start()
    relay_in, relay_out = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    tracks: list[Any] = []
    relay_in.on("track", tracks.append)
    try:
        await relay_in.setRemoteDescription(RTCSessionDescription(*parent.recv()))
        receiver = relay_in.getTransceivers()[0].receiver
        assert isinstance(receiver, RTCRtpReceiver)
        if mode == "raw":
            receiver.enable_raw()
            relay_out.addTransceiver("audio", direction="sendonly")
        else:
            relay_out.addTrack(tracks[0])
        await relay_in.setLocalDescription(await relay_in.createAnswer())
        parent.send(description(relay_in))
        await relay_out.setLocalDescription(await relay_out.createOffer())
        parent.send(description(relay_out))
        await relay_out.setRemoteDescription(RTCSessionDescription(*parent.recv()))
        await wait_connected(relay_in, relay_out)
        if mode == "raw":
            sender = relay_out.getTransceivers()[0].sender
            assert isinstance(sender, RTCRtpSender)
            RtpFanOut(receiver).add(sender)
        await readable(parent)
        parent.recv()  # ready
        profiler = cProfile.Profile() if profile else None
        cpu = time.process_time()
        times = resource.getrusage(resource.RUSAGE_SELF)
        if profiler:
            profiler.enable()
        parent.send("go")
        await readable(parent)
        if profiler:
            profiler.disable()
        cpu = time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_SELF)
        forwarded = int(parent.recv())
        print(
            f"  {mode} at {rate} packets/s: {forwarded}/{count} forwarded, "
            f"user {1e6 * (after.ru_utime - times.ru_utime) / max(1, forwarded):.1f} µs + "
            f"system {1e6 * (after.ru_stime - times.ru_stime) / max(1, forwarded):.1f} µs "
            "per packet"
        )
        parent.send("done")
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return cpu, forwarded
    finally:
        await relay_in.close()
        await relay_out.close()
        process.join(10)


def main() -> None:
    """Measure both paths and print the figures, JSON last."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer packets")
    parser.add_argument("--profile", action="store_true", help="profile the raw relay")
    args = parser.parse_args()
    raw_count, track_count, single_count = (2000, 600, 100) if args.quick else (6000, 1500, 250)

    raw_cpu, raw_n = asyncio.run(relay("raw", raw_count, RATE, args.profile))
    track_cpu, track_n = asyncio.run(relay("track", track_count, RATE))
    single_cpu, single_n = asyncio.run(relay("raw", single_count, 50))
    raw_us = 1e6 * raw_cpu / max(1, raw_n)
    track_us = 1e6 * track_cpu / max(1, track_n)
    single_us = 1e6 * single_cpu / max(1, single_n)
    print(f"raw relay (munge + SRTP, no codec): {raw_us:.1f} µs CPU per packet at {RATE}/s")
    print(f"track relay (decode + encode):      {track_us:.1f} µs CPU per packet at {RATE}/s")
    print(f"ratio: {track_us / raw_us:.1f}x")
    print(f"raw relay, one lone stream (50/s, cold caches): {single_us:.1f} µs per packet")
    print(
        json.dumps(
            {
                "raw_us_per_packet": round(raw_us, 2),
                "track_us_per_packet": round(track_us, 2),
                "ratio": round(track_us / raw_us, 1),
                "packets_per_second": RATE,
                "raw_packets": raw_n,
                "track_packets": track_n,
                "raw_single_stream_us_per_packet": round(single_us, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
