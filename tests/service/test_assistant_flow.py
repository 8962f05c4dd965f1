"""The AI assistant through the real service: the WhatsApp simulator's caller, the embedded
OpenAI Realtime simulator, and a Python agent on the console's WebSocket."""

from __future__ import annotations

import itertools
import time
import wave
from pathlib import Path
from typing import Any

import pytest

from relay_service.app import Service
from relay_service.rtpbridge import RtpMediaBridge
from relay_service.simulators.openai_realtime import RealtimeSimulator
from relay_service.simulators.speech import synthesize
from webrtc_ext import RTCPeerConnection

from .agent import until
from .conftest import running_service
from .test_media import write_wav

pytestmark = pytest.mark.integration

LEGS = ("assistant", "caller transcription", "agent transcription")


async def speech_file(tmp_path: Path, text: str, lead: float = 4.0) -> Path:
    """``text`` spoken after ``lead`` seconds of quiet (the Realtime legs connect meanwhile)."""
    pcm = await synthesize(text, 48000)
    path = tmp_path / "caller-speech.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(bytes(int(lead * 48000) * 2) + pcm + bytes(3 * 48000 * 2))
    return path


def realtime_sim(service: Service) -> RealtimeSimulator:
    assert service.realtime_simulator is not None
    return service.realtime_simulator


def sessions(service: Service, kind: str) -> list[Any]:
    """The simulator's calls of one session type, oldest first."""
    return [c for c in realtime_sim(service).calls.values() if c.session.kind == kind]


async def inbound_packets(pc: RTCPeerConnection) -> int:
    """RTP packets a connection received, from its statistics."""
    stats = await pc.getStats()
    return sum(int(s.packetsReceived) for s in stats.values() if s.type == "inbound-rtp")


async def tool_calls(service: Service, wa_call_id: str) -> list[dict[str, Any]]:
    record = await service.storage.find_call(wa_call_id)
    assert record is not None
    return await service.storage.tool_calls(record.id)


class RtpLog:
    """The RTP packets arriving at the simulated caller: (sequence number, timestamp, arrival).

    A tap on the caller's receiver (aiortc's ``_handle_rtp_packet``, the hook the library's own
    receivers extend), so the decoded audio the caller measures is untouched.
    """

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.packets: list[tuple[int, int, float]] = []
        self.marks: dict[str, int] = {}
        receiver: Any = pc.getTransceivers()[0].receiver
        original = receiver._handle_rtp_packet

        async def tap(packet: Any, arrival_time_ms: int) -> None:
            self.packets.append((packet.sequence_number, packet.timestamp, time.monotonic()))
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = tap

    def mark(self, phase: str) -> None:
        """Note where a phase of the call starts."""
        self.marks[phase] = len(self.packets)

    def assert_one_stream(self) -> None:
        """No sequence gap; timestamps advance by whole 20 ms packets (by the time elapsed at a
        switch, never backwards) across every switch."""
        for (seq, ts, _), (next_seq, next_ts, _) in itertools.pairwise(self.packets):
            assert next_seq == (seq + 1) % 65536, (seq, next_seq)
            step = (next_ts - ts) % 2**32
            assert step % 960 == 0 and 0 < step <= 960 * 50, (ts, next_ts)
        (_, first_ts, first_at), (_, last_ts, last_at) = self.packets[0], self.packets[-1]
        media_seconds = ((last_ts - first_ts) % 2**32) / 48000
        assert 0.5 < media_seconds / (last_at - first_at) < 2, "timestamps follow real time"
        bounds = [*sorted(self.marks.values()), len(self.packets)]
        assert all(b - a >= 10 for a, b in itertools.pairwise([0, *bounds])), bounds


