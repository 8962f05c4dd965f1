"""The ICE engine's values: pair and check-list states, candidate pairs, and its actions."""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass, field

from aioice import Candidate, stun
from aioice.utils import random_string

from .._internals import candidate_network_host


class PairState(enum.Enum):
    """A candidate pair's state (RFC 8445 §6.1.2.6), valued with the W3C stats names."""

    FROZEN = "frozen"
    WAITING = "waiting"
    IN_PROGRESS = "in-progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class CheckListState(enum.Enum):
    """The check list's state (RFC 8445 §6.1.2.1)."""

    NEW = "new"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class RequestKind(enum.Enum):
    """Why a Binding request is sent."""

    CHECK = "check"
    NOMINATION = "nomination"
    CONSENT = "consent"


def pair_priority(local: Candidate, remote: Candidate, controlling: bool) -> int:
    """A pair's priority (RFC 8445 §6.1.2.3)."""
    g, d = (local.priority, remote.priority) if controlling else (remote.priority, local.priority)
    return (1 << 32) * min(g, d) + 2 * max(g, d) + (1 if g > d else 0)


def remote_address(candidate: Candidate) -> tuple[str, int]:
    """The address checks to a remote candidate go to (an mDNS one's resolved address)."""
    return (candidate_network_host(candidate), candidate.port)


@dataclass(eq=False)
class CandidatePair:
    """One pair of the check list, with the counters webrtc-stats needs.

    ``local_socket`` is the shell's handle of the local candidate's socket (opaque here).
    """

    local_socket: Hashable
    local_candidate: Candidate
    remote_candidate: Candidate
    state: PairState = PairState.FROZEN
    nominated: bool = False
    remote_nominated: bool = False
    id: str = field(default_factory=lambda: random_string(8))
    requests_sent: int = 0
    requests_received: int = 0
    responses_sent: int = 0
    responses_received: int = 0
    consent_requests_sent: int = 0
    current_round_trip_time: float | None = None
    total_round_trip_time: float = 0.0
    round_trip_time_measurements: int = 0

    def __repr__(self) -> str:
        return f"CandidatePair({self.local_addr} -> {self.remote_addr})"

    @property
    def component(self) -> int:
        """The component of the pair (that of its local candidate)."""
        return self.local_candidate.component

    @property
    def local_addr(self) -> tuple[str, int]:
        """The local candidate's address."""
        return (self.local_candidate.host, self.local_candidate.port)

    @property
    def remote_addr(self) -> tuple[str, int]:
        """Where this pair's checks and data go."""
        return remote_address(self.remote_candidate)

    def record_round_trip(self, seconds: float) -> None:
        """Account one measured STUN round trip."""
        self.current_round_trip_time = seconds
        self.total_round_trip_time += seconds
        self.round_trip_time_measurements += 1


@dataclass(frozen=True)
class SendRequest:
    """Action: run a STUN Binding transaction for ``pair`` (sign it with the remote password).

    ``retransmit`` is false for consent checks (RFC 7675 §5.1: no retransmissions).
    """

    pair: CandidatePair
    message: stun.Message
    kind: RequestKind
    retransmit: bool = True


@dataclass(frozen=True)
class PairSelected:
    """Action: ``pair`` is now the selected pair of its component."""

    pair: CandidatePair


@dataclass(frozen=True)
class StateChanged:
    """Action: the check list completed (every component has a selected pair) or failed."""

    state: CheckListState


@dataclass(frozen=True)
class ConsentExpired:
    """Action: no consent response on ``pair`` for the consent timeout (RFC 7675 §5.1)."""

    pair: CandidatePair


Action = SendRequest | PairSelected | StateChanged | ConsentExpired
