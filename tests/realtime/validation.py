"""Validate events against the openai SDK's typed unions (what the real API speaks)."""

from __future__ import annotations

from typing import Any

from openai.types.realtime import RealtimeClientEventParam, RealtimeServerEvent
from pydantic import TypeAdapter

SERVER = TypeAdapter(RealtimeServerEvent)
CLIENT = TypeAdapter(RealtimeClientEventParam)


def assert_server_event(event: dict[str, Any]) -> None:
    """Raise if ``event`` is not a RealtimeServerEvent, naming it."""
    try:
        parsed = SERVER.validate_python(event)
    except Exception as exc:
        raise AssertionError(f"not a RealtimeServerEvent: {event}\n{exc}") from exc
    assert parsed.type == event["type"]


def assert_client_event(event: dict[str, Any]) -> None:
    """Raise if ``event`` is not a RealtimeClientEventParam, naming it."""
    try:
        CLIENT.validate_python(event)
    except Exception as exc:
        raise AssertionError(f"not a RealtimeClientEventParam: {event}\n{exc}") from exc
