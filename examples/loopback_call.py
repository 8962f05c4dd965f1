"""A complete audio call between two webrtc_ext peer connections over loopback.

Prints how ICE chose its path and how long the first audio took. Run:

    python examples/loopback_call.py [--nomination aggressive|regular] [--lite]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

from webrtc_ext import PeerConnectionConfig, RTCPeerConnection


async def call(nomination: str, lite: bool, seconds: float) -> None:
    config = PeerConnectionConfig(host_addresses=["127.0.0.1"], nomination=nomination)
    caller = RTCPeerConnection(config)
    callee = RTCPeerConnection(config.with_changes(ice_lite=lite))
    caller.addTrack(AudioStreamTrack())
    callee.addTransceiver("audio", direction="recvonly")
    first_audio = asyncio.get_running_loop().create_future()
    frames = 0
    readers: list[asyncio.Future[None]] = []

    @callee.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        async def read() -> None:
            nonlocal frames
            while True:
                try:
                    await track.recv()
                except MediaStreamError:
                    return
                frames += 1
                if not first_audio.done():
                    first_audio.set_result(time.monotonic())

        readers.append(asyncio.ensure_future(read()))

    await caller.setLocalDescription(await caller.createOffer())
    await callee.setRemoteDescription(caller.localDescription)
    await callee.setLocalDescription(await callee.createAnswer())
    started = time.monotonic()
    await caller.setRemoteDescription(callee.localDescription)
    arrived = await asyncio.wait_for(first_audio, 10)
    print(f"nomination={nomination} callee ice-lite={lite}")
    print(f"first audio frame {1000 * (arrived - started):.1f} ms after applying the answer")
    for transport in caller.ice_transports:
        for pair in transport.candidate_pairs():
            print(
                f"  pair {pair.local.host}:{pair.local.port}"
                f" -> {pair.remote.host}:{pair.remote.port}"
                f" state={pair.state} nominated={pair.nominated} selected={pair.selected}"
                f" requests={pair.requests_sent} responses={pair.responses_received}"
            )
    await asyncio.sleep(seconds)
    print(f"{frames} audio frames received in {seconds:.1f} s")
    await caller.close()
    await callee.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nomination", choices=["aggressive", "regular"], default="aggressive")
    parser.add_argument("--lite", action="store_true", help="make the callee an ICE-lite agent")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    asyncio.run(call(args.nomination, args.lite, args.seconds))


if __name__ == "__main__":
    main()
