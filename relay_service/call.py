"""One call and its legs, as the :class:`~relay_service.router.CallRouter` holds it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiortc.mediastreams import MediaStreamTrack

from .assist import CallAi
from .bridge import MediaBridge
from .diagnostics import LegRecorder


@dataclass(eq=False)
class Call:
    """One call and its legs."""

    wa_call_id: str
    db_id: int
    from_number: str
    to_number: str
    caller_name: str | None
    direction: str
    bridge: MediaBridge
    state: str = "ringing"
    agent: str | None = None
    accepted: bool = False
    answer_sdp: str = ""
    end_reason: str | None = None
    digits: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    legs: dict[str, LegRecorder] = field(default_factory=dict)
    pre_accepted: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    ai: CallAi | None = None
    waiting_since: float = field(default_factory=time.monotonic)
    browser_legs: int = 0
    agent_audio: MediaStreamTrack | None = None

    def summary(self) -> dict[str, Any]:
        """What the agent console shows."""
        return {
            "id": self.wa_call_id,
            "db_id": self.db_id,
            "from": self.from_number,
            "name": self.caller_name,
            "state": self.state,
            "agent": self.agent,
            "digits": "".join(self.digits),
            "started": self.started,
            "ai": self.ai.summary() if self.ai is not None else {},
        }
