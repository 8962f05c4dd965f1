"""An in-process datagram path between two DTLS transports, recording and dropping datagrams.

It stands where the ICE transport would: the DTLS transports call ``_send``/``_recv`` on it, as
they do on aiortc's ``RTCIceTransport``. A drop policy decides which datagrams are lost, and
every datagram is recorded, so tests can check what went on the wire.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import aiortc
from aiortc.rtcdtlstransport import RTCDtlsParameters
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpReceiveParameters,
)
from aiortc.rtp import RtpPacket
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from webrtc_ext import RTCCertificate, RTCDtlsTransport


@dataclass
class Datagram:
    sender: str
    data: bytes
    dropped: bool


DropPolicy = Callable[[str, bytes], bool]


def keep_all(sender: str, data: bytes) -> bool:
    return False


def drop_larger_than(mtu: int) -> DropPolicy:
    """A path whose MTU is ``mtu``: larger datagrams vanish silently."""
    return lambda sender, data: len(data) > mtu


def random_dtls_loss(rate: float, seed: int) -> DropPolicy:
    """Drop each DTLS datagram (first byte 20-63, RFC 7983) with probability ``rate``."""
    rng = random.Random(seed)
    return lambda sender, data: 19 < data[0] < 64 and rng.random() < rate


class LinkEnd:
    """One side of a :class:`Link`: what a DTLS transport sees as its ICE transport."""

    def __init__(self, link: Link, name: str, role: str) -> None:
        self._link = link
        self.name = name
        self.role = role
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def _send(self, data: bytes) -> None:
        self._link.carry(self, data)

    async def _recv(self) -> bytes:
        data = await self.queue.get()
        if data is None:
            raise ConnectionError("link closed")
        return data

    def inject(self, data: bytes) -> None:
        """Deliver ``data`` to this end as if the peer had sent it."""
        self.queue.put_nowait(data)


@dataclass
class Link:
    """Two :class:`LinkEnd` objects joined by a lossy path; records every datagram."""

    drop: DropPolicy = keep_all
    datagrams: list[Datagram] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = LinkEnd(self, "client", "controlled")
        self.server = LinkEnd(self, "server", "controlling")

    def carry(self, sender: LinkEnd, data: bytes) -> None:
        dropped = self.drop(sender.name, data)
        self.datagrams.append(Datagram(sender.name, data, dropped))
        if not dropped:
            (self.server if sender is self.client else self.client).inject(data)

    def close(self) -> None:
        self.client.inject(None)  # type: ignore[arg-type]
        self.server.inject(None)  # type: ignore[arg-type]


def parameters(certificate: aiortc.RTCCertificate) -> RTCDtlsParameters:
    """What the SDP would tell the peer about ``certificate``."""
    return RTCDtlsParameters(fingerprints=certificate.getFingerprints())


def make_transport(
    end: LinkEnd,
    certificate: aiortc.RTCCertificate,
    role: str,
    *,
    plain_aiortc: bool = False,
    mtu: int = 1200,
    handshake_timeout: float = 30.0,
) -> aiortc.RTCDtlsTransport:
    """A DTLS transport over ``end``: the library's, or aiortc's own with ``plain_aiortc``."""
    transport: aiortc.RTCDtlsTransport
    if plain_aiortc:
        transport = aiortc.RTCDtlsTransport(end, [certificate])  # type: ignore[arg-type]
    else:
        transport = RTCDtlsTransport(
            end,  # type: ignore[arg-type]
            [certificate],
            mtu=mtu,
            handshake_timeout=handshake_timeout,
        )
    transport._set_role(role)
    return transport


async def handshake(
    client: aiortc.RTCDtlsTransport,
    server: aiortc.RTCDtlsTransport,
    client_sees: RTCDtlsParameters,
    server_sees: RTCDtlsParameters,
    timeout: float,
) -> bool:
    """Start both transports; True if both are connected within ``timeout`` seconds."""
    tasks = [
        asyncio.ensure_future(client.start(client_sees)),
        asyncio.ensure_future(server.start(server_sees)),
    ]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.result()
    return client.state == "connected" and server.state == "connected"


class RtpCollector:
    """An RTP receiver for a DTLS transport's router: collects what arrives."""

    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []
        self.arrived = asyncio.Event()

    def _handle_disconnect(self) -> None:
        pass

    async def _handle_rtcp_packet(self, packet: object) -> None:
        pass

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        self.packets.append(packet)
        self.arrived.set()


OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)


async def carries_media(sender: aiortc.RTCDtlsTransport, receiver: aiortc.RTCDtlsTransport) -> int:
    """Send 10 SRTP-protected Opus-sized RTP packets; how many the receiver decrypted."""
    collector = RtpCollector()
    receiver._register_rtp_receiver(
        collector,
        RTCRtpReceiveParameters(
            codecs=[OPUS], encodings=[RTCRtpDecodingParameters(ssrc=4242, payloadType=111)]
        ),
    )
    for sequence in range(10):
        packet = RtpPacket(
            payload_type=111, sequence_number=sequence, timestamp=960 * sequence, ssrc=4242
        )
        packet.payload = bytes(80)
        await sender._send_rtp(packet.serialize())
    try:
        await asyncio.wait_for(collector.arrived.wait(), 10)
        await asyncio.sleep(0.2)
    except TimeoutError:
        pass
    return len(collector.packets)


def ca_chain(leaf_bits: int = 2048) -> tuple[RTCCertificate, list[x509.Certificate]]:
    """A leaf signed by an intermediate signed by a root: the leaf's certificate sends all 3."""
    import datetime

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(tz=datetime.UTC)

    def issue(
        subject: str, key: rsa.RSAPrivateKey, issuer: str, issuer_key: rsa.RSAPrivateKey, ca: bool
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256())
        )

    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    mid_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=leaf_bits)
    root = issue("test root CA", root_key, "test root CA", root_key, True)
    mid = issue("test intermediate CA", mid_key, "test root CA", root_key, True)
    leaf = issue("webrtc leaf", leaf_key, "test intermediate CA", mid_key, False)
    return RTCCertificate(leaf_key, leaf, [mid, root]), [leaf, mid, root]
