"""Webhook events of business-initiated calls that arrive before the call is known.

Meta can deliver a call's ``RINGING`` status (even its answer) before the reply to our
``connect`` request names the call. Such events are kept briefly and replayed once the call
exists. Anything signed by Meta can land here, including statuses of calls that will never be
ours, so the store is bounded three ways: entries expire after ``ttl`` seconds, at most
``max_calls`` call ids with ``max_per_call`` events each are kept (the oldest call id goes
first), and at most ``max_sdp_bytes`` of SDP in total. Time is passed in (sans-I/O).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from .events import CallConnect, CallStatus

EarlyEvent = CallConnect | CallStatus

DEFAULT_TTL = 60.0
"""Longer than a Graph request may take (``WHATSAPP_GRAPH_TIMEOUT``, 10 s by default)."""


@dataclass
class _Held:
    first_seen: float
    events: list[EarlyEvent] = field(default_factory=list)


class EarlyEvents:
    """Events of not-yet-known calls, by call id, bounded in count, size and age."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        max_calls: int = 256,
        max_per_call: int = 8,
        max_sdp_bytes: int = 1024 * 1024,
    ) -> None:
        self.ttl = ttl
        self.max_calls = max_calls
        self.max_per_call = max_per_call
        self.max_sdp_bytes = max_sdp_bytes
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self._sdp_bytes = 0

    def __len__(self) -> int:
        """How many call ids have events waiting."""
        return len(self._held)

    def add(self, event: EarlyEvent, now: float) -> bool:
        """Keep ``event`` until its call is known; false if it was dropped (too many for it)."""
        self.expire(now)
        held = self._held.get(event.call_id)
        if held is None:
            held = self._held[event.call_id] = _Held(now)
        if len(held.events) >= self.max_per_call:
            return False
        held.events.append(event)
        self._sdp_bytes += _size(event)
        while len(self._held) > self.max_calls or self._sdp_bytes > self.max_sdp_bytes:
            self._drop_oldest()
        return event.call_id in self._held

    def pop(self, call_id: str, now: float) -> list[EarlyEvent]:
        """The events kept for ``call_id`` (oldest first), forgotten here."""
        self.expire(now)
        held = self._held.pop(call_id, None)
        if held is None:
            return []
        self._sdp_bytes -= sum(_size(e) for e in held.events)
        return held.events

    def expire(self, now: float) -> None:
        """Forget every call id first seen more than ``ttl`` seconds before ``now``."""
        while self._held:
            oldest = next(iter(self._held.values()))
            if now - oldest.first_seen <= self.ttl:
                return
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, held = self._held.popitem(last=False)
        self._sdp_bytes -= sum(_size(e) for e in held.events)


def _size(event: EarlyEvent) -> int:
    return len(event.sdp) if isinstance(event, CallConnect) else 0
