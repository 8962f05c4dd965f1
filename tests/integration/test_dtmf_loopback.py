"""DTMF between two library peers over real loopback sockets, with and without packet loss."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import re
from collections.abc import Callable

import pytest
from aiortc.exceptions import InvalidStateError
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket, is_rtcp

from tests.integration.raw_support import connect
from tests.support import LOOPBACK, audio_call
from webrtc_ext import RTCPeerConnection
from webrtc_ext.dtmf import (
    DtmfSenderMixin,
    RTCDTMFToneChangeEvent,
    TelephoneEvent,
    TelephoneEventPayload,
)
from webrtc_ext.interceptor import TransportInterceptor
from webrtc_ext.rawrtp import RtpFastPathMixin

pytestmark = pytest.mark.integration

DIGITS = "0123456789*#"


def drop_rtp(pc: RTCPeerConnection, loss: float, seed: int) -> dict[str, int]:
    """Make ``pc``'s DTLS transport drop a random ``loss`` fraction of the RTP it sends."""
    transport = pc.getTransceivers()[0].sender.transport
    assert isinstance(transport, RtpFastPathMixin)  # every RTP packet leaves by send_rtp_now
    send: Callable[[bytes], None] = transport.send_rtp_now
    rng = random.Random(seed)
    counts = {"sent": 0, "dropped": 0}

    def lossy(data: bytes) -> None:
        if not is_rtcp(data) and (data[1] & 0x7F) in (110, 126):
            counts["sent"] += 1
            if rng.random() < loss:
                counts["dropped"] += 1
                return
        elif not is_rtcp(data) and rng.random() < loss:
            return
        send(data)

    transport.send_rtp_now = lossy  # type: ignore[method-assign]
    return counts


async def press(pc: RTCPeerConnection, tones: str, duration: int = 100) -> list[str]:
    """``insertDTMF`` on ``pc``'s audio sender; return the tonechange tones once played."""
    sender = pc.getTransceivers()[0].sender
    assert isinstance(sender, DtmfSenderMixin) and sender.dtmf is not None
    changes: list[str] = []
    done = asyncio.Event()

    def on_tone(event: RTCDTMFToneChangeEvent) -> None:
        changes.append(event.tone)
        if event.tone == "":
            done.set()

    sender.dtmf.ontonechange = on_tone
    assert sender.dtmf.canInsertDTMF
    sender.dtmf.insertDTMF(tones, duration=duration, interToneGap=70)
    assert sender.dtmf.toneBuffer == tones.upper()
    await asyncio.wait_for(done.wait(), 30)
    return changes


async def settle(pc: RTCPeerConnection) -> None:
    """Wait past the decoder's timeout so that any extra (invented) press would show."""
    await asyncio.sleep(1.5)


async def test_every_digit_arrives_once_with_20_percent_loss() -> None:
    async with audio_call() as call:
        received: list[TelephoneEvent] = []
        call.answerer.on("dtmf", received.append)
        counts = drop_rtp(call.offerer, 0.2, seed=20)
        await press(call.offerer, DIGITS, duration=200)
        await settle(call.answerer)
        assert counts["dropped"] > 0, "the loss was injected"
        assert "".join(e.digit for e in received) == DIGITS
        assert {e.mid for e in received} == {call.answerer.getTransceivers()[0].mid}


async def test_audio_keeps_playing_and_statistics_stay_right() -> None:
    async with audio_call() as call:
        transceiver = call.answerer.getTransceivers()[0]
        iterated: list[str] = []

        async def collect() -> None:
            async for event in call.answerer.dtmf_events(transceiver):
                iterated.append(event.digit)

        collector = asyncio.ensure_future(collect())
        tones = await press(call.offerer, "159#")
        await settle(call.answerer)
        assert tones == ["1", "5", "9", "#", ""]
        assert iterated == ["1", "5", "9", "#"]
        # The decoder thread survived telephone-event: audio frames still arrive.
        track = transceiver.receiver.track
        for _ in range(5):
            await asyncio.wait_for(track.recv(), 5)
        stats = [
            s for s in (await transceiver.receiver.getStats()).values() if s.type == "inbound-rtp"
        ]
        (inbound,) = stats
        # Every telephone-event packet is counted as received: none looks lost.
        assert inbound.packetsLost == 0
    await asyncio.wait_for(collector, 5)  # the iterator ends when the call closes


async def test_dtmf_off_means_no_dtmf_sender_can_insert() -> None:
    from tests.support import LOOPBACK

    off = LOOPBACK.with_changes(dtmf=False)
    async with audio_call(off, LOOPBACK) as call:
        sender = call.offerer.getTransceivers()[0].sender
        assert isinstance(sender, DtmfSenderMixin) and sender.dtmf is not None
        assert not sender.dtmf.canInsertDTMF


