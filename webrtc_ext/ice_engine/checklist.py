"""The ICE check list as a sans-I/O engine: time passed in, actions returned.

:class:`IceCheckList` never touches a socket or a clock. The shell
(:class:`webrtc_ext._vendor.aioice.ice.Connection`) feeds it candidates, authenticated
incoming checks, the outcome of each STUN transaction and the current time, runs the
:class:`SendRequest` actions it returns, and calls :meth:`IceCheckList.handle_timeout` at
:meth:`IceCheckList.next_timeout`. It implements RFC 8445's check list (§6.1.2-§6.1.4, §7.2,
§7.3), both nomination modes (§8.1.1) with re-selection of a better nominated pair, ICE-lite
(§2.5), and consent freshness (RFC 7675).

STUN retransmissions stay in the shell (aioice's ``stun.Transaction``): the engine only sees
a transaction's final outcome, :meth:`IceCheckList.response_received` or
:meth:`IceCheckList.request_failed`.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from aioice import Candidate, stun
from aioice.candidate import candidate_priority
from aioice.mdns import is_mdns_hostname
from aioice.utils import random_string

from ..config import NominationMode
from .model import (
    Action,
    CandidatePair,
    CheckListState,
    ConsentExpired,
    PairSelected,
    PairState,
    RequestKind,
    SendRequest,
    StateChanged,
    pair_priority,
    remote_address,
)

logger = logging.getLogger(__name__)

#: Pacing of new checks (the Ta timer of RFC 8445 §6.1.4.2), in seconds.
CHECK_INTERVAL = 0.02
#: How long an ICE-lite agent waits for the full agent's first nomination, in seconds.
LITE_CONNECT_TIMEOUT = 30.0
#: Consent freshness (RFC 7675 §5.1): a check every 5 s on average, lost after 30 s.
CONSENT_INTERVAL = 5.0
CONSENT_TIMEOUT = 30.0
#: Incoming checks kept until :meth:`IceCheckList.start` (RFC 8445 §19.5.1 bounds checks).
MAX_EARLY_CHECKS = 100


@dataclass
class _Transaction:
    pair: CandidatePair
    kind: RequestKind
    sent_at: float
    nominate: bool
    controlling: bool


@dataclass
class _Consent:
    last_response: float
    next_check: float


class IceCheckList:
    """The ICE agent's check list, nomination and consent for one data stream.

    Every method that takes ``now`` returns the actions to run, in order.
    """

    # In slots: the C path (webrtc_ext._native) reads ``selected`` for every packet at its
    # offset rather than in the instance dictionary; the rest stays in ``__dict__``.
    __slots__ = ("__dict__", "__weakref__", "selected")

    def __init__(
        self,
        *,
        controlling: bool,
        local_username: str,
        tie_breaker: int,
        components: int = 1,
        lite: bool = False,
        nomination: NominationMode = NominationMode.AGGRESSIVE,
        regular_nomination_timeout: float = 0.5,
        upgrade_window: float = 5.0,
        check_interval: float = CHECK_INTERVAL,
        lite_connect_timeout: float = LITE_CONNECT_TIMEOUT,
        consent_interval: float = CONSENT_INTERVAL,
        consent_timeout: float = CONSENT_TIMEOUT,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        self.lite = lite
        self._controlling = controlling and not lite
        self.local_username = local_username
        self.remote_username: str | None = None
        self.remote_lite = False
        self.tie_breaker = tie_breaker
        self.nomination = nomination
        self.regular_nomination_timeout = regular_nomination_timeout
        self.upgrade_window = upgrade_window
        self.check_interval = check_interval
        self.lite_connect_timeout = lite_connect_timeout
        self.consent_interval = consent_interval
        self.consent_timeout = consent_timeout
        self._random = random_fraction

        self.components = set(range(1, components + 1))
        self.state = CheckListState.NEW
        self.pairs: list[CandidatePair] = []
        """The check list, highest priority first."""
        self.selected: dict[int, CandidatePair] = {}
        self.selected_pair_changes = 0
        self.remote_candidates: list[Candidate] = []
        self._locals: list[tuple[Hashable, Candidate]] = []
        self._remote_end = False
        self._nominating: set[int] = set()
        self._first_valid_at: dict[int, float] = {}
        self._transactions: dict[bytes, _Transaction] = {}
        self._early_checks: deque[tuple[stun.Message, tuple[str, int], Hashable]] = deque(
            maxlen=MAX_EARLY_CHECKS
        )
        self._next_check_at: float | None = None
        self._completed_at: float | None = None
        self._lite_deadline: float | None = None
        self._consent: dict[int, _Consent] = {}
        self._closed = False

    # -- role -----------------------------------------------------------------------------

    @property
    def controlling(self) -> bool:
        """Whether we are the controlling agent; an ICE-lite agent never is (RFC 8445 §6.1.1)."""
        return self._controlling

    @controlling.setter
    def controlling(self, value: bool) -> None:
        self._controlling = bool(value) and not self.lite
        self._sort()

    def role_conflict(self, message: stun.Message) -> bool:
        """Repair a role conflict of an incoming check (RFC 8445 §7.3.1.1).

        Returns true when the check must be answered with a 487 (Role Conflict) error;
        otherwise switches role if the tie-breaker says so.
        """
        if self.controlling and "ICE-CONTROLLING" in message.attributes:
            if self.tie_breaker >= message.attributes["ICE-CONTROLLING"]:
                return True
            self._switch_role(False)
        elif not self.controlling and "ICE-CONTROLLED" in message.attributes:
            if self.lite or self.tie_breaker < message.attributes["ICE-CONTROLLED"]:
                return True
            self._switch_role(True)
        return False

    def _switch_role(self, controlling: bool) -> None:
        logger.info("switching to the %s role", "controlling" if controlling else "controlled")
        self.controlling = controlling

    # -- candidates -----------------------------------------------------------------------

    def priority(self, pair: CandidatePair) -> int:
        """The pair's priority in our current role."""
        return pair_priority(pair.local_candidate, pair.remote_candidate, self.controlling)

    def add_local_candidate(self, socket: Hashable, candidate: Candidate) -> None:
        """A local candidate and the handle of the socket its checks are sent from."""
        self._locals.append((socket, candidate))
        for remote in self.remote_candidates:
            self._pair(socket, candidate, remote)
        self._sort()

    def add_remote_candidate(self, candidate: Candidate) -> None:
        """A remote candidate whose address is known (an mDNS one already resolved)."""
        known = self._find_remote(candidate.component, remote_address(candidate))
        if known is None:
            self.remote_candidates.append(candidate)
        elif known.type == "prflx":
            # A peer-reflexive candidate signalled later keeps its pair (RFC 8838 §11).
            logger.info("peer-reflexive candidate %s signalled as %s", known, candidate)
            for name in ("host", "foundation", "priority", "type", "related_address"):
                setattr(known, name, getattr(candidate, name))
            known.related_port = candidate.related_port
            known.tcptype = candidate.tcptype
            known.generation = candidate.generation
            candidate = known
        else:
            logger.info("remote candidate %s has the address of %s: ignored", candidate, known)
            return
        for socket, local in self._locals:
            self._pair(socket, local, candidate)
        self._sort()

    def end_of_candidates(self, now: float) -> list[Action]:
        """No more remote candidates (RFC 8838 §8): drop components without any, maybe fail."""
        self._remote_end = True
        seen = {c.component for c in self.remote_candidates}
        if self.components - seen:
            logger.info("components %s have no candidate pairs", self.components - seen)
            self.components = seen
        actions: list[Action] = []
        if self.state is CheckListState.RUNNING and not self._maybe_complete(now, actions):
            self._maybe_fail(now, actions)
        return actions

    def _find_remote(self, component: int, addr: tuple[str, int]) -> Candidate | None:
        for candidate in self.remote_candidates:
            if candidate.component == component and remote_address(candidate) == addr:
                return candidate
        return None

    def _pair(self, socket: Hashable, local: Candidate, remote: Candidate) -> CandidatePair | None:
        if not local.can_pair_with(remote):
            return None
        if local.type == "relay" and is_mdns_hostname(remote.host):
            # Relaying to an mDNS candidate would reveal its address to the TURN server
            # (draft-ietf-mmusic-mdns-ice-candidates §3.3.2).
            return None
        if any(p.local_socket == socket and p.remote_candidate is remote for p in self.pairs):
            return None
        pair = CandidatePair(socket, local, remote)
        self.pairs.append(pair)
        return pair

    def _sort(self) -> None:
        self.pairs.sort(key=self.priority, reverse=True)

    # -- running --------------------------------------------------------------------------

    def start(self, remote_username: str, now: float, *, remote_lite: bool = False) -> list[Action]:
        """Start checking (RFC 8445 §6.1.4): unfreeze the first pairs, answer early checks."""
        self.remote_username = remote_username
        self.remote_lite = remote_lite
        if remote_lite and not self.lite:
            # A full agent facing a lite one is controlling (RFC 8445 §6.1.1).
            self.controlling = True
        self.state = CheckListState.RUNNING
        self._sort()
        actions: list[Action] = []
        if self.lite:
            self._lite_deadline = now + self.lite_connect_timeout
        else:
            self._unfreeze_initial()
            self._next_check_at = now
        while self._early_checks:
            message, addr, socket = self._early_checks.popleft()
            actions += self.check_received(message, addr, socket, now)
        if not self._maybe_complete(now, actions):
            self._maybe_fail(now, actions)
        return actions

    def close(self) -> None:
        """Stop: no more actions, whatever arrives."""
        self._closed = True
        self._next_check_at = None
        self._transactions.clear()
        self._consent.clear()

    @property
    def done(self) -> bool:
        """Whether the check list has completed or failed."""
        return self.state in (CheckListState.COMPLETED, CheckListState.FAILED)

    def next_timeout(self) -> float | None:
        """When :meth:`handle_timeout` must next be called, or ``None`` if never."""
        if self._closed:
            return None
        times = [
            t
            for t in (self._next_check_at, self._lite_deadline if not self.done else None)
            if t is not None
        ]
        for consent in self._consent.values():
            times.append(min(consent.next_check, consent.last_response + self.consent_timeout))
        return min(times, default=None)

    def handle_timeout(self, now: float) -> list[Action]:
        """Run what is due at ``now``: the next check, nomination, failure, consent."""
        actions: list[Action] = []
        if self._closed:
            return actions
        if self._lite_deadline is not None and not self.done and now >= self._lite_deadline:
            logger.info("ICE-lite: no nomination within %s s", self.lite_connect_timeout)
            self._set_state(CheckListState.FAILED, actions)
        if self._next_check_at is not None and now >= self._next_check_at:
            self._pace(now, actions)
        self._run_consent(now, actions)
        return actions

    def _pace(self, now: float, actions: list[Action]) -> None:
        """One tick of the Ta timer: start a check while one can still matter."""
        self._next_check_at = None
        if self._completed_at is not None and (
            self.nomination is NominationMode.REGULAR
            or now - self._completed_at > self.upgrade_window
        ):
            return
        if self.state is CheckListState.FAILED:
            return
        pair = self._next_check()
        if pair is not None:
            self._start_check(pair, now, actions)
        elif self._completed_at is None:
            self._maybe_fail(now, actions)
            if self.done:
                return
        elif not any(t.kind is not RequestKind.CONSENT for t in self._transactions.values()):
            return
        self._maybe_nominate_regular(now, actions)
        self._next_check_at = now + self.check_interval

    def _next_check(self) -> CandidatePair | None:
        """The highest-priority Waiting pair, else Frozen one, that could still be selected."""
        for state in (PairState.WAITING, PairState.FROZEN):
            for pair in self.pairs:
                if pair.state is state and self._could_replace_selected(pair):
                    return pair
        return None

    def _could_replace_selected(self, pair: CandidatePair) -> bool:
        selected = self.selected.get(pair.component)
        return selected is None or self.priority(pair) > self.priority(selected)

    def _unfreeze_initial(self) -> None:
        """RFC 8445 §6.1.2.6: the first component's pairs of distinct foundations wait."""
        if not self.components:
            return
        first = min(self.components)
        seen: set[str] = set()
        for pair in self.pairs:
            foundation = pair.local_candidate.foundation
            if pair.component == first and foundation not in seen:
                seen.add(foundation)
                if pair.state is PairState.FROZEN:
                    pair.state = PairState.WAITING

    def _build_request(self, pair: CandidatePair, nominate: bool) -> stun.Message:
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        request.attributes["USERNAME"] = f"{self.remote_username}:{self.local_username}"
        request.attributes["PRIORITY"] = candidate_priority(pair.component, "prflx")
        if self.controlling:
            request.attributes["ICE-CONTROLLING"] = self.tie_breaker
            if nominate:
                request.attributes["USE-CANDIDATE"] = None
        else:
            request.attributes["ICE-CONTROLLED"] = self.tie_breaker
        return request

    def _send(
        self, pair: CandidatePair, kind: RequestKind, nominate: bool, now: float
    ) -> SendRequest:
        message = self._build_request(pair, nominate)
        self._transactions[message.transaction_id] = _Transaction(
            pair, kind, now, nominate, self.controlling
        )
        # As in libwebrtc, requestsSent counts consent checks too; consentRequestsSent only them.
        pair.requests_sent += 1
        if kind is RequestKind.CONSENT:
            pair.consent_requests_sent += 1
        return SendRequest(pair, message, kind, retransmit=kind is not RequestKind.CONSENT)

    def _start_check(self, pair: CandidatePair, now: float, actions: list[Action]) -> None:
        pair.state = PairState.IN_PROGRESS
        nominate = self.controlling and self.nomination is NominationMode.AGGRESSIVE
        actions.append(self._send(pair, RequestKind.CHECK, nominate, now))

    # -- outcomes of our requests ---------------------------------------------------------

    def response_received(
        self, transaction_id: bytes, addr: tuple[str, int], now: float
    ) -> list[Action]:
        """A success response to one of our requests, from ``addr`` (RFC 8445 §7.2.5)."""
        actions: list[Action] = []
        transaction = self._transactions.pop(transaction_id, None)
        if transaction is None or self._closed:
            return actions
        pair = transaction.pair
        pair.responses_received += 1
        pair.record_round_trip(now - transaction.sent_at)
        if transaction.kind is RequestKind.CONSENT:
            consent = self._consent.get(pair.component)
            if consent is not None and self.selected.get(pair.component) is pair:
                consent.last_response = now
            return actions
        if self.state is CheckListState.FAILED:
            return actions
        if addr != pair.remote_addr:
            # RFC 8445 §7.2.5.2.1: the response must come from where the request went.
            logger.info("check %s failed: response from %s", pair, addr)
            self._check_failed(pair, transaction, now, actions)
            return actions
        if transaction.nominate or pair.remote_nominated:
            pair.nominated = True
        pair.state = PairState.SUCCEEDED
        self._check_complete(pair, now, actions)
        return actions

    def request_failed(
        self, transaction_id: bytes, error_code: int | None, now: float
    ) -> list[Action]:
        """One of our requests timed out (``error_code`` None) or got an error response."""
        actions: list[Action] = []
        transaction = self._transactions.pop(transaction_id, None)
        if transaction is None or self._closed:
            return actions
        pair = transaction.pair
        if transaction.kind is RequestKind.CONSENT:
            return actions  # consent expires by time, in handle_timeout
        if self.state is CheckListState.FAILED:
            return actions
        if error_code == 487:
            # Role conflict (RFC 8445 §7.2.5.1): take the other role and check again.
            self._switch_role(not transaction.controlling)
            if transaction.kind is RequestKind.NOMINATION:
                self._nominating.discard(pair.component)
            elif not self.lite:
                self._start_check(pair, now, actions)
            return actions
        logger.info("check %s failed: %s", pair, error_code or "timeout")
        self._check_failed(pair, transaction, now, actions)
        return actions

    def _check_failed(
        self, pair: CandidatePair, transaction: _Transaction, now: float, actions: list[Action]
    ) -> None:
        if transaction.kind is RequestKind.NOMINATION:
            self._nominating.discard(pair.component)
        pair.state = PairState.FAILED
        self._check_complete(pair, now, actions)

    def _check_complete(self, pair: CandidatePair, now: float, actions: list[Action]) -> None:
        """Account a finished check: select a nominated pair, unfreeze, complete or fail."""
        if pair.state is PairState.SUCCEEDED:
            if pair.nominated:
                self._select(pair, now, actions)
            if self._maybe_complete(now, actions):
                return
            # RFC 8445 §7.2.5.3.3: unfreeze the pairs sharing the foundation.
            for other in self.pairs:
                if (
                    other.local_candidate.foundation == pair.local_candidate.foundation
                    and other.state is PairState.FROZEN
                ):
                    other.state = PairState.WAITING
            self._maybe_nominate_regular(now, actions)
        self._maybe_fail(now, actions)

    # -- nomination and selection ---------------------------------------------------------

    def _maybe_nominate_regular(
        self, now: float, actions: list[Action], all_checks_done: bool = False
    ) -> None:
        """Regular nomination: nominate the best valid pair once better ones cannot win."""
        if not self.controlling or self.nomination is not NominationMode.REGULAR:
            return
        for component in sorted(self.components):
            if component in self.selected or component in self._nominating:
                continue
            pairs = [p for p in self.pairs if p.component == component]
            best = next((p for p in pairs if p.state is PairState.SUCCEEDED), None)
            if best is None:
                continue
            first_valid = self._first_valid_at.setdefault(component, now)
            better_pending = any(
                p.state in (PairState.FROZEN, PairState.WAITING, PairState.IN_PROGRESS)
                for p in pairs[: pairs.index(best)]
            )
            waited = now - first_valid >= self.regular_nomination_timeout
            if better_pending and not waited and not all_checks_done:
                continue
            logger.info("nominating %s", best)
            self._nominating.add(component)
            actions.append(self._send(best, RequestKind.NOMINATION, True, now))

    def _select(self, pair: CandidatePair, now: float, actions: list[Action]) -> None:
        """Select a nominated pair unless one of higher priority is already selected."""
        current = self.selected.get(pair.component)
        if current is pair:
            return
        if current is not None and self.priority(current) >= self.priority(pair):
            logger.info("keeping %s: nominated %s has lower priority", current, pair)
            return
        self.selected[pair.component] = pair
        self.selected_pair_changes += 1
        logger.info("selected %s", pair)
        if pair.component in self._consent:
            self._consent[pair.component].last_response = now
        # RFC 8445 §8.1.2: pairs that can no longer be selected are not checked.
        priority = self.priority(pair)
        self.pairs = [
            p
            for p in self.pairs
            if not (
                p.component == pair.component
                and p.state in (PairState.WAITING, PairState.FROZEN)
                and (self.nomination is NominationMode.REGULAR or self.priority(p) < priority)
            )
        ]
        actions.append(PairSelected(pair))

    def force_select(self, pair: CandidatePair) -> None:
        """Select ``pair`` without checks (a peer without ICE)."""
        if pair not in self.pairs:
            self.pairs.append(pair)
        self.selected[pair.component] = pair

    def _set_state(self, state: CheckListState, actions: list[Action]) -> None:
        self.state = state
        self._next_check_at = None if state is CheckListState.FAILED else self._next_check_at
        logger.info("ICE %s", state.value)
        actions.append(StateChanged(state))

    def _maybe_complete(self, now: float, actions: list[Action]) -> bool:
        """Complete once every component has a selected pair (RFC 8445 §8.1.2)."""
        if not self.selected or not self.components <= set(self.selected):
            return False
        if self.state is CheckListState.RUNNING:
            self._completed_at = now
            self._set_state(CheckListState.COMPLETED, actions)
            if not self.lite:
                # Consent freshness (RFC 7675) on every selected pair; a lite agent only
                # answers the full agent's consent checks.
                for component in self.selected:
                    self._consent[component] = _Consent(now, now + self._consent_delay())
        return True

    def _maybe_fail(self, now: float, actions: list[Action]) -> None:
        """Fail once no pair can succeed any more (RFC 8445 §7.2.5.3.4)."""
        if self.state is not CheckListState.RUNNING or self._remote_end is False:
            return
        if self._nominating - set(self.selected):
            return
        if any(p.state not in (PairState.SUCCEEDED, PairState.FAILED) for p in self.pairs):
            return
        succeeded = any(p.state is PairState.SUCCEEDED for p in self.pairs)
        if self.controlling and self.nomination is NominationMode.REGULAR and succeeded:
            self._maybe_nominate_regular(now, actions, all_checks_done=True)
            return
        if not self.controlling and succeeded:
            return  # the controlling agent may still nominate one
        self._set_state(CheckListState.FAILED, actions)

    # -- incoming checks ------------------------------------------------------------------

    def check_received(
        self, message: stun.Message, addr: tuple[str, int], socket: Hashable, now: float
    ) -> list[Action]:
        """An authenticated Binding request on ``socket`` from ``addr`` (RFC 8445 §7.3.1)."""
        actions: list[Action] = []
        if self._closed:
            return actions
        if self.state is CheckListState.NEW:
            self._early_checks.append((message, addr, socket))
            return actions
        local = next((c for s, c in self._locals if s == socket), None)
        if local is None:
            logger.info("dropped check from %s on an unknown socket", addr)
            return actions
        remote = self._remote_of_check(message, addr, local.component)
        if remote is None:
            return actions
        pair = next(
            (p for p in self.pairs if p.local_socket == socket and p.remote_candidate is remote),
            None,
        )
        if pair is None:
            pair = CandidatePair(socket, local, remote, state=PairState.WAITING)
            self.pairs.append(pair)
            self._sort()
        pair.requests_received += 1
        pair.responses_sent += 1
        use_candidate = "USE-CANDIDATE" in message.attributes and not self.controlling
        if self.state is CheckListState.FAILED:
            return actions

        if self.lite:
            # RFC 8445 §7.3.1.5 for a lite agent: a nominating check selects the pair.
            pair.state = PairState.SUCCEEDED
            if use_candidate:
                pair.remote_nominated = pair.nominated = True
                self._check_complete(pair, now, actions)
            return actions

        # Triggered check (RFC 8445 §7.3.1.4).
        if pair.state in (PairState.FROZEN, PairState.FAILED):
            pair.state = PairState.WAITING
        if pair.state is PairState.WAITING:
            self._start_check(pair, now, actions)
        if use_candidate:
            pair.remote_nominated = True
            if pair.state is PairState.SUCCEEDED:
                pair.nominated = True
                self._check_complete(pair, now, actions)
        return actions

    def _remote_of_check(
        self, message: stun.Message, addr: tuple[str, int], component: int
    ) -> Candidate | None:
        """The remote candidate a check came from, learnt as peer-reflexive if new."""
        remote = self._find_remote(component, addr)
        if remote is not None:
            return remote
        priority = message.attributes.get("PRIORITY")
        if not isinstance(priority, int):
            logger.info("dropped check from %s without PRIORITY", addr)
            return None
        # Learning peer-reflexive candidates (RFC 8445 §7.3.1.3).
        remote = Candidate(
            foundation=random_string(10),
            component=component,
            transport="udp",
            priority=priority,
            host=addr[0],
            port=addr[1],
            type="prflx",
        )
        self.remote_candidates.append(remote)
        logger.info("discovered peer-reflexive candidate %s", remote)
        return remote

    # -- consent freshness (RFC 7675) -----------------------------------------------------

    def _consent_delay(self) -> float:
        # RFC 7675 §5.1: randomised between 0.8 and 1.2 times the interval.
        return self.consent_interval * (0.8 + 0.4 * self._random())

    def _run_consent(self, now: float, actions: list[Action]) -> None:
        for component, consent in list(self._consent.items()):
            pair = self.selected.get(component)
            if pair is None:
                del self._consent[component]
                continue
            # The same sum as in next_timeout: a difference may round below the timeout.
            if now >= consent.last_response + self.consent_timeout:
                logger.info("consent to send on %s expired", pair)
                del self._consent[component]
                actions.append(ConsentExpired(pair))
                continue
            if now >= consent.next_check:
                consent.next_check = now + self._consent_delay()
                actions.append(self._send(pair, RequestKind.CONSENT, False, now))
