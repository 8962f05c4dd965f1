"""The sans-I/O bounds, property-tested: bounded JSON, early-event store, rate limits, sessions,
origins. Time is passed in, so nothing here sleeps."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay_service import jsonlimits
from relay_service.access import AccessPolicy, Sessions, SlidingWindow, origin_of
from relay_service.whatsapp.early import EarlyEvents
from relay_service.whatsapp.events import CallConnect, CallStatus

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


@given(json_values)
def test_bounded_loads_agrees_with_json_within_bounds(value: Any) -> None:
    text = json.dumps(value)
    assert jsonlimits.nesting_depth(text.encode(), stop_above=1000) == depth_of(value)
    if depth_of(value) <= jsonlimits.MAX_DEPTH:
        assert jsonlimits.loads(text) == json.loads(text)


@given(st.binary(max_size=400) | st.text(alphabet='[]{}"\\,:1a ', max_size=400).map(str.encode))
def test_bounded_loads_refuses_with_one_error_type(raw: bytes) -> None:
    with contextlib.suppress(jsonlimits.JsonRejected):  # and no other exception
        jsonlimits.loads(raw, max_depth=8)


@pytest.mark.parametrize("depth", [33, 1000, 200_000])
def test_too_deep_is_refused_before_parsing(depth: int) -> None:
    with pytest.raises(jsonlimits.JsonRejected, match=r"deeper|not JSON"):
        jsonlimits.loads(b"[" * depth + b"]" * depth)


def status(call_id: str) -> CallStatus:
    return CallStatus(call_id, "RINGING", None, None, "1")


def answer(call_id: str, size: int) -> CallConnect:
    sdp = "x" * size
    return CallConnect(call_id, "1", "2", "BUSINESS_INITIATED", None, "answer", sdp, "1", None)


@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=30), st.integers(0, 40), st.integers(0, 50_000)),
        max_size=200,
    )
)
@settings(max_examples=200)
def test_early_events_stay_bounded_and_expire(steps: list[tuple[float, int, int]]) -> None:
    early = EarlyEvents(ttl=60, max_calls=16, max_per_call=3, max_sdp_bytes=100_000)
    now = 0.0
    for elapsed, number, size in steps:
        now += elapsed
        event = answer(f"c{number}", size) if size % 2 else status(f"c{number}")
        early.add(event, now)
        assert len(early) <= 16
        assert early._sdp_bytes <= 100_000
        assert all(len(h.events) <= 3 for h in early._held.values())
        assert all(now - h.first_seen <= 60 for h in early._held.values())
    early.expire(now + 61)
    assert len(early) == 0 and early._sdp_bytes == 0


def test_a_flood_of_unknown_calls_expires_and_a_real_call_keeps_its_events() -> None:
    early = EarlyEvents(ttl=60, max_calls=64)
    for number in range(1000):
        early.add(status(f"stray{number}"), now=0.0)
    assert len(early) == 64
    assert early.add(status("real"), now=61.0)
    assert len(early) == 1  # every stray one expired
    assert early.pop("real", now=62.0) == [status("real")]
    assert early.pop("real", now=62.0) == []


def test_the_newest_call_id_wins_over_the_oldest_when_full() -> None:
    early = EarlyEvents(max_calls=2)
    for call_id in ("a", "b", "c"):
        early.add(status(call_id), now=0.0)
    assert early.pop("a", 0.0) == [] and early.pop("c", 0.0) == [status("c")]


@given(st.lists(st.floats(min_value=0, max_value=5), max_size=60))
def test_sliding_window_lets_through_at_most_limit_per_window(gaps: list[float]) -> None:
    window = SlidingWindow(limit=3, window=10.0)
    now, allowed = 0.0, []
    for gap in gaps:
        now += gap
        wait = window.retry_after("alice", now)
        if wait == 0:
            allowed.append(now)
            window.record("alice", now)
        else:  # refused: told exactly when it would have been let through
            assert 0 < wait <= 10.0
            assert copy.deepcopy(window).retry_after("alice", now + wait + 1e-9) == 0
    for start in allowed:
        assert len([t for t in allowed if start <= t < start + 10.0]) <= 3
    assert window.retry_after("alice", now + 10.0) == 0  # never locked for longer


def test_sliding_window_remembers_a_bounded_number_of_keys() -> None:
    window = SlidingWindow(limit=1, window=60.0, max_keys=100)
    for number in range(10_000):
        window.record(f"name{number}", 0.0)
    assert len(window) == 100
    assert window.retry_after("name9999", 1.0) > 0


def test_sessions_expire_and_are_forgotten() -> None:
    sessions = Sessions(ttl=10.0)
    token = sessions.create("alice", now=0.0)
    assert sessions.agent(token, 9.9) == "alice"  # used: valid until 19.9 now
    assert sessions.agent(token, 19.8) == "alice"
    assert sessions.agent(token, 29.8) is None  # unused for 10 s
    assert sessions.agent("made-up", 0.0) is None and sessions.agent(None, 0.0) is None
    for _ in range(100):
        sessions.create("bob", now=0.0)
    sessions.create("bob", now=11.0)
    assert len(sessions) == 1
    bounded = Sessions(ttl=10.0, max_sessions=3)
    first = bounded.create("alice", now=0.0)
    for _ in range(5):
        last = bounded.create("bob", now=1.0)
    assert len(bounded) == 3
    assert bounded.agent(first, 2.0) is None and bounded.agent(last, 2.0) == "bob"


def policy(public_url: str, explicit: bool) -> AccessPolicy:
    return AccessPolicy(public_url, explicit, 3600.0, 5, 20, 300.0)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Relay.Example.com:443/", "https://relay.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:80/x", "http://[::1]"),
        ("http://host:99999", ""),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin


def test_origin_rules() -> None:
    explicit = policy("https://relay.example.com", explicit=True)
    assert explicit.origin_allowed("https://relay.example.com", "anything")
    assert not explicit.origin_allowed("http://relay.example.com", "relay.example.com")
    assert not explicit.origin_allowed("https://evil.example", "evil.example")
    assert not explicit.origin_allowed("null", "relay.example.com")
    assert explicit.origin_allowed(None, "relay.example.com")  # not a browser
    local = policy("http://127.0.0.1:8080", explicit=False)
    assert local.origin_allowed("http://192.0.2.7:8080", "192.0.2.7:8080")
    assert not local.origin_allowed("http://evil.example", "192.0.2.7:8080")
    assert not local.origin_allowed("file://192.0.2.7:8080", "192.0.2.7:8080")
    assert explicit.secure_cookies and not local.secure_cookies
