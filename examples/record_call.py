"""Record a loopback audio call into one diagnostic file, then summarise and chart it.

Run:

    python examples/record_call.py [--seconds 5] [--out call.json.gz] [--charts charts/]

The same file opens with ``webrtc-diag call.json.gz --charts charts/``. Charts need matplotlib,
from the ``[diag]`` extra (``pip install '.[diag]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

from webrtc_ext import PeerConnectionConfig, RTCPeerConnection
from webrtc_ext.stats import StatsRecorder, format_summary, load_diagnostic_file


async def drain(track: MediaStreamTrack) -> None:
    """Consume a received track (aiortc decodes only what is read)."""
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


async def record(seconds: float, out: str) -> None:
    config = PeerConnectionConfig(host_addresses=["127.0.0.1"])
    caller, callee = RTCPeerConnection(config), RTCPeerConnection(config)
    recorder = StatsRecorder(out, interval=0.5)
    recorder.record(caller, "caller")
    recorder.record(callee, "callee")
    readers: list[asyncio.Task[None]] = []
    callee.on("track", lambda track: readers.append(asyncio.ensure_future(drain(track))))
    caller.addTrack(AudioStreamTrack())
    await caller.setLocalDescription(await caller.createOffer())
    await callee.setRemoteDescription(caller.localDescription)
    await callee.setLocalDescription(await callee.createAnswer())
    await caller.setRemoteDescription(callee.localDescription)
    await asyncio.sleep(seconds)
    await caller.close()
    await callee.close()  # the last recorded connection: the file is written now
    for reader in readers:
        reader.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", default="call.json.gz")
    parser.add_argument("--charts", help="directory for PNG charts (needs matplotlib)")
    args = parser.parse_args()
    asyncio.run(record(args.seconds, args.out))
    diagnostic = load_diagnostic_file(args.out)
    print(format_summary(diagnostic))
    if args.charts:
        from webrtc_ext.stats.charts import ChartsUnavailable, draw_charts

        try:
            paths = draw_charts(diagnostic, args.charts)
        except ChartsUnavailable as exc:
            raise SystemExit(f"record_call.py: {exc}") from None
        for path in paths:
            print("chart:", path)


if __name__ == "__main__":
    main()
