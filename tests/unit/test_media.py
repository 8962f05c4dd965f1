"""Ogg/Opus in and out without a codec, checked against PyAV's (libavformat's) muxer and demuxer."""

from __future__ import annotations

import contextlib
import io
import math
import wave
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webrtc_ext.media import EncodedFileSource, OggOpusFileSource, OggOpusRecording, open_source
from webrtc_ext.ogg import OggOpusReader, OggOpusWriter, ogg_packets, opus_packet_samples
from webrtc_ext.rtp import RawRtpPacket


def write_wav(path: Path, seconds: float, rate: int = 16000, freq: float = 440.0) -> None:
    """A mono 16-bit sine WAV, made at test time."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (8000 * np.sin(2 * math.pi * freq * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())


def write_ogg_opus_with_pyav(path: Path, seconds: float) -> int:
    """An Ogg/Opus file written by libavformat (an independent muxer); returns its packet count."""
    with av.open(str(path), "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        stream.bit_rate = 32000
        frames = 0
        count = 0
        for i in range(int(seconds * 50)):
            t = (np.arange(960) + i * 960) / 48000
            samples = (8000 * np.sin(2 * math.pi * 440 * t)).astype(np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate, frame.pts = 48000, frames
            frames += 960
            for packet in stream.encode(frame):
                container.mux(packet)
                count += 1
        for packet in stream.encode(None):
            container.mux(packet)
            count += 1
    return count


def decoded_samples(data: bytes) -> int:
    """Samples per channel PyAV decodes from an Ogg/Opus file (raises if it cannot)."""
    with av.open(io.BytesIO(data), format="ogg") as container:
        return sum(frame.samples for frame in container.decode(audio=0))


def test_reads_an_ogg_opus_file_written_by_libavformat(tmp_path: Path) -> None:
    path = tmp_path / "tone.opus"
    count = write_ogg_opus_with_pyav(path, 2.0)
    source = OggOpusFileSource(path)
    packets = list(source.packets())
    assert len(packets) == count
    assert source.head.channels == 1
    assert all(p.payload_type == 111 for p in packets)
    assert [p.sequence_number for p in packets] == list(range(count))
    assert [p.timestamp for p in packets] == [960 * i for i in range(count)]
    assert isinstance(open_source(path), OggOpusFileSource)


def test_what_it_writes_decodes_with_libavformat() -> None:
    writer = OggOpusWriter()
    out = io.BytesIO()
    out.write(writer.start())
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "mono", "s16"
    for i in range(100):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 960), dtype=np.int16), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = 48000, i * 960
        for packet in encoder.encode(frame):
            out.write(writer.packet(bytes(packet), 960))
    out.write(writer.end())
    samples = decoded_samples(out.getvalue())
    assert abs(samples - (100 * 960 - 312)) <= 2 * 960  # pre-skip trimmed, encoder delay


def test_encodes_a_wav_file(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    write_wav(path, 1.0)
    source = open_source(path)
    assert isinstance(source, EncodedFileSource)
    packets = list(source.packets())
    assert 50 <= len(packets) <= 53
    assert all(opus_packet_samples(p.payload) == 960 for p in packets)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=700), min_size=1, max_size=20))
def test_ogg_round_trip_keeps_every_packet(payloads: list[bytes]) -> None:
    packets = [bytes([0xF8]) + p for p in payloads]  # CELT 20 ms TOC
    writer = OggOpusWriter()
    data = writer.start() + b"".join(writer.packet(p, 960) for p in packets) + writer.end()
    reader = OggOpusReader(data)
    assert [p for p, _ in reader.packets()] == packets


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 399), st.integers(0, 255))
def test_damaged_ogg_never_crashes(tail: bytes, where: int, value: int) -> None:
    writer = OggOpusWriter()
    data = bytearray(writer.start() + writer.packet(b"\xf8abc", 960) + writer.end() + tail)
    data[where % len(data)] = value
    list(ogg_packets(bytes(data)))  # bad pages are skipped, never an exception
    with contextlib.suppress(ValueError):
        list(OggOpusReader(bytes(data)).packets())


def test_opus_packet_durations() -> None:
    assert opus_packet_samples(bytes([0xF8])) == 960  # CELT FB 20 ms
    assert opus_packet_samples(bytes([0x08])) == 960  # SILK NB 20 ms
    assert opus_packet_samples(bytes([0xF9])) == 1920  # two frames
    assert opus_packet_samples(bytes([0xFB, 0x03])) == 2880  # code 3, three frames
    with pytest.raises(ValueError):
        opus_packet_samples(b"")


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.lists(st.booleans(), min_size=1, max_size=60),
    st.randoms(use_true_random=False),
)
def test_recording_restores_order_and_timing(
    first_seq: int, first_ts: int, lost: list[bool], rng: Any
) -> None:
    packets = [
        RawRtpPacket.create(
            bytes([0xF8, i]),
            payload_type=111,
            sequence_number=first_seq + i,
            timestamp=first_ts + 960 * i,
        )
        for i in range(len(lost))
        if not lost[i] or i == 0
    ]
    # Reorder within 4 sequence numbers (the recording waits for 8). In sequence numbers, not
    # list positions: across a loss, 4 positions can be more than 8 sequence numbers apart.
    offset = [(p.sequence_number - first_seq) & 0xFFFF for p in packets]
    arrival = sorted(range(len(packets)), key=lambda k: offset[k] + rng.uniform(0, 4))
    recording = OggOpusRecording()
    data = recording.start() + b"".join(recording.add(packets[k]) for k in arrival)
    data += recording.end()
    written = [p for p, _ in OggOpusReader(data).packets()]
    # Every packet in sequence order, gaps filled with 20 ms concealment frames.
    assert [p for p in written if len(p) == 2] == [p.payload for p in packets]
    last = max(p.sequence_number - first_seq & 0xFFFF for p in packets)
    assert len(written) == last + 1
    assert recording.concealed_samples == 960 * (last + 1 - len(packets))
