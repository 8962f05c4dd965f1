"""Sans-I/O parsing of WhatsApp calling webhooks into typed events, and de-duplication.

The parser is lenient by design: unknown fields are ignored, missing optional fields become
``None``, and a change it does not understand becomes an :class:`UnknownEvent`. Only a body
that is not a JSON object, or is one beyond the bounds of :mod:`relay_service.jsonlimits`,
raises :class:`MalformedWebhook`. Identifiers longer than the database keeps are refused as
unknown events, so a stored call never differs from the one Meta named.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from .. import jsonlimits

MAX_ID_LENGTH = 128
"""Longest call id, phone number id or WhatsApp user id kept (the ``calls`` columns' size)."""
MAX_NUMBER_LENGTH = 64
MAX_NAME_LENGTH = 256


class MalformedWebhook(ValueError):
    """The body is not a JSON object within bounds (Meta is answered 400)."""


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
    phone_number_id: str | None = None


@dataclass(frozen=True)
class CallStatus:
    """``value.statuses[]`` of a business-initiated call: RINGING, ACCEPTED or REJECTED."""

    call_id: str
    status: str
    timestamp: int | None
    recipient_id: str | None
    phone_number_id: str | None = None


@dataclass(frozen=True)
class UnknownEvent:
    """A change or call event this service does not handle (logged and acknowledged)."""

    field: str
    description: str
    phone_number_id: str | None = None


WebhookEvent = CallConnect | CallTerminate | CallStatus | UnknownEvent


def parse_webhook(body: bytes) -> list[WebhookEvent]:
    """Every event in a webhook body; raises :class:`MalformedWebhook` if it is not JSON."""
    try:
        document = jsonlimits.loads(body)
    except jsonlimits.JsonRejected as exc:
        raise MalformedWebhook(f"body refused: {exc}") from None
    if not isinstance(document, dict):
        raise MalformedWebhook(f"body is a JSON {type(document).__name__}, not an object")
    events: list[WebhookEvent] = []
    for entry in _dicts(document.get("entry")):
        for change in _dicts(entry.get("changes")):
            events.extend(_parse_change(change))
    return events


def _parse_change(change: dict[str, Any]) -> list[WebhookEvent]:
    field = _short(_text(change.get("field")) or "?")
    value = change.get("value")
    if field != "calls" or not isinstance(value, dict):
        return [UnknownEvent(field, f"change of field {field!r}")]
    phone_number_id = _text(_dict(value.get("metadata")).get("phone_number_id"))
    if phone_number_id is not None and len(phone_number_id) > MAX_ID_LENGTH:
        return [UnknownEvent(field, f"phone_number_id {_short(phone_number_id)!r} too long")]
    names = {
        _text(c.get("wa_id")): _text(_dict(c.get("profile")).get("name"))
        for c in _dicts(value.get("contacts"))
    }
    errors = _errors(value.get("errors"))
    events: list[WebhookEvent] = []
    for call in _dicts(value.get("calls")):
        events.append(_parse_call(call, phone_number_id, names, errors))
    for status in _dicts(value.get("statuses")):
        events.append(_parse_status(status, phone_number_id))
    if not events:
        events.append(
            UnknownEvent(field, "calls change without calls or statuses", phone_number_id)
        )
    return events


def _parse_status(status: dict[str, Any], phone_number_id: str | None) -> WebhookEvent:
    call_id = _text(status.get("id"))
    state = _token(status.get("status"))
    if not call_id or not state:
        return UnknownEvent("calls", "status without id or status", phone_number_id)
    if len(call_id) > MAX_ID_LENGTH:
        return UnknownEvent("calls", f"status for a call id of {len(call_id)} characters")
    recipient = _text(status.get("recipient_id"))
    return CallStatus(
        call_id,
        state.upper(),
        _int(status.get("timestamp")),
        recipient[:MAX_NUMBER_LENGTH] if recipient else recipient,
        phone_number_id,
    )


def _parse_call(
    call: dict[str, Any],
    phone_number_id: str | None,
    names: dict[str | None, str | None],
    errors: tuple[CallError, ...],
) -> WebhookEvent:
    call_id = _text(call.get("id"))
    event = _short(_text(call.get("event")) or "")
    from_, to = _text(call.get("from")) or "", _text(call.get("to")) or ""
    if not call_id:
        return UnknownEvent("calls", f"call event {event!r} without id", phone_number_id)
    if len(call_id) > MAX_ID_LENGTH or max(len(from_), len(to)) > MAX_NUMBER_LENGTH:
        return UnknownEvent("calls", f"call event {event!r} with an oversized id or number")
    if event == "connect":
        session = _dict(call.get("session"))
        sdp = _text(session.get("sdp"))
        if not sdp:
            return UnknownEvent("calls", f"connect {call_id} without session.sdp", phone_number_id)
        name = names.get(from_)
        return CallConnect(
            call_id=call_id,
            from_=from_,
            to=to,
            direction=(_token(call.get("direction")) or "USER_INITIATED").upper(),
            timestamp=_int(call.get("timestamp")),
            sdp_type=(_token(session.get("sdp_type")) or "offer").lower(),
            sdp=sdp,
            phone_number_id=phone_number_id,
            contact_name=name[:MAX_NAME_LENGTH] if name else name,
        )
    if event == "terminate":
        return CallTerminate(
            call_id=call_id,
            from_=from_,
            to=to,
            status=(_token(call.get("status")) or "COMPLETED").upper(),
            timestamp=_int(call.get("timestamp")),
            start_time=_int(call.get("start_time")),
            end_time=_int(call.get("end_time")),
            duration=_int(call.get("duration")),
            errors=errors + _errors(call.get("errors")),
            biz_opaque_callback_data=_text(call.get("biz_opaque_callback_data")),
            phone_number_id=phone_number_id,
        )
    return UnknownEvent("calls", f"call event {event!r} for {call_id}", phone_number_id)


def _errors(value: Any) -> tuple[CallError, ...]:
    return tuple(
        CallError(_int(e.get("code")), _short(_text(e.get("title") or e.get("message")) or ""))
        for e in _dicts(value)
    )


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


def _token(value: Any) -> str | None:
    """A short keyword (``connect``, ``RINGING``, ``offer``); anything longer is no keyword."""
    text = _text(value)
    return text if text is not None and len(text) <= 32 else None


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 2**63 else None
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            return None
        return number if abs(number) < 2**63 else None
    if isinstance(value, float) and value == value and abs(value) < 2**63:
        return int(value)
    return None
