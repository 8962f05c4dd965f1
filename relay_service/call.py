"""One call and its legs, as the :class:`~relay_service.router.CallRouter` holds it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiortc.mediastreams import MediaStreamTrack

from .bridge import MediaBridge
from .callstate import CallMachine, CallState
from .callwords import state_in_words
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
    state_since: float = field(default_factory=time.time)
    """Wall-clock time of the last change of :attr:`state` (kept by ``__setattr__``)."""
    handover: str | None = None
    """The assistant's summary for the person it hands the call to."""
    listeners: dict[str, list[MediaStreamTrack]] = field(default_factory=dict)
    """Supervisors listening in, with the audio forks their legs receive."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "machine":
            old = getattr(self, "machine", None)
            if old is not None and old.state != value.state:
                object.__setattr__(self, "state_since", time.time())
        object.__setattr__(self, name, value)

    @property
    def number(self) -> str:
        """The WhatsApp user's number: the caller, or the number dialled for outbound calls."""
        return self.to_number if self.direction == "BUSINESS_INITIATED" else self.from_number

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
        waited = time.monotonic() - self.waiting_since
        return {
            "id": self.wa_call_id,
            "db_id": self.db_id,
            "from": self.from_number,
            "to": self.to_number,
            "number": self.number,
            "direction": self.direction,
            "name": self.caller_name,
            "state": self.state,
            "state_words": state_in_words(self.state, self.agent, self.machine.transfer_to),
            "transfer_to": self.machine.transfer_to,
            "agent": self.agent,
            "digits": "".join(self.digits),
            "started": self.started,
            "state_since": self.state_since,
            "waiting_since": time.time() - waited,
            "handover": self.handover,
            "ai": self.ai.summary() if self.ai is not None else {},
        }
