"""A relay over real sockets gives the same packets and statistics with the C path as without.

A source sends raw Opus-like packets (with audio levels) to a relay, whose fan-out forwards them
to two sinks. The same run is made twice, with ``webrtc_ext.native`` on and off: the sinks
must receive the same packets (payload, marker, audio level, sequence and timestamp steps), and
the W3C statistics of every connection must count the same packets and bytes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.raw_support import connect, raw_receiver_of, sender_of
from tests.support import LOOPBACK
from webrtc_ext import RTCPeerConnection, RtpFanOut, native
from webrtc_ext.interceptor import TransportInterceptor
from webrtc_ext.rawrtp import RtpFastPathMixin
from webrtc_ext.rtp import RawRtpPacket

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not native.AVAILABLE, reason="webrtc_ext._native not built"),
]

#: No RTCP during the run: reports go out at random times, and would make byte counts differ.
QUIET = LOOPBACK.with_changes(rtcp_interval=30.0)  # the first report after 15 s at least
PACKETS = 120
#: The figures both runs must agree on, per stats type.
COUNTED = {
    "outbound-rtp": ("packetsSent", "bytesSent", "headerBytesSent"),
    "inbound-rtp": ("packetsReceived", "bytesReceived", "headerBytesReceived", "packetsLost"),
    "transport": ("packetsSent", "packetsReceived", "bytesSent", "bytesReceived"),
    "candidate-pair": ("packetsSent", "packetsReceived", "bytesSent", "bytesReceived"),
}


def counted(report: Any) -> dict[str, tuple[int, ...]]:
    figures = {}
    for stats in report.values():
        names = COUNTED.get(stats.type)
        if names is not None and getattr(stats, "nominated", True) is not False:
            figures[stats.type] = tuple(getattr(stats, name, None) or 0 for name in names)
    return figures


async def snapshot(pcs: list[RTCPeerConnection]) -> list[dict[str, tuple[int, ...]]]:
    return [counted(await pc.getStats()) for pc in pcs]


def grown(
    before: list[dict[str, tuple[int, ...]]], after: list[dict[str, tuple[int, ...]]]
) -> list[dict[str, tuple[int, ...]]]:
    """What each figure grew by (the DTLS handshake's bytes vary from run to run)."""
    return [
        {
            kind: tuple(b - a for a, b in zip(old.get(kind, (0,) * len(new)), new, strict=True))
            for kind, new in later.items()
        }
        for old, later in zip(before, after, strict=True)
    ]


async def relay_run(monkeypatch: pytest.MonkeyPatch, enabled: bool) -> dict[str, Any]:
    monkeypatch.setattr(native, "ENABLED", enabled)
    source, relay_in = RTCPeerConnection(QUIET), RTCPeerConnection(QUIET)
    outs = [RTCPeerConnection(QUIET) for _ in range(3)]
    sinks = [RTCPeerConnection(QUIET) for _ in range(3)]
    pcs = [source, relay_in, *outs, *sinks]
    try:
        source.addTransceiver("audio", direction="sendonly")
        for out in outs:
            out.addTransceiver("audio", direction="sendonly")
        await connect(source, relay_in)
        for out, sink in zip(outs, sinks, strict=True):
            await connect(out, sink)
        fan = RtpFanOut(raw_receiver_of(relay_in))
        fan.add(sender_of(outs[0]))
        fan.add(sender_of(outs[1]))
        fan.add(sender_of(outs[2]), opus_frames=3)  # joined Opus frames, as to transcription
        heard: list[list[RawRtpPacket]] = [[], [], []]
        for sink, packets in zip(sinks, heard, strict=True):
            raw_receiver_of(sink).on_rtp(packets.append)
        sender = sender_of(source)
        before = await snapshot(pcs)
        for n in range(PACKETS):
            packet = RawRtpPacket.create(
                bytes([0x78]) + bytes([n % 251]) * (20 + n % 60),
                payload_type=111,
                sequence_number=1000 + n,
                timestamp=960 * n,
                marker=n % 40 == 0,
            )
            # RFC 6464: the level in -dBov, with the voice activity bit on odd packets.
            packet.audio_level = (n * 7) % 128 | (n % 2) << 7 if n % 3 else None
            assert sender.send_rtp(packet)
            if n % 10 == 9:
                await asyncio.sleep(0.02)
        for _ in range(100):
            if all(len(packets) == PACKETS for packets in heard[:2]) and heard[2]:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        relay_transport = relay_in.getTransceivers()[0].receiver.transport
        assert isinstance(relay_transport, RtpFastPathMixin)
        connection = relay_transport._ice_connection
        assert connection is not None
        # What the C path reads for every packet, in slots: every slot of every object it
        # reads on the relay holds a value (a misspelt slot name would hold none).
        reached = [
            raw_receiver_of(relay_in),
            relay_transport,
            relay_transport.interceptors,
            relay_transport.interceptors._stages[0].counters,
            connection._engine,
            connection._engine.selected[1].local_socket,
            fan,
            *(sender_of(out) for out in outs),
            *(sender_of(out)._outbound for out in outs),
            *(sender_of(out)._munger for out in outs),
            *raw_receiver_of(relay_in)._stream_statistics.values(),
        ]
        unset = [
            (type(obj).__name__, name)
            for obj in reached
            for klass in type(obj).__mro__
            for name in getattr(klass, "__slots__", ())
            if name not in ("__dict__", "__weakref__") and not hasattr(obj, name)
        ]
        return {
            "unset_slots": unset,
            "heard": [
                [
                    (
                        (p.sequence_number - packets[0].sequence_number) & 0xFFFF,
                        (p.timestamp - packets[0].timestamp) & 0xFFFFFFFF,
                        p.marker,
                        p.audio_level,
                        p.payload,
                    )
                    for p in packets
                ]
                for packets in heard
            ],
            "stats": grown(before, await snapshot(pcs)),
            "levels": [raw_receiver_of(sink).audio_level for sink in sinks],
            "last": [
                raw_receiver_of(sink).last_arrival == packets[-1].arrival_time
                for sink, packets in zip(sinks, heard, strict=True)
            ],
            "native": (
                relay_transport._native_recv is not None
                and relay_transport._ice_connection is not None
                and relay_transport._ice_connection.native_receive is relay_transport._native_recv,
                [sender_of(out)._native is not None for out in outs[:2]],
                fan._callback != fan._forward,
            ),
        }
    finally:
        for pc in pcs:
            await pc.close()


async def test_the_c_path_relays_and_counts_what_the_python_path_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    python = await relay_run(monkeypatch, enabled=False)
    c = await relay_run(monkeypatch, enabled=True)
    assert python["native"] == (False, [False, False], False)
    # (True: the relay's receive went socket → C → callbacks, its sends C all the way.)
    assert c["native"] == (True, [True, True], True), "the C path was used on the relay"
    assert len(python["heard"][2]) == PACKETS // 3, "three frames a packet toward the third"
    assert len(python["heard"][0]) == PACKETS, "every packet arrived (loopback)"
    assert c["heard"] == python["heard"]
    assert [p[3] for p in c["heard"][0][:4]] == [None, 135, 14, None], "audio levels forwarded"
    assert c["stats"] == python["stats"]
    # The last packet's level (119 * 7 % 128 = 65 -dBov; its voice activity bit is not part
    # of the level), read when asked, on both paths.
    assert c["levels"][0] == python["levels"][0] == pytest.approx(10 ** (-65 / 20))
    assert c["levels"] == python["levels"]
    assert c["last"] == python["last"] == [True, True, True]
    assert c["stats"][1]["inbound-rtp"][0] == PACKETS, "the relay counted every packet"
    assert c["unset_slots"] == python["unset_slots"] == []


async def test_a_failing_callback_is_logged_and_the_others_still_get_every_packet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source, relay_in = RTCPeerConnection(QUIET), RTCPeerConnection(QUIET)
    try:
        source.addTransceiver("audio", direction="sendonly")
        await connect(source, relay_in)
        receiver = raw_receiver_of(relay_in)
        heard: list[int] = []

        def broken(packet: RawRtpPacket) -> None:
            raise RuntimeError("a consumer's bug")

        receiver.on_rtp(broken)
        receiver.on_rtp(lambda packet: heard.append(packet.sequence_number))
        sender = sender_of(source)
        for n in range(60):
            packet = RawRtpPacket.create(b"\x78voice", payload_type=111, sequence_number=n,
                                         timestamp=960 * n)  # fmt: skip
            assert sender.send_rtp(packet)
            await asyncio.sleep(0.002)
        for _ in range(50):
            if len(heard) == 60:
                break
            await asyncio.sleep(0.02)
        transport = receiver.transport
        assert isinstance(transport, RtpFastPathMixin)
        assert transport._ice_connection is not None
        assert transport._ice_connection.native_receive is not None, "C delivered"
        assert len(heard) == 60
        failures = [r for r in caplog.records if "RTP callback" in r.getMessage()]
        assert len(failures) == 60 and failures[-1].exc_info is not None
        assert "a consumer's bug" in str(failures[-1].exc_info[1])
    finally:
        await source.close()
        await relay_in.close()


async def test_media_pauses_while_a_tone_plays_on_a_destination_fed_in_c() -> None:
    source, relay_in = RTCPeerConnection(QUIET), RTCPeerConnection(QUIET)
    out, sink = RTCPeerConnection(QUIET), RTCPeerConnection(QUIET)
    pcs = [source, relay_in, out, sink]
    try:
        source.addTransceiver("audio", direction="sendonly")
        out.addTransceiver("audio", direction="sendonly")
        await connect(source, relay_in)
        await connect(out, sink)
        fan = RtpFanOut(raw_receiver_of(relay_in))
        relay_sender = sender_of(out)
        fan.add(relay_sender)
        kinds: list[int] = []
        sink_transport = raw_receiver_of(sink).transport
        assert isinstance(sink_transport, RtpFastPathMixin)
        sink_transport.interceptors.add(Recorder(kinds))
        sender = sender_of(source)
        assert relay_sender.dtmf is not None
        for n in range(60):
            packet = RawRtpPacket.create(b"\x78voice", payload_type=111, sequence_number=n,
                                         timestamp=960 * n)  # fmt: skip
            assert sender.send_rtp(packet)
            if n == 15:
                assert relay_sender._native is not None, "the destination is fed in C"
                relay_sender.dtmf.insertDTMF("1", duration=200)
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert fan._callback != fan._forward
        audio = relay_sender.codec.payloadType if relay_sender.codec else None
        events = [i for i, pt in enumerate(kinds) if pt != audio]
        assert events, "the tone was sent"
        assert all(pt != audio for pt in kinds[events[0] : events[-1] + 1]), "no audio in a tone"
        assert kinds[0] == audio and kinds[-1] == audio, "audio before and after"
        assert relay_sender.packets_dropped >= 5, "the packets held back were counted"
    finally:
        for pc in pcs:
            await pc.close()


class Recorder(TransportInterceptor):
    """A transport stage that notes the payload type of each RTP packet that arrives."""

    def __init__(self, kinds: list[int]) -> None:
        self.kinds = kinds

    def rtp_received(self, data: bytes, now: float) -> None:
        self.kinds.append(data[1] & 0x7F)
