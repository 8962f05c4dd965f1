"""aiortc's DTLS transport, with every datagram <= the MTU and the peer always verified.

aiortc reads OpenSSL's memory BIO as a byte stream, 1500 bytes at a time, and sends each read
as one datagram: flights exceed small path MTUs and large records are cut in two. Here OpenSSL
is told the MTU (so it fragments handshake messages, RFC 6347 §4.2.3) and the BIO output goes
through :class:`~webrtc_ext.dtls_packer.DatagramPacker`, which sends whole records only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiortc
import pylibsrtp
from aiortc import clock
from aiortc.rtcdtlstransport import (
    X509_DIGEST_ALGORITHMS,
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    State,
    certificate_digest,
)
from aiortc.rtcicetransport import RTCIceTransport
from aiortc.rtp import is_rtcp
from cryptography import x509
from OpenSSL import SSL, crypto
from OpenSSL._util import lib as openssl

from ._internals import dtls_private_add
from .certificates import RTCCertificate
from .config import FINGERPRINT_ALGORITHMS, ConfigurationError
from .dtls_packer import DatagramPacker, DtlsRecordError, check_inbound_datagram

logger = logging.getLogger(__name__)

#: OpenSSL's smallest DTLS MTU (256 minus IPv4 and UDP headers).
MIN_MTU = 228

#: Largest plaintext read from one record (RFC 6347 §4.1: 2^14 bytes, plus expansion slack).
_READ_SIZE = 2**14 + 2048


class RTCDtlsError(Exception):
    """Why a DTLS transport failed, shaped like W3C ``RTCError``.

    ``errorDetail`` is ``"dtls-failure"`` or ``"fingerprint-failure"``.
    """

    def __init__(self, errorDetail: str, message: str) -> None:
        super().__init__(message)
        self.errorDetail = errorDetail
        self.message = message


@dataclass
class DtlsCounters:
    """What the transport did on the wire, for tests, stats and diagnostics."""

    datagrams_sent: int = 0
    max_datagram_bytes: int = 0
    retransmissions: int = 0
    datagrams_dropped: int = 0
    """Inbound datagrams that were not whole DTLS records (dropped before OpenSSL)."""


def fingerprint_mismatch(
    certificate: x509.Certificate, fingerprints: Sequence[RTCDtlsFingerprint]
) -> str | None:
    """Why ``certificate`` does not match the SDP ``fingerprints`` (RFC 8122 §5), or ``None``.

    At least one fingerprint must use a supported hash and every supported one must match.
    """
    supported = [f for f in fingerprints if f.algorithm.lower() in X509_DIGEST_ALGORITHMS]
    if not supported:
        offered = sorted({f.algorithm for f in fingerprints})
        return f"no fingerprint with a supported hash function (offered: {offered})"
    for f in supported:
        actual = certificate_digest(certificate, f.algorithm.lower())
        if f.value.upper() != actual:
            return (
                f"remote certificate {f.algorithm} fingerprint {actual} does not match "
                f"the SDP's {f.value.upper()} (RFC 8122 §5)"
            )
    return None


class RTCDtlsTransport(aiortc.RTCDtlsTransport):
    """aiortc's :class:`~aiortc.RTCDtlsTransport` with datagrams <= ``mtu`` bytes.

    Also: RSA certificates and chains (:class:`~webrtc_ext.RTCCertificate`), the remote
    fingerprint checked during the handshake in both roles (a mismatch sends the peer
    an alert), a bounded handshake (``handshake_timeout`` seconds), and
    inbound datagrams that are not whole DTLS records dropped with a log line.

    On failure :attr:`error` says why and an ``error`` event carries the same
    :class:`RTCDtlsError` (W3C ``RTCDtlsTransport.onerror``).
    """

    def __init__(
        self,
        transport: RTCIceTransport,
        certificates: list[aiortc.RTCCertificate],
        *,
        mtu: int = 1200,
        handshake_timeout: float = 30.0,
        fingerprint_algorithms: Sequence[str] = FINGERPRINT_ALGORITHMS,
    ) -> None:
        if not (MIN_MTU <= mtu <= 65507):
            raise ConfigurationError(f"DTLS MTU must be between {MIN_MTU} and 65507, not {mtu}")
        certificate = RTCCertificate.from_aiortc(certificates[0])
        super().__init__(transport, [certificate])
        self._mtu = mtu
        self._handshake_timeout = handshake_timeout
        self._fingerprint_algorithms = tuple(a.lower() for a in fingerprint_algorithms)
        if not set(self._fingerprint_algorithms) <= set(FINGERPRINT_ALGORITHMS) or not (
            self._fingerprint_algorithms
        ):
            raise ConfigurationError(
                f"fingerprint algorithms must be among {list(FINGERPRINT_ALGORITHMS)}, "
                f"not {list(fingerprint_algorithms)}"
            )
        self._packer = DatagramPacker(mtu)
        self._remote_fingerprints: list[RTCDtlsFingerprint] = []
        self._fingerprint_error: str | None = None
        self._handshake_done = False
        self.counters = DtlsCounters()
        self.error: RTCDtlsError | None = None
        self._data_mtu: int | None = None

    def getLocalParameters(self) -> RTCDtlsParameters:
        """aiortc's, with the fingerprints of the configured hash functions only, in order."""
        fingerprints = {f.algorithm: f for f in super().getLocalParameters().fingerprints}
        return RTCDtlsParameters(
            fingerprints=[fingerprints[a] for a in self._fingerprint_algorithms]
        )

    @property
    def mtu(self) -> int:
        """Largest datagram (UDP payload, bytes) this transport sends."""
        return self._mtu

    @property
    def data_mtu(self) -> int | None:
        """Plaintext bytes one record carries within the MTU (``None`` until DTLS connects)."""
        return self._data_mtu

    @property
    def _connection(self) -> SSL.Connection:
        assert self._ssl is not None, "DTLS not started"
        return self._ssl

    async def start(self, remoteParameters: RTCDtlsParameters) -> None:
        """Run the DTLS handshake and check the remote certificate against ``remoteParameters``."""
        self._remote_fingerprints = list(remoteParameters.fingerprints)
        if not self._remote_fingerprints:
            self._fail("fingerprint-failure", "the remote description has no a=fingerprint")
            return
        await super().start(remoteParameters)

    # -- handshake ----------------------------------------------------------------------------

    def _configure_connection(self) -> None:
        ssl = self._connection
        # A memory BIO cannot be queried for the path MTU: take ours, fixed.
        openssl.SSL_set_options(ssl._ssl, openssl.SSL_OP_NO_QUERY_MTU)
        if openssl.SSL_set_mtu(ssl._ssl, self._mtu) <= 0:
            raise ConfigurationError(f"OpenSSL refused a DTLS MTU of {self._mtu} bytes")
        ssl.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, self._verify_peer)

    def _verify_peer(
        self, connection: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int
    ) -> bool:
        # Chains are not checked against a CA: WebRTC trusts the SDP fingerprint of the leaf.
        if depth != 0:
            return True
        self._fingerprint_error = fingerprint_mismatch(
            cert.to_cryptography(), self._remote_fingerprints
        )
        return self._fingerprint_error is None

    async def _do_handshake(self) -> None:
        self._configure_connection()
        started = time.monotonic()
        try:
            await asyncio.wait_for(self._handshake_flights(), self._handshake_timeout)
        except TimeoutError:
            self._fail(
                "dtls-failure",
                f"DTLS handshake timed out after {time.monotonic() - started:.1f} s "
                f"({self.counters.retransmissions} retransmissions)",
            )

    async def _handshake_flights(self) -> None:
        ssl = self._connection
        while not self.encrypted:
            try:
                ssl.do_handshake()
                self.encrypted = True
                break
            except SSL.WantReadError:
                pass  # waits below, outside this handler, so its errors are handled too
            except SSL.Error as exc:
                await self._handshake_failed(exc)
                return
            try:
                await self._write_ssl()
                await self._recv_next()
            except SSL.Error as exc:  # OpenSSL gave up retransmitting
                await self._handshake_failed(exc)
                return
            except ConnectionError as exc:  # the ICE transport closed (close(), consent)
                self._fail("dtls-failure", f"DTLS handshake failed: transport closed ({exc})")
                return
        # An SCTP packet goes into one record: SCTP sizes its packets to this (data_mtu).
        self._data_mtu = int(openssl.DTLS_get_data_mtu(ssl._ssl))
        # The server's final flight is written by the call that completes the handshake.
        await self._flush_quietly()

    async def _handshake_failed(self, exc: SSL.Error) -> None:
        await self._flush_quietly()  # the alert tells the peer why
        if self._fingerprint_error is not None:
            self._fail("fingerprint-failure", self._fingerprint_error)
        else:
            self._fail("dtls-failure", f"DTLS handshake failed: {_ssl_reason(exc)}")

    def _validate_peer_identity(self, remoteParameters: RTCDtlsParameters) -> None:
        certificate = self._connection.get_peer_certificate(as_cryptography=True)
        if certificate is None:
            self._fail("fingerprint-failure", "the remote peer sent no certificate")
            return
        reason = fingerprint_mismatch(certificate, remoteParameters.fingerprints)
        if reason is not None:
            self._fail("fingerprint-failure", reason)

    def _fail(self, detail: str, message: str) -> None:
        if self._state == State.CLOSED:
            return  # stopped on purpose: not an error
        self.error = RTCDtlsError(detail, message)
        logger.warning("RTCDtlsTransport(%s) %s: %s", self._role, detail, message)
        self._set_state(State.FAILED)
        if self.listeners("error"):  # pyee raises an unhandled "error" event
            self.emit("error", self.error)

    # -- datagrams out ------------------------------------------------------------------------

    async def _write_ssl(self) -> None:
        """Send what OpenSSL wrote, as datagrams of whole records, each <= the MTU."""
        ssl = self._connection
        while True:
            try:
                data = ssl.bio_read(_READ_SIZE)
            except SSL.Error:
                break
            if not data:
                break
            self._packer.push(data)
        for datagram in self._packer.datagrams():
            await self.transport._send(datagram)
            dtls_private_add(self, "tx_bytes", len(datagram))
            dtls_private_add(self, "tx_packets", 1)
            self.counters.datagrams_sent += 1
            self.counters.max_datagram_bytes = max(self.counters.max_datagram_bytes, len(datagram))

    async def _flush_quietly(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self._write_ssl()

    # -- datagrams in -------------------------------------------------------------------------

    async def _recv_next(self) -> None:
        timeout = None
        if not self._handshake_done:
            timeout = self._connection.DTLSv1_get_timeout()
            if timeout is None and self.encrypted:
                self._handshake_done = True
        if timeout is None:
            data = await self.transport._recv()
        else:
            try:
                data = await asyncio.wait_for(self.transport._recv(), timeout=timeout)
            except TimeoutError:
                await self._retransmit()
                return
        dtls_private_add(self, "rx_bytes", len(data))
        dtls_private_add(self, "rx_packets", 1)
        if not data:
            return
        if 19 < data[0] < 64:
            await self._handle_dtls_datagram(data)
        elif 127 < data[0] < 192 and self._rx_srtp is not None:
            await self._handle_srtp_datagram(data)

    async def _retransmit(self) -> None:
        """The flight timer fired: OpenSSL resends the flight and doubles the timer."""
        try:
            if self._connection.DTLSv1_handle_timeout():
                self.counters.retransmissions += 1
        except SSL.Error as exc:
            if not self.encrypted:
                raise  # OpenSSL gave up: the handshake fails with its reason
            logger.debug("RTCDtlsTransport(%s) x timer: %s", self._role, _ssl_reason(exc))
        await self._write_ssl()

    async def _handle_dtls_datagram(self, data: bytes) -> None:
        try:
            check_inbound_datagram(data)
        except DtlsRecordError as exc:
            self.counters.datagrams_dropped += 1
            logger.info("RTCDtlsTransport(%s) x dropped DTLS datagram: %s", self._role, exc)
            return
        ssl = self._connection
        ssl.bio_write(data)
        if not self.encrypted:
            return  # the handshake loop hands it to OpenSSL
        while True:
            try:
                plaintext = ssl.recv(_READ_SIZE)
            except SSL.ZeroReturnError:
                await self._flush_quietly()
                logger.debug("RTCDtlsTransport(%s) - DTLS shutdown by remote party", self._role)
                raise ConnectionError("DTLS close_notify received") from None
            except SSL.WantReadError:
                break
            except SSL.Error as exc:
                logger.info("RTCDtlsTransport(%s) x DTLS record: %s", self._role, _ssl_reason(exc))
                break
            if plaintext and self._data_receiver is not None:
                await self._data_receiver._handle_data(plaintext)
        # A retransmitted final flight from the peer makes OpenSSL resend ours.
        await self._write_ssl()

    async def _handle_srtp_datagram(self, data: bytes) -> None:
        arrival_time_ms = clock.current_ms()
        try:
            if is_rtcp(data):
                await self._handle_rtcp_data(self._rx_srtp.unprotect_rtcp(data))
            else:
                packet = self._rx_srtp.unprotect(data)
                await self._handle_rtp_data(packet, arrival_time_ms=arrival_time_ms)
        except pylibsrtp.Error as exc:
            logger.debug("RTCDtlsTransport(%s) x SRTP unprotect failed: %s", self._role, exc)


def _ssl_reason(exc: SSL.Error) -> str:
    """The readable part of a pyOpenSSL error (its reason strings)."""
    reasons = [str(part[2]) for part in exc.args[0] if len(part) == 3] if exc.args else []
    if exc.args and isinstance(exc.args[0], list) and reasons:
        return "; ".join(reasons)
    return str(exc) or type(exc).__name__
