"""The sans-I/O ICE engine without sockets: nomination, re-selection, ICE-lite, failure, consent."""

from __future__ import annotations

import os
import random
from typing import Any

import pytest
from aioice import Candidate, stun
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.ice_sim import Agent, Network, host_candidate, make_agent
from webrtc_ext.config import NominationMode
from webrtc_ext.ice_engine import (
    Action,
    CandidatePair,
    CheckListState,
    ConsentExpired,
    IceCheckList,
    PairSelected,
    PairState,
    RequestKind,
    SendRequest,
    StateChanged,
)

AGGRESSIVE, REGULAR = NominationMode.AGGRESSIVE, NominationMode.REGULAR
LOCAL = ("10.0.0.1", 5000)


def engine(
    *,
    controlling: bool = True,
    lite: bool = False,
    nomination: NominationMode = AGGRESSIVE,
    tie_breaker: int = 1,
) -> IceCheckList:
    ice = IceCheckList(
        controlling=controlling,
        local_username="loc",
        tie_breaker=tie_breaker,
        lite=lite,
        nomination=nomination,
        random_fraction=lambda: 0.5,  # consent checks exactly every 5 s
    )
    ice.add_local_candidate(LOCAL, host_candidate(*LOCAL, 0))
    return ice


def remote(host: str, index: int) -> Candidate:
    return host_candidate(host, 6000 + index, index)


def sends(actions: list[Action]) -> list[SendRequest]:
    return [a for a in actions if isinstance(a, SendRequest)]


def selected(actions: list[Action]) -> list[CandidatePair]:
    return [a.pair for a in actions if isinstance(a, PairSelected)]


def states(actions: list[Action]) -> list[CheckListState]:
    return [a.state for a in actions if isinstance(a, StateChanged)]


def tick(ice: IceCheckList, until: float) -> list[Action]:
    """Run every timeout due up to ``until``."""
    actions: list[Action] = []
    for _ in range(100_000):
        when = ice.next_timeout()
        if when is None or when > until:
            return actions
        actions += ice.handle_timeout(when)
    raise AssertionError(f"the engine asks for a timeout at {ice.next_timeout()} s for ever")


def started(ice: IceCheckList, *remotes: Candidate) -> list[Action]:
    for candidate in remotes:
        ice.add_remote_candidate(candidate)
    actions = ice.end_of_candidates(0.0)
    return actions + ice.start("rem", 0.0)


def check(use_candidate: bool = False, controlling: bool = True, tie: int = 99) -> stun.Message:
    """An incoming Binding request, as the remote agent sends it."""
    message = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    message.attributes["USERNAME"] = "loc:rem"
    message.attributes["PRIORITY"] = 1853824767
    message.attributes["ICE-CONTROLLING" if controlling else "ICE-CONTROLLED"] = tie
    if use_candidate:
        message.attributes["USE-CANDIDATE"] = None
    return message


# -- controlling: aggressive and regular -------------------------------------------------------


def test_aggressive_nominates_with_the_first_check() -> None:
    ice = engine(nomination=AGGRESSIVE)
    actions = started(ice, remote("10.0.0.2", 0)) + tick(ice, 0.0)
    (request,) = sends(actions)
    assert "USE-CANDIDATE" in request.message.attributes
    assert "ICE-CONTROLLING" in request.message.attributes
    actions = ice.response_received(request.message.transaction_id, request.pair.remote_addr, 0.05)
    assert selected(actions) == [request.pair]
    assert states(actions) == [CheckListState.COMPLETED]
    assert request.pair.requests_sent == 1
    assert request.pair.current_round_trip_time == pytest.approx(0.05)


def test_regular_checks_then_nominates_with_a_second_request() -> None:
    ice = engine(nomination=REGULAR)
    actions = started(ice, remote("10.0.0.2", 0)) + tick(ice, 0.0)
    (first,) = sends(actions)
    assert "USE-CANDIDATE" not in first.message.attributes
    actions = ice.response_received(first.message.transaction_id, first.pair.remote_addr, 0.01)
    (nomination,) = sends(actions)
    assert nomination.kind is RequestKind.NOMINATION
    assert "USE-CANDIDATE" in nomination.message.attributes
    assert not selected(actions) and not states(actions)
    actions = ice.response_received(nomination.message.transaction_id, first.pair.remote_addr, 0.02)
    assert selected(actions) == [first.pair]
    assert states(actions) == [CheckListState.COMPLETED]
    assert first.pair.requests_sent == 2


