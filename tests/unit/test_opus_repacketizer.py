"""Opus repacketization (RFC 6716 §3.2.5 code 3 packets): frames joined, never changed or lost."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webrtc_ext.opus import (
    MAX_JOINED_BYTES,
    MAX_PACKET_SAMPLES,
    OpusRepacketizer,
    frame_length_bytes,
    frame_samples,
    join_frames,
)
from webrtc_ext.rtp import RawRtpPacket


def split_frames(packet: bytes) -> tuple[int, list[bytes]]:
    """An independent RFC 6716 §3.2 parser: the TOC configuration and the frames of a packet."""
    toc, code = packet[0], packet[0] & 3
    body = packet[1:]
    if code == 0:
        return toc >> 2, [body]
    assert code == 3, "the repacketizer writes code 0 or code 3 packets only"
    count_byte, body = body[0], body[1:]
    vbr, padding, count = count_byte & 0x80, count_byte & 0x40, count_byte & 0x3F
    assert not padding and 1 <= count <= 48
    if not vbr:
        assert len(body) % count == 0
        size = len(body) // count
        return toc >> 2, [body[i * size : (i + 1) * size] for i in range(count)]
    lengths = []
    for _ in range(count - 1):
        first = body[0]
        if first < 252:
            lengths.append(first)
            body = body[1:]
        else:
            lengths.append(first + 4 * body[1])
            body = body[2:]
    frames = []
    for length in lengths:
        frames.append(body[:length])
        body = body[length:]
    return toc >> 2, [*frames, body]


def test_frame_lengths_use_one_or_two_bytes() -> None:
    assert frame_length_bytes(0) == b"\x00"
    assert frame_length_bytes(251) == b"\xfb"
    for length in (252, 253, 300, 1275):
        encoded = frame_length_bytes(length)
        assert len(encoded) == 2 and encoded[0] + 4 * encoded[1] == length


def test_equal_frames_are_cbr_and_unequal_ones_vbr() -> None:
    cbr = join_frames(0x78, [b"abc", b"def", b"ghi"])
    assert cbr[0] & 3 == 3 and cbr[1] == 3 and cbr[2:] == b"abcdefghi"
    vbr = join_frames(0x78, [b"a", b"bc", b"def"])
    assert vbr[1] == 0x83 and vbr[2:4] == b"\x01\x02" and vbr[4:] == b"abcdef"


def packet(seq: int, payload: bytes, *, ssrc: int = 7, marker: bool = False) -> RawRtpPacket:
    return RawRtpPacket.create(
        payload, payload_type=111, sequence_number=seq & 0xFFFF, timestamp=960 * seq,
        ssrc=ssrc, marker=marker,
    )  # fmt: skip


def test_three_consecutive_frames_become_one_packet_with_the_first_timestamp() -> None:
    packer = OpusRepacketizer(3)
    frames = [bytes([0x78]) + bytes([i]) * (40 + i) for i in range(3)]
    assert packer.push(packet(10, frames[0])) == []
    assert packer.push(packet(11, frames[1])) == []
    (out,) = packer.push(packet(12, frames[2]))
    assert out.timestamp == 960 * 10 and out.sequence_number == 0 and out.ssrc == 7
    assert split_frames(out.payload) == (0x78 >> 2, [f[1:] for f in frames])
    assert packer.push(packet(13, frames[0])) == []
    assert [p.sequence_number for p in packer.flush()] == [1]


def test_a_gap_sends_what_is_held_at_once_and_renumbers_without_a_hole() -> None:
    packer = OpusRepacketizer(3)
    frame = b"\x78" + b"x" * 30
    assert packer.push(packet(1, frame)) == []
    out = packer.push(packet(3, frame))  # 2 was lost
    assert [(p.sequence_number, p.timestamp) for p in out] == [(0, 960)]
    assert out[0].payload == frame  # one frame stays a code 0 packet
    out = packer.push(packet(4, frame)) + packer.push(packet(5, frame))
    assert [(p.sequence_number, p.timestamp) for p in out] == [(1, 960 * 3)]


def test_packets_that_are_not_single_frames_pass_through_in_order() -> None:
    packer = OpusRepacketizer(3)
    held = b"\x78" + b"a" * 20
    two_frames = b"\x79" + b"b" * 20  # code 1
    assert packer.push(packet(1, held)) == []
    out = packer.push(packet(2, two_frames))
    assert [p.payload for p in out] == [held, two_frames]
    assert [p.sequence_number for p in out] == [0, 1]


def test_a_timestamp_jump_dtx_or_a_new_talkspurt_starts_a_new_packet() -> None:
    packer = OpusRepacketizer(3)
    frame = b"\x78" + b"m" * 10
    packer.push(packet(1, frame))
    later = RawRtpPacket.create(
        frame, payload_type=111, sequence_number=2, timestamp=960 * 20, ssrc=7, marker=True
    )  # the next sequence number, 400 ms later: silence was suppressed (DTX)
    out = packer.push(later)
    assert [p.timestamp for p in out] == [960]
    (joined,) = packer.flush()
    assert joined.timestamp == 960 * 20 and joined.marker


def test_aiortcs_marker_on_every_packet_does_not_prevent_joining() -> None:
    packer = OpusRepacketizer(3)
    frame = b"\x78" + b"q" * 10
    out = [p for i in range(6) for p in packer.push(packet(i, frame, marker=True))]
    assert len(out) == 2


TOCS = st.sampled_from([0x08, 0x48, 0x78, 0x70, 0xF8, 0xF0, 0xE8, 0x0C, 0x7C])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            TOCS,
            st.binary(max_size=600),
            st.integers(0, 2),  # sequence step: 0 = duplicate, 2 = a loss
            st.booleans(),  # marker
            st.integers(0, 9),  # 0: another SSRC
            st.integers(0, 19),  # 0: not a single-frame packet
        ),
        max_size=60,
    ),
    st.integers(1, 6),
)
def test_every_frame_arrives_once_in_order_within_limits(
    steps: list[tuple[int, bytes, int, bool, int, int]], frames: int
) -> None:
    packer = OpusRepacketizer(frames)
    sent: list[tuple[int, bytes]] = []  # (ssrc, frame) in order
    out: list[RawRtpPacket] = []
    seq, ssrc = 100, 1
    for toc, body, step, marker, other, multi in steps:
        seq = (seq + step) & 0xFFFF
        if other == 0:
            ssrc += 1
        first = toc | (1 if multi == 0 else 0)
        payload = bytes([first]) + body
        out += packer.push(
            RawRtpPacket.create(
                payload,
                payload_type=111,
                sequence_number=seq,
                timestamp=seq * 960,
                ssrc=ssrc,
                marker=marker,
            )
        )
        sent.append((ssrc, payload))
    out += packer.flush()
    # Sequence numbers out are contiguous: no hole the receiver would count as loss.
    assert [p.sequence_number for p in out] == list(range(len(out)))
    received: list[tuple[int, bytes]] = []
    for p in out:
        data = p.payload
        if data[0] & 3 != 3:  # passed through as it came (inputs are code 0 or code 1)
            received.append((p.ssrc, data))
            continue
        config, parts = split_frames(data)
        assert len(parts) <= frames
        assert len(data) <= MAX_JOINED_BYTES
        assert frame_samples(data[0]) * len(parts) <= MAX_PACKET_SAMPLES
        received += [(p.ssrc, bytes([(config << 2)]) + part) for part in parts]
    assert received == sent


def test_libopus_decodes_a_joined_packet_to_the_same_audio() -> None:
    av = pytest.importorskip("av")
    import numpy as np

    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "mono", "s16"
    encoder.bit_rate = 32000
    packets: list[bytes] = []
    for n in range(12):
        t = (np.arange(960) + n * 960) / 48000
        tone = (8000 * np.sin(2 * math.pi * 440 * t)).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, n * 960
        packets += [bytes(p) for p in encoder.encode(frame)]
    packets = packets[:9]
    assert all(p[0] & 3 == 0 for p in packets)

    def decode(payloads: list[bytes]) -> np.ndarray:
        decoder = av.CodecContext.create("libopus", "r")
        decoder.sample_rate, decoder.layout = 48000, "mono"
        pcm = []
        for payload in payloads:
            for frame in decoder.decode(av.Packet(payload)):
                pcm.append(frame.to_ndarray().reshape(-1))
        return np.concatenate(pcm)

    packer = OpusRepacketizer(3)
    joined: list[RawRtpPacket] = []
    for i, payload in enumerate(packets):
        joined += packer.push(packet(i, payload))
    assert len(joined) == 3
    assert np.array_equal(decode([p.payload for p in joined]), decode(packets))
