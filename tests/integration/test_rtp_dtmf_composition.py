"""Raw RTP, DTMF and the DTLS/SRTP fast path together: a relay forwarding a caller's audio raw."""

from __future__ import annotations

import asyncio
import itertools
import threading

import pytest
from aiortc import AudioStreamTrack

from tests.integration.raw_support import connect, raw_receiver_of, sender_of
from tests.support import LOOPBACK
from webrtc_ext import RTCDtlsTransport, RTCPeerConnection, TelephoneEvent, native
from webrtc_ext.ice import IceConnection
from webrtc_ext.rawrtp import RtpFanOut, RtpFastPathMixin
from webrtc_ext.rtp import RawRtpPacket

pytestmark = pytest.mark.integration


async def wait_for(condition: object, timeout: float = 15.0) -> None:
    """Poll ``condition()`` until it is true (generous: the machine may be loaded)."""
    for _ in range(int(timeout / 0.05)):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.parametrize("c_path", [False, True], ids=["python", "c"])
async def test_raw_relay_forwards_audio_and_decodes_dtmf_from_one_sequence(
    monkeypatch: pytest.MonkeyPatch, c_path: bool
) -> None:
    # caller --(audio track + DTMF)--> relay_in ==raw fan-out==> relay_out --> agent
    if c_path and not native.AVAILABLE:
        pytest.skip("webrtc_ext._native not built")
    monkeypatch.setattr(native, "ENABLED", c_path)
    caller, relay_in = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    relay_out, agent = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    forwarded: list[RawRtpPacket] = []
    relayed: list[RawRtpPacket] = []
    events: list[TelephoneEvent] = []
    try:
        relay_out.addTransceiver("audio", direction="sendonly")
        await relay_out.setLocalDescription(await relay_out.createOffer())
        await agent.setRemoteDescription(relay_out.localDescription)
        raw_receiver_of(agent).on_rtp(forwarded.append)
        await agent.setLocalDescription(await agent.createAnswer())
        await relay_out.setRemoteDescription(agent.localDescription)

        caller.addTrack(AudioStreamTrack())
        await caller.setLocalDescription(await caller.createOffer())
        await relay_in.setRemoteDescription(caller.localDescription)
        receiver = raw_receiver_of(relay_in)
        receiver.on_rtp(relayed.append)
        fan_out = RtpFanOut(receiver)
        relay_in.on("dtmf", events.append)
        await relay_in.setLocalDescription(await relay_in.createAnswer())
        await caller.setRemoteDescription(relay_in.localDescription)
        await connect(relay_out, agent)
        fan_out.add(sender_of(relay_out))
        await wait_for(lambda: len(relayed) >= 10 and len(forwarded) >= 5)

        transport = receiver.transport
        assert isinstance(transport, RtpFastPathMixin) and isinstance(transport, RTCDtlsTransport)
        dtmf = sender_of(caller).dtmf
        assert dtmf is not None and dtmf.canInsertDTMF
        dtmf.insertDTMF("1#9", duration=120, interToneGap=70)
        await wait_for(lambda: len(events) >= 3)
        audio_after_tones = len(relayed)
        await wait_for(lambda: len(relayed) >= audio_after_tones + 10)  # audio resumed
        assert isinstance(transport._ice_connection, IceConnection)
        # With the C path, audio went socket → C → callbacks past the DTMF stage.
        assert (transport._ice_connection.native_receive is not None) is c_path
        assert receiver.last_arrival == relayed[-1].arrival_time
    finally:
        await caller.close()
        await relay_in.close()
        await relay_out.close()
        await agent.close()

    # Digits arrive as events, although the receiver is raw (SRTP fast path).
    assert [e.digit for e in events] == ["1", "#", "9"]
    assert not [t for t in threading.enumerate() if t.name == "audio-decoder"]
    # Neither the raw consumers nor the forwarded stream see telephone-event.
    te_types = receiver.telephone_events.payload_types
    assert te_types, "telephone-event was negotiated"
    assert {p.payload_type for p in relayed}.isdisjoint(te_types)
    assert {p.payload_type for p in forwarded} == {sender_of(relay_out).codec.payloadType}  # type: ignore[union-attr]
    # The caller's numbering is one sequence across tones: the audio's gaps are exactly the
    # telephone-event packets, and nothing is missing.
    stats = next(s for s in (await receiver.getStats()).values() if s.type == "inbound-rtp")
    seqs = [p.sequence_number for p in relayed]
    gaps = sum((b - a - 1) & 0xFFFF for a, b in itertools.pairwise(seqs))
    telephone_events = stats.packetsReceived - len(relayed)
    assert telephone_events >= 3 * 4, "each tone is several RFC 4733 packets"
    assert gaps == telephone_events
    assert stats.packetsLost == 0


async def test_raw_sender_sends_dtmf_in_its_one_sequence_space() -> None:
    # A relay's raw sender (no track) injects DTMF toward the agent between forwarded packets.
    relay_out, agent = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    forwarded: list[RawRtpPacket] = []
    events: list[TelephoneEvent] = []
    held = 0

    async def pump() -> None:
        nonlocal held
        for i in itertools.count():
            packet = RawRtpPacket.create(
                b"\xf8\xff\xfe", payload_type=111, sequence_number=i, timestamp=i * 960, ssrc=5
            )
            if not sender.send_rtp(packet):
                held += 1
            await asyncio.sleep(0.02)

    try:
        relay_out.addTransceiver("audio", direction="sendonly")
        await relay_out.setLocalDescription(await relay_out.createOffer())
        await agent.setRemoteDescription(relay_out.localDescription)
        receiver = raw_receiver_of(agent)
        receiver.on_rtp(forwarded.append)
        agent.on("dtmf", events.append)
        await agent.setLocalDescription(await agent.createAnswer())
        await relay_out.setRemoteDescription(agent.localDescription)
        await connect(relay_out, agent)
        sender = sender_of(relay_out)
        task = asyncio.ensure_future(pump())
        try:
            await wait_for(lambda: len(forwarded) >= 10)
            assert sender.dtmf is not None
            sender.dtmf.insertDTMF("58", duration=100, interToneGap=70)
            await wait_for(lambda: len(events) >= 2)
            count = len(forwarded)
            await wait_for(lambda: len(forwarded) >= count + 10)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        stats = next(s for s in (await receiver.getStats()).values() if s.type == "inbound-rtp")
    finally:
        await relay_out.close()
        await agent.close()

    assert [e.digit for e in events] == ["5", "8"]
    assert held > 0, "forwarded packets are held while a tone plays"
    assert {p.payload_type for p in forwarded} == {sender.codec.payloadType}  # type: ignore[union-attr]
    seqs = [p.sequence_number for p in forwarded]
    gaps = sum((b - a - 1) & 0xFFFF for a, b in itertools.pairwise(seqs))
    assert gaps == stats.packetsReceived - len(forwarded) >= 2 * 4
    assert stats.packetsLost == 0
    stamps = [p.timestamp for p in forwarded]
    assert all(0 < (b - a) & 0xFFFFFFFF < 0x80000000 for a, b in itertools.pairwise(stamps))
