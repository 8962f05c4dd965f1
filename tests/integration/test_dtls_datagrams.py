"""DTLS over an in-process path: every datagram within the MTU, whole records, lossy paths.

The path records each datagram and drops some (see ``tests/dtls_support.py``); the transports
are the library's (and, as the baseline, aiortc's own), doing real DTLS and SRTP.
"""

from __future__ import annotations

import aiortc
import pytest

from tests.dtls_support import (
    Link,
    ca_chain,
    carries_media,
    drop_larger_than,
    handshake,
    make_transport,
    parameters,
    random_dtls_loss,
)
from webrtc_ext import RTCCertificate, RTCDtlsTransport
from webrtc_ext.dtls_packer import DTLS_RECORD_HEADER_LENGTH, parse_datagram

pytestmark = pytest.mark.integration

MTU = 1200


@pytest.fixture(scope="module")
def certificates() -> dict[str, RTCCertificate]:
    """ECDSA (aiortc's default kind), RSA-4096, and a leaf + intermediate + root chain."""
    return {
        "ecdsa": RTCCertificate.generateCertificate(),
        "rsa4096": RTCCertificate.generateCertificate({"name": "RSA", "modulusLength": 4096}),
        "chain3": ca_chain()[0],
    }


def dtls_datagrams(link: Link) -> list[bytes]:
    """The DTLS datagrams (first byte 20-63, RFC 7983) that went on the wire."""
    return [d.data for d in link.datagrams if 19 < d.data[0] < 64]


def handshake_fragments(datagram: bytes) -> list[tuple[int, int, int]]:
    """(length, fragment_offset, fragment_length) of each plaintext handshake fragment."""
    fragments = []
    offset = 0
    for header in parse_datagram(datagram):
        body = datagram[offset + DTLS_RECORD_HEADER_LENGTH : offset + header.record_length]
        if header.content_type == 22 and header.epoch == 0:
            # msg_type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3)
            fragments.append(
                (
                    int.from_bytes(body[1:4], "big"),
                    int.from_bytes(body[6:9], "big"),
                    int.from_bytes(body[9:12], "big"),
                )
            )
        offset += header.record_length
    return fragments


@pytest.mark.parametrize("kind", ["ecdsa", "rsa4096", "chain3"])
@pytest.mark.parametrize("library_role", ["client", "server"])
async def test_every_handshake_datagram_fits_the_mtu_and_holds_whole_records(
    certificates: dict[str, RTCCertificate], kind: str, library_role: str
) -> None:
    certificate = certificates[kind]
    peer = RTCCertificate.generateCertificate()
    link = Link()
    client_cert, server_cert = (
        (certificate, peer) if library_role == "client" else (peer, certificate)
    )
    client = make_transport(link.client, client_cert, "client")
    server = make_transport(link.server, server_cert, "server")

    assert await handshake(client, server, parameters(server_cert), parameters(client_cert), 30)
    assert await carries_media(client, server) == 10

    datagrams = dtls_datagrams(link)
    assert all(len(d) <= MTU for d in datagrams), sorted(len(d) for d in datagrams)
    for datagram in datagrams:
        parse_datagram(datagram)  # raises unless the datagram is whole records only
    fragments = [f for d in datagrams for f in handshake_fragments(d)]
    if kind != "ecdsa":
        # The big Certificate message went out in pieces (RFC 6347 §4.2.3).
        assert any(frag_len < length for length, _off, frag_len in fragments)
    await client.stop()
    await server.stop()


