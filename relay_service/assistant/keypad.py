"""Keypad entries from DTMF digits: ``#`` or a pause ends an entry, ``*`` starts it again."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeypadEntry:
    """What the caller typed, and how the entry ended (``"#"`` or ``"pause"``)."""

    digits: str
    ended_by: str


class KeypadCollector:
    """Collects digits into entries (sans-I/O: the caller passes the time in)."""

    def __init__(self, pause: float = 3.0, max_digits: int = 32) -> None:
        if pause <= 0:
            raise ValueError("pause must be positive")
        self.pause = pause
        self.max_digits = max_digits
        self._digits: list[str] = []
        self._last: float | None = None

    @property
    def pending(self) -> str:
        """Digits typed so far in the current entry."""
        return "".join(self._digits)

    def deadline(self) -> float | None:
        """When the current entry ends by a pause, if one is open."""
        return None if self._last is None or not self._digits else self._last + self.pause

    def press(self, key: str, now: float) -> KeypadEntry | None:
        """One key press; returns an entry when this press (or the pause before it) ended one."""
        ended = self.tick(now)
        if key == "#":
            entry = KeypadEntry(self.pending, "#") if self._digits else None
            self._digits, self._last = [], None
            return entry or ended
        if key == "*":
            self._digits, self._last = [], None
            return ended
        if key.isdigit() or key in "ABCD":
            if len(self._digits) < self.max_digits:
                self._digits.append(key)
            self._last = now
        return ended

    def tick(self, now: float) -> KeypadEntry | None:
        """Call when time passes: returns the entry that a pause ended, if any."""
        deadline = self.deadline()
        if deadline is not None and now >= deadline:
            entry = KeypadEntry(self.pending, "pause")
            self._digits, self._last = [], None
            return entry
        return None
