"""The simulator's conversation logic, without audio: every event validates against the SDK."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay_service.realtime import events as client
from relay_service.realtime.events import parse_event
from relay_service.simulators.realtime_session import RealtimeSession, digits_in
from tests.realtime.validation import assert_client_event, assert_server_event

TOOLS = [
    {"type": "function", "name": "transfer_to_human", "description": "hand over",
     "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}}},
    {"type": "function", "name": "lookup_case", "description": "find a case",
     "parameters": {"type": "object", "properties": {"reference": {"type": "string"}},
                    "required": ["reference"]}},
]  # fmt: skip


def assistant() -> RealtimeSession:
    session = RealtimeSession({"type": "realtime", "model": "gpt-realtime", "tools": TOOLS})
    session.start()
    return session


def drained(session: RealtimeSession) -> list[dict[str, object]]:
    events, _ = session.drain()
    for event in events:
        assert_server_event(event)
    return events


def test_client_events_validate() -> None:
    for event in [
        client.client_session_update({"type": "realtime", "instructions": "Be brief."}),
        client.client_user_text("The caller typed 12345"),
        client.client_function_output("call_1", '{"status": "open"}'),
        client.client_response_create(),
        client.client_response_create("Greet the caller"),
        client.client_simple("output_audio_buffer.clear"),
        client.client_simple("response.cancel"),
    ]:
        assert_client_event(event)
    with pytest.raises(ValueError):
        client.client_simple("session.update")


def test_greeting_then_keypad_reference_calls_the_tool_with_exactly_those_digits() -> None:
    session = assistant()
    assert [e["type"] for e in drained(session)] == ["session.created"]
    session.client_event(client.client_response_create())
    events = drained(session)
    assert "output_audio_buffer.started" in [e["type"] for e in events]
    _, _speech = session.drain()
    session.client_event(client.client_user_text("Keypad entry: 90210"))
    session.client_event(client.client_response_create())
    events = drained(session)
    (call,) = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert call["name"] == "lookup_case"
    assert json.loads(str(call["arguments"])) == {"reference": "90210"}
    # The greeting was interrupted by the new response, and says so.
    done = [e for e in events if e["type"] == "response.done"]
    assert done[0]["response"]["status"] == "cancelled"  # type: ignore[index]


def test_spoken_request_for_a_person_transfers() -> None:
    session = assistant()
    session.drain()
    item = session.speech_started(120)
    assert session.speech_stopped(1800) == item
    session.transcribed(item, "please connect me to a human agent", 1.7)
    types = [e["type"] for e in drained(session)]
    assert types[:4] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
    ]
    assert "conversation.item.input_audio_transcription.completed" in types
    assert "response.function_call_arguments.done" in types


def test_function_output_is_confirmed_aloud_and_playback_ends() -> None:
    session = assistant()
    session.drain()
    session.client_event(client.client_function_output("call_9", "Case 456 is open"))
    session.client_event(client.client_response_create())
    _events, speech = session.drain()
    assert speech and "Case 456 is open" in speech[0].text
    session.playback_finished(speech[0].response_id)
    types = [e["type"] for e in drained(session)]
    assert types[-3:] == [
        "output_audio_buffer.stopped",
        "response.output_item.done",
        "response.done",
    ]


def test_transcription_session_never_answers() -> None:
    session = RealtimeSession({"type": "transcription"})
    session.start()
    session.drain()
    item = session.speech_started(0)
    session.speech_stopped(900)
    session.transcribed(item, "hello there", 0.9)
    types = [e["type"] for e in drained(session)]
    assert types.count("conversation.item.input_audio_transcription.delta") == 2
    assert not any(t.startswith("response.") for t in types)
    session.client_event(client.client_response_create())
    assert [e["type"] for e in drained(session)] == ["error"]


def test_unknown_and_malformed_client_events_give_error_events() -> None:
    session = assistant()
    session.drain()
    session.client_event({"type": "no.such.event", "event_id": "evt_1"})
    session.client_event({"type": "session.update", "session": "nope"})
    session.client_event({"type": "conversation.item.create"})
    assert [e["type"] for e in drained(session)] == ["error", "error", "error"]
    assert parse_event(b"not json") is None
    assert parse_event('{"no": "type"}') is None
    assert parse_event('{"type": "response.audio_transcript.delta"}') == {
        "type": "response.output_audio_transcript.delta"
    }


@given(st.lists(st.sampled_from(list("0123456789")), min_size=1, max_size=12))
def test_digits_written_or_spoken_are_read_back(digits: list[str]) -> None:
    words = {v: k for k, v in {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
             "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}.items()}  # fmt: skip
    mixed = " ".join(d if i % 2 else words[d] for i, d in enumerate(digits))
    assert digits_in(f"my number is {mixed} thanks") == "".join(digits)