async def test_path_dropping_datagrams_over_1200_bytes_library_vs_aiortc(
    certificates: dict[str, RTCCertificate], record_property: object
) -> None:
    certificate = certificates["rsa4096"]
    peer = RTCCertificate.generateCertificate()
    outcomes: dict[str, str] = {}

    for rsa_side in ("server", "client"):  # the RSA-4096 certificate in either role
        link = Link(drop=drop_larger_than(MTU))
        server_cert, client_cert = (
            (certificate, peer) if rsa_side == "server" else (peer, certificate)
        )
        client = make_transport(link.client, client_cert, "client")
        server = make_transport(link.server, server_cert, "server")
        connected = await handshake(
            client, server, parameters(server_cert), parameters(client_cert), 30
        )
        received = await carries_media(client, server) if connected else 0
        outcomes[f"library_rsa_{rsa_side}"] = f"connected={connected} rtp_received={received}/10"
        assert connected and received == 10
        assert not any(d.dropped for d in link.datagrams)
        await client.stop()
        await server.stop()

    # Baseline 1: aiortc as shipped, its own certificate class holding the RSA-4096 key.
    plain_cert = aiortc.RTCCertificate(certificate._key, certificate.certificate)  # type: ignore[arg-type]
    link = Link(drop=drop_larger_than(MTU))
    client = make_transport(link.client, peer, "client", plain_aiortc=True)
    server = make_transport(link.server, plain_cert, "server", plain_aiortc=True)
    connected = await handshake(client, server, parameters(certificate), parameters(peer), 8)
    outcomes["aiortc"] = f"connected={connected} state={client.state}/{server.state}"
    assert not connected
    await client.stop()
    await server.stop()
    link.close()

    # Baseline 2: aiortc's transport with RSA ciphers enabled (our certificate object), so
    # only its datagram handling differs: the 1500-byte reads are dropped by the path.
    link = Link(drop=drop_larger_than(MTU))
    client = make_transport(link.client, peer, "client", plain_aiortc=True)
    server = make_transport(link.server, certificate, "server", plain_aiortc=True)
    connected = await handshake(client, server, parameters(certificate), parameters(peer), 8)
    dropped = [len(d.data) for d in link.datagrams if d.dropped]
    outcomes["aiortc_rsa_ciphers"] = f"connected={connected} dropped_sizes={sorted(set(dropped))}"
    assert not connected and dropped
    await client.stop()
    await server.stop()
    link.close()
    record_property("outcomes", outcomes)  # type: ignore[operator]
    print(outcomes)


@pytest.mark.parametrize(("kind", "seed"), [("ecdsa", 1), ("ecdsa", 2), ("rsa4096", 3)])
async def test_handshake_completes_despite_30_percent_datagram_loss(
    certificates: dict[str, RTCCertificate], kind: str, seed: int
) -> None:
    certificate = certificates[kind]
    peer = RTCCertificate.generateCertificate()
    link = Link(drop=random_dtls_loss(0.3, seed))
    client = make_transport(link.client, peer, "client", handshake_timeout=90)
    server = make_transport(link.server, certificate, "server", handshake_timeout=90)

    assert await handshake(client, server, parameters(certificate), parameters(peer), 100)
    assert any(d.dropped for d in link.datagrams)
    assert isinstance(client, RTCDtlsTransport) and isinstance(server, RTCDtlsTransport)
    assert client.counters.retransmissions + server.counters.retransmissions > 0
    # Bounded: OpenSSL retransmits at 1, 2, 4, ... s; a handful of flights at most.
    assert len(dtls_datagrams(link)) < 60
    assert all(len(d) <= MTU for d in dtls_datagrams(link))
    await client.stop()
    await server.stop()


@pytest.mark.parametrize("lost", ["server final flight", "client final flight"])
async def test_a_lost_final_flight_is_retransmitted(
    certificates: dict[str, RTCCertificate], lost: str
) -> None:
    """The flight holding ChangeCipherSpec (content type 20) is lost once, then resent."""
    certificate = certificates["rsa4096"]
    peer = RTCCertificate.generateCertificate()
    sender = lost.split()[0]
    dropped: list[bytes] = []

    def drop_first_ccs(name: str, data: bytes) -> bool:
        if name != sender or dropped or not (19 < data[0] < 64):
            return False
        if any(h.content_type == 20 for h in parse_datagram(data)):
            dropped.append(data)
            return True
        return False

    link = Link(drop=drop_first_ccs)
    client = make_transport(link.client, peer, "client")
    server = make_transport(link.server, certificate, "server")
    assert await handshake(client, server, parameters(certificate), parameters(peer), 30)
    assert dropped
    assert await carries_media(server, client) == 10
    assert await carries_media(client, server) == 10
    await client.stop()
    await server.stop()


async def test_a_dead_path_retransmits_with_doubling_timer_then_fails_with_timeout() -> None:
    certificate = RTCCertificate.generateCertificate()
    link = Link(drop=lambda name, data: True)
    client = make_transport(link.client, certificate, "client", handshake_timeout=7.5)
    server = make_transport(link.server, certificate, "server", handshake_timeout=7.5)
    errors = []
    client.on("error", errors.append)

    assert not await handshake(client, server, parameters(certificate), parameters(certificate), 30)
    assert isinstance(client, RTCDtlsTransport) and isinstance(server, RTCDtlsTransport)
    assert client.state == server.state == "failed"
    assert client.error is not None and client.error.errorDetail == "dtls-failure"
    assert "timed out" in client.error.message
    assert errors == [client.error]
    # ClientHello resent at 1, 3 and 7 s (timer 1 s, doubling); a fixed 1 s timer would
    # have resent it 7 times in 7.5 s.
    assert 2 <= client.counters.retransmissions <= 4
    hellos = [d for d in link.datagrams if d.sender == "client"]
    assert len(hellos) == client.counters.retransmissions + 1
