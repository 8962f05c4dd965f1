"""A leg's diagnostic file: SDPs, state history and a final ``getStats()`` snapshot (JSON)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from typing import Any

from webrtc_ext import RTCPeerConnection

FORMAT_VERSION = 1


class LegRecorder:
    """Records one peer connection's state changes for its diagnostic file."""

    def __init__(self, leg: str, pc: RTCPeerConnection) -> None:
        self.leg = leg
        self.pc = pc
        self.started = time.time()
        self.history: list[dict[str, Any]] = []
        for event in (
            "connectionstatechange",
            "iceconnectionstatechange",
            "icegatheringstatechange",
        ):
            pc.on(event, self._recorder(event))

    def _recorder(self, event: str) -> Any:
        attribute = {
            "connectionstatechange": "connectionState",
            "iceconnectionstatechange": "iceConnectionState",
            "icegatheringstatechange": "iceGatheringState",
        }[event]

        def record() -> None:
            self.note(event, getattr(self.pc, attribute))

        return record

    def note(self, event: str, value: Any = None) -> None:
        """Add an entry to the history."""
        self.history.append(
            {"t": round(time.time() - self.started, 3), "event": event, "value": value}
        )

    async def render(self) -> bytes:
        """The diagnostic file's bytes."""
        try:
            report = await self.pc.getStats()
            stats = {key: _plain(value) for key, value in report.items()}
        except Exception as exc:  # a closed or half-built connection has no stats
            stats = {"error": repr(exc)}
        document = {
            "format": "webrtc-relay-diagnostic",
            "version": FORMAT_VERSION,
            "leg": self.leg,
            "started": dt.datetime.fromtimestamp(self.started, dt.UTC).isoformat(),
            "local_description": _sdp(self.pc.localDescription),
            "remote_description": _sdp(self.pc.remoteDescription),
            "history": self.history,
            "stats": stats,
        }
        return json.dumps(document, indent=1, default=str).encode()


def _sdp(description: Any) -> dict[str, str] | None:
    if description is None:
        return None
    return {"type": description.type, "sdp": description.sdp}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value
