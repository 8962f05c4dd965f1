"""The OpenAI Realtime simulator's conversation logic, without I/O.

Fed client events, speech boundaries, transcripts and the end of playback; it returns the
server events to send and the speech to play. The replies are scripted: a greeting, a
function call when the caller gives a reference number or asks for a person, and a
confirmation once the function's output comes back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from relay_service.realtime.events import Event, ServerEvents, new_id

#: Spoken digits, so that "four five six" is a reference number as much as "456".
SPOKEN_DIGITS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
PERSON = re.compile(r"\b(human|agent|person|someone|operator)\b", re.IGNORECASE)
GREETING = "Hello, you are speaking with the virtual assistant. How can I help you today?"
ASK_REFERENCE = "Could you give me your case reference number? You can type it on the keypad."
BACK = "I'm back with you. Is there anything else I can help you with?"
TAKING_BACK = "taking the call back"
"""What the service's instructions say when an assistant takes a call back from a person."""


def spoken_result(output: str, for_reading: bool = False) -> str:
    """A function's output as the sentence an assistant would say (JSON is never read out).

    ``for_reading``: for the agent's summary, numbers stay numbers and the words are terse.
    """
    try:
        result = json.loads(output)
    except ValueError:
        return output.strip()[:200]
    if not isinstance(result, dict):
        return "Done."
    if "error" in result:
        return "Sorry, I could not look that up just now."
    if result.get("status") == "transferring":
        return "I am transferring you to a colleague now. Please hold."
    reference = str(result.get("reference", ""))
    if for_reading:
        found = result.get("found")
        if found is None:
            return "Done."
        return f"Case {reference}: {result.get('status') if found else 'not found'}."
    if result.get("found") is True:
        return f"I found your case, {reference}. Its status: {result.get('status')}."
    if result.get("found") is False:
        return f"I could not find a case with the reference {reference}. Could you check it?"
    return "Done."


@dataclass(frozen=True)
class Speak:
    """Play ``text`` as the audio of response ``response_id``."""

    response_id: str
    item_id: str
    text: str


@dataclass
class _Response:
    id: str
    item: dict[str, Any]
    text: str = ""


def digits_in(text: str) -> str:
    """The digits in ``text``, written or spoken ("4 5 six" → "456")."""
    out = []
    for token in re.findall(r"[a-z]+|\d", text.lower()):
        if token.isdigit():
            out.append(token)
        elif token in SPOKEN_DIGITS:
            out.append(SPOKEN_DIGITS[token])
    return "".join(out)


