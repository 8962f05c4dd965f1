"""The AI assistant through the real service: the WhatsApp simulator's caller, the embedded
OpenAI Realtime simulator, and a Python agent on the console's WebSocket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relay_service.app import Service
from relay_service.simulators.openai_realtime import RealtimeSimulator

from .agent import Agent, until
from .conftest import running_service

pytestmark = pytest.mark.integration


def realtime_sim(service: Service) -> RealtimeSimulator:
    assert service.realtime_simulator is not None
    return service.realtime_simulator


def sessions(service: Service, kind: str) -> list[Any]:
    """The simulator's calls of one session type, oldest first."""
    return [c for c in realtime_sim(service).calls.values() if c.session.kind == kind]


async def tool_calls(service: Service, wa_call_id: str) -> list[dict[str, Any]]:
    record = await service.storage.find_call(wa_call_id)
    assert record is not None
    return await service.storage.tool_calls(record.id)


async def test_assistant_takes_keypad_reference_transfers_and_takes_the_call_back(
    tmp_path: Path,
) -> None:
    async with running_service(tmp_path, ASSISTANT_ENABLED="on") as running:
        service, simulator = running.service, running.service.simulator
        assert simulator is not None
        await running.login()
        agent = Agent(running.session, running.url)
        await agent.connect()
        try:
            call_id = await simulator.place_call(audio="silence")
            await agent.wait_for_call("assistant")
            caller = simulator.calls[call_id].peer
            await until(lambda: caller.loud_frames >= 10, 30, "the assistant's voice at the caller")

            # A reference number typed on the keypad reaches the business tool exactly.
            assert simulator.press(call_id, "4711#")

            async def looked_up() -> bool:
                return any(t["name"] == "lookup_case" for t in await tool_calls(service, call_id))

            await until(looked_up, 30, "lookup_case")
            (lookup,) = [t for t in await tool_calls(service, call_id) if t["name"] == "lookup_case"]
            assert lookup["arguments"] == {"reference": "4711"} and lookup["ok"]
            assert "visit is booked" in lookup["output"]

            # Key 0 asks the assistant for a person: it calls transfer_to_human.
            assert simulator.press(call_id, "0#")
            await agent.wait_for_call("waiting")
            await agent.wait_for(
                lambda m: m["type"] == "ai" and m["status"] == "transferred to a human"
            )
            names = [t["name"] for t in await tool_calls(service, call_id)]
            assert names == ["lookup_case", "transfer_to_human"]
            assert service.router.calls[call_id].bridge.source == "silence"

            # An agent answers it from the queue; the caller hears the agent.
            heard_before = caller.loud_frames
            await agent.answer(call_id)
            await agent.wait_for_call("human")
            await until(lambda: caller.loud_frames >= heard_before + 25, 30, "agent at caller")

            # Hand back: a fresh assistant that knows the conversation so far.
            assert agent.ws is not None
            await agent.ws.send_json({"type": "handback", "call_id": call_id})
            await agent.wait_for(lambda m: m["type"] == "handed_back")
            await agent.wait_for_call("assistant")
            first, second = sessions(service, "realtime")
            assert "4711" in second.session.session["instructions"]
            assert first.closed.is_set() and not second.closed.is_set()

            await simulator.hangup(call_id)
            await agent.wait_for(lambda m: m["type"] == "ended" and m["call_id"] == call_id)
        finally:
            await agent.close()

        record = await service.storage.find_call(call_id)
        assert record is not None
        events = [e["event"] for e in record.timeline]
        for expected in ("assistant_answered", "transferred", "agent_answered", "handed_back"):
            assert expected in events
        assert events.index("transferred") < events.index("agent_answered")
        assert await service.storage.dtmf_digits(record.id) == "4711#0#"
        spoken = await service.storage.transcript(record.id)
        assert any(s["speaker"] == "assistant" and "4711" in s["text"] for s in spoken)


async def test_agent_takes_over_while_the_assistant_talks(tmp_path: Path) -> None:
    async with running_service(tmp_path, ASSISTANT_ENABLED="on") as running:
        service, simulator = running.service, running.service.simulator
        assert simulator is not None
        await running.login()
        agent = Agent(running.session, running.url)
        await agent.connect()
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
