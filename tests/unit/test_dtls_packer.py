"""The sans-I/O DTLS record packer: whole records only, every datagram within the MTU."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webrtc_ext.dtls_packer import (
    CONTENT_TYPES,
    MAX_RECORD_FRAGMENT_LENGTH,
    DatagramPacker,
    DtlsRecordError,
    DtlsRecordHeader,
    check_inbound_datagram,
    pack_records,
    parse_datagram,
)


def record(content_type: int, fragment: bytes, epoch: int = 0, sequence: int = 0) -> bytes:
    """A DTLS 1.2 record (RFC 6347 §4.1)."""
    return (
        struct.pack("!BHH", content_type, 0xFEFD, epoch)
        + sequence.to_bytes(6, "big")
        + struct.pack("!H", len(fragment))
        + fragment
    )


MTU = 1200

records_within_mtu = st.lists(
    st.builds(
        record,
        st.sampled_from(sorted(CONTENT_TYPES)),
        st.binary(max_size=MTU - 13),
        st.integers(0, 3),
        st.integers(0, 2**48 - 1),
    ),
    max_size=30,
)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@given(records_within_mtu, st.lists(st.integers(0, 10**6), max_size=20))
def test_datagrams_hold_whole_records_within_mtu(records: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(records)
    packer = DatagramPacker(MTU)
    batches = []
    for chunk in chunked(stream, cuts):
        packer.push(chunk)
        batches.append(packer.datagrams())
    datagrams = [d for batch in batches for d in batch]

    assert b"".join(datagrams) == stream
    assert packer.pending == 0
    assert all(len(d) <= MTU for d in datagrams)
    assert sum(len(parse_datagram(d)) for d in datagrams) == len(records)
    # Greedy packing: no two neighbouring datagrams of one drain could have been one.
    for batch in batches:
        for first, second in itertools.pairwise(batch):
            assert len(first) + parse_datagram(second)[0].record_length > MTU


def test_several_small_records_share_a_datagram() -> None:
    records = [record(22, bytes(100)), record(20, b"\x01"), record(22, bytes(40))]
    assert pack_records(records, MTU) == [b"".join(records)]


def test_a_record_longer_than_the_mtu_travels_alone_and_whole() -> None:
    big = record(23, bytes(1500))
    packer = DatagramPacker(MTU)
    packer.push(record(22, bytes(10)) + big + record(21, b"\x02\x28"))
    datagrams = packer.datagrams()
    assert [len(d) for d in datagrams] == [23, len(big), 15]
    assert packer.oversized_records == 1


def test_an_incomplete_record_waits_for_its_end() -> None:
    whole = record(22, bytes(300))
    packer = DatagramPacker(MTU)
    packer.push(whole[:200])
    assert packer.datagrams() == []
    assert packer.pending == 200
    packer.push(whole[200:])
    assert packer.datagrams() == [whole]


@given(
    st.one_of(
        st.binary(max_size=2000),
        st.lists(st.binary(min_size=13, max_size=200), max_size=4).map(
            lambda parts: b"".join(b"\x16\xfe\xfd" + p[3:] for p in parts)
        ),
    )
)
def test_inbound_checks_accept_records_or_raise_dtls_record_error(data: bytes) -> None:
    for check in (parse_datagram, check_inbound_datagram):
        try:
            headers = check(data)
        except DtlsRecordError:
            continue
        assert sum(h.record_length for h in headers) == len(data)


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (record(22, bytes(50))[:-1], "truncated record"),
        (record(22, bytes(50))[:8], "truncated record header"),
        (b"\x63" + record(22, b"")[1:], "unknown content type"),
        (record(22, b"")[:1] + b"\x03\x03" + record(22, b"")[3:], "not a DTLS version"),
        (record(23, b"")[:11] + struct.pack("!H", MAX_RECORD_FRAGMENT_LENGTH + 1), "exceeds"),
        (b"", "empty"),
    ],
)
def test_malformed_datagrams_say_which_rule_they_break(datagram: bytes, reason: str) -> None:
    with pytest.raises(DtlsRecordError, match=reason):
        parse_datagram(datagram)


def test_header_fields() -> None:
    header = DtlsRecordHeader.parse(record(23, bytes(7), epoch=1, sequence=258))
    assert header == DtlsRecordHeader(23, 0xFEFD, 1, 258, 7)
    assert header.record_length == 20


def handshake_fragment(length: int, offset: int, body: bytes, msg_type: int = 11) -> bytes:
    """A DTLS handshake fragment (RFC 6347 §4.2.2) inside a plaintext record."""
    header = (
        bytes([msg_type])
        + length.to_bytes(3, "big")
        + (1).to_bytes(2, "big")
        + offset.to_bytes(3, "big")
        + len(body).to_bytes(3, "big")
    )
    return record(22, header + body)


def test_inbound_check_accepts_well_framed_handshake_fragments() -> None:
    datagram = handshake_fragment(3000, 1000, bytes(500)) + record(20, b"\x01")
    assert len(check_inbound_datagram(datagram)) == 2


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (record(22, bytes(5)), "handshake fragment of 5 bytes"),
        (handshake_fragment(100, 0, bytes(10), msg_type=99), "unknown handshake type"),
        (handshake_fragment(100, 95, bytes(10)), "beyond message length"),
        (record(22, handshake_fragment(100, 0, bytes(10))[13:] + b"x"), "fragment_length"),
    ],
)
def test_inbound_check_drops_badly_framed_handshake_records(datagram: bytes, reason: str) -> None:
    parse_datagram(datagram)  # whole records...
    with pytest.raises(DtlsRecordError, match=reason):
        check_inbound_datagram(datagram)  # ...but not handshake fragments OpenSSL would accept