@dataclass
class RealtimeSession:
    """One simulated session (``realtime`` or ``transcription``)."""

    session: dict[str, Any]
    events: ServerEvents = field(default_factory=ServerEvents)
    outbox: list[Event] = field(default_factory=list)
    speech: list[Speak] = field(default_factory=list)
    last_item_id: str | None = None
    pending_user_text: str | None = None
    function_outputs: list[str] = field(default_factory=list)
    heard: list[str] = field(default_factory=list)
    """What the caller said or typed, for the handover summary."""
    found: list[str] = field(default_factory=list)
    """What the tools found, as spoken, for the handover summary."""
    _speaking: _Response | None = None
    _current_item: str | None = None

    def __post_init__(self) -> None:
        self.session.setdefault("type", "realtime")
        self.session.setdefault("id", new_id("sess"))
        self.session.setdefault("object", "realtime.session")

    @property
    def kind(self) -> str:
        """``realtime`` (an assistant) or ``transcription``."""
        return str(self.session.get("type"))

    @property
    def tools(self) -> dict[str, dict[str, Any]]:
        """The function tools the client configured, by name."""
        tools = self.session.get("tools") or []
        return {t["name"]: t for t in tools if isinstance(t, dict) and "name" in t}

    def drain(self) -> tuple[list[Event], list[Speak]]:
        """The events to send and the speech to play since the last call."""
        events, speech = self.outbox, self.speech
        self.outbox, self.speech = [], []
        return events, speech

    def start(self) -> None:
        """The data channel opened: ``session.created``."""
        self.outbox.append(self.events.session("session.created", self.session))

    # -- client events ----------------------------------------------------------------------

    def client_event(self, event: Event) -> None:
        """Handle one client event."""
        kind = event.get("type")
        handlers: dict[str, Callable[[Event], None]] = {
            "session.update": self._session_update,
            "conversation.item.create": self._item_create,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
            "output_audio_buffer.clear": self._output_clear,
            "input_audio_buffer.commit": self._ignore,
            "input_audio_buffer.clear": self._ignore,
        }
        handler = handlers.get(str(kind))
        if handler is None:
            self.outbox.append(
                self.events.error(
                    f"Unknown event type {kind!r}", "unknown_event", event.get("event_id")
                )
            )
            return
        handler(event)

    def _ignore(self, event: Event) -> None:
        """Audio arrives over WebRTC and server VAD commits it: nothing to do."""

    def _session_update(self, event: Event) -> None:
        update = event.get("session")
        if not isinstance(update, dict):
            self.outbox.append(self.events.error("session.update needs a session object"))
            return
        self.session.update(update)
        self.outbox.append(self.events.session("session.updated", self.session))

    def _item_create(self, event: Event) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            self.outbox.append(self.events.error("conversation.item.create needs an item"))
            return
        item = {**item, "id": item.get("id") or new_id("item"), "object": "realtime.item"}
        item.setdefault("status", "completed")
        if item.get("type") == "message" and item.get("role") == "user":
            texts = [c.get("text", "") for c in item.get("content", []) if isinstance(c, dict)]
            self.pending_user_text = " ".join(t for t in texts if t)
        elif item.get("type") == "function_call_output":
            self.function_outputs.append(str(item.get("output", "")))
        self.outbox.append(self.events.item_added(item, self.last_item_id))
        self.last_item_id = item["id"]

    def _response_create(self, event: Event) -> None:
        if self.kind != "realtime":
            self.outbox.append(self.events.error("response.create needs a realtime session"))
            return
        if self.function_outputs:
            output = self.function_outputs.pop()
            self.found.append(spoken_result(output, for_reading=True))
            self._say(f"Thank you. {spoken_result(output)}")
        elif self.pending_user_text is not None:
            text, self.pending_user_text = self.pending_user_text, None
            self._reply_to(text)
        elif TAKING_BACK in str(self.session.get("instructions", "")):
            self._say(BACK)  # continues the conversation a person had: no second greeting
        else:
            self._say(GREETING)

    def _response_cancel(self, event: Event) -> None:
        if self._speaking is not None:
            self._finish_speaking("cancelled")

    def _output_clear(self, event: Event) -> None:
        if self._speaking is not None:
            response_id = self._speaking.id
            self._finish_speaking("cancelled")
            self.outbox.append(
                self.events.output_audio_buffer("output_audio_buffer.cleared", response_id)
            )

    # -- audio in ---------------------------------------------------------------------------

    def speech_started(self, audio_start_ms: int) -> str:
        """The VAD heard speech begin: returns the new item's id."""
        self._current_item = new_id("item")
        self.outbox.append(self.events.speech_started(self._current_item, audio_start_ms))
        if self._speaking is not None:
            # Barge-in: the caller talks over the assistant.
            response_id = self._speaking.id
            self._finish_speaking("cancelled")
            self.outbox.append(
                self.events.output_audio_buffer("output_audio_buffer.cleared", response_id)
            )
        return self._current_item

    def speech_stopped(self, audio_end_ms: int) -> str:
        """The VAD heard speech end: the buffer is committed as a user item."""
        item_id = self._current_item or new_id("item")
        self._current_item = None
        self.outbox.append(self.events.speech_stopped(item_id, audio_end_ms))
        self.outbox.append(self.events.committed(item_id, self.last_item_id))
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self.outbox.append(self.events.item_added(item, self.last_item_id))
        self.last_item_id = item_id
        return item_id

    def transcribed(self, item_id: str, transcript: str | None, seconds: float) -> None:
        """The recogniser finished an utterance (``None``: it failed)."""
        if transcript is None:
            self.outbox.append(self.events.transcription_failed(item_id, "no speech recognised"))
            return
        for word in transcript.split():
            self.outbox.append(self.events.transcription_delta(item_id, word + " "))
        self.outbox.append(self.events.transcription_completed(item_id, transcript, seconds))
        turn = self.session.get("audio", {}).get("input", {}).get("turn_detection") or {}
        if self.kind == "realtime" and turn.get("create_response", True) and transcript:
            self._reply_to(transcript)

    def playback_finished(self, response_id: str) -> None:
        """The speech of a response has been played out."""
        if self._speaking is not None and self._speaking.id == response_id:
            self._finish_speaking("completed")

    # -- replies ----------------------------------------------------------------------------

    def _reply_to(self, text: str) -> None:
        tools = self.tools
        digits = digits_in(text)
        self.heard.append(text.strip())
        if len(digits) >= 3 and "lookup_case" in tools:
            self._call("lookup_case", {"reference": digits})
        elif PERSON.search(text) and "transfer_to_human" in tools:
            arguments = {"reason": "the caller asked for a person", "summary": self.summary()}
            self._call("transfer_to_human", arguments)
        else:
            self._say(f"I heard: {text.strip()}. {ASK_REFERENCE}")

    def summary(self) -> str:
        """What a model would tell the person taking over: the request and what was found."""
        said = [t for t in self.heard if t and not PERSON.search(t)]
        parts = ["The caller asked to speak to a person."]
        if said:
            parts.append("Earlier they said: " + "; ".join(said[-2:]) + ".")
        parts.extend(self.found[-2:])
        if not said and not self.found:
            parts.append("They gave no reference number.")
        return " ".join(parts)

    def _call(self, name: str, arguments: dict[str, Any]) -> None:
        if self._speaking is not None:
            self._finish_speaking("cancelled")
        response_id, item_id, call_id = new_id("resp"), new_id("item"), new_id("call")
        args = json.dumps(arguments)
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": call_id,
            "arguments": "",
        }
        ev = self.events
        self.outbox.append(ev.response("response.created", response_id, "in_progress", []))
        self.outbox.append(ev.output_item("response.output_item.added", response_id, 0, item))
        self.outbox.append(ev.function_call_done(response_id, item_id, call_id, name, args))
        done = {**item, "status": "completed", "arguments": args}
        self.outbox.append(ev.output_item("response.output_item.done", response_id, 0, done))
        self.outbox.append(ev.response("response.done", response_id, "completed", [done]))
        self.last_item_id = item_id

    def _say(self, text: str) -> None:
        if self._speaking is not None:
            self._finish_speaking("cancelled")
        response_id, item_id = new_id("resp"), new_id("item")
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [{"type": "output_audio", "transcript": ""}],
        }
        ev = self.events
        self.outbox.append(ev.response("response.created", response_id, "in_progress", []))
        self.outbox.append(ev.output_item("response.output_item.added", response_id, 0, item))
        self.outbox.append(ev.output_audio_buffer("output_audio_buffer.started", response_id))
        for word in text.split():
            kind = "response.output_audio_transcript.delta"
            self.outbox.append(ev.audio_transcript(kind, response_id, item_id, word + " "))
        self._speaking = _Response(response_id, item, text)
        self.speech.append(Speak(response_id, item_id, text))
        self.last_item_id = item_id

    def _finish_speaking(self, status: str) -> None:
        assert self._speaking is not None
        spoken, self._speaking = self._speaking, None
        ev = self.events
        item = {
            **spoken.item,
            "status": "completed" if status == "completed" else "incomplete",
            "content": [{"type": "output_audio", "transcript": spoken.text}],
        }
        kind = "response.output_audio_transcript.done"
        self.outbox.append(ev.audio_transcript(kind, spoken.id, item["id"], spoken.text))
        if status == "completed":
            self.outbox.append(ev.output_audio_buffer("output_audio_buffer.stopped", spoken.id))
        self.outbox.append(ev.output_item("response.output_item.done", spoken.id, 0, item))
        self.outbox.append(ev.response("response.done", spoken.id, status, [item]))
