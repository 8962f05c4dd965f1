"""Sans-I/O parsing of WhatsApp calling webhooks into typed events, and de-duplication.

The parser is lenient by design: unknown fields are ignored, missing optional fields become
``None``, and a change it does not understand becomes an :class:`UnknownEvent`. Only a body
that is not a JSON object raises :class:`MalformedWebhook`.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


class MalformedWebhook(ValueError):
    """The body is not a JSON object (Meta is answered 400)."""


@dataclass(frozen=True)
class CallError:
    """An entry of ``value.errors[]``."""

    code: int | None
    title: str


@dataclass(frozen=True)
class CallConnect:
    """``event:"connect"``: an offer (USER_INITIATED) or an answer (BUSINESS_INITIATED)."""

    call_id: str
    from_: str
    to: str
    direction: str
    timestamp: int | None
    sdp_type: str
    sdp: str
    phone_number_id: str | None
    contact_name: str | None


@dataclass(frozen=True)
class CallTerminate:
    """``event:"terminate"``: the call ended on Meta's side."""

    call_id: str
    from_: str
    to: str
    status: str
    timestamp: int | None
    start_time: int | None
    end_time: int | None
    duration: int | None
    errors: tuple[CallError, ...]
    biz_opaque_callback_data: str | None


@dataclass(frozen=True)
class CallStatus:
    """``value.statuses[]`` of a business-initiated call: RINGING, ACCEPTED or REJECTED."""

    call_id: str
    status: str
    timestamp: int | None
    recipient_id: str | None


@dataclass(frozen=True)
class UnknownEvent:
    """A change or call event this service does not handle (logged and acknowledged)."""

    field: str
    description: str


WebhookEvent = CallConnect | CallTerminate | CallStatus | UnknownEvent


def parse_webhook(body: bytes) -> list[WebhookEvent]:
    """Every event in a webhook body; raises :class:`MalformedWebhook` if it is not JSON."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedWebhook(f"body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise MalformedWebhook(f"body is a JSON {type(document).__name__}, not an object")
    events: list[WebhookEvent] = []
    for entry in _dicts(document.get("entry")):
        for change in _dicts(entry.get("changes")):
            events.extend(_parse_change(change))
    return events


def _parse_change(change: dict[str, Any]) -> list[WebhookEvent]:
    field = _text(change.get("field")) or "?"
    value = change.get("value")
    if field != "calls" or not isinstance(value, dict):
        return [UnknownEvent(field, f"change of field {field!r}")]
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    phone_number_id = _text(metadata.get("phone_number_id")) if metadata else None
    names = {
        _text(c.get("wa_id")): _text(_dict(c.get("profile")).get("name"))
        for c in _dicts(value.get("contacts"))
    }
    errors = tuple(
        CallError(_int(e.get("code")), _text(e.get("title") or e.get("message")) or "")
        for e in _dicts(value.get("errors"))
    )
    events: list[WebhookEvent] = []
    for call in _dicts(value.get("calls")):
        events.append(_parse_call(call, phone_number_id, names, errors))
    for status in _dicts(value.get("statuses")):
        call_id = _text(status.get("id"))
        state = _text(status.get("status"))
        if call_id and state:
            events.append(
                CallStatus(
                    call_id,
                    state.upper(),
                    _int(status.get("timestamp")),
                    _text(status.get("recipient_id")),
                )
            )
        else:
            events.append(UnknownEvent(field, "status without id or status"))
    if not events:
        events.append(UnknownEvent(field, "calls change without calls or statuses"))
    return events


def _parse_call(
    call: dict[str, Any],
    phone_number_id: str | None,
    names: dict[str | None, str | None],
    errors: tuple[CallError, ...],
) -> WebhookEvent:
    call_id = _text(call.get("id"))
    event = _text(call.get("event"))
    from_, to = _text(call.get("from")) or "", _text(call.get("to")) or ""
    if not call_id:
        return UnknownEvent("calls", f"call event {event!r} without id")
    if event == "connect":
        session = _dict(call.get("session"))
        sdp = _text(session.get("sdp"))
        if not sdp:
            return UnknownEvent("calls", f"connect {call_id} without session.sdp")
        return CallConnect(
            call_id=call_id,
            from_=from_,
            to=to,
            direction=(_text(call.get("direction")) or "USER_INITIATED").upper(),
            timestamp=_int(call.get("timestamp")),
            sdp_type=(_text(session.get("sdp_type")) or "offer").lower(),
            sdp=sdp,
            phone_number_id=phone_number_id,
            contact_name=names.get(from_),
        )
    if event == "terminate":
        return CallTerminate(
            call_id=call_id,
            from_=from_,
            to=to,
            status=(_text(call.get("status")) or "COMPLETED").upper(),
            timestamp=_int(call.get("timestamp")),
            start_time=_int(call.get("start_time")),
            end_time=_int(call.get("end_time")),
            duration=_int(call.get("duration")),
            errors=errors
            + tuple(
                CallError(_int(e.get("code")), _text(e.get("title") or e.get("message")) or "")
                for e in _dicts(call.get("errors"))
            ),
            biz_opaque_callback_data=_text(call.get("biz_opaque_callback_data")),
        )
    return UnknownEvent("calls", f"call event {event!r} for {call_id}")


def dedup_key(event: WebhookEvent) -> str | None:
    """The identity of an event across redeliveries (``None``: never de-duplicated)."""
    if isinstance(event, CallConnect):
        return f"connect:{event.call_id}:{event.sdp_type}"
    if isinstance(event, CallTerminate):
        return f"terminate:{event.call_id}"
    if isinstance(event, CallStatus):
        return f"status:{event.call_id}:{event.status}"
    return None


class Deduplicator:
    """Remembers the last ``capacity`` event keys; :meth:`first_time` is true once per key."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, key: str) -> bool:
        """Record ``key``; true if it was not seen among the remembered keys."""
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    if isinstance(value, float) and value == value and abs(value) < 2**63:
        return int(value)
    return None
