"""DTLS certificates: ECDSA or RSA, generated or loaded from PEM, with an optional chain."""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from typing import Any, cast

from aiortc.rtcdtlstransport import RTCCertificate as AiortcCertificate
from aiortc.rtcdtlstransport import SRTPProtectionProfile
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from OpenSSL import SSL

from ._internals import certificate_key_and_cert

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

#: ECDHE suites for both certificate types, AEAD first. aiortc admits ECDSA only.
CIPHER_LIST = b":".join(
    [
        b"ECDHE-ECDSA-AES128-GCM-SHA256",
        b"ECDHE-RSA-AES128-GCM-SHA256",
        b"ECDHE-ECDSA-AES256-GCM-SHA384",
        b"ECDHE-RSA-AES256-GCM-SHA384",
        b"ECDHE-ECDSA-CHACHA20-POLY1305",
        b"ECDHE-RSA-CHACHA20-POLY1305",
        b"ECDHE-ECDSA-AES128-SHA",
        b"ECDHE-RSA-AES128-SHA",
        b"ECDHE-ECDSA-AES256-SHA",
        b"ECDHE-RSA-AES256-SHA",
    ]
)


class CertificateError(ValueError):
    """A certificate, key or chain that cannot be used for DTLS."""


def _self_signed(key: PrivateKey, days: int) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, os.urandom(16).hex())])
    now = datetime.datetime.now(tz=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


class RTCCertificate(AiortcCertificate):
    """aiortc's :class:`~aiortc.RTCCertificate`, also for RSA keys and certificate chains.

    ``chain`` holds the certificates sent after the leaf (intermediates, optionally the root),
    leaf's issuer first. The SDP fingerprint is always the leaf's.
    """

    def __init__(
        self,
        key: PrivateKey,
        cert: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
    ) -> None:
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise CertificateError(f"unsupported key type {type(key).__name__}: use ECDSA or RSA")
        if key.public_key() != cert.public_key():
            raise CertificateError("the private key does not match the certificate")
        super().__init__(cast(ec.EllipticCurvePrivateKey, key), cert)
        self._chain = tuple(chain)
        self._contexts: dict[tuple[int, ...], SSL.Context] = {}

    @property
    def certificate(self) -> x509.Certificate:
        """The leaf certificate (the one whose fingerprint goes in the SDP)."""
        return self._cert

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """Certificates sent after the leaf."""
        return self._chain

    @classmethod
    def generateCertificate(
        cls, keygenAlgorithm: str | dict[str, Any] = "ECDSA", *, days: int = 30
    ) -> RTCCertificate:
        """A self-signed certificate, like W3C ``RTCPeerConnection.generateCertificate``.

        ``keygenAlgorithm``: ``"ECDSA"`` (P-256, the default), ``"RSA"`` (2048 bits), or a
        W3C dictionary: ``{"name": "ECDSA", "namedCurve": "P-256"}`` or
        ``{"name": "RSASSA-PKCS1-v1_5", "modulusLength": 4096}``.
        """
        algorithm = (
            {"name": keygenAlgorithm} if isinstance(keygenAlgorithm, str) else keygenAlgorithm
        )
        name = str(algorithm.get("name", "")).upper()
        key: PrivateKey
        if name == "ECDSA":
            curves = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}
            curve = curves.get(str(algorithm.get("namedCurve", "P-256")))
            if curve is None:
                raise CertificateError(f"unsupported ECDSA curve in {algorithm!r}")
            key = ec.generate_private_key(curve)
        elif name in ("RSA", "RSASSA-PKCS1-V1_5"):
            bits = int(algorithm.get("modulusLength", 2048))
            if bits < 2048:
                raise CertificateError(f"RSA keys must have at least 2048 bits, not {bits}")
            key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        else:
            raise CertificateError(f"unsupported key generation algorithm {keygenAlgorithm!r}")
        return cls(key, _self_signed(key, days))

    @classmethod
    def from_pem(
        cls, certificates_pem: bytes, private_key_pem: bytes, password: bytes | None = None
    ) -> RTCCertificate:
        """Load a certificate, its chain and its private key from PEM.

        ``certificates_pem`` holds the leaf first, then any intermediates (the order a TLS
        server's chain file has). The key may be ECDSA or RSA, encrypted with ``password``.
        """
        try:
            certificates = x509.load_pem_x509_certificates(certificates_pem)
        except ValueError as exc:
            raise CertificateError(f"cannot read PEM certificates: {exc}") from None
        try:
            key = serialization.load_pem_private_key(private_key_pem, password=password)
        except (ValueError, TypeError) as exc:
            raise CertificateError(f"cannot read PEM private key: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise CertificateError(f"unsupported key type {type(key).__name__}: use ECDSA or RSA")
        return cls(key, certificates[0], certificates[1:])

    @classmethod
    def from_aiortc(cls, certificate: AiortcCertificate) -> RTCCertificate:
        """The same key and certificate as an aiortc :class:`~aiortc.RTCCertificate`."""
        if isinstance(certificate, cls):
            return certificate
        return cls(*certificate_key_and_cert(certificate))

    def _create_ssl_context(self, srtp_profiles: list[SRTPProtectionProfile]) -> SSL.Context:
        # One OpenSSL context (~20 KB of C heap) per certificate and SRTP profile list, shared
        # by every transport using this certificate: nothing per connection is set on it (the
        # fingerprint check, the MTU and the role are set on each connection).
        key = tuple(p.libsrtp_profile for p in srtp_profiles)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._contexts[key] = self._new_ssl_context(srtp_profiles)
        return ctx

    def _new_ssl_context(self, srtp_profiles: list[SRTPProtectionProfile]) -> SSL.Context:
        ctx = SSL.Context(SSL.DTLS_METHOD)
        ctx.set_options(SSL.OP_NO_TICKET)
        # After the handshake DTLS carries little or nothing (SRTP bypasses it): its ~40 KB of
        # idle record buffers per connection are freed, and allocated again when needed.
        ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
        # The transport installs the fingerprint check on each connection (both roles).
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *args: True)
        ctx.use_certificate(self._cert)
        ctx.use_privatekey(cast(PrivateKey, self._key))
        for intermediate in self._chain:
            ctx.add_extra_chain_cert(intermediate)
        ctx.check_privatekey()
        ctx.set_cipher_list(CIPHER_LIST)
        ctx.set_tlsext_use_srtp(b":".join(p.openssl_profile for p in srtp_profiles))
        return ctx