def test_regular_waits_for_a_better_pair_until_its_timeout() -> None:
    ice = engine(nomination=REGULAR)
    started(ice, remote("10.0.0.2", 0), remote("10.0.0.3", 1))
    best, worse = ice.pairs
    requests = sends(tick(ice, 0.02))
    assert [r.pair for r in requests] == [best, worse]
    _, low = requests
    actions = ice.response_received(low.message.transaction_id, worse.remote_addr, 0.03)
    assert not sends(actions), "a better pair is still being checked"
    assert not [r for r in sends(tick(ice, 0.5)) if r.kind is RequestKind.NOMINATION]
    nominations = [r for r in sends(tick(ice, 0.56)) if r.kind is RequestKind.NOMINATION]
    assert [r.pair for r in nominations] == [worse]


def test_regular_nominates_the_better_pair_when_it_answers_in_time() -> None:
    ice = engine(nomination=REGULAR)
    started(ice, remote("10.0.0.2", 0), remote("10.0.0.3", 1))
    best, worse = ice.pairs
    high, low = sends(tick(ice, 0.02))
    ice.response_received(low.message.transaction_id, worse.remote_addr, 0.03)
    actions = ice.response_received(high.message.transaction_id, best.remote_addr, 0.1)
    (nomination,) = sends(actions)
    assert nomination.pair is best and nomination.kind is RequestKind.NOMINATION


# -- re-selection of a better nominated pair ---------------------------------------------------


def test_aggressive_reselects_a_better_pair_that_answers_later_and_never_a_worse_one() -> None:
    ice = engine(nomination=AGGRESSIVE)
    started(ice, remote("10.0.0.2", 0), remote("10.0.0.3", 1), remote("10.0.0.4", 2))
    best, middle, worst = ice.pairs
    requests = {r.pair: r for r in sends(tick(ice, 0.04))}
    assert set(requests) == {best, middle, worst}

    def answer(pair: CandidatePair, now: float) -> list[Action]:
        return ice.response_received(requests[pair].message.transaction_id, pair.remote_addr, now)

    first = answer(middle, 0.05)
    assert selected(first) == [middle] and states(first) == [CheckListState.COMPLETED]
    assert selected(answer(best, 0.06)) == [best]
    assert selected(answer(worst, 0.07)) == [], "a lower-priority pair never replaces a better one"
    assert ice.selected[1] is best
    assert ice.selected_pair_changes == 2


def test_controlled_reselects_when_a_better_pair_is_nominated() -> None:
    ice = engine(controlling=False)
    started(ice, remote("10.0.0.2", 0), remote("10.0.0.3", 1))
    best, worse = ice.pairs

    def nominate(pair: CandidatePair, now: float) -> list[Action]:
        actions = ice.check_received(check(use_candidate=True), pair.remote_addr, LOCAL, now)
        (triggered,) = [r for r in sends(actions) if r.pair is pair]
        return ice.response_received(triggered.message.transaction_id, pair.remote_addr, now)

    assert selected(nominate(worse, 0.01)) == [worse]
    assert ice.state is CheckListState.COMPLETED
    assert selected(nominate(best, 0.02)) == [best]
    # The better pair stays: a nomination of the worse one again changes nothing.
    actions = ice.check_received(check(use_candidate=True), worse.remote_addr, LOCAL, 0.03)
    assert selected(actions) == [] and ice.selected[1] is best


# -- ICE-lite, both sides ----------------------------------------------------------------------


def test_a_lite_agent_sends_no_check_and_selects_what_it_is_nominated() -> None:
    ice = engine(controlling=True, lite=True)
    assert not ice.controlling, "an ICE-lite agent is never controlling"
    actions = started(ice, remote("10.0.0.2", 0)) + tick(ice, 10.0)
    assert not sends(actions)
    (pair,) = ice.pairs
    ice.check_received(check(), pair.remote_addr, LOCAL, 10.5)
    assert pair.state is PairState.SUCCEEDED and ice.state is CheckListState.RUNNING
    actions = ice.check_received(check(use_candidate=True), pair.remote_addr, LOCAL, 11.0)
    assert selected(actions) == [pair] and states(actions) == [CheckListState.COMPLETED]
    assert not sends(actions + tick(ice, 100.0)), "no consent checks from a lite agent either"


def test_a_lite_agent_refuses_the_controlled_role_and_fails_without_nomination() -> None:
    ice = engine(controlling=False, lite=True)
    assert ice.role_conflict(check(controlling=False, tie=0)), "487: the full agent must control"
    started(ice, remote("10.0.0.2", 0))
    assert states(tick(ice, 29.9)) == []
    assert states(tick(ice, 30.0)) == [CheckListState.FAILED]


