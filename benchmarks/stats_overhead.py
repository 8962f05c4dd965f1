"""Per-packet cost of the media path with and without the stats recorder, in one run.

Two peers in this process send pre-encoded Opus packets (no encoding) through aiortc's normal
send and receive path over loopback. The process CPU time per delivered packet is measured for:

- ``aiortc``: aiortc's own RTCPeerConnection (no RTP tap, nor the library's DTLS and DTMF),
- ``webrtc_ext``: the library's RTCPeerConnection (RTP/RTCP tap on), no recorder,
- ``recorder``: the same with a StatsRecorder sampling both peers every second,
- ``recorder_100ms``: the same sampling every 100 ms (a stress case).

Rounds alternate the configurations; costs are medians over rounds and ratios are medians of
each round's ratio. The last line is JSON with ``overhead_ratio`` = recorder / webrtc_ext
(goal <= 1.05).
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiortc
import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from webrtc_ext import PeerConnectionConfig, RTCPeerConnection
from webrtc_ext.stats.recorder import RecordingCore, StatsRecorder
from webrtc_ext.stats.rtpcounters import RtpCounters

#: A valid 20 ms Opus packet (CELT, silence).
OPUS_FRAME = bytes([0xF8, 0xFF, 0xFE])
TIME_BASE = fractions.Fraction(1, 48000)
LOOPBACK = PeerConnectionConfig(host_addresses=["127.0.0.1"])


class PacketSource(MediaStreamTrack):
    """Pre-encoded Opus packets as fast as the sender takes them, with marks for measuring."""

    kind = "audio"

    def __init__(self, warmup: int, count: int) -> None:
        super().__init__()
        self.warmup, self.count, self.sent = warmup, count, 0
        self.started_cpu: float | None = None
        self.done = asyncio.Event()

    async def recv(self) -> av.Packet:
        if self.sent >= self.count:
            self.done.set()
            raise MediaStreamError
        if self.sent == self.warmup:
            self.started_cpu = time.process_time()
        # Yield to the loop so the receiving side keeps up (no socket buffer overflow).
        await asyncio.sleep(0 if self.sent % 8 else 0.0005)
        packet = av.Packet(OPUS_FRAME)
        packet.pts, packet.time_base = self.sent * 960, TIME_BASE
        self.sent += 1
        return packet


async def _drain(track: MediaStreamTrack) -> None:
    try:
        while True:
            await track.recv()
    except MediaStreamError:
        pass


async def _received(pc: aiortc.RTCPeerConnection) -> int:
    report = await aiortc.RTCPeerConnection.getStats(pc)
    return sum(s.packetsReceived for s in report.values() if s.type == "inbound-rtp")


async def run_once(
    make_pc: Callable[[], aiortc.RTCPeerConnection], interval: float | None, packets: int
) -> float:
    """CPU seconds per delivered packet for one call of ``packets`` packets."""
    warmup = 300
    sender, receiver = make_pc(), make_pc()
    source = PacketSource(warmup, warmup + packets)
    readers: list[asyncio.Task[None]] = []
    receiver.on("track", lambda t: readers.append(asyncio.ensure_future(_drain(t))))
    recorder = None
    directory = tempfile.TemporaryDirectory()
    if interval is not None:
        recorder = StatsRecorder(Path(directory.name) / "bench.json.gz", interval=interval)
        for pc in (sender, receiver):
            assert isinstance(pc, RTCPeerConnection)
            recorder.record(pc)
    try:
        sender.addTrack(source)
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        await asyncio.wait_for(source.done.wait(), 120)
        last = -1
        while (count := await _received(receiver)) != last:
            last = count
            await asyncio.sleep(0.1)
        ended = time.process_time()
        assert source.started_cpu is not None
        delivered = count - warmup
        if delivered < packets * 0.9:
            raise RuntimeError(f"only {delivered} of {packets} packets arrived")
        return (ended - source.started_cpu) / delivered
    finally:
        if recorder is not None:
            await recorder.close()
        await sender.close()
        await receiver.close()
        for reader in readers:
            reader.cancel()
        directory.cleanup()


async def sample_cost(samples: int = 200) -> float:
    """CPU seconds of one recorder sample (getStats + recording) of a live audio call."""
    sender, receiver = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    source = PacketSource(0, 10**9)
    try:
        sender.addTrack(source)
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        while source.sent < 500:
            await asyncio.sleep(0.05)
        core = RecordingCore("bench", {})
        started = time.process_time()
        for i in range(samples):
            core.sample(float(i), await sender.getStats())
        return (time.process_time() - started) / samples
    finally:
        await sender.close()
        await receiver.close()


def tap_cost(packets: int = 50000) -> float:
    """CPU seconds the RTP tap's counting adds to one packet (send side + receive side)."""
    data = aiortc.rtp.RtpPacket(payload_type=111, ssrc=1, payload=OPUS_FRAME * 20)
    wire = [
        aiortc.rtp.RtpPacket(
            payload_type=111, sequence_number=i & 0xFFFF, ssrc=1, payload=data.payload
        ).serialize()
        for i in range(1000)
    ]
    counters = RtpCounters()
    started = time.process_time()
    for i in range(packets):
        counters.rtp_sent(wire[i % 1000], 0.0)
        counters.rtp_received(wire[i % 1000], 0.0)
    return (time.process_time() - started) / packets


