"""Raw RTP over real loopback connections: packets in and out of aiortc without codecs."""

from __future__ import annotations

import asyncio
import itertools
import threading

import pytest

from tests.integration.raw_support import connect, fan_out_rig, raw_receiver_of, sender_of
from tests.support import LOOPBACK
from webrtc_ext import RTCPeerConnection
from webrtc_ext.rawrtp import RtpFanOut
from webrtc_ext.rtp import RawRtpPacket

pytestmark = pytest.mark.integration


async def test_raw_packets_cross_unchanged_with_the_senders_ssrc_and_payload_type() -> None:
    offerer, answerer = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    offerer.addTransceiver("audio", direction="sendonly")
    received: list[RawRtpPacket] = []
    try:
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        receiver = raw_receiver_of(answerer)
        receiver.on_rtp(received.append)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        sender = sender_of(offerer)
        for _ in range(200):
            if sender.codec is not None and offerer.connectionState == "connected":
                break
            await asyncio.sleep(0.05)
        payloads = [bytes([i]) * (20 + i) for i in range(40)]
        pt = sender.codec.payloadType  # type: ignore[union-attr]
        for i, payload in enumerate(payloads):
            # A foreign SSRC, payload type and numbering: all rewritten by the sender.
            packet = RawRtpPacket.create(
                payload, payload_type=99, sequence_number=65530 + i, timestamp=i * 960, ssrc=7
            )
            assert sender.send_rtp(packet)
            if i == 19:
                # Packets the sender makes itself (as a DTMF sender would) share the numbering.
                stamp = sender.send_rtp_inserted(b"event", payload_type=pt)
                assert sender.send_rtp_inserted(b"event", payload_type=pt, timestamp=stamp)
            await asyncio.sleep(0.002)
        expected = [*payloads[:20], b"event", b"event", *payloads[20:]]
        for _ in range(100):
            if len(received) >= len(expected):
                break
            await asyncio.sleep(0.05)
        assert [p.payload for p in received] == expected
        assert {p.ssrc for p in received} == {sender._ssrc}
        assert {p.payload_type for p in received} == {sender.codec.payloadType}  # type: ignore[union-attr]
        seqs = [p.sequence_number for p in received]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
        assert all(p.arrival_time > 0 for p in received)
        assert not [t for t in threading.enumerate() if t.name == "audio-decoder"]
        stats = await sender.getStats()
        outbound = next(s for s in stats.values() if s.type == "outbound-rtp")
        assert outbound.packetsSent == len(expected)
        # The sender reports (RTCP SR, every 0.5-1.5 s) carry the raw packets' counts.
        remote = None
        for _ in range(100):
            stats = await receiver.getStats()
            remote = next((s for s in stats.values() if s.type == "remote-outbound-rtp"), None)
            if remote is not None and remote.packetsSent == len(expected):
                break
            await asyncio.sleep(0.05)
        assert remote is not None and remote.packetsSent == len(expected)
        assert remote.bytesSent == sum(map(len, expected))
    finally:
        await offerer.close()
        await answerer.close()


async def test_async_iterator_and_fan_out_to_two_senders() -> None:
    async with fan_out_rig() as rig:
        source, relay_outs, sinks = rig.source, rig.relay_outs, rig.sinks
        fan_out = RtpFanOut(raw_receiver_of(rig.relay_in))
        for out in relay_outs:
            fan_out.add(sender_of(out))
        iterators = [raw_receiver_of(sink).rtp_packets() for sink in sinks]
        firsts = [asyncio.ensure_future(anext(it)) for it in iterators]
        await asyncio.sleep(0.1)
        for i in range(10):
            sender_of(source).send_rtp(
                RawRtpPacket.create(b"opus", payload_type=111, sequence_number=i, timestamp=960 * i)
            )
        packets = await asyncio.wait_for(asyncio.gather(*firsts), 10)
        assert [p.payload for p in packets] == [b"opus", b"opus"]
        assert packets[0].ssrc == sender_of(relay_outs[0])._ssrc
        assert packets[1].ssrc == sender_of(relay_outs[1])._ssrc
        for it in iterators:
            await it.aclose()


