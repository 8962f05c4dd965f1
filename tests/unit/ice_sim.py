"""Two sans-I/O ICE engines on a simulated network: delays, losses, unreachable paths.

No sockets and no clock: the simulator owns time and moves it from event to event, running
each engine's ``handle_timeout`` when its ``next_timeout`` comes. A STUN transaction whose
request or response is lost ends, after ``transaction_timeout``, in ``request_failed``.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from aioice import Candidate
from aioice.candidate import candidate_foundation, candidate_priority

from webrtc_ext.config import NominationMode
from webrtc_ext.ice_engine import (
    Action,
    CandidatePair,
    CheckListState,
    ConsentExpired,
    IceCheckList,
    PairSelected,
    SendRequest,
    StateChanged,
)

Address = tuple[str, int]


def host_candidate(host: str, port: int, index: int, component: int = 1) -> Candidate:
    """A host candidate with a unique local preference (the first the highest)."""
    return Candidate(
        foundation=candidate_foundation("host", "udp", host),
        component=component,
        transport="udp",
        priority=candidate_priority(component, "host", 65535 - index),
        host=host,
        port=port,
        type="host",
    )


@dataclass
class Agent:
    """One engine and what it reported."""

    name: str
    engine: IceCheckList
    candidates: list[Candidate]
    selections: list[tuple[float, CandidatePair, int]] = field(default_factory=list)
    states: list[CheckListState] = field(default_factory=list)
    consent_expired: list[CandidatePair] = field(default_factory=list)
    requests: list[SendRequest] = field(default_factory=list)

    def address(self, candidate: Candidate) -> Address:
        return (candidate.host, candidate.port)


def make_agent(
    name: str,
    hosts: list[str],
    *,
    controlling: bool,
    lite: bool = False,
    nomination: NominationMode = NominationMode.AGGRESSIVE,
    tie_breaker: int = 1,
    random_fraction: Callable[[], float] = lambda: 0.5,
) -> Agent:
    engine = IceCheckList(
        controlling=controlling,
        local_username=name,
        tie_breaker=tie_breaker,
        lite=lite,
        nomination=nomination,
        random_fraction=random_fraction,
    )
    candidates = [host_candidate(host, 5000 + i, i) for i, host in enumerate(hosts)]
    for candidate in candidates:
        engine.add_local_candidate((candidate.host, candidate.port), candidate)
    return Agent(name, engine, candidates)


class Network:
    """Delivers the two agents' STUN requests and responses, with delays and losses."""

    def __init__(
        self,
        a: Agent,
        b: Agent,
        *,
        reachable: Callable[[Address, Address], bool] = lambda src, dst: True,
        delay: Callable[[], float] = lambda: 0.01,
        lost: Callable[[], bool] = lambda: False,
        transaction_timeout: float = 3.0,
    ) -> None:
        self.agents = (a, b)
        self.reachable = reachable
        self.delay = delay
        self.lost = lost
        self.transaction_timeout = transaction_timeout
        self.now = 0.0
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.checks: list[Callable[[], None]] = []
        """Invariant checks run after every step."""

    def peer(self, agent: Agent) -> Agent:
        return self.agents[1] if agent is self.agents[0] else self.agents[0]

    def at(self, when: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._events, (when, next(self._seq), callback))

    def signal(self) -> None:
        """Exchange candidates (all of them, then end-of-candidates) and start both."""
        for agent in self.agents:
            for candidate in self.peer(agent).candidates:
                agent.engine.add_remote_candidate(Candidate.from_sdp(candidate.to_sdp()))
        for agent in self.agents:
            self.run_actions(agent, agent.engine.end_of_candidates(self.now))
            self.run_actions(
                agent,
                agent.engine.start(
                    self.peer(agent).name, self.now, remote_lite=self.peer(agent).engine.lite
                ),
            )

    def run_actions(self, agent: Agent, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendRequest):
                agent.requests.append(action)
                self._transmit(agent, action)
            elif isinstance(action, PairSelected):
                pair = action.pair
                agent.selections.append((self.now, pair, agent.engine.priority(pair)))
            elif isinstance(action, StateChanged):
                agent.states.append(action.state)
            elif isinstance(action, ConsentExpired):
                agent.consent_expired.append(action.pair)

    def _transmit(self, agent: Agent, action: SendRequest) -> None:
        pair = action.pair
        peer = self.peer(agent)
        tid = action.message.transaction_id
        src, dst = pair.local_addr, pair.remote_addr
        sockets = {peer.address(c) for c in peer.candidates}
        there, back = self.delay(), self.delay()
        request_lost, response_lost = self.lost(), self.lost()

        def time_out() -> None:
            self.run_actions(agent, agent.engine.request_failed(tid, None, self.now))

        sent_at = self.now
        if dst not in sockets or not self.reachable(src, dst) or request_lost:
            self.at(sent_at + self.transaction_timeout, time_out)
            return

        def respond(error_code: int | None) -> None:
            if error_code is None:
                actions = agent.engine.response_received(tid, dst, self.now)
            else:
                actions = agent.engine.request_failed(tid, error_code, self.now)
            self.run_actions(agent, actions)

        def arrive() -> None:
            if peer.engine.role_conflict(action.message):
                self.at(self.now + back, lambda: respond(487))
                return
            self.run_actions(peer, peer.engine.check_received(action.message, src, dst, self.now))
            if response_lost:
                self.at(sent_at + self.transaction_timeout, time_out)
            else:
                self.at(self.now + back, lambda: respond(None))

        self.at(self.now + there, arrive)

    def run(self, until: float, max_steps: int = 200_000) -> None:
        """Move time forward, event by event, to ``until``."""
        for _ in range(max_steps):
            candidates = [e[0] for e in self._events[:1]]
            for agent in self.agents:
                when = agent.engine.next_timeout()
                if when is not None:
                    candidates.append(when)
            if not candidates:
                return
            when = max(min(candidates), self.now)
            if when > until:
                self.now = until
                return
            self.now = when
            if self._events and self._events[0][0] <= when:
                _, _, callback = heapq.heappop(self._events)
                callback()
            else:
                for agent in self.agents:
                    timeout = agent.engine.next_timeout()
                    if timeout is not None and timeout <= when:
                        self.run_actions(agent, agent.engine.handle_timeout(when))
            for check in self.checks:
                check()
        raise AssertionError(f"no progress: still running at {self.now} s after {max_steps} steps")


def seeded(seed: int) -> random.Random:
    return random.Random(seed)
