"""The console's words and figures: who handled a call, how it ended, each leg's quality."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from relay_service.callwords import handled_by, outcome, reason_in_words, state_in_words
from relay_service.simulators.realtime_session import spoken_result
from relay_service.supervision import Counters, leg_quality


def test_handled_by_follows_the_timeline_in_order() -> None:
    timeline = [
        {"event": "created"},
        {"event": "assistant_answered", "state": "assistant"},
        {"event": "transferred", "reason": "asked for a person"},
        {"event": "agent_answered", "agent": "alex"},
        {"event": "handed_back", "agent": "alex"},
        {"event": "assistant_answered"},
        {"event": "ended"},
    ]
    assert handled_by(timeline) == ["assistant", "alex", "assistant"]
    assert handled_by([{"event": "dialing", "agent": "bob"}, {"event": "connected"}]) == ["bob"]
    assert handled_by([]) == []


def test_outcome_and_end_reason_in_words() -> None:
    assert outcome("hung up by alice", ["alice"]) == "answered"
    assert outcome("an agent did not answer in 60 s", []) == "missed"
    assert outcome("error: boom", ["assistant"]) == "failed"
    assert reason_in_words("hung up by alice") == "alice hung up"
    assert reason_in_words("whatsapp: COMPLETED") == "The caller hung up"
    assert reason_in_words("no media from caller for 20 s") == (
        "The caller's audio stopped (connection lost)"
    )
    assert reason_in_words("something new") == "Something new"
    assert reason_in_words(None) == ""
    assert state_in_words("human", "alex") == "With alex"
    assert state_in_words("waiting", None) == "Waiting for an agent"
    assert state_in_words("assistant", None) == "AI assistant"


def test_tool_results_are_spoken_as_sentences() -> None:
    found = '{"reference": "4711", "found": true, "status": "open"}'
    assert spoken_result(found) == "I found your case, 4711. Its status: open."
    assert spoken_result(found, for_reading=True) == "Case 4711: open."
    missing = '{"reference": "99", "found": false}'
    assert "could not find" in spoken_result(missing)
    assert spoken_result('{"error": "down"}') == "Sorry, I could not look that up just now."
    assert spoken_result("Case 456 is open") == "Case 456 is open"


def report(rtt: float | None, received: int, lost: int, jitter: float) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "T01": {"type": "transport", "selectedCandidatePairId": "CP1"},
        "CP1": {"type": "candidate-pair", "currentRoundTripTime": rtt},
        "IT01A1": {
            "type": "inbound-rtp",
            "kind": "audio",
            "packetsReceived": received,
            "packetsLost": lost,
            "jitter": jitter,
        },
        "OT01A2": {"type": "outbound-rtp", "kind": "audio", "packetsSent": 10},
    }
    return stats


def test_leg_quality_reads_rtt_loss_and_jitter_in_agent_units() -> None:
    quality, counters = leg_quality(report(0.0123, 90, 10, 0.004))
    assert quality["rtt_ms"] == 12.3
    assert quality["loss_pct"] == 10.0
    assert quality["jitter_ms"] == 4.0
    assert quality["packets_sent"] == 10
    # The next second: loss over that second only.
    later, _ = leg_quality(report(0.0123, 190, 10, 0.004), counters)
    assert later["loss_pct"] == 0.0
    empty, _ = leg_quality({})
    assert empty["rtt_ms"] is None and empty["loss_pct"] is None and empty["jitter_ms"] is None


@given(
    st.integers(0, 10**6),
    st.integers(-100, 10**5),
    st.integers(0, 10**6),
    st.integers(-100, 10**5),
)
def test_loss_is_always_a_percentage(
    received: int, lost: int, more_received: int, more_lost: int
) -> None:
    previous = Counters(received, max(0, lost))
    quality, _ = leg_quality(report(None, more_received, more_lost, 0.0), previous)
    assert quality["loss_pct"] is None or 0.0 <= quality["loss_pct"] <= 100.0
