"""The RTP bridge decodes nothing: payloads cross the service byte for byte.

Taps on the simulated caller's and the Python agent's peers record the Opus payloads each one
sends (its ``RTCRtpSender.send_rtp``) and receives (aiortc's ``_handle_rtp_packet``, the hook the
library's receivers extend); every payload that arrives must be one the other side sent.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from relay_service.bridge import RelayMediaBridge
from relay_service.rtpbridge import SILENCE_FRAME, RtpMediaBridge
from webrtc_ext import RawRtpPacket, RTCPeerConnection
from webrtc_ext.media import EncodedFileSource
from webrtc_ext.ogg import OggOpusWriter

from .agent import until
from .conftest import Running, running_service
from .test_media import write_wav

pytestmark = pytest.mark.integration

PACKETS = 100


class Sent:
    """The payloads a peer's sender sends from now on."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.payloads: set[bytes] = set()
        sender: Any = pc.getTransceivers()[0].sender
        original = sender.send_rtp

        def tap(packet: RawRtpPacket, **kwargs: Any) -> bool:
            self.payloads.add(bytes(packet.payload))
            return bool(original(packet, **kwargs))

        sender.send_rtp = tap


class Received:
    """The payloads a peer receives (in order), once :meth:`start` is called."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.payloads: list[bytes] = []
        self.sequence_numbers: list[int] = []
        self.recording = False
        receiver: Any = pc.getTransceivers()[0].receiver
        original = receiver._handle_rtp_packet

        async def tap(packet: Any, arrival_time_ms: int) -> None:
            if self.recording:
                self.payloads.append(bytes(packet.payload))
                self.sequence_numbers.append(packet.sequence_number)
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = tap

    def start(self) -> None:
        """Record from now on."""
        self.recording = True

    def media(self) -> list[bytes]:
        """What arrived, but the bridge's own silence frames."""
        return [p for p in self.payloads if p != SILENCE_FRAME]


async def test_caller_and_agent_payloads_cross_the_rtp_bridge_byte_identical(
    running: Running,
) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    agent = await running.agent()
    try:
        call_id = await simulator.place_call(audio="tone")
        caller = simulator.calls[call_id].peer
        caller_sent, at_caller = Sent(caller.pc), Received(caller.pc)
        await agent.wait_for_call("ringing")
        await agent.answer(call_id)
        assert agent.pc is not None
        agent_sent, at_agent = Sent(agent.pc), Received(agent.pc)
        await agent.wait_for_call("human")
        assert isinstance(running.service.router.calls[call_id].bridge, RtpMediaBridge)
        # Anything the agent sent before its tap has arrived once its tone is heard.
        heard = caller.loud_frames
        await until(lambda: caller.loud_frames >= heard + 10, what="agent's tone at the caller")
        at_agent.start()
        at_caller.start()
        await until(lambda: len(at_agent.payloads) >= PACKETS, what="caller's packets at agent")
        await until(lambda: len(at_caller.media()) >= PACKETS, what="agent's packets at caller")
    finally:
        await agent.close()
    assert set(at_agent.payloads) <= caller_sent.payloads, "caller → agent re-encoded"
    assert set(at_caller.media()) <= agent_sent.payloads, "agent → caller re-encoded"


async def test_an_ogg_opus_greeting_reaches_the_caller_as_stored(tmp_path: Path) -> None:
    wav, greeting = tmp_path / "greeting.wav", tmp_path / "greeting.opus"
    write_wav(wav, seconds=5.0)
    stored = list(EncodedFileSource(wav).opus_packets())
    writer = OggOpusWriter()
    greeting.write_bytes(
        writer.start() + b"".join(writer.packet(p, n) for p, n in stored) + writer.end()
    )
    async with running_service(tmp_path, GREETING_FILE=str(greeting)) as running:
        simulator = running.service.simulator
        assert simulator is not None
        call_id = await simulator.place_call(audio="silence")
        caller = simulator.calls[call_id].peer
        at_caller = Received(caller.pc)
        at_caller.start()
        await until(lambda: len(at_caller.media()) >= PACKETS, 30, "the greeting at the caller")
        await simulator.hangup(call_id)
    payloads = [p for p, _ in stored]
    received = at_caller.media()[:PACKETS]
    assert set(received) <= set(payloads), "the greeting was re-encoded"
    runs = (payloads[i : i + PACKETS] for i in range(len(payloads) - PACKETS + 1))
    assert received in runs, "packets lost, added or reordered"


async def test_silence_stops_for_the_greeting_and_resumes_after_it(tmp_path: Path) -> None:
    wav, greeting = tmp_path / "greeting.wav", tmp_path / "greeting.opus"
    write_wav(wav, seconds=1.0)
    stored = [p for p, _ in EncodedFileSource(wav).opus_packets()]
    writer = OggOpusWriter()
    greeting.write_bytes(
        writer.start() + b"".join(writer.packet(p, 960) for p in stored) + writer.end()
    )
    async with running_service(tmp_path, GREETING_FILE=str(greeting)) as running:
        simulator = running.service.simulator
        assert simulator is not None
        call_id = await simulator.place_call(audio="silence")
        at_caller = Received(simulator.calls[call_id].peer.pc)
        at_caller.start()

        def silence_after_greeting() -> int:
            payloads = at_caller.payloads
            if stored[-1] not in payloads:
                return 0
            return payloads[payloads.index(stored[-1]) :].count(SILENCE_FRAME)

        await until(lambda: silence_after_greeting() >= 25, 30, "silence after the greeting")
        await simulator.hangup(call_id)
    payloads, numbers = at_caller.payloads, at_caller.sequence_numbers
    end = start = payloads.index(stored[-1]) + 1
    while start > 0 and payloads[start - 1] != SILENCE_FRAME:
        start -= 1
    heard = payloads[start:end]  # the greeting (its start may precede the recording)
    assert len(heard) >= 10 and heard == stored[-len(heard) :], "greeting lost or mixed"
    steps = {(b - a) % 65536 for a, b in itertools.pairwise(numbers)}
    assert steps == {1}, "the caller's stream has a gap or a repeat across the switches"


async def test_the_decoded_fallback_still_relays_both_ways(tmp_path: Path) -> None:
    async with running_service(tmp_path, RELAY_MEDIA_BRIDGE="decoded") as running:
        simulator = running.service.simulator
        assert simulator is not None
        agent = await running.agent()
        try:
            call_id = await simulator.place_call(audio="tone")
            await agent.wait_for_call("ringing")
            await agent.answer(call_id)
            await agent.wait_for_call("human")
            bridge = running.service.router.calls[call_id].bridge
            assert isinstance(bridge, RelayMediaBridge)
            caller = simulator.calls[call_id].peer
            await until(lambda: agent.loud_frames >= 25, what="caller's tone at the agent")
            await until(lambda: caller.loud_frames >= 25, what="agent's tone at the caller")
        finally:
            await agent.close()
