"""Two sources feed one receiver through a sender's munger, switching five times."""

from __future__ import annotations

import asyncio
import io
import itertools
import math

import av
import numpy as np
import pytest

from tests.integration.raw_support import connect, raw_receiver_of, sender_of
from tests.support import LOOPBACK
from webrtc_ext import RTCPeerConnection
from webrtc_ext.media import OggOpusRecorder, packetize, play
from webrtc_ext.rawrtp import RtpFanOut
from webrtc_ext.rtp import RawRtpPacket

pytestmark = pytest.mark.integration

SWITCHES = 5


def tone(freq: float, seconds: float) -> list[tuple[bytes, int]]:
    """Opus packets of a sine, encoded at test time with PyAV."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "mono", "s16"
    packets = []
    for i in range(int(seconds * 50)):
        t = (np.arange(960) + i * 960) / 48000
        samples = (8000 * np.sin(2 * math.pi * freq * t)).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, i * 960
        packets += [(bytes(p), 960) for p in encoder.encode(frame)]
    return packets


async def test_five_switches_make_one_continuous_stream() -> None:
    tones = {"a": tone(440, 3.0), "b": tone(660, 3.0)}
    sources = {name: RTCPeerConnection(LOOPBACK) for name in tones}
    relay_ins = {name: RTCPeerConnection(LOOPBACK) for name in tones}
    relay_out, sink = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    for pc in [*sources.values(), relay_out]:
        pc.addTransceiver("audio", direction="sendonly")
    received: list[RawRtpPacket] = []
    ogg = io.BytesIO()
    try:
        for name in tones:
            await connect(sources[name], relay_ins[name])
        await connect(relay_out, sink)
        sink_receiver = raw_receiver_of(sink)
        sink_receiver.on_rtp(received.append)
        recorder = OggOpusRecorder(sink_receiver, ogg)
        out = sender_of(relay_out)
        fan_outs = {name: RtpFanOut(raw_receiver_of(relay_ins[name])) for name in tones}
        for fan_out in fan_outs.values():
            fan_out.add(out, switch=False)  # both feed the one sender; the munger picks
        # Unrelated numbering: b starts just before both wraps.
        origins = {"a": (1000, 0), "b": (65500, 0xFFFFFFFF - 48000)}
        players = [
            asyncio.ensure_future(
                play(
                    packetize(
                        iter(packets),
                        first_sequence_number=origins[name][0],
                        first_timestamp=origins[name][1],
                    ),
                    sender_of(sources[name]),
                )
            )
            for name, packets in tones.items()
        ]
        out.switch_source(fan_outs["a"].source)
        for i in range(SWITCHES):
            await asyncio.sleep(0.4)
            out.switch_source(fan_outs["b" if i % 2 == 0 else "a"].source)
        await asyncio.sleep(0.4)
        await asyncio.wait_for(asyncio.gather(*players), 20)
        await asyncio.sleep(0.3)
        recorder.close()
        stats = await sink_receiver.getStats()
        inbound = next(s for s in stats.values() if s.type == "inbound-rtp")
    finally:
        for pc in [*sources.values(), *relay_ins.values(), relay_out, sink]:
            await pc.close()

    # One stream: one SSRC, sequence numbers without a gap, timestamps always forward.
    assert len({p.ssrc for p in received}) == 1
    seqs = [p.sequence_number for p in received]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    stamps = [p.timestamp for p in received]
    steps = [(b - a) & 0xFFFFFFFF for a, b in itertools.pairwise(stamps)]
    assert all(0 < step < 48000 and step % 960 == 0 for step in steps)  # whole 20 ms frames
    assert inbound.packetsLost == 0 and inbound.packetsReceived == len(received)
    # ... made of both sources, alternating exactly as switched.
    origin = {payload: name for name, packets in tones.items() for payload, _ in packets}
    names = [origin[p.payload] for p in received]
    changes = sum(1 for a, b in itertools.pairwise(names) if a != b)
    assert changes == SWITCHES
    # A decoder sees no discontinuity: libopus decodes every packet in order...
    decoder = av.CodecContext.create("opus", "r")
    decoder.sample_rate, decoder.layout = 48000, "mono"
    decoded = 0
    for packet in received:
        for frame in decoder.decode(av.Packet(packet.payload)):
            decoded += frame.samples
    assert decoded == 960 * len(received)
    # ... and the Ogg file written without decoding decodes end to end.
    with av.open(io.BytesIO(ogg.getvalue()), format="ogg") as container:
        ogg_samples = sum(f.samples for f in container.decode(audio=0))
    expected = 960 * len(received) + recorder.concealed_samples - 312
    assert abs(ogg_samples - expected) <= 960
    assert recorder.packets_written == len(received)
