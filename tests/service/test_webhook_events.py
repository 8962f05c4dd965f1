"""The sans-I/O webhook parser and de-duplication (PROTOCOLS.md shapes, leniency)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay_service.whatsapp import payloads, signature
from relay_service.whatsapp.events import (
    CallConnect,
    CallStatus,
    CallTerminate,
    Deduplicator,
    MalformedWebhook,
    UnknownEvent,
    dedup_key,
    parse_webhook,
)

PHONE = "100000000000001"


def body(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def test_user_initiated_connect() -> None:
    (event,) = parse_webhook(
        body(payloads.connect(PHONE, "wacid.A", "4915112345678", "15550000000", "v=0\r\n"))
    )
    assert isinstance(event, CallConnect)
    assert (event.call_id, event.from_, event.direction, event.sdp_type) == (
        "wacid.A",
        "4915112345678",
        "USER_INITIATED",
        "offer",
    )
    assert event.contact_name == "Simulated Caller"
    assert event.phone_number_id == PHONE
    assert isinstance(event.timestamp, int)


def test_business_initiated_answer_without_contacts() -> None:
    document = payloads.connect(
        PHONE, "wacid.B", "15550000000", "491", "v=0\r\n", direction="BUSINESS_INITIATED", name=None
    )
    assert "contacts" not in document["entry"][0]["changes"][0]["value"]
    (event,) = parse_webhook(body(document))
    assert isinstance(event, CallConnect)
    assert (event.sdp_type, event.contact_name) == ("answer", None)


def test_terminate_with_errors_and_string_numbers() -> None:
    document = payloads.terminate(
        PHONE,
        "wacid.C",
        "491",
        "1555",
        status="FAILED",
        errors=[{"code": 138021, "title": "No media for a long time."}],
    )
    (event,) = parse_webhook(body(document))
    assert isinstance(event, CallTerminate)
    assert event.status == "FAILED"
    assert event.errors[0].code == 138021
    assert isinstance(event.start_time, int) and isinstance(event.duration, int)


def test_statuses() -> None:
    (event,) = parse_webhook(body(payloads.status(PHONE, "wacid.D", "491", "RINGING")))
    assert isinstance(event, CallStatus)
    assert event == CallStatus("wacid.D", "RINGING", event.timestamp, "491", PHONE)


def test_unknown_field_and_event_are_reported_not_raised() -> None:
    document = {
        "object": "whatsapp_business_account",
        "entry": [
            {"changes": [{"field": "messages", "value": {"messages": []}}]},
            {"changes": [{"field": "calls", "value": {"calls": [{"id": "x", "event": "hold"}]}}]},
        ],
        "brand_new_top_level_field": {"a": 1},
    }
    events = parse_webhook(body(document))
    assert [type(e) for e in events] == [UnknownEvent, UnknownEvent]


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"', b""])
def test_malformed_bodies_raise_one_clear_error(raw: bytes) -> None:
    with pytest.raises(MalformedWebhook):
        parse_webhook(raw)


def test_duplicate_keys_are_seen_once() -> None:
    events = parse_webhook(body(payloads.connect(PHONE, "wacid.E", "1", "2", "v=0\r\n")))
    dedup = Deduplicator(capacity=2)
    key = dedup_key(events[0])
    assert key is not None
    assert dedup.first_time(key)
    assert not dedup.first_time(key)
    assert dedup.first_time("b") and dedup.first_time("c")
    assert dedup.first_time(key)  # forgotten beyond capacity


def test_signature_is_over_raw_bytes() -> None:
    raw = b'{"a": 1}'
    header = signature.sign("secret", raw)
    assert signature.verify("secret", raw, header)
    assert not signature.verify("secret", b'{"a":1}', header)
    assert not signature.verify("other", raw, header)
    assert not signature.verify("secret", raw, None)
    assert not signature.verify("secret", raw, "sha256=")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "entry",
                    "changes",
                    "field",
                    "value",
                    "calls",
                    "statuses",
                    "id",
                    "event",
                    "session",
                    "sdp",
                    "sdp_type",
                    "errors",
                    "contacts",
                    "code",
                    "status",
                    "from",
                ]
            )
            | st.text(max_size=5),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_parses_without_crashing(document: Any) -> None:
    try:
        events = parse_webhook(json.dumps(document).encode())
    except MalformedWebhook:
        assert not isinstance(document, dict)
        return
    for event in events:
        assert isinstance(event, CallConnect | CallTerminate | CallStatus | UnknownEvent)
        dedup_key(event)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_malformed(raw: bytes) -> None:
    with contextlib.suppress(MalformedWebhook):
        parse_webhook(raw)


@settings(max_examples=100, deadline=None)
@given(
    call_id=st.text(min_size=1, max_size=20),
    drop=st.sets(st.sampled_from(["timestamp", "direction", "to", "from"])),
)
def test_connect_survives_missing_optional_fields(call_id: str, drop: set[str]) -> None:
    document = payloads.connect(PHONE, call_id, "1", "2", "v=0\r\n")
    call = document["entry"][0]["changes"][0]["value"]["calls"][0]
    for name in drop:
        call.pop(name)
    (event,) = parse_webhook(body(document))
    assert isinstance(event, CallConnect) and event.call_id == call_id