async def test_assistant_takes_keypad_reference_transfers_and_takes_the_call_back(
    tmp_path: Path,
) -> None:
    greeting = tmp_path / "greeting.wav"
    write_wav(greeting, seconds=1.0)
    environ = {"ASSISTANT_ENABLED": "on", "GREETING_FILE": str(greeting)}
    async with running_service(tmp_path, **environ) as running:
        service, simulator = running.service, running.service.simulator
        assert simulator is not None
        agent = await running.agent()
        try:
            call_id = await simulator.place_call(audio="silence")
            caller = simulator.calls[call_id].peer
            rtp = RtpLog(caller.pc)  # greeting → assistant → hold music → agent → assistant
            await agent.wait_for_call("assistant")
            rtp.mark("assistant")
            await until(lambda: caller.loud_frames >= 10, 30, "the assistant's voice at the caller")

            # A reference number typed on the keypad reaches the business tool exactly.
            assert simulator.press(call_id, "4711#")

            async def looked_up() -> bool:
                return any(t["name"] == "lookup_case" for t in await tool_calls(service, call_id))

            await until(looked_up, 30, "lookup_case")
            (lookup,) = [
                t for t in await tool_calls(service, call_id) if t["name"] == "lookup_case"
            ]
            assert lookup["arguments"] == {"reference": "4711"} and lookup["ok"]
            assert "visit is booked" in lookup["output"]

            # Key 0 asks the assistant for a person: it calls transfer_to_human.
            assert simulator.press(call_id, "0#")
            await agent.wait_for_call("waiting")
            rtp.mark("waiting")
            await agent.wait_for(
                lambda m: m["type"] == "ai" and m["status"] == "transferred to a human"
            )

            # The tool call is stored once its handler (the transfer itself) has returned.
            async def both_stored() -> bool:
                return len(await tool_calls(service, call_id)) >= 2

            await until(both_stored, 10, "transfer_to_human stored")
            names = [t["name"] for t in await tool_calls(service, call_id)]
            assert names == ["lookup_case", "transfer_to_human"]
            bridge = service.router.calls[call_id].bridge
            assert bridge.source == "hold"
            assert isinstance(bridge, RtpMediaBridge) and bridge.assistant_packets > 25
            waiting = caller.loud_frames  # the caller's stream goes on: hold music, not silence
            await until(lambda: caller.loud_frames >= waiting + 25, 20, "hold music while waiting")

            # An agent answers it from the queue; the caller hears the agent.
            heard_before = caller.loud_frames
            await agent.answer(call_id)
            await agent.wait_for_call("human")
            rtp.mark("human")
            await until(lambda: caller.loud_frames >= heard_before + 25, 30, "agent at caller")

            # Hand back: a fresh assistant that knows the conversation so far.
            assert agent.ws is not None
            await agent.ws.send_json({"type": "handback", "call_id": call_id})
            await agent.wait_for(lambda m: m["type"] == "handed_back")
            await agent.wait_for_call("assistant")
            rtp.mark("assistant again")
            heard_before = caller.loud_frames
            await until(lambda: caller.loud_frames >= heard_before + 10, 30, "assistant again")
            first, second = sessions(service, "realtime")
            assert "4711" in second.session.session["instructions"]
            assert first.closed.is_set() and not second.closed.is_set()

            await simulator.hangup(call_id)
            await agent.wait_for(lambda m: m["type"] == "ended" and m["call_id"] == call_id)
        finally:
            await agent.close()
        rtp.assert_one_stream()

        record = await service.storage.find_call(call_id)
        assert record is not None
        events = [e["event"] for e in record.timeline]
        for expected in ("assistant_answered", "transferred", "agent_answered", "handed_back"):
            assert expected in events
        assert events.index("greeting") < events.index("assistant_answered")
        assert events.index("transferred") < events.index("agent_answered")
        assert await service.storage.dtmf_digits(record.id) == "4711#0#"
        spoken = await service.storage.transcript(record.id)
        assert any(s["speaker"] == "assistant" and "4711" in s["text"] for s in spoken)


async def test_agent_takes_over_while_the_assistant_talks(tmp_path: Path) -> None:
    async with running_service(tmp_path, ASSISTANT_ENABLED="on") as running:
        service, simulator = running.service, running.service.simulator
        assert simulator is not None
        agent = await running.agent()
        try:
            call_id = await simulator.place_call(audio="silence")
            await agent.wait_for_call("assistant")
            await agent.answer(call_id)  # the console's "Take over"
            taken = await agent.wait_for_call("human")
            assert taken["agent"] == "alice"
            (assistant,) = sessions(service, "realtime")
            await until(assistant.closed.is_set, 20, "the assistant's Realtime call closed")
            caller = simulator.calls[call_id].peer
            heard = caller.loud_frames
            await until(lambda: caller.loud_frames >= heard + 25, 30, "agent at caller")
        finally:
            await agent.close()
        record = await service.storage.find_call(call_id)
        assert record is not None
        assert "taken_over" in [e["event"] for e in record.timeline]