async def test_garbage_datagrams_are_dropped_and_the_stream_goes_on() -> None:
    import os
    import socket
    import struct

    offerer, answerer = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    offerer.addTransceiver("audio", direction="sendonly")
    received: list[RawRtpPacket] = []
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        await connect(offerer, answerer)
        raw_receiver_of(answerer).on_rtp(received.append)
        sender = sender_of(offerer)
        pair = answerer.ice_transports[0].getSelectedCandidatePair()
        assert pair is not None
        target = (pair.local.ip, pair.local.port)
        ssrc = struct.pack("!I", sender._ssrc)
        garbage = [
            b"",
            b"\x80",
            b"\x80" * 11,
            b"\x80\x6f\x00\x01\x00\x00\x00\x00" + ssrc + os.urandom(60),  # fails SRTP auth
            b"\x90\x6f\x00\x02\x00\x00\x00\x00" + ssrc + b"\xbe\xde\xff\xff",  # bad extension
            b"\x80\xc8" + os.urandom(40),  # RTCP-looking
            b"\x00\x01\x00\x08" + os.urandom(30),  # STUN-looking
            b"\x16\xfe\xfd" + os.urandom(50),  # DTLS-looking
        ]
        for i in range(10):
            for datagram in garbage:
                attacker.sendto(datagram, target)
            sender.send_rtp(
                RawRtpPacket.create(b"ok", payload_type=111, sequence_number=i, timestamp=960 * i)
            )
            await asyncio.sleep(0.01)
        for _ in range(100):
            if len(received) >= 10:
                break
            await asyncio.sleep(0.05)
        assert [p.payload for p in received] == [b"ok"] * 10
        assert answerer.connectionState == "connected"
    finally:
        attacker.close()
        await offerer.close()
        await answerer.close()


async def test_track_and_raw_packets_share_one_sequence_space() -> None:
    from aiortc.mediastreams import AudioStreamTrack

    offerer, answerer = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    offerer.addTrack(AudioStreamTrack())  # aiortc encodes this track
    received: list[RawRtpPacket] = []
    try:
        await connect(offerer, answerer)
        raw_receiver_of(answerer).on_rtp(received.append)
        sender = sender_of(offerer)
        track = sender.track
        await asyncio.sleep(0.3)
        sender.switch_source("injected")  # a foreign sequence space, on the same SSRC
        for i in range(15):
            sender.send_rtp(
                RawRtpPacket.create(
                    b"\xf8raw", payload_type=111, sequence_number=40000 + i, timestamp=960 * i
                ),
                source="injected",
            )
            await asyncio.sleep(0.02)
        sender.switch_source(track)  # and back to the encoder
        await asyncio.sleep(0.3)
    finally:
        await offerer.close()
        await answerer.close()
    kinds = ["raw" if p.payload == b"\xf8raw" else "track" for p in received]
    assert kinds.count("raw") == 15
    assert kinds[0] == "track" and kinds[-1] == "track"  # the encoder went on after
    assert len({p.ssrc for p in received}) == 1
    seqs = [p.sequence_number for p in received]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))


async def test_fan_out_joins_opus_frames_for_one_destination_only() -> None:
    """``opus_frames=3``: that sink gets a third of the packets, the same frames; the other, all."""
    async with fan_out_rig() as rig:
        source, relay_outs, sinks = rig.source, rig.relay_outs, rig.sinks
        fan_out = RtpFanOut(raw_receiver_of(rig.relay_in))
        fan_out.add(sender_of(relay_outs[0]))
        fan_out.add(sender_of(relay_outs[1]), opus_frames=3)
        got: list[list[RawRtpPacket]] = [[], []]
        for index, sink in enumerate(sinks):
            raw_receiver_of(sink).on_rtp(got[index].append)
        await asyncio.sleep(0.1)
        frames = [bytes([0x78]) + bytes([i]) * (30 + i) for i in range(12)]
        for i, frame in enumerate(frames):
            sender_of(source).send_rtp(
                RawRtpPacket.create(frame, payload_type=111, sequence_number=i, timestamp=960 * i)
            )
            await asyncio.sleep(0.02)
        for _ in range(100):
            if len(got[0]) == 12 and len(got[1]) == 4:
                break
            await asyncio.sleep(0.05)
        assert [p.payload for p in got[0]] == frames
        assert len(got[1]) == 4
        joined = got[1]
        # Contiguous sequence numbers, 60 ms timestamp steps, each packet three frames (CBR/VBR).
        assert [(p.sequence_number - joined[0].sequence_number) & 0xFFFF for p in joined] == [
            0,
            1,
            2,
            3,
        ]
        assert [(p.timestamp - joined[0].timestamp) & 0xFFFFFFFF for p in joined] == [
            0,
            2880,
            5760,
            8640,
        ]
        assert all(p.payload[0] & 3 == 3 and p.payload[1] & 0x3F == 3 for p in joined)
        assert b"".join(p.payload for p in joined).count(bytes([11]) * 41) == 1
