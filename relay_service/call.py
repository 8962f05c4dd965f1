"""One call and its legs, as the :class:`~relay_service.router.CallRouter` holds it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiortc.mediastreams import MediaStreamTrack

from .bridge import MediaBridge
from .callstate import CallMachine, CallState
from .diagnostics import LegRecorder

if TYPE_CHECKING:
    from .assist import CallAi


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
    machine: CallMachine = field(default_factory=CallMachine.incoming)
    answer_sdp: str = ""
    digits: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    legs: dict[str, LegRecorder] = field(default_factory=dict)
    pre_accepted: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    ai: CallAi | None = None
    waiting_since: float = field(default_factory=time.monotonic)
    browser_legs: int = 0
    agent_leg: str | None = None
    """The name of the agent's browser leg in :attr:`legs` while one is joined."""
    agent_audio: MediaStreamTrack | None = None

    @property
    def state(self) -> CallState:
        """The call's life-cycle state (its machine's)."""
        return self.machine.state

    @property
    def agent(self) -> str | None:
        """The agent holding the call, if any."""
        return self.machine.agent

    @property
    def end_reason(self) -> str | None:
        """Why the call ended (``None`` while active)."""
        return self.machine.end_reason

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