def test_a_full_agent_facing_a_lite_one_takes_control() -> None:
    ice = engine(controlling=False)
    ice.add_remote_candidate(remote("10.0.0.2", 0))
    ice.start("rem", 0.0, remote_lite=True)
    assert ice.controlling
    (request,) = sends(tick(ice, 0.0))
    assert "ICE-CONTROLLING" in request.message.attributes


# -- failure -----------------------------------------------------------------------------------


def test_fails_when_every_check_fails_but_only_after_end_of_candidates() -> None:
    ice = engine()
    ice.add_remote_candidate(remote("10.0.0.2", 0))
    ice.add_remote_candidate(remote("10.0.0.3", 1))
    ice.start("rem", 0.0)
    requests = sends(tick(ice, 0.04))
    assert len(requests) == 2
    actions: list[Action] = []
    for request in requests:
        actions += ice.request_failed(request.message.transaction_id, None, 8.0)
    actions += tick(ice, 9.0)
    assert states(actions) == [], "more candidates may be trickled"
    assert states(ice.end_of_candidates(9.5)) == [CheckListState.FAILED]
    assert ice.next_timeout() is None or not sends(tick(ice, 20.0))


def test_fails_at_once_without_any_pair() -> None:
    ice = engine()
    assert states(started(ice)) == [CheckListState.FAILED]


def test_a_response_from_another_address_fails_the_check() -> None:
    ice = engine()
    started(ice, remote("10.0.0.2", 0))
    (request,) = sends(tick(ice, 0.0))
    actions = ice.response_received(request.message.transaction_id, ("10.0.0.9", 1), 0.01)
    assert request.pair.state is PairState.FAILED
    assert states(actions) == [CheckListState.FAILED]


def test_a_role_conflict_answer_switches_role_and_checks_again() -> None:
    ice = engine(controlling=True)
    started(ice, remote("10.0.0.2", 0))
    (request,) = sends(tick(ice, 0.0))
    (again,) = sends(ice.request_failed(request.message.transaction_id, 487, 0.01))
    assert not ice.controlling
    assert "ICE-CONTROLLED" in again.message.attributes and again.pair is request.pair


# -- incoming checks ---------------------------------------------------------------------------


def test_checks_before_start_are_answered_at_start_and_prflx_candidates_learned() -> None:
    ice = engine(controlling=False)
    ice.add_remote_candidate(remote("10.0.0.2", 0))
    ice.end_of_candidates(0.0)
    assert ice.check_received(check(), ("10.0.0.7", 7000), LOCAL, 0.0) == []
    actions = ice.start("rem", 0.1)
    triggered = [r.pair.remote_addr for r in sends(actions)]
    assert ("10.0.0.7", 7000) in triggered
    assert [c.type for c in ice.remote_candidates] == ["host", "prflx"]


def test_a_check_without_priority_from_an_unknown_address_is_dropped() -> None:
    ice = engine(controlling=False)
    started(ice, remote("10.0.0.2", 0))
    message = check()
    del message.attributes["PRIORITY"]
    assert ice.check_received(message, ("10.0.0.7", 7000), LOCAL, 0.1) == []
    assert len(ice.remote_candidates) == 1


# -- consent freshness (RFC 7675) --------------------------------------------------------------


def completed_engine() -> tuple[IceCheckList, CandidatePair]:
    ice = engine()
    started(ice, remote("10.0.0.2", 0))
    (request,) = sends(tick(ice, 0.0))
    ice.response_received(request.message.transaction_id, request.pair.remote_addr, 0.0)
    assert ice.state is CheckListState.COMPLETED
    return ice, request.pair


def test_consent_is_checked_every_interval_and_kept_by_responses() -> None:
    ice, pair = completed_engine()
    for second in (5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0):
        actions = tick(ice, second)
        (request,) = sends(actions)
        assert request.kind is RequestKind.CONSENT and not request.retransmit
        assert "USE-CANDIDATE" not in request.message.attributes
        ice.response_received(request.message.transaction_id, pair.remote_addr, second + 0.01)
    assert pair.consent_requests_sent == 7
    assert not any(isinstance(a, ConsentExpired) for a in tick(ice, 40.0))


