"""The call's sans-I/O state machine: the table, its errors, and invariants under random events."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay_service.callstate import (
    HELD_BY_AGENT,
    Action,
    AgentAnswered,
    AgentHungUp,
    AssistantAnswered,
    AssistantFailed,
    AssistantLost,
    AssistantTransferred,
    CallMachine,
    CallState,
    CloseCall,
    Event,
    Fault,
    HandBack,
    Hold,
    IllegalTransition,
    PreAccepted,
    Resume,
    SendDtmf,
    SendKeys,
    SendToWhatsApp,
    Source,
    StorageFailed,
    SwitchSource,
    TransferToAgent,
    WhatsAppAnswered,
    WhatsAppEnded,
    transition,
)

AGENTS = ("alice", "bob")

events: st.SearchStrategy[Event] = st.one_of(
    st.builds(PreAccepted, st.booleans(), st.booleans()),
    st.just(WhatsAppAnswered()),
    st.just(AssistantAnswered()),
    st.builds(AssistantFailed, st.just("no key")),
    st.builds(AssistantTransferred, st.just("asked for a human")),
    st.builds(AssistantLost, st.just("dropped")),
    st.builds(AgentAnswered, st.sampled_from(AGENTS)),
    st.builds(HandBack, st.sampled_from(AGENTS), st.booleans()),
    st.builds(AgentHungUp, st.sampled_from(AGENTS), st.just("hung up")),
    st.builds(StorageFailed, st.just("read-only database")),
    st.builds(Hold, st.sampled_from(AGENTS)),
    st.builds(Resume, st.sampled_from(AGENTS)),
    st.builds(TransferToAgent, st.sampled_from(AGENTS), st.sampled_from(AGENTS)),
    st.builds(SendKeys, st.sampled_from(AGENTS), st.sampled_from(["1", "12#", "x", ""])),
    st.builds(
        Fault,
        st.sampled_from(["media", "ring_timeout", "graph", "signalling"]),
        st.just("fault"),
    ),
)
"""Every event except the two that end a call from outside (tested at the end of each run)."""


@dataclass
class World:
    """What the outside world saw of one call: the Graph API requests and the source switches."""

    machine: CallMachine
    outbound: bool = False
    accepts: int = 0
    told_ended: int = 0
    heard: Source = Source.SILENCE
    closed: int = 0
    log: list[Action] = field(default_factory=list)

    def feed(self, event: Event) -> bool:
        before = self.machine
        try:
            self.machine, actions = transition(self.machine, event)
        except IllegalTransition as exc:
            assert self.machine is before  # nothing changed
            assert exc.state is before.state and exc.event is event
            if before.active:  # the error names the event and the state
                assert type(event).__name__ in str(exc) and str(before.state) in str(exc)
            return False
        if isinstance(event, WhatsAppEnded):
            self.told_ended += 1  # WhatsApp told us: it knows
        for action in actions:
            self.log.append(action)
            if isinstance(action, SendToWhatsApp):
                if action.action == "accept":
                    self.accepts += 1
                else:
                    self.told_ended += 1
            elif isinstance(action, SwitchSource):
                self.heard = action.source
            elif isinstance(action, CloseCall):
                self.closed += 1
        return True

    def check(self) -> None:
        m = self.machine
        assert self.accepts <= 1, "accept sent twice"
        assert self.told_ended <= 1, "WhatsApp told of the end twice"
        if m.state is CallState.ENDED:
            assert self.told_ended == 1 and self.closed == 1 and m.agent is None
            return
        assert self.told_ended == 0 and self.closed == 0
        # Who the caller hears is the one source the actions switched to, and it is the holder.
        assert self.heard is m.source or (m.state is CallState.DIALING and m.source is Source.AGENT)
        if m.state in HELD_BY_AGENT:
            held = m.state is CallState.HELD
            assert m.agent is not None and m.source is (Source.HOLD if held else Source.AGENT)
        else:
            assert m.agent is None
        if m.transfer_to is not None:  # waits for that agent only, with hold music
            assert m.state is CallState.WAITING and m.source is Source.HOLD
        if m.state is CallState.ASSISTANT:
            assert m.source is Source.ASSISTANT
        if m.state in (CallState.WAITING, CallState.PRERECORDED):
            assert m.source in (Source.SILENCE, Source.GREETING, Source.HOLD)
        if m.state not in (CallState.RINGING, CallState.DIALING):  # past the ring phase
            assert m.accepted
        if m.accepted and not self.outbound:
            assert self.accepts == 1  # accepted at WhatsApp before anyone talks


def new_world(outbound: bool) -> World:
    machine = CallMachine.outbound("alice") if outbound else CallMachine.incoming()
    return World(machine, outbound=outbound, heard=machine.source)


@settings(max_examples=400, deadline=None)
@given(
    outbound=st.booleans(),
    sequence=st.lists(events, max_size=25),
    ending=st.sampled_from(["terminate", "shutdown"]),
)
def test_random_event_sequences_keep_the_invariants(
    outbound: bool, sequence: list[Event], ending: str
) -> None:
    world = new_world(outbound)
    world.check()
    for event in sequence:
        world.feed(event)
        world.check()
    final: Event = (
        WhatsAppEnded("whatsapp: COMPLETED")
        if ending == "terminate"
        else Fault("shutdown", "service shutting down")
    )
    was_active = world.machine.active
    assert world.feed(final) == was_active  # any live call can always be ended
    assert world.machine.state is CallState.ENDED
    world.check()
    assert world.told_ended == 1  # told exactly once, however it ended
    for event in sequence:  # an ended call stays ended and says so
        with pytest.raises(IllegalTransition, match="ended"):
            transition(world.machine, event)


def test_the_whole_life_of_an_assisted_call() -> None:
    world = new_world(outbound=False)
    for event in (
        PreAccepted(greeting=True, assistant=True),
        AssistantAnswered(),
        AssistantTransferred("wants a human"),
        AgentAnswered("alice"),
        HandBack("alice", assistant_available=True),
        AssistantAnswered(),
        AgentAnswered("bob"),
        AgentHungUp("bob", "hung up by bob"),
    ):
        assert world.feed(event), event
        world.check()
    states = [a for a in world.log if isinstance(a, SwitchSource)]
    assert [s.source for s in states] == [
        Source.GREETING,
        Source.ASSISTANT,
        Source.HOLD,
        Source.AGENT,
        Source.SILENCE,
        Source.ASSISTANT,
        Source.AGENT,
    ]
    assert world.accepts == 1
    assert [a for a in world.log if isinstance(a, SendToWhatsApp)][-1].action == "terminate"


def test_a_call_nobody_answered_is_rejected_not_terminated() -> None:
    machine, actions = transition(CallMachine.incoming(), Fault("ring_timeout", "no agent"))
    assert machine.state is CallState.ENDED
    assert actions[0] == SendToWhatsApp("reject")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (AgentHungUp("bob", "hung up"), "only the agent holding a call can hang it up"),
        (HandBack("alice", assistant_available=False), "the assistant is not enabled"),
        (AgentAnswered("alice"), "you already hold this call"),
        (AgentAnswered("bob"), "already answered by alice"),
        (WhatsAppAnswered(), "WhatsAppAnswered is not allowed while the call is human"),
    ],
)
def test_illegal_events_name_the_rule_and_change_nothing(event: Event, message: str) -> None:
    held, _ = transition(CallMachine.incoming(), AgentAnswered("alice"))
    with pytest.raises(IllegalTransition, match=message) as info:
        transition(held, event)
    assert info.value.state is CallState.HUMAN and info.value.event is event
    assert held.state is CallState.HUMAN and held.agent == "alice"


def test_storage_failure_changes_no_state() -> None:
    machine = CallMachine.incoming()
    after, actions = transition(machine, StorageFailed("disk full"))
    assert after == machine and len(actions) == 1


def test_hold_transfer_and_keys_follow_the_table() -> None:
    world = World(CallMachine.incoming())
    for event in (PreAccepted(), AgentAnswered("alice")):
        assert world.feed(event)
    with pytest.raises(IllegalTransition, match="only the agent holding a call puts it on hold"):
        transition(world.machine, Hold("bob"))
    assert world.feed(SendKeys("alice", "12#"))
    assert [a for a in world.log if isinstance(a, SendDtmf)] == [SendDtmf("12#", "alice")]
    assert not world.feed(SendKeys("alice", "12x")), "not a key"
    assert world.feed(Hold("alice"))
    assert (world.machine.state, world.heard) == (CallState.HELD, Source.HOLD)
    assert not world.feed(Hold("alice")), "already on hold"
    assert world.feed(Resume("alice"))
    assert (world.machine.state, world.heard) == (CallState.HUMAN, Source.AGENT)
    assert not world.feed(TransferToAgent("alice", "alice")), "to oneself"
    assert world.feed(TransferToAgent("alice", "bob"))
    m = world.machine
    assert (m.state, m.agent, m.transfer_to, world.heard) == (
        CallState.WAITING,
        None,
        "bob",
        Source.HOLD,
    )
    with pytest.raises(IllegalTransition, match="transferred to bob"):
        transition(world.machine, AgentAnswered("carol"))
    assert world.feed(AgentAnswered("bob"))
    assert (world.machine.agent, world.machine.transfer_to) == ("bob", None)
    world.check()
