"""RawRtpPacket parsing and OutboundRtpStream writing (RFC 3550 §5.1, RFC 8285)."""

from __future__ import annotations

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from hypothesis import given
from hypothesis import strategies as st

from webrtc_ext.rtp import (
    URI_ABS_SEND_TIME,
    URI_AUDIO_LEVEL,
    URI_MID,
    OutboundRtpStream,
    RawRtpPacket,
)


@given(st.binary(max_size=80))
def test_malformed_input_raises_value_error_only(data: bytes) -> None:
    try:
        packet = RawRtpPacket.parse(data, audio_level_id=1)
    except ValueError:
        return
    assert 12 <= packet.payload_start <= packet.payload_end <= len(data)


@given(
    st.binary(max_size=300),
    st.integers(0, 127),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.booleans(),
)
def test_fields_match_aiortcs_parser(
    payload: bytes, pt: int, seq: int, ts: int, ssrc: int, marker: bool
) -> None:
    rtp = RtpPacket(
        payload_type=pt,
        marker=int(marker),
        sequence_number=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=payload,
    )
    rtp.csrc = [1, 2]
    rtp.extensions.mid = "audio"
    ids = HeaderExtensionsMap()
    ids.configure(type("P", (), {"headerExtensions": extensions(URI_MID)})())  # type: ignore[arg-type]
    data = rtp.serialize(ids)
    packet = RawRtpPacket.parse(data)
    assert (packet.payload_type, packet.marker, packet.sequence_number) == (pt, marker, seq)
    assert (packet.timestamp, packet.ssrc, packet.payload) == (ts, ssrc, payload)


def extensions(*uris: str) -> list[RTCRtpHeaderExtensionParameters]:
    return [RTCRtpHeaderExtensionParameters(id=i + 1, uri=u) for i, u in enumerate(uris)]


def test_writes_the_senders_ssrc_payload_type_and_negotiated_extensions() -> None:
    negotiated = extensions(URI_MID, URI_AUDIO_LEVEL, URI_ABS_SEND_TIME)
    stream = OutboundRtpStream(ssrc=42, payload_type=111, mid="0", header_extensions=negotiated)
    incoming = RawRtpPacket.create(b"opus", payload_type=96, sequence_number=5, timestamp=9, ssrc=7)
    incoming.audio_level = 0x80 | 30
    data = stream.write(incoming, 1000, 2000, ntp_time=0x1234567800000000)
    ids = HeaderExtensionsMap()
    ids.configure(type("P", (), {"headerExtensions": negotiated})())  # type: ignore[arg-type]
    parsed = RtpPacket.parse(data, ids)
    assert (parsed.ssrc, parsed.payload_type, parsed.payload) == (42, 111, b"opus")
    assert (parsed.sequence_number, parsed.timestamp) == (1000, 2000)
    assert parsed.extensions.mid == "0"
    assert parsed.extensions.audio_level == (True, 30)
    assert parsed.extensions.abs_send_time == (0x1234567800000000 >> 14) & 0xFFFFFF
    assert stream.sent(1000) == data and stream.sent(1001) is None
    assert (stream.packet_count, stream.octet_count, stream.last_timestamp) == (1, 4, 2000)


def test_a_stream_without_nack_keeps_no_sent_packets() -> None:
    stream = OutboundRtpStream(ssrc=42, payload_type=111, history_size=0)
    packet = RawRtpPacket.create(b"opus", payload_type=111, sequence_number=5, timestamp=9)
    for n in range(1000):
        stream.write(packet, n, 960 * n)
    assert stream.history == {} and stream.sent(999) is None
    assert stream.packet_count == 1000


def test_without_negotiated_extensions_no_extension_block() -> None:
    stream = OutboundRtpStream(ssrc=1, payload_type=0, mid="audio")
    data = stream.write(
        RawRtpPacket.create(b"x", payload_type=0, sequence_number=0, timestamp=0), 1, 2
    )
    assert data[0] == 0x80 and len(data) == 13


def test_padding_is_not_payload() -> None:
    data = bytearray(
        RawRtpPacket.create(b"abc", payload_type=0, sequence_number=0, timestamp=0).data
    )
    data[0] |= 0x20
    data += b"\x00\x00\x03"
    assert RawRtpPacket.parse(bytes(data)).payload == b"abc"
    data[-1] = 200
    with pytest.raises(ValueError):
        RawRtpPacket.parse(bytes(data))
