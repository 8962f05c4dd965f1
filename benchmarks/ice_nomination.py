"""Time to first media with aggressive vs regular nomination, toward a peer that waits for it.

The remote peer is Pion (controlled; it starts DTLS and media only once a pair is nominated),
built offline from Debian's Go packages, or, without Go, a webrtc_ext peer as the controlled
side. webrtc_ext is the controlling offerer. For each mode it measures, ``--runs`` times, the
time from applying the answer to the first RTP packet received.

The network has several candidate pairs: our host candidates on 127.0.0.1, 127.0.0.2,
127.0.0.3 and ::1 against the remote's (Pion gathers 127.0.0.1 only: it does not use ::1), plus
(scenario ``unreachable``, the one in the JSON line) one remote host candidate of the highest
priority that never answers, as an address of another network would. Regular nomination has
to wait for that check (up to ``regular_nomination_timeout``) before nominating; aggressive
nominates with the first check.

    python benchmarks/ice_nomination.py [--runs 20] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from aiortc.rtp import RtpPacket

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.interop.pion import build_pion_peer, missing_toolchain, pion_peer
from webrtc_ext import NominationMode, PeerConnectionConfig, RTCPeerConnection

HOST_ADDRESSES = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "::1"]
FIRST_PACKET_TIMEOUT = 20.0
#: Above any host candidate's priority (type preference 126): checked first by the controlling side.
UNREACHABLE_PRIORITY = 2**31 - 1


class FirstPacketReceiver(RTCRtpReceiver):
    """An RTP receiver that notes when its first RTP packet arrives."""

    def __init__(
        self, kind: str, transport: RTCDtlsTransport, arrived: asyncio.Future[float]
    ) -> None:
        super().__init__(kind, transport)
        self._arrived = arrived

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        if not self._arrived.done():
            self._arrived.set_result(time.monotonic())
        await super()._handle_rtp_packet(packet, arrival_time_ms)


class TimedPeerConnection(RTCPeerConnection):
    """webrtc_ext's peer connection, timing its first RTP packet."""

    def __init__(self, config: PeerConnectionConfig) -> None:
        super().__init__(config)
        self.first_packet: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def _create_rtp_receiver(self, kind: str, transport: RTCDtlsTransport) -> RTCRtpReceiver:
        return FirstPacketReceiver(kind, transport, self.first_packet)


def with_unreachable_candidate(sdp: str, port: int) -> str:
    """``sdp`` with one more host candidate, of the highest priority, that never answers."""
    line = f"a=candidate:unreachable 1 udp {UNREACHABLE_PRIORITY} 127.0.0.1 {port} typ host"
    lines = sdp.split("\r\n")
    first = next(i for i, text in enumerate(lines) if text.startswith("a=candidate:"))
    lines.insert(first, line)
    return "\r\n".join(lines)


Remote = Callable[[RTCSessionDescription], Awaitable[RTCSessionDescription]]
"""Answers an offer."""
RemoteFactory = Callable[[], AbstractAsyncContextManager[Remote]]


@asynccontextmanager
async def pion_remote(executable: Path) -> AsyncIterator[Remote]:
    """A Pion answerer on loopback."""
    async with pion_peer(executable, role="answer", networks="udp4,udp6") as pion:

        async def answer(offer: RTCSessionDescription) -> RTCSessionDescription:
            await pion.send_description(offer)
            return await pion.description()

        yield answer


@asynccontextmanager
async def library_remote() -> AsyncIterator[Remote]:
    """A webrtc_ext answerer (controlled, waits for nomination) sending audio."""
    pc = RTCPeerConnection(PeerConnectionConfig(host_addresses=["127.0.0.1", "::1"]))
    try:

        async def answer(offer: RTCSessionDescription) -> RTCSessionDescription:
            await pc.setRemoteDescription(offer)
            for transceiver in pc.getTransceivers():
                transceiver.direction = "sendonly"
                transceiver.sender.replaceTrack(AudioStreamTrack())
            await pc.setLocalDescription(await pc.createAnswer())
            return pc.localDescription

        yield answer
    finally:
        await pc.close()


async def one_run(
    mode: NominationMode, remote: RemoteFactory, unreachable_port: int | None
) -> float:
    """Milliseconds from applying the answer to the first RTP packet."""
    pc = TimedPeerConnection(PeerConnectionConfig(host_addresses=HOST_ADDRESSES, nomination=mode))
    try:
        async with remote() as answer_offer:
            pc.addTransceiver("audio", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            answer = await answer_offer(pc.localDescription)
            if unreachable_port is not None:
                answer = RTCSessionDescription(
                    sdp=with_unreachable_candidate(answer.sdp, unreachable_port), type="answer"
                )
            applied = time.monotonic()
            await pc.setRemoteDescription(answer)
            first = await asyncio.wait_for(pc.first_packet, FIRST_PACKET_TIMEOUT)
            return 1000 * (first - applied)
    finally:
        await pc.close()


async def scenario(
    name: str, remote: RemoteFactory, runs: int, unreachable: bool
) -> dict[str, float]:
    """Median time to first media per mode, modes interleaved run by run."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # takes the checks of the unreachable candidate
        port = silent.getsockname()[1] if unreachable else None
        times: dict[NominationMode, list[float]] = {m: [] for m in NominationMode}
        for _ in range(runs):
            for mode in NominationMode:
                times[mode].append(await one_run(mode, remote, port))
    medians = {m.value: statistics.median(t) for m, t in times.items()}
    print(f"scenario {name} ({runs} runs per mode):")
    for mode, values in times.items():
        print(
            f"  {mode.value:10s} median {medians[mode.value]:7.1f} ms"
            f"   min {min(values):7.1f}   max {max(values):7.1f}"
        )
    return medians


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 runs per mode")
    parser.add_argument(
        "--peer", choices=["auto", "pion", "webrtc_ext"], default="auto", help="the remote peer"
    )
    args = parser.parse_args()
    runs = 5 if args.quick else args.runs

    with tempfile.TemporaryDirectory() as workdir:
        peer = args.peer
        reason = missing_toolchain()
        if peer == "auto":
            peer = "pion" if reason is None else "webrtc_ext"
            if reason is not None:
                print(f"Pion unavailable ({reason}); the remote is a webrtc_ext peer")
        remote: RemoteFactory = library_remote
        if peer == "pion":
            executable = build_pion_peer(Path(workdir))

            def remote() -> AbstractAsyncContextManager[Remote]:
                return pion_remote(executable)

        print(f"remote peer: {peer} (controlled, waits for nomination)")
        plain = await scenario("loopback-pairs", remote, runs, unreachable=False)
        main_figures = await scenario("unreachable", remote, runs, unreachable=True)

    result = {
        "peer": peer,
        "runs": runs,
        "aggressive_ms": round(main_figures["aggressive"], 1),
        "regular_ms": round(main_figures["regular"], 1),
        "ratio": round(main_figures["regular"] / main_figures["aggressive"], 2),
        "loopback_pairs_aggressive_ms": round(plain["aggressive"], 1),
        "loopback_pairs_regular_ms": round(plain["regular"], 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
