"""OpenAI Realtime event shapes (GA names), as plain dicts.

Server events are built by :class:`ServerEvents` (the simulator's side); client events by the
``client_*`` functions. Tests validate both against the ``openai`` SDK's typed unions.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
from typing import Any

logger = logging.getLogger(__name__)

Event = dict[str, Any]

#: Older beta event names seen in the wild, mapped to their GA names.
BETA_NAMES = {
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
    "transcription_session.created": "session.created",
    "transcription_session.updated": "session.updated",
}


def new_id(prefix: str) -> str:
    """An id shaped like OpenAI's (``prefix_`` and 22 url-safe characters)."""
    return f"{prefix}_{secrets.token_urlsafe(16)[:22]}"


def parse_event(data: str | bytes) -> Event | None:
    """Parse one event from the data channel; ``None`` (with a log line) if it is not one."""
    try:
        event = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        logger.warning("dropped a Realtime event that is not JSON: %s", exc)
        return None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        logger.warning("dropped a Realtime event without a type: %.200r", data)
        return None
    event["type"] = BETA_NAMES.get(event["type"], event["type"])
    return event


# -- client events ------------------------------------------------------------------------


def client_session_update(session: dict[str, Any]) -> Event:
    """``session.update`` with a session object."""
    return {"type": "session.update", "session": session}


def client_user_text(text: str) -> Event:
    """``conversation.item.create`` with a user text message."""
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }


def client_function_output(call_id: str, output: str) -> Event:
    """``conversation.item.create`` answering a function call."""
    return {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": call_id, "output": output},
    }


def client_response_create(instructions: str | None = None) -> Event:
    """``response.create``, optionally with per-response instructions."""
    event: Event = {"type": "response.create"}
    if instructions:
        event["response"] = {"instructions": instructions}
    return event


def client_simple(kind: str) -> Event:
    """An event with no payload: ``response.cancel``, ``output_audio_buffer.clear``, ..."""
    allowed = {
        "response.cancel",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "output_audio_buffer.clear",
    }
    if kind not in allowed:
        raise ValueError(f"{kind!r} is not a payload-less client event")
    return {"type": kind}


# -- server events ------------------------------------------------------------------------


class ServerEvents:
    """Builds server events with fresh ``event_id``s, in the GA shapes."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def _event(self, kind: str, **fields: Any) -> Event:
        return {"type": kind, "event_id": f"event_{next(self._counter):06d}", **fields}

    def session(self, kind: str, session: dict[str, Any]) -> Event:
        """``session.created`` / ``session.updated``."""
        return self._event(kind, session=session)

    def error(self, message: str, code: str | None = None, event_id: str | None = None) -> Event:
        """``error`` naming the client event at fault."""
        error: dict[str, Any] = {"type": "invalid_request_error", "message": message}
        if code:
            error["code"] = code
        if event_id:
            error["event_id"] = event_id
        return self._event("error", error=error)

    def speech_started(self, item_id: str, audio_start_ms: int) -> Event:
        """``input_audio_buffer.speech_started``."""
        return self._event(
            "input_audio_buffer.speech_started", item_id=item_id, audio_start_ms=audio_start_ms
        )

    def speech_stopped(self, item_id: str, audio_end_ms: int) -> Event:
        """``input_audio_buffer.speech_stopped``."""
        return self._event(
            "input_audio_buffer.speech_stopped", item_id=item_id, audio_end_ms=audio_end_ms
        )

    def committed(self, item_id: str, previous_item_id: str | None) -> Event:
        """``input_audio_buffer.committed``."""
        return self._event(
            "input_audio_buffer.committed", item_id=item_id, previous_item_id=previous_item_id
        )

    def item_added(self, item: dict[str, Any], previous_item_id: str | None) -> Event:
        """``conversation.item.added``."""
        return self._event("conversation.item.added", item=item, previous_item_id=previous_item_id)

    def transcription_delta(self, item_id: str, delta: str) -> Event:
        """``conversation.item.input_audio_transcription.delta``."""
        return self._event(
            "conversation.item.input_audio_transcription.delta",
            item_id=item_id,
            content_index=0,
            delta=delta,
        )

    def transcription_completed(self, item_id: str, transcript: str, seconds: float) -> Event:
        """``conversation.item.input_audio_transcription.completed``."""
        return self._event(
            "conversation.item.input_audio_transcription.completed",
            item_id=item_id,
            content_index=0,
            transcript=transcript,
            usage={"type": "duration", "seconds": round(seconds, 3)},
        )

    def transcription_failed(self, item_id: str, message: str) -> Event:
        """``conversation.item.input_audio_transcription.failed``."""
        return self._event(
            "conversation.item.input_audio_transcription.failed",
            item_id=item_id,
            content_index=0,
            error={"type": "transcription_error", "message": message},
        )

    def response(self, kind: str, response_id: str, status: str, output: list[Any]) -> Event:
        """``response.created`` / ``response.done``."""
        return self._event(
            kind,
            response={
                "id": response_id,
                "object": "realtime.response",
                "status": status,
                "output": output,
                "output_modalities": ["audio"],
            },
        )

    def output_item(
        self, kind: str, response_id: str, output_index: int, item: dict[str, Any]
    ) -> Event:
        """``response.output_item.added`` / ``response.output_item.done``."""
        return self._event(kind, response_id=response_id, output_index=output_index, item=item)

    def audio_transcript(self, kind: str, response_id: str, item_id: str, text: str) -> Event:
        """``response.output_audio_transcript.delta`` (``delta``) or ``.done`` (``transcript``)."""
        field = "delta" if kind.endswith(".delta") else "transcript"
        return self._event(
            kind,
            response_id=response_id,
            item_id=item_id,
            output_index=0,
            content_index=0,
            **{field: text},
        )

    def function_call_done(
        self, response_id: str, item_id: str, call_id: str, name: str, arguments: str
    ) -> Event:
        """``response.function_call_arguments.done``."""
        return self._event(
            "response.function_call_arguments.done",
            response_id=response_id,
            item_id=item_id,
            output_index=0,
            call_id=call_id,
            name=name,
            arguments=arguments,
        )

    def output_audio_buffer(self, kind: str, response_id: str) -> Event:
        """``output_audio_buffer.started`` / ``.stopped`` / ``.cleared``."""
        return self._event(kind, response_id=response_id)
