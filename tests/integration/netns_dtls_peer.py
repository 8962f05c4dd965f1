"""Run inside a network namespace whose path drops UDP datagrams over 1200 bytes (see
``test_dtls_netns.py``): a library call and a plain-aiortc call, both with one RSA-4096
certificate. Prints one JSON line with the outcomes."""

from __future__ import annotations

import asyncio
import json
import socket
import sys

import aiortc
from aiortc.mediastreams import AudioStreamTrack

from tests.support import audio_call
from webrtc_ext import PeerConnectionConfig, RTCCertificate, RTCDtlsTransport


def path_drops_over(address: str, mtu: int) -> dict[str, bool]:
    """Which of a ``mtu``- and an ``mtu + 1``-byte datagram to ourselves arrived."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind((address, 0))
        rx.settimeout(0.5)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for size in (mtu, mtu + 1):
                tx.sendto(bytes(size), rx.getsockname())
        arrived = {}
        for size in (mtu, mtu + 1):
            arrived[str(size)] = False
        try:
            while True:
                arrived[str(len(rx.recv(4096)))] = True
        except TimeoutError:
            pass
        return arrived


async def library_call(address: str, certificate: RTCCertificate) -> dict[str, object]:
    config = PeerConnectionConfig(host_addresses=[address], certificates=[certificate])
    try:
        async with audio_call(config, PeerConnectionConfig(host_addresses=[address]), 20) as call:
            transports = [
                pc.getTransceivers()[0].receiver.transport for pc in (call.answerer, call.offerer)
            ]
            sizes = [
                t.counters.max_datagram_bytes for t in transports if isinstance(t, RTCDtlsTransport)
            ]
            return {"connected": True, "audio": True, "max_datagram_bytes": max(sizes)}
    except TimeoutError:
        return {"connected": False, "audio": False}


async def aiortc_call(certificate: RTCCertificate, wait: float) -> dict[str, object]:
    """aiortc 1.16 as shipped, its certificate list set to ours (RSA ciphers enabled), so the
    only difference from the library is how DTLS output becomes datagrams."""
    no_stun = aiortc.RTCConfiguration(iceServers=[])
    offerer, answerer = aiortc.RTCPeerConnection(no_stun), aiortc.RTCPeerConnection(no_stun)
    offerer._RTCPeerConnection__certificates = [certificate]  # type: ignore[attr-defined]
    try:
        offerer.addTrack(AudioStreamTrack())
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        for _ in range(int(wait * 10)):
            if offerer.connectionState in ("connected", "failed"):
                break
            await asyncio.sleep(0.1)
        return {
            "connected": offerer.connectionState == "connected",
            "state_after_s": [offerer.connectionState, wait],
            "ice": offerer.iceConnectionState,
        }
    finally:
        await offerer.close()
        await answerer.close()


async def main(address: str) -> None:
    certificate = RTCCertificate.generateCertificate({"name": "RSA", "modulusLength": 4096})
    result = {
        "path": path_drops_over(address, 1200),
        "library": await library_call(address, certificate),
        "aiortc": await aiortc_call(certificate, 10.0),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