async def test_insert_dtmf_validates_like_the_w3c_api() -> None:
    from webrtc_ext.dtmf import InvalidCharacterError

    async with audio_call() as call:
        received: list[TelephoneEvent] = []
        call.answerer.on("dtmf", received.append)
        sender = call.offerer.getTransceivers()[0].sender
        assert isinstance(sender, DtmfSenderMixin) and sender.dtmf is not None
        with pytest.raises(InvalidCharacterError):
            sender.dtmf.insertDTMF("12x")
        assert sender.dtmf.toneBuffer == ""
        tones = await press(call.offerer, "a", duration=1)  # lower case; 1 ms clamps to 40
        assert tones == ["A", ""]
        await settle(call.answerer)
        (event,) = received
        assert event.digit == "A" and abs(event.duration - 0.04) < 0.005


async def test_packets_share_the_audio_ssrc_and_sequence_like_a_browser() -> None:
    async with audio_call() as call:
        transport = call.offerer.getTransceivers()[0].sender.transport
        assert isinstance(transport, RtpFastPathMixin)
        send = transport.send_rtp_now
        sent: list[RtpPacket] = []

        def capture(data: bytes) -> None:
            if not is_rtcp(data):
                sent.append(RtpPacket.parse(data))
            send(data)

        transport.send_rtp_now = capture  # type: ignore[method-assign]
        await press(call.offerer, "12", duration=200)
        await asyncio.sleep(0.2)  # some audio after the tones

    assert len({p.ssrc for p in sent}) == 1, "one SSRC for audio and telephone-event"
    seqs = [p.sequence_number for p in sent]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs)), "one sequence"
    kinds = "".join("t" if p.payload_type in (110, 126) else "a" for p in sent)
    # Tone "1", the gap (audio), tone "2", audio: audio pauses while a tone plays.
    assert re.fullmatch(r"a*t+a+t+a+", kinds), kinds
    for tone in re.finditer("t+", kinds):
        packets = sent[tone.start() : tone.end()]
        payloads = [TelephoneEventPayload.parse(p.payload) for p in packets]
        assert [p.marker for p in packets] == [1] + [0] * (len(packets) - 1)
        assert len({p.timestamp for p in packets}) == 1
        assert [p.end for p in payloads][-3:] == [True] * 3 and not any(
            p.end for p in payloads[:-3]
        )
        assert len({p.duration for p in payloads[-3:]}) == 1
        durations = [p.duration for p in payloads[:-2]]
        assert durations == sorted(durations) and len(durations) >= 3  # ~50 ms updates


async def test_closing_while_tones_play_is_clean() -> None:
    async with audio_call() as call:
        sender = call.offerer.getTransceivers()[0].sender
        assert isinstance(sender, DtmfSenderMixin) and sender.dtmf is not None
        sender.dtmf.insertDTMF("123456789", duration=500)
        await asyncio.sleep(0.3)
    assert not sender.dtmf.canInsertDTMF
    with pytest.raises(InvalidStateError):
        sender.dtmf.insertDTMF("1")


async def test_decoded_audio_keeps_flowing_while_tones_play() -> None:
    """Telephone-event packets leave no sequence gap that aiortc's jitter buffer waits on."""
    offerer, answerer = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    offerer.addTrack(AudioStreamTrack())
    decoded = [0]
    readers: list[asyncio.Task[None]] = []

    async def count_frames(track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                decoded[0] += 1

    answerer.on("track", lambda track: readers.append(asyncio.ensure_future(count_frames(track))))
    try:
        await connect(offerer, answerer)
        async with asyncio.timeout(10):
            while decoded[0] < 10:
                await asyncio.sleep(0.05)
        transport = offerer.getTransceivers()[0].sender.transport
        assert isinstance(transport, RtpFastPathMixin)
        audio_sent = [0]

        class CountAudio(TransportInterceptor):
            def rtp_sent(self, data: bytes, now: float) -> None:
                if (data[1] & 0x7F) not in (110, 126):
                    audio_sent[0] += 1

        transport.interceptors.add(CountAudio())
        before = decoded[0]
        await press(offerer, "123456789")
        during = decoded[0] - before
        # aiortc's jitter buffer holds up to 4 frames: all the others came out as they arrived.
        assert audio_sent[0] > 15
        assert during >= audio_sent[0] - 8, (during, audio_sent[0])
    finally:
        await offerer.close()
        await answerer.close()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