async def test_realtime_api_unreachable_the_call_goes_to_a_human(tmp_path: Path) -> None:
    environ = {"ASSISTANT_ENABLED": "on", "TRANSCRIPTION_ENABLED": "on"}
    async with running_service(tmp_path, **environ) as running:
        service, simulator = running.service, running.service.simulator
        assert simulator is not None
        realtime_sim(service).fail_next_calls = 10
        agent = await running.agent()
        try:
            call_id = await simulator.place_call(audio="tone")

            def all_stopped(message: dict[str, Any]) -> bool:
                calls = [c for c in message.get("calls", []) if c["id"] == call_id]
                ai = calls[0]["ai"] if calls else {}
                waiting = bool(calls) and calls[0]["state"] == "waiting"
                return (
                    waiting and len(ai) == 3 and all(s.startswith("stopped") for s in ai.values())
                )

            await agent.wait_for(all_stopped)
            await agent.answer(call_id)
            await agent.wait_for_call("human")
            caller = simulator.calls[call_id].peer
            await until(lambda: caller.loud_frames >= 25, 30, "agent at caller")
            await until(lambda: agent.loud_frames >= 25, 30, "caller at agent")
        finally:
            await agent.close()
        record = await service.storage.find_call(call_id)
        assert record is not None
        assert "assistant_failed" in [e["event"] for e in record.timeline]
        metrics = service.metrics.realtime_legs
        assert metrics.value(leg="assistant", outcome="failed") == 1
        assert metrics.value(leg="caller_transcription", outcome="failed") == 1


async def test_realtime_legs_drop_mid_call_nothing_transcribed_is_lost(tmp_path: Path) -> None:
    environ = {"ASSISTANT_ENABLED": "on", "TRANSCRIPTION_ENABLED": "on"}
    async with running_service(tmp_path, **environ) as running:
        service, simulator = running.service, running.service.simulator
        assert simulator is not None
        agent = await running.agent()
        wav = await speech_file(tmp_path, "my reference number is one two three four five")
        try:
            call_id = await simulator.place_call(audio=wav)
            await agent.wait_for_call("assistant")
            said = await agent.wait_for(
                lambda m: m["type"] == "transcript" and m["speaker"] == "caller" and m["final"],
                timeout=45,
            )
            assert "reference number" in said["text"]

            sim = realtime_sim(service)
            (assistant,) = sessions(service, "realtime")
            # The caller's audio reaches the assistant in 20 ms packets and the transcription in
            # 60 ms ones (RELAY_TRANSCRIPTION_PTIME's default): a third as many, same speech.
            heard = await inbound_packets(assistant.pc)
            transcribed = max(
                [await inbound_packets(c.pc) for c in sessions(service, "transcription")]
            )
            assert 0.2 < transcribed / heard < 0.45, (transcribed, heard)
            await sim._close(assistant)  # the Realtime side drops the assistant's call
            await agent.wait_for_call("waiting")
            for call in sessions(service, "transcription"):
                await sim._close(call)
            dropped = "stopped: the Realtime call dropped"
            await agent.wait_for(
                lambda m: m["type"] == "calls"
                and any(c["id"] == call_id and c["ai"] == dict.fromkeys(LEGS, dropped)
                        for c in m["calls"])
            )  # fmt: skip
            await agent.answer(call_id)
            await agent.wait_for_call("human")
            assert service.router.calls[call_id].state == "human"
        finally:
            await agent.close()
        record = await service.storage.find_call(call_id)
        assert record is not None
        spoken = await service.storage.transcript(record.id)
        assert any(s["speaker"] == "caller" and s["text"] == said["text"] for s in spoken)
        assert "assistant_stopped" in [e["event"] for e in record.timeline]


async def test_demo_caller_gives_a_reference_by_voice_and_asks_for_a_human(tmp_path: Path) -> None:
    environ = {"ASSISTANT_ENABLED": "on", "TRANSCRIPTION_ENABLED": "on"}
    async with running_service(tmp_path, **environ) as running:
        service = running.service
        agent = await running.agent()
        try:
            async with running.session.post(f"{running.url}/api/simulator/calls") as response:
                call_id = (await response.json())["id"]
            await agent.wait_for_call("assistant")
            await agent.wait_for(
                lambda m: m["type"] == "toolcall" and m["name"] == "lookup_case", timeout=45
            )
            await agent.wait_for(
                lambda m: m["type"] == "toolcall" and m["name"] == "transfer_to_human", timeout=45
            )
            await agent.wait_for_call("waiting")
        finally:
            await agent.close()
        calls = await tool_calls(service, call_id)
        assert calls[0]["arguments"] == {"reference": "12345"}
        assert "refund was paid" in calls[0]["output"]
        record = await service.storage.find_call(call_id)
        assert record is not None
        record_id = record.id

        async def caller_asked_for_a_human() -> bool:
            spoken = [s["text"] for s in await service.storage.transcript(record_id)]
            return any("human agent" in text for text in spoken)

        # The assistant hears 20 ms packets and may transfer before the transcription (60 ms
        # packets, its own turn detection) has finished the same words: they follow shortly.
        await until(caller_asked_for_a_human, timeout=15, what="the caller's words transcribed")
