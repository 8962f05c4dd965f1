"""Size of a diagnostic file per leg-hour: the columnar schema 3 against Chromium's layout.

A real audio call between two library peer connections runs for a few seconds to take a real
``getStats()`` report (13 stats objects, ~150 fields). From it an hour of one-second samples is
made: counters grow by what a 50 packet/s Opus stream adds each second (with noise), times are a
second apart with a few milliseconds of scheduling jitter, and measured values (jitter, round-trip
times, audio levels) vary as floats. The same hour is recorded by :class:`RecordingCore`, written
in both layouts, loaded back and compared value by value.

Run: ``python benchmarks/diagnostic_size.py [--quick]``. Last line: JSON with
``mb_per_leg_hour`` (schema 3), ``chromium_mb_per_leg_hour`` (schema 2, the baseline),
``ratio``, ``memory_mb_per_leg_hour`` (the recorder's live memory) and ``identical``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from aiortc.mediastreams import AudioStreamTrack

from webrtc_ext import PeerConnectionConfig, RTCPeerConnection
from webrtc_ext.stats.dump import load_diagnostic_file, write_diagnostic_file
from webrtc_ext.stats.recorder import RecordingCore, build_dump

T0 = 1_764_720_000_000.0


async def real_report() -> dict[str, dict[str, Any]]:
    """One ``getStats()`` report of a connected audio call (both directions)."""
    config = PeerConnectionConfig(host_addresses=["127.0.0.1"])
    caller, callee = RTCPeerConnection(config), RTCPeerConnection(config)
    caller.addTrack(AudioStreamTrack())
    callee.addTrack(AudioStreamTrack())
    await caller.setLocalDescription(await caller.createOffer())
    await callee.setRemoteDescription(caller.localDescription)
    await callee.setLocalDescription(await callee.createAnswer())
    await caller.setRemoteDescription(callee.localDescription)
    await asyncio.sleep(6)  # long enough for RTCP reports both ways
    report = await caller.getStats()
    await caller.close()
    await callee.close()
    return {key: dict(value) for key, value in report.items()}


GROWTH = {"packets": 50, "bytes": 50 * 75, "headerBytes": 50 * 12, "Samples": 48000}


def evolve(report: dict[str, dict[str, Any]], second: int, rng: random.Random) -> dict[str, Any]:
    """The report as it would read ``second`` seconds later."""
    now = sample_time(second, rng)
    out: dict[str, dict[str, Any]] = {}
    for stats_id, stats in report.items():
        sample = dict(stats)
        sample["timestamp"] = now
        for name, value in stats.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if name.startswith(("packets", "bytes", "headerBytes")) and name != "packetsLost":
                key = next(k for k in GROWTH if name.startswith(k))
                sample[name] = value + second * GROWTH[key] + rng.randrange(0, 3)
            elif name == "packetsLost":
                sample[name] = value + second // 300
            elif name in ("jitter", "roundTripTime", "currentRoundTripTime", "fractionLost"):
                sample[name] = round(rng.uniform(0.0005, 0.03), 6) * (1 + rng.random() / 7)
            elif name.startswith("total") and isinstance(value, float):
                sample[name] = value + second * rng.uniform(0.0009, 0.0011)
            elif name.startswith("last") and name.endswith("Timestamp"):
                sample[name] = now - rng.uniform(0, 20)
            elif name in ("reportsReceived", "reportsSent", "roundTripTimeMeasurements"):
                sample[name] = value + second // 5
        out[stats_id] = sample
    return out


def sample_time(second: int, rng: random.Random) -> float:
    """When a sample is taken: a second apart, late by a few ms, at ``time.time()``'s precision."""
    return (T0 + 1000.0 * second + rng.uniform(0, 4) + rng.random() * 1e-3) / 1000.0 * 1000.0


def record_hour(report: dict[str, dict[str, Any]], seconds: int) -> RecordingCore:
    rng = random.Random(7)
    core = RecordingCore("whatsapp", {"iceTransportPolicy": "all"})
    core.event(T0, "setRemoteDescription", "type: offer, sdp: v=0...")
    for second in range(seconds):
        sample = evolve(report, second, rng)
        core.sample(sample_time(second, rng), sample)
    return core


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="record 10 minutes, not an hour")
    seconds = 600 if parser.parse_args().quick else 3600
    hours = seconds / 3600.0

    report = asyncio.run(real_report())
    fields = sum(len(v) for v in report.values())
    print(f"real getStats() report: {len(report)} stats objects, {fields} fields")

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    core = record_hour(report, seconds)
    memory_mb = (tracemalloc.get_traced_memory()[0] - before) / 1e6 / hours
    tracemalloc.stop()

    sizes: dict[str, float] = {}
    loaded = {}
    with tempfile.TemporaryDirectory() as directory:
        for layout in ("chromium", "columnar"):
            path = Path(directory) / f"{layout}.json.gz"
            started = time.process_time()
            write_diagnostic_file(path, build_dump([core], T0, layout=layout))
            written = time.process_time() - started
            sizes[layout] = path.stat().st_size / 1e6 / hours
            started = time.process_time()
            loaded[layout] = load_diagnostic_file(path).connections["whatsapp"]
            read = time.process_time() - started
            print(
                f"{layout:>9}: {sizes[layout]:7.3f} MB per leg-hour "
                f"(write {written:.2f} s, load {read:.2f} s of CPU for {seconds} s recorded)"
            )
    old, new = loaded["chromium"], loaded["columnar"]
    identical = old.series.keys() == new.series.keys() and all(
        old.series[k].values == new.series[k].values and old.series[k].times == new.series[k].times
        for k in old.series
    )
    ratio = sizes["chromium"] / sizes["columnar"]
    print(f"columnar is {ratio:.1f}x smaller; every series identical after loading: {identical}")
    print(f"recorder memory while recording: {memory_mb:.2f} MB per leg-hour")
    print(
        json.dumps(
            {
                "seconds_recorded": seconds,
                "mb_per_leg_hour": round(sizes["columnar"], 3),
                "chromium_mb_per_leg_hour": round(sizes["chromium"], 3),
                "ratio": round(ratio, 1),
                "memory_mb_per_leg_hour": round(memory_mb, 2),
                "identical": identical,
            }
        )
    )
    sys.exit(0 if identical else 1)


if __name__ == "__main__":
    main()
