"""DTLS handshake time: the library (ECDSA, RSA-4096) at MTU 1200 vs aiortc's default (ECDSA).

Each handshake runs two DTLS transports over an in-process datagram path (no loss), timed from
start to both sides connected; certificates are generated once, before timing. Prints readable
figures, then one JSON line: ecdsa_ms, rsa4096_ms, aiortc_ecdsa_ms (medians), and
max_datagram_bytes (largest DTLS datagram the library sent).

    python benchmarks/dtls_handshake.py [--quick] [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiortc

from tests.dtls_support import Link, handshake, make_transport, parameters
from webrtc_ext import RTCCertificate

MTU = 1200


async def one_handshake(
    server_cert: aiortc.RTCCertificate, client_cert: aiortc.RTCCertificate, plain: bool
) -> tuple[float, int]:
    """Milliseconds to connect both sides, and the largest DTLS datagram sent."""
    link = Link()
    client = make_transport(link.client, client_cert, "client", plain_aiortc=plain, mtu=MTU)
    server = make_transport(link.server, server_cert, "server", plain_aiortc=plain, mtu=MTU)
    started = time.perf_counter()
    ok = await handshake(client, server, parameters(server_cert), parameters(client_cert), 30)
    elapsed = 1000 * (time.perf_counter() - started)
    if not ok:
        raise RuntimeError("handshake did not complete")
    await client.stop()
    await server.stop()
    link.close()
    largest = max(len(d.data) for d in link.datagrams if 19 < d.data[0] < 64)
    return elapsed, largest


async def measure(runs: int) -> dict[str, float | int]:
    ecdsa = RTCCertificate.generateCertificate()
    rsa4096 = RTCCertificate.generateCertificate({"name": "RSA", "modulusLength": 4096})
    aiortc_server = aiortc.RTCCertificate.generateCertificate()
    aiortc_client = aiortc.RTCCertificate.generateCertificate()
    peer = RTCCertificate.generateCertificate()
    cases = {
        "ecdsa_ms": (ecdsa, peer, False),
        "rsa4096_ms": (rsa4096, peer, False),
        "aiortc_ecdsa_ms": (aiortc_server, aiortc_client, True),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    largest: dict[str, int] = {name: 0 for name in cases}
    for _ in range(runs):  # interleaved, so machine load hits every case alike
        for name, (server_cert, client_cert, plain) in cases.items():
            elapsed, size = await one_handshake(server_cert, client_cert, plain)
            times[name].append(elapsed)
            largest[name] = max(largest[name], size)
    result: dict[str, float | int] = {
        name: round(statistics.median(values), 2) for name, values in times.items()
    }
    result["max_datagram_bytes"] = max(largest["ecdsa_ms"], largest["rsa4096_ms"])
    result["aiortc_max_datagram_bytes"] = largest["aiortc_ecdsa_ms"]
    result["runs"] = runs
    for name, values in times.items():
        print(
            f"{name[:-3]:>14}: median {statistics.median(values):7.2f} ms  "
            f"min {min(values):7.2f}  max {max(values):7.2f}  "
            f"largest datagram {largest[name]} B  ({runs} handshakes)"
        )
    ratio = result["rsa4096_ms"] / result["aiortc_ecdsa_ms"]
    print(
        f"RSA-4096 vs aiortc ECDSA: x{ratio:.2f}; "
        f"ECDSA vs aiortc ECDSA: x{result['ecdsa_ms'] / result['aiortc_ecdsa_ms']:.2f}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 handshakes per case")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    result = asyncio.run(measure(5 if args.quick else args.runs))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
