"""A call in the words an agent uses: who handled it, how it ended, what state it is in.

Pure functions over a call's stored timeline and end reason, shared by the live call list
and the history, so that both say the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

HANDLER_EVENTS = (
    "assistant_answered",
    "agent_answered",
    "taken_over",
    "dialing",
    "transfer_answered",
)
"""Timeline events after which someone (the assistant or a named agent) holds the call."""

OUTCOMES = ("answered", "missed", "failed")
WRAP_UP_CODES = ("resolved", "follow-up", "escalated", "wrong number", "no answer", "other")
"""The codes an agent picks from when wrapping up a call."""


def handled_by(timeline: Iterable[Mapping[str, Any]]) -> list[str]:
    """Who held the call, in order (``assistant`` or an agent's name), repeats collapsed."""
    handlers: list[str] = []
    for entry in timeline:
        event = entry.get("event")
        if event not in HANDLER_EVENTS:
            continue
        who = "assistant" if event == "assistant_answered" else str(entry.get("agent") or "")
        if who and (not handlers or handlers[-1] != who):
            handlers.append(who)
    return handlers


_FAILURES = re.compile(r"^(error|graph api|bad answer|whatsapp leg: connection failed)")


def outcome(end_reason: str | None, handlers: list[str]) -> str:
    """``answered`` (someone took it), ``missed`` (nobody did) or ``failed`` (an error)."""
    if end_reason and _FAILURES.match(end_reason):
        return "failed"
    return "answered" if handlers else "missed"


_REASONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^hung up by (?P<who>.+)$"), "{who} hung up"),
    (re.compile(r"^whatsapp: COMPLETED"), "The caller hung up"),
    (re.compile(r"^whatsapp: REJECTED"), "The user declined the call"),
    (re.compile(r"^whatsapp: FAILED"), "WhatsApp reported the call failed"),
    (re.compile(r"^no media from caller"), "The caller's audio stopped (connection lost)"),
    (re.compile(r"^the user did not answer"), "The user did not answer"),
    (re.compile(r"^an agent did not answer"), "No agent answered in time"),
    (re.compile(r"^agent disconnected"), "The agent's console closed"),
    (re.compile(r"^agent leg lost"), "The agent's connection dropped"),
    (re.compile(r"^whatsapp leg: connection failed"), "The connection to WhatsApp failed"),
    (re.compile(r"^service shutting down"), "The service restarted"),
    (re.compile(r"^graph api"), "WhatsApp refused the call"),
]


def reason_in_words(reason: str | None) -> str:
    """An end reason as a sentence an agent understands (the raw reason if unknown)."""
    if not reason:
        return ""
    for pattern, words in _REASONS:
        found = pattern.match(reason)
        if found:
            return words.format(**found.groupdict())
    return reason[:1].upper() + reason[1:]


def state_in_words(state: str, agent: str | None, transfer_to: str | None = None) -> str:
    """A live call's state as the queue shows it ("AI assistant", "With alice")."""
    if state == "waiting" and transfer_to:
        return f"Transferred to {transfer_to}"
    if state == "human":
        return f"With {agent}" if agent else "With an agent"
    words = {
        "dialing": "Calling the user…",
        "ringing": "Ringing",
        "prerecorded": "Hearing the greeting",
        "assistant": "AI assistant",
        "waiting": "Waiting for an agent",
        "held": f"On hold by {agent}" if agent else "On hold",
        "ended": "Ended",
    }
    return words.get(state, state)