def test_consent_expires_30_seconds_after_the_last_response() -> None:
    ice, pair = completed_engine()
    (request,) = sends(tick(ice, 5.0))
    ice.response_received(request.message.transaction_id, pair.remote_addr, 5.0)
    actions = tick(ice, 34.9)
    assert len(sends(actions)) == 5
    for lost in sends(actions):
        ice.request_failed(lost.message.transaction_id, None, 34.9)
    assert not any(isinstance(a, ConsentExpired) for a in actions)
    expired = [a for a in tick(ice, 35.0) if isinstance(a, ConsentExpired)]
    assert [a.pair for a in expired] == [pair]
    assert tick(ice, 100.0) == [], "expired once, then silent"


def test_consent_expires_at_its_deadline_whatever_the_rounding() -> None:
    ice, pair = completed_engine()
    (request,) = sends(tick(ice, 5.0))
    last = 5.695471117765822  # 5.69... + 30 - 5.69... rounds below 30
    ice.response_received(request.message.transaction_id, pair.remote_addr, last)
    for lost in sends(tick(ice, last + 29.0)):
        ice.request_failed(lost.message.transaction_id, None, last + 29.0)
    expired = [a for a in tick(ice, last + 30.0) if isinstance(a, ConsentExpired)]
    assert [a.pair for a in expired] == [pair]


def test_nothing_happens_after_close() -> None:
    ice, pair = completed_engine()
    (request,) = sends(tick(ice, 5.0))
    ice.close()
    assert ice.next_timeout() is None
    assert ice.response_received(request.message.transaction_id, pair.remote_addr, 5.1) == []
    assert ice.check_received(check(), pair.remote_addr, LOCAL, 5.2) == []


# -- two engines on a simulated network --------------------------------------------------------


def pair_key(pair: CandidatePair) -> frozenset[tuple[str, int]]:
    return frozenset((pair.local_addr, pair.remote_addr))


def watch(net: Network) -> None:
    """Assert the invariants after every step of the simulation."""

    def invariants() -> None:
        for agent in net.agents:
            ice = agent.engine
            for pair in ice.selected.values():
                assert pair.state is PairState.SUCCEEDED, "selected pairs have succeeded"
                assert pair.nominated
            for pair in ice.pairs:
                if pair.nominated:
                    assert pair.state is PairState.SUCCEEDED, "nominated only from succeeded"
                    chosen = ice.selected.get(pair.component)
                    assert chosen is not None, "a nominated pair is selected or beaten"
                    assert ice.priority(chosen) >= ice.priority(pair), "the best nominated wins"
            priorities = [priority for _, _, priority in agent.selections]
            assert priorities == sorted(set(priorities)), "never a lower priority after a higher"
            assert len(agent.states) <= 1, "the check list ends once"

    net.checks.append(invariants)


def simulate(a: Agent, b: Agent, until: float = 60.0, **network: object) -> Network:
    net = Network(a, b, **network)  # type: ignore[arg-type]
    watch(net)
    net.signal()
    net.run(until)
    return net


@pytest.mark.parametrize("mode", [AGGRESSIVE, REGULAR], ids=lambda m: m.value)
def test_two_full_agents_agree_on_the_best_pair(mode: NominationMode) -> None:
    a = make_agent("aaaa", ["10.0.0.1", "10.0.1.1"], controlling=True, nomination=mode)
    b = make_agent("bbbb", ["10.0.0.2", "10.0.1.2"], controlling=False, tie_breaker=0)
    simulate(a, b)
    assert a.engine.state is b.engine.state is CheckListState.COMPLETED
    assert pair_key(a.engine.selected[1]) == pair_key(b.engine.selected[1])
    assert pair_key(a.engine.selected[1]) == {("10.0.0.1", 5000), ("10.0.0.2", 5000)}


@pytest.mark.parametrize("mode", [AGGRESSIVE, REGULAR], ids=lambda m: m.value)
@pytest.mark.parametrize("lite_side", ["offerer", "answerer"])
def test_full_and_lite_agents_connect(mode: NominationMode, lite_side: str) -> None:
    a = make_agent(
        "aaaa", ["10.0.0.1"], controlling=True, lite=lite_side == "offerer", nomination=mode
    )
    b = make_agent(
        "bbbb", ["10.0.0.2"], controlling=False, lite=lite_side == "answerer", nomination=mode
    )
    simulate(a, b)
    lite, full = (a, b) if lite_side == "offerer" else (b, a)
    assert full.engine.controlling and not lite.engine.controlling
    assert lite.requests == []
    assert lite.engine.state is full.engine.state is CheckListState.COMPLETED
    assert pair_key(lite.engine.selected[1]) == pair_key(full.engine.selected[1])


