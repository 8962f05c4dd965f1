"""Certificates: generated or loaded from PEM (with a chain), and fingerprint checks."""

from __future__ import annotations

import pytest
from aiortc.rtcdtlstransport import SRTP_PROFILES, RTCDtlsFingerprint
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

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
