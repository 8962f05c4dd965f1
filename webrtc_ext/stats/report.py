"""W3C webrtc-stats objects: a stats dictionary per object, collected in a report."""

from __future__ import annotations

from typing import Any

from aiortc.stats import RTCStatsReport as _AiortcStatsReport


class RTCStats(dict[str, Any]):
    """One W3C stats dictionary (``id``, ``type``, ``timestamp`` and the type's fields).

    Fields are readable as keys (``s["packetsLost"]``, as in JavaScript) or attributes
    (``s.packetsLost``, as with aiortc's stats classes). ``timestamp`` is a W3C
    ``DOMHighResTimeStamp``: milliseconds since the Unix epoch.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def id(self) -> str:
        """The stats object's id, stable over the connection's life."""
        return str(self["id"])

    @property
    def type(self) -> str:
        """The W3C ``RTCStatsType`` name, e.g. ``"inbound-rtp"``."""
        return str(self["type"])


class RTCStatsReport(_AiortcStatsReport):
    """The W3C ``RTCStatsReport``: a mapping of id to :class:`RTCStats`."""

    def add(self, stats: Any) -> None:
        """Add one stats object under its id."""
        self[stats.id] = stats

    def of_type(self, type: str) -> list[RTCStats]:
        """Every stats object of one W3C type, in id order."""
        return sorted(
            (s for s in self.values() if isinstance(s, RTCStats) and s.type == type),
            key=lambda s: s.id,
        )

    def to_json(self) -> dict[str, dict[str, Any]]:
        """The report as plain JSON-ready dictionaries, keyed by id."""
        return {key: dict(value) for key, value in self.items()}