async def main(quick: bool) -> dict[str, Any]:
    packets = 3000 if quick else 6000
    rounds = 3 if quick else 7
    configs: dict[str, tuple[Callable[[], aiortc.RTCPeerConnection], float | None]] = {
        "aiortc": (lambda: aiortc.RTCPeerConnection(LOOPBACK.to_aiortc()), None),
        "webrtc_ext": (lambda: RTCPeerConnection(LOOPBACK), None),
        "recorder": (lambda: RTCPeerConnection(LOOPBACK), 1.0),
        "recorder_100ms": (lambda: RTCPeerConnection(LOOPBACK), 0.1),
    }
    results: dict[str, list[float]] = {name: [] for name in configs}
    for round_number in range(rounds):
        for name, (make_pc, interval) in configs.items():
            cost = await run_once(make_pc, interval, packets)
            results[name].append(cost)
            print(f"round {round_number + 1} {name:>15}: {cost * 1e6:7.1f} us CPU per packet")
    median = {name: statistics.median(costs) for name, costs in results.items()}

    def paired(name: str, baseline: str) -> float:
        # Each round's ratio, then the median: pairing cancels slow drifts of the machine.
        ratios = [a / b for a, b in zip(results[name], results[baseline], strict=True)]
        return round(statistics.median(ratios), 3)

    print()
    for name, cost in median.items():
        print(f"median {name:>15}: {cost * 1e6:7.1f} us CPU per packet")
    figures = {
        "packets_per_run": packets,
        "rounds": rounds,
        "us_per_packet_aiortc": round(median["aiortc"] * 1e6, 2),
        "us_per_packet_without_recorder": round(median["webrtc_ext"] * 1e6, 2),
        "us_per_packet_with_recorder": round(median["recorder"] * 1e6, 2),
        "us_per_packet_with_recorder_100ms": round(median["recorder_100ms"] * 1e6, 2),
        "overhead_ratio": paired("recorder", "webrtc_ext"),
        "overhead_ratio_100ms": paired("recorder_100ms", "webrtc_ext"),
        "library_vs_aiortc_ratio": paired("webrtc_ext", "aiortc"),
    }
    figures["us_per_packet_tap_counting"] = round(tap_cost() * 1e6, 2)
    per_sample = await sample_cost()
    # A real voice call: 50 packets/s each way, one sample per second of each connection.
    media_per_second = 2 * 50 * median["webrtc_ext"]
    figures["us_per_sample"] = round(per_sample * 1e6, 1)
    figures["estimated_overhead_ratio_voice_call"] = round(
        (media_per_second + 2 * per_sample) / media_per_second, 4
    )
    print(
        f"one sample (getStats + record) costs {per_sample * 1e6:.0f} us CPU; on a voice call "
        f"(50 packets/s each way, 1 s sampling of both ends) that is "
        f"x{figures['estimated_overhead_ratio_voice_call']}"
    )
    print(
        f"recorder overhead: x{figures['overhead_ratio']} (1 s sampling), "
        f"x{figures['overhead_ratio_100ms']} (100 ms); webrtc_ext (tap, DTLS, DTMF) vs plain "
        f"aiortc: x{figures['library_vs_aiortc_ratio']}; the tap's counting alone "
        f"{figures['us_per_packet_tap_counting']} us per packet"
    )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer packets and rounds")
    result = asyncio.run(main(parser.parse_args().quick))
    print(json.dumps(result))
