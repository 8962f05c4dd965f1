"""Sans-I/O DTLS record framing: split a byte stream into records, pack records into datagrams.

OpenSSL writes DTLS records into a memory BIO, which is a byte stream: the boundaries between
records, and so between datagrams, are lost. :class:`DatagramPacker` finds them again from the
13-byte DTLS 1.0/1.2 record header (RFC 6347 §4.1) and packs whole records into datagrams of at
most ``mtu`` bytes. A record is never split across datagrams; several may share one.

:func:`parse_datagram` checks an inbound datagram the same way, so that a truncated or garbage
datagram can be dropped before OpenSSL sees it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

DTLS_RECORD_HEADER_LENGTH = 13
"""Content type (1), version (2), epoch (2), sequence number (6), length (2): RFC 6347 §4.1."""

#: RFC 6347 §4.1: a DTLSCiphertext fragment is at most 2^14 + 2048 bytes.
MAX_RECORD_FRAGMENT_LENGTH = 2**14 + 2048

#: ContentType values of DTLS 1.2 records (RFC 5246 §6.2.1, RFC 6520, RFC 9146).
CONTENT_TYPES = {
    20: "change_cipher_spec",
    21: "alert",
    22: "handshake",
    23: "application_data",
    24: "heartbeat",
    25: "tls12_cid",
}

#: ProtocolVersion values on the wire: DTLS 1.0 (0xFEFF) and DTLS 1.2 (0xFEFD).
DTLS_VERSIONS = (0xFEFF, 0xFEFD)

_HEADER = struct.Struct("!BHH6sH")


class DtlsRecordError(ValueError):
    """Bytes that are not a sequence of whole DTLS records (RFC 6347 §4.1)."""


@dataclass(frozen=True)
class DtlsRecordHeader:
    """The header of one DTLS record (RFC 6347 §4.1, ``DTLSPlaintext``/``DTLSCiphertext``)."""

    content_type: int
    version: int
    epoch: int
    sequence_number: int
    length: int

    @property
    def record_length(self) -> int:
        """Header plus fragment, in bytes."""
        return DTLS_RECORD_HEADER_LENGTH + self.length

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> DtlsRecordHeader:
        """Parse the header at ``offset``; raise :class:`DtlsRecordError` if it is not one."""
        if len(data) - offset < DTLS_RECORD_HEADER_LENGTH:
            raise DtlsRecordError(
                f"truncated record header: {len(data) - offset} of "
                f"{DTLS_RECORD_HEADER_LENGTH} bytes (RFC 6347 §4.1)"
            )
        content_type, version, epoch, sequence, length = _HEADER.unpack_from(data, offset)
        if content_type not in CONTENT_TYPES:
            raise DtlsRecordError(f"unknown content type {content_type} (RFC 5246 §6.2.1)")
        if version not in DTLS_VERSIONS:
            raise DtlsRecordError(f"not a DTLS version: 0x{version:04x} (RFC 6347 §4.1)")
        if length > MAX_RECORD_FRAGMENT_LENGTH:
            raise DtlsRecordError(f"record length {length} exceeds 2^14 + 2048 (RFC 6347 §4.1)")
        return cls(content_type, version, epoch, int.from_bytes(sequence, "big"), length)


#: HandshakeType values of DTLS 1.2 (RFC 5246 §7.4, RFC 6347 §4.3.2, RFC 8446 §4 for 4).
HANDSHAKE_TYPES = frozenset({0, 1, 2, 3, 4, 11, 12, 13, 14, 15, 16, 20})

#: msg_type (1), length (3), message_seq (2), fragment_offset (3), fragment_length (3).
DTLS_HANDSHAKE_HEADER_LENGTH = 12


def check_handshake_fragment(fragment: bytes) -> None:
    """Raise :class:`DtlsRecordError` unless ``fragment`` is one well-framed plaintext handshake
    fragment (RFC 6347 §4.2.2): OpenSSL fails the whole handshake on a badly framed one."""
    if len(fragment) < DTLS_HANDSHAKE_HEADER_LENGTH:
        raise DtlsRecordError(f"handshake fragment of {len(fragment)} bytes (RFC 6347 §4.2.2)")
    msg_type = fragment[0]
    length = int.from_bytes(fragment[1:4], "big")
    offset = int.from_bytes(fragment[6:9], "big")
    fragment_length = int.from_bytes(fragment[9:12], "big")
    if msg_type not in HANDSHAKE_TYPES:
        raise DtlsRecordError(f"unknown handshake type {msg_type} (RFC 5246 §7.4)")
    body_length = len(fragment) - DTLS_HANDSHAKE_HEADER_LENGTH
    if fragment_length != body_length:
        raise DtlsRecordError(
            f"handshake fragment_length {fragment_length} but {body_length} bytes follow "
            "(RFC 6347 §4.2.2)"
        )
    if offset + fragment_length > length:
        raise DtlsRecordError(
            f"handshake fragment {offset}+{fragment_length} beyond message length {length} "
            "(RFC 6347 §4.2.3)"
        )


def parse_datagram(datagram: bytes) -> list[DtlsRecordHeader]:
    """The headers of the whole records a datagram holds; :class:`DtlsRecordError` otherwise."""
    if not datagram:
        raise DtlsRecordError("empty datagram")
    headers = []
    offset = 0
    while offset < len(datagram):
        header = DtlsRecordHeader.parse(datagram, offset)
        if offset + header.record_length > len(datagram):
            raise DtlsRecordError(
                f"truncated record: {len(datagram) - offset} bytes left for a "
                f"{header.record_length}-byte record (RFC 6347 §4.1.1)"
            )
        headers.append(header)
        offset += header.record_length
    return headers


def check_inbound_datagram(datagram: bytes) -> list[DtlsRecordHeader]:
    """:func:`parse_datagram`, and every plaintext (epoch 0) handshake record must be a
    well-framed handshake fragment; :class:`DtlsRecordError` says what is wrong otherwise."""
    headers = parse_datagram(datagram)
    offset = 0
    for header in headers:
        if header.content_type == 22 and header.epoch == 0:
            start = offset + DTLS_RECORD_HEADER_LENGTH
            check_handshake_fragment(datagram[start : offset + header.record_length])
        offset += header.record_length
    return headers


def pack_records(records: Iterable[bytes], mtu: int) -> list[bytes]:
    """Pack whole records, in order, into as few datagrams of at most ``mtu`` bytes as greedy
    packing gives; a record longer than ``mtu`` travels alone (it cannot be split)."""
    datagrams: list[bytes] = []
    current = bytearray()
    for record in records:
        if current and len(current) + len(record) > mtu:
            datagrams.append(bytes(current))
            current.clear()
        current += record
    if current:
        datagrams.append(bytes(current))
    return datagrams


class DatagramPacker:
    """Turns the byte stream OpenSSL writes into datagrams of whole records, each <= ``mtu``.

    Feed it with :meth:`push` (bytes read from the BIO, in any chunking) and drain it with
    :meth:`datagrams`. An incomplete record waits for the rest of its bytes.
    """

    def __init__(self, mtu: int) -> None:
        self.mtu = mtu
        self._buffer = bytearray()
        self.oversized_records = 0
        """Records longer than the MTU (sent alone: a record is never split)."""
        self.discarded_bytes = 0
        """Bytes dropped because they did not start with a DTLS record header."""

    def push(self, data: bytes) -> None:
        """Append bytes read from OpenSSL's write BIO."""
        self._buffer += data

    def datagrams(self) -> list[bytes]:
        """Every datagram that the complete records buffered so far make, in order."""
        records: list[bytes] = []
        offset = 0
        buffer = self._buffer
        while len(buffer) - offset >= DTLS_RECORD_HEADER_LENGTH:
            try:
                header = DtlsRecordHeader.parse(
                    bytes(buffer[offset : offset + DTLS_RECORD_HEADER_LENGTH])
                )
            except DtlsRecordError:
                # OpenSSL only writes whole records: this cannot happen unless the stream was
                # corrupted; resynchronising is impossible, so drop what is buffered.
                self.discarded_bytes += len(buffer) - offset
                offset = len(buffer)
                break
            end = offset + header.record_length
            if end > len(buffer):
                break
            if header.record_length > self.mtu:
                self.oversized_records += 1
            records.append(bytes(buffer[offset:end]))
            offset = end
        del buffer[:offset]
        return pack_records(records, self.mtu)

    @property
    def pending(self) -> int:
        """Bytes of an incomplete record still waiting for the rest."""
        return len(self._buffer)
