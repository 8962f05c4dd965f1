"""Builders for the webhook bodies Meta sends (used by the simulator and the tests)."""

from __future__ import annotations

import json
import time
from typing import Any

WABA_ID = "200000000000001"
DISPLAY_NUMBER = "15550000000"


def envelope(phone_number_id: str, value: dict[str, Any]) -> dict[str, Any]:
    """The ``whatsapp_business_account`` envelope around one ``calls`` change."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": phone_number_id},
        **value,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"field": "calls", "value": value}]}],
    }


def connect(
    phone_number_id: str,
    call_id: str,
    from_: str,
    to: str,
    sdp: str,
    *,
    direction: str = "USER_INITIATED",
    name: str | None = "Simulated Caller",
) -> dict[str, Any]:
    """A ``connect`` webhook: an offer (user-initiated) or an answer (business-initiated)."""
    call = {
        "id": call_id,
        "from": from_,
        "to": to,
        "event": "connect",
        "timestamp": str(int(time.time())),
        "direction": direction,
        "session": {
            "sdp_type": "offer" if direction == "USER_INITIATED" else "answer",
            "sdp": sdp,
        },
    }
    value: dict[str, Any] = {"calls": [call]}
    if name is not None and direction == "USER_INITIATED":
        value["contacts"] = [{"profile": {"name": name}, "wa_id": from_}]
    return envelope(phone_number_id, value)


def terminate(
    phone_number_id: str,
    call_id: str,
    from_: str,
    to: str,
    *,
    status: str = "COMPLETED",
    start_time: int | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A ``terminate`` webhook with duration and optional ``errors``."""
    now = int(time.time())
    start = start_time or now
    call: dict[str, Any] = {
        "id": call_id,
        "from": from_,
        "to": to,
        "event": "terminate",
        "timestamp": str(now),
        "direction": "USER_INITIATED",
        "status": status,
        "start_time": str(start),
        "end_time": str(now),
        "duration": now - start,
    }
    value: dict[str, Any] = {"calls": [call]}
    if errors:
        value["errors"] = errors
    return envelope(phone_number_id, value)


def status(phone_number_id: str, call_id: str, recipient: str, state: str) -> dict[str, Any]:
    """A business-initiated call status webhook (RINGING, ACCEPTED, REJECTED)."""
    entry = {
        "id": call_id,
        "timestamp": str(int(time.time())),
        "type": "call",
        "status": state,
        "recipient_id": recipient,
    }
    return envelope(phone_number_id, {"statuses": [entry]})


def encode(document: dict[str, Any]) -> bytes:
    """The raw body bytes (what the signature covers)."""
    return json.dumps(document, separators=(",", ":")).encode()
