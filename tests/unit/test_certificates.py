"""Certificates: generated or loaded from PEM (with a chain), and fingerprint checks."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import platform
import sys

import pytest
from aiortc.rtcdtlstransport import SRTP_PROFILES, RTCDtlsFingerprint
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from OpenSSL import SSL
from OpenSSL._util import lib as openssl

from tests.dtls_support import ca_chain
from webrtc_ext import CertificateError, PeerConnectionConfig, RTCCertificate
from webrtc_ext.rtcdtlstransport import fingerprint_mismatch


def pem(*certs: object) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)  # type: ignore[attr-defined]


def test_from_pem_loads_leaf_intermediate_and_encrypted_key() -> None:
    certificate, (leaf, intermediate, _root) = ca_chain()
    key_pem = certificate._key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    loaded = RTCCertificate.from_pem(pem(leaf, intermediate), key_pem, password=b"secret")
    assert loaded.certificate == leaf
    assert loaded.chain == (intermediate,)
    assert loaded.getFingerprints() == RTCCertificate(certificate._key, leaf).getFingerprints()
    loaded._create_ssl_context(SRTP_PROFILES)  # OpenSSL accepts key, leaf and chain together


def test_from_pem_rejects_a_key_of_another_certificate() -> None:
    a = RTCCertificate.generateCertificate()
    b = RTCCertificate.generateCertificate()
    key_pem = b._key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(CertificateError, match="does not match"):
        RTCCertificate.from_pem(pem(a.certificate), key_pem)


def test_from_pem_rejects_garbage_with_a_clear_error() -> None:
    with pytest.raises(CertificateError, match="PEM certificates"):
        RTCCertificate.from_pem(b"not a certificate", b"")
    good = RTCCertificate.generateCertificate()
    with pytest.raises(CertificateError, match="PEM private key"):
        RTCCertificate.from_pem(pem(good.certificate), b"-----BEGIN PRIVATE KEY-----\nxx\n")


@pytest.mark.parametrize(
    ("algorithm", "key_type", "size"),
    [
        ("ECDSA", ec.EllipticCurvePrivateKey, 256),
        ({"name": "ECDSA", "namedCurve": "P-384"}, ec.EllipticCurvePrivateKey, 384),
        ("RSA", rsa.RSAPrivateKey, 2048),
        ({"name": "RSASSA-PKCS1-v1_5", "modulusLength": 3072}, rsa.RSAPrivateKey, 3072),
    ],
)
def test_generate_certificate(algorithm: object, key_type: type, size: int) -> None:
    certificate = RTCCertificate.generateCertificate(algorithm)  # type: ignore[arg-type]
    assert isinstance(certificate._key, key_type)
    assert certificate._key.key_size == size


@pytest.mark.parametrize(
    "algorithm",
    ["DSA", {"name": "RSA", "modulusLength": 1024}, {"name": "ECDSA", "namedCurve": "x"}],
)
def test_generate_certificate_refuses_weak_or_unknown_keys(algorithm: object) -> None:
    with pytest.raises(CertificateError):
        RTCCertificate.generateCertificate(algorithm)  # type: ignore[arg-type]


def test_fingerprint_mismatch_names_both_values() -> None:
    ours = RTCCertificate.generateCertificate()
    theirs = RTCCertificate.generateCertificate()
    assert fingerprint_mismatch(ours.certificate, ours.getFingerprints()) is None
    reason = fingerprint_mismatch(ours.certificate, theirs.getFingerprints()[:1])
    assert reason is not None and "does not match" in reason
    unsupported = [RTCDtlsFingerprint("md5", "AA:BB")]
    assert "supported hash" in (fingerprint_mismatch(ours.certificate, unsupported) or "")
    # Case of the hex digits and of the hash name does not matter (RFC 8122 §5).
    lower = [RTCDtlsFingerprint("SHA-256", ours.getFingerprints()[0].value.lower())]
    assert fingerprint_mismatch(ours.certificate, lower) is None


def test_configuration_carries_certificates() -> None:
    certificate = RTCCertificate.generateCertificate()
    config = PeerConnectionConfig(certificates=[certificate])
    assert config.certificates[0] is certificate
    with pytest.raises(ValueError, match="dtls_handshake_timeout"):
        config.with_changes(dtls_handshake_timeout=0)


def _connected_pair(context: SSL.Context) -> tuple[SSL.Connection, SSL.Connection]:
    """A DTLS client and server over memory BIOs, handshake done (no network)."""
    client, server = SSL.Connection(context), SSL.Connection(context)
    client.set_connect_state()
    server.set_accept_state()
    done: set[SSL.Connection] = set()
    for _ in range(50):
        for side, peer in ((client, server), (server, client)):
            try:
                side.do_handshake()
                done.add(side)
            except SSL.WantReadError:
                pass
            with contextlib.suppress(SSL.WantReadError):
                while True:
                    peer.bio_write(side.bio_read(65536))
        if len(done) == 2:
            return client, server
    raise AssertionError("the DTLS handshake did not finish")


def _native_heap_in_use() -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallinfo2"
)
def test_idle_dtls_connections_keep_no_record_buffers() -> None:
    """Connected and idle, a DTLS connection frees its ~40 KB of read and write buffers."""
    releasing = RTCCertificate.generateCertificate()._create_ssl_context(SRTP_PROFILES)
    keeping = RTCCertificate.generateCertificate()._create_ssl_context(SRTP_PROFILES)
    openssl.SSL_CTX_clear_mode(keeping._context, openssl.SSL_MODE_RELEASE_BUFFERS)

    def held_per_connection(context: SSL.Context) -> float:
        _connected_pair(context)  # first use: OpenSSL's one-time tables are not counted
        gc.collect()
        before = _native_heap_in_use()
        pairs = [_connected_pair(context) for _ in range(8)]
        held = (_native_heap_in_use() - before) / (2 * len(pairs))
        del pairs
        return held

    kept, released = held_per_connection(keeping), held_per_connection(releasing)
    assert kept - released > 24_000, (kept, released)
    # Buffers come back when the connection is used again: data still flows both ways.
    client, server = _connected_pair(releasing)
    client.send(b"after idle")
    server.bio_write(client.bio_read(65536))
    assert server.recv(100) == b"after idle"
