"""Bad input and wrong fingerprints: dropped or failed cleanly, never an escaping exception."""

from __future__ import annotations

import asyncio
import gc
import random
import struct
from typing import Any

import pytest

from tests.dtls_support import Link, carries_media, handshake, make_transport, parameters
from tests.stats_support import install_filter
from tests.support import LOOPBACK
from webrtc_ext import RTCCertificate, RTCDtlsTransport, RTCPeerConnection

pytestmark = pytest.mark.integration


class DataCollector:
    """What the SCTP transport would be: the receiver of decrypted application data."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def _handle_data(self, data: bytes) -> None:
        self.messages.append(data)


def record(content_type: int, epoch: int, sequence: int, fragment: bytes) -> bytes:
    return (
        struct.pack("!BHH", content_type, 0xFEFD, epoch)
        + sequence.to_bytes(6, "big")
        + (struct.pack("!H", len(fragment)) + fragment)
    )


def bad_datagrams(rng: random.Random) -> list[bytes]:
    """Truncated, oversized and garbage datagrams, each starting like DTLS (RFC 7983)."""
    handshake_like = record(22, 0, 9, bytes(40))
    datagrams = [
        handshake_like[:-5],  # truncated record
        handshake_like[:7],  # truncated header
        record(23, 1, 5, b"")[:11] + b"\xff\xff" + bytes(60),  # length over 2^14 + 2048
        record(23, 1, 77, rng.randbytes(20_000)),  # oversized datagram: record over the limit
        record(22, 0, 3, rng.randbytes(200)),  # garbage handshake record
        record(23, 1, 1000, rng.randbytes(100)),  # garbage application data (bad MAC)
        record(21, 1, 1001, rng.randbytes(18)),  # garbage encrypted alert
        record(20, 0, 4, b"\x01") + b"\x00",  # whole record plus a stray byte
    ]
    for _ in range(200):
        datagrams.append(bytes([rng.randint(20, 63)]) + rng.randbytes(rng.randint(0, 300)))
    return datagrams


def loop_errors() -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
    return errors


async def test_malformed_and_replayed_records_are_dropped_without_exceptions() -> None:
    errors = loop_errors()
    rng = random.Random(7)
    certificate = RTCCertificate.generateCertificate()
    link = Link()
    client = make_transport(link.client, certificate, "client")
    server = make_transport(link.server, certificate, "server")
    assert isinstance(client, RTCDtlsTransport) and isinstance(server, RTCDtlsTransport)
    received = DataCollector()
    server._register_data_receiver(received)
    for datagram in bad_datagrams(rng)[:8]:  # already waiting when the handshake starts
        link.server.inject(datagram)
        link.client.inject(datagram)

    params = parameters(certificate)
    assert await handshake(client, server, params, params, 30)

    await client._send_data(b"once")
    await asyncio.sleep(0.1)
    application = [d.data for d in link.datagrams if d.sender == "client" and d.data[0] == 23]
    replays = [d.data for d in link.datagrams if d.sender == "client" and 19 < d.data[0] < 64]
    for datagram in bad_datagrams(rng) + replays + application * 3:
        link.server.inject(datagram)
        link.client.inject(datagram)
    await asyncio.sleep(0.5)

    assert client.state == server.state == "connected"
    assert received.messages == [b"once"]  # the replayed record was not delivered again
    assert await carries_media(client, server) == 10
    await client._send_data(b"still working")
    await asyncio.sleep(0.1)
    assert received.messages == [b"once", b"still working"]
    assert server.counters.datagrams_dropped >= 5
    assert server._task is not None and not server._task.done()
    assert errors == []
    await client.stop()
    await server.stop()


@pytest.mark.parametrize("checker", ["client", "server"])
async def test_wrong_fingerprint_fails_both_sides_cleanly(checker: str) -> None:
    """The side given a wrong SDP fingerprint refuses the certificate during the handshake;
    its alert fails the peer too, instead of leaving it waiting."""
    errors = loop_errors()
    client_cert = RTCCertificate.generateCertificate()
    server_cert = RTCCertificate.generateCertificate()
    impostor = RTCCertificate.generateCertificate()
    link = Link()
    client = make_transport(link.client, client_cert, "client")
    server = make_transport(link.server, server_cert, "server")
    assert isinstance(client, RTCDtlsTransport) and isinstance(server, RTCDtlsTransport)
    client_sees = parameters(impostor if checker == "client" else server_cert)
    server_sees = parameters(impostor if checker == "server" else client_cert)

    assert not await handshake(client, server, client_sees, server_sees, 20)

    refusing, refused = (client, server) if checker == "client" else (server, client)
    assert refusing.state == "failed"
    assert refusing.error is not None
    assert refusing.error.errorDetail == "fingerprint-failure"
    assert "does not match" in refusing.error.message
    assert refused.state == "failed"
    assert refused.error is not None and "alert" in refused.error.message
    assert errors == []


@pytest.mark.parametrize("closing", ["offerer", "answerer"])
async def test_close_during_the_handshake_ends_the_transport_without_stray_errors(
    closing: str,
) -> None:
    """aiortc's ``close()`` while DTLS waits for the peer: no "Task exception was never
    retrieved … ConnectionError", and the transport ends ``closed`` or ``failed``, not stuck in
    ``connecting``."""
    errors = loop_errors()
    offerer, answerer = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    offerer.addTransceiver("audio")
    try:
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        for pc in (offerer, answerer):  # ICE connects, DTLS never gets a datagram through
            install_filter(pc, lambda data: not 19 < data[0] < 64)
        await offerer.setRemoteDescription(answerer.localDescription)
        pc = offerer if closing == "offerer" else answerer
        transport = pc.getTransceivers()[0].receiver.transport
        for _ in range(500):
            if transport.state == "connecting":
                break
            await asyncio.sleep(0.01)
        assert transport.state == "connecting"
        await pc.close()
        for _ in range(100):  # the handshake task notices the closed transport
            if transport.state in ("closed", "failed"):
                break
            await asyncio.sleep(0.01)
        assert transport.state in ("closed", "failed")
        assert pc.connectionState == "closed"
    finally:
        await offerer.close()
        await answerer.close()
    await asyncio.sleep(0.1)
    gc.collect()  # a failed, never-awaited task reports its exception when collected
    await asyncio.sleep(0)
    assert [e.get("exception") or e.get("message") for e in errors] == []