def test_unreachable_peers_both_fail() -> None:
    a = make_agent("aaaa", ["10.0.0.1"], controlling=True)
    b = make_agent("bbbb", ["10.0.0.2"], controlling=False, tie_breaker=0)
    simulate(a, b, reachable=lambda src, dst: False)
    assert a.states == b.states == [CheckListState.FAILED]


def test_both_controlling_resolve_the_conflict() -> None:
    a = make_agent("aaaa", ["10.0.0.1"], controlling=True, tie_breaker=10)
    b = make_agent("bbbb", ["10.0.0.2"], controlling=True, tie_breaker=5)
    simulate(a, b)
    assert a.engine.controlling and not b.engine.controlling
    assert a.engine.state is b.engine.state is CheckListState.COMPLETED


def test_consent_expires_when_the_peer_stops_answering() -> None:
    a = make_agent("aaaa", ["10.0.0.1"], controlling=True)
    b = make_agent("bbbb", ["10.0.0.2"], controlling=False, tie_breaker=0)
    gone = {"at": 1e9}
    net = Network(a, b, reachable=lambda src, dst: net.now < gone["at"])
    net.signal()
    net.run(20.0)
    assert a.consent_expired == [] and b.consent_expired == []
    gone["at"] = 17.0  # the last consent response came at 15.02 s
    net.run(45.0)
    assert a.consent_expired == []
    net.run(45.1)
    assert [p.remote_addr for p in a.consent_expired] == [("10.0.0.2", 5000)]


#: Hypothesis examples of the random-network test (ICE_EXAMPLES=3000 for a longer hunt).
EXAMPLES = int(os.environ.get("ICE_EXAMPLES", "150"))
A_HOSTS = ["10.0.0.1", "10.0.1.1", "10.0.2.1"]
B_HOSTS = ["10.0.0.2", "10.0.1.2", "10.0.2.2"]


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    hosts = st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True)
    return {
        "a_hosts": [A_HOSTS[i] for i in draw(hosts)],
        "b_hosts": [B_HOSTS[i] for i in draw(hosts)],
        "a_mode": draw(st.sampled_from([AGGRESSIVE, REGULAR])),
        "b_mode": draw(st.sampled_from([AGGRESSIVE, REGULAR])),
        "lite": draw(st.sampled_from([None, "a", "b"])),
        "blocked": draw(st.sets(st.tuples(st.integers(0, 2), st.integers(0, 2)), max_size=9)),
        "seed": draw(st.integers(0, 2**32 - 1)),
        "loss": draw(st.sampled_from([0.0, 0.0, 0.1, 0.3])),
    }


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_random_networks_keep_the_invariants(scenario: dict[str, Any]) -> None:
    """Random paths, delays, response orders and losses, in every role and mode."""
    rng = random.Random(scenario["seed"])
    a = make_agent(
        "aaaa",
        scenario["a_hosts"],
        controlling=True,
        lite=scenario["lite"] == "a",
        nomination=scenario["a_mode"],
        tie_breaker=2,
    )
    b = make_agent(
        "bbbb",
        scenario["b_hosts"],
        controlling=False,
        lite=scenario["lite"] == "b",
        nomination=scenario["b_mode"],
        tie_breaker=1,
    )

    def reachable(src: tuple[str, int], dst: tuple[str, int]) -> bool:
        ends = {src[0], dst[0]}
        a_end = A_HOSTS.index(next(h for h in ends if h in A_HOSTS))
        b_end = B_HOSTS.index(next(h for h in ends if h in B_HOSTS))
        return (a_end, b_end) not in scenario["blocked"]

    loss = scenario["loss"]
    simulate(
        a,
        b,
        reachable=reachable,
        delay=lambda: rng.uniform(0.001, 0.3),
        lost=lambda: rng.random() < loss,
    )
    (controlling,) = [agent for agent in (a, b) if agent.engine.controlling]
    assert controlling.engine.done, "the controlling agent ends completed or failed"
    for agent in (a, b):
        if agent.engine.lite:
            assert agent.engine.done, "a lite agent ends completed or failed (30 s at most)"
    for agent in (a, b):
        if agent.engine.state is CheckListState.COMPLETED:
            assert agent.engine.selected
    if loss == 0.0:
        # Without losses both agents end alike, on the same pair.
        assert a.engine.state is b.engine.state
        if a.engine.state is CheckListState.COMPLETED:
            assert pair_key(a.engine.selected[1]) == pair_key(b.engine.selected[1])
