"""The call's life cycle as a sans-I/O state machine, in the style of h11.

A :class:`CallMachine` holds one call's state: who holds it, whether WhatsApp accepted it, who
the caller hears. :func:`transition` takes that state and one :class:`Event` and returns the
next state and the :class:`Action` list the router (the I/O shell) carries out, in order: send
to the Graph API, switch the source toward WhatsApp, store a timeline event, tell the console,
start or stop the assistant, close the agent's leg, end every leg. It never touches a socket,
a clock, a task or the database. An event the current state does not allow raises
:class:`IllegalTransition` naming both, and changes nothing.

The table (docs/service.md draws it)::

    DIALING ──WhatsAppAnswered──▶ HUMAN
    RINGING ──PreAccepted(greeting)──▶ PRERECORDED
    RINGING, PRERECORDED ──AssistantAnswered──▶ ASSISTANT
    RINGING, PRERECORDED ──AssistantFailed──▶ WAITING
    ASSISTANT ──AssistantTransferred / AssistantLost──▶ WAITING
    RINGING, PRERECORDED, WAITING, ASSISTANT ──AgentAnswered──▶ HUMAN
    HUMAN ──HandBack──▶ WAITING ──AssistantAnswered──▶ ASSISTANT
    HUMAN ──Hold──▶ HELD ──Resume──▶ HUMAN
    HUMAN, HELD ──TransferToAgent──▶ WAITING (for that agent only) ──AgentAnswered──▶ HUMAN
    HUMAN, HELD, DIALING ──SendKeys──▶ (unchanged; the keys go to the caller)
    any but ENDED ──WhatsAppEnded / an ending fault / AgentHungUp (holder)──▶ ENDED
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any, Literal


class CallState(enum.StrEnum):
    """Where a call is in its life (the string is what the console and the database show)."""

    DIALING = "dialing"
    """Business-initiated: we offered, the WhatsApp user has not answered yet."""
    RINGING = "ringing"
    """User-initiated: pre-accepted, nobody has taken it yet."""
    PRERECORDED = "prerecorded"
    """Accepted; the greeting plays."""
    ASSISTANT = "assistant"
    """The AI assistant holds the call."""
    WAITING = "waiting"
    """Accepted; waiting for an agent (transferred, assistant failed or dropped, handed back)."""
    HUMAN = "human"
    """An agent holds the call."""
    HELD = "held"
    """The agent put the caller on hold: the caller hears hold music."""
    ENDED = "ended"


class Source(enum.StrEnum):
    """Who the caller hears: the one source of the stream toward WhatsApp."""

    GREETING = "greeting"
    ASSISTANT = "assistant"
    AGENT = "agent"
    SILENCE = "silence"
    HOLD = "hold"
    """Hold music: the caller is on hold, or waits for an agent."""


ACTIVE = frozenset(CallState) - {CallState.ENDED}
WAITING_FOR_A_PERSON = frozenset(
    {CallState.DIALING, CallState.RINGING, CallState.PRERECORDED, CallState.WAITING}
)
"""States in which the ring timeout runs."""
ANSWERABLE = frozenset(
    {CallState.RINGING, CallState.PRERECORDED, CallState.WAITING, CallState.ASSISTANT}
)
HELD_BY_AGENT = frozenset({CallState.DIALING, CallState.HUMAN, CallState.HELD})
DTMF_KEYS = frozenset("0123456789*#ABCD")
MAX_KEYS = 32


class IllegalTransition(Exception):
    """An event the call's current state does not allow; nothing was changed."""

    def __init__(self, state: CallState, event: Event, why: str = "") -> None:
        self.state, self.event = state, event
        name = type(event).__name__
        self.why = why or f"{name} is not allowed while the call is {state}"
        super().__init__(self.why if not why else f"{why} ({name} while {state})")


# -- events -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something that happened to a call."""


@dataclass(frozen=True)
class PreAccepted(Event):
    """``pre_accept`` went through; ``greeting``/``assistant``: what answers the call now
    (if it still rings: an agent may have answered meanwhile)."""

    greeting: bool = False
    assistant: bool = False


@dataclass(frozen=True)
class WhatsAppAnswered(Event):
    """The user answered our business-initiated call (the answer SDP is applied)."""


@dataclass(frozen=True)
class AssistantAnswered(Event):
    """The assistant's Realtime leg is up and (after any greeting) speaks to the caller."""


@dataclass(frozen=True)
class AssistantFailed(Event):
    """The assistant could not connect."""

    reason: str


@dataclass(frozen=True)
class AssistantTransferred(Event):
    """The assistant called ``transfer_to_human``."""

    reason: str


@dataclass(frozen=True)
class AssistantLost(Event):
    """The assistant's Realtime leg dropped."""

    reason: str


@dataclass(frozen=True)
class AgentAnswered(Event):
    """An agent answers (or takes over from the assistant); their leg is ready."""

    agent: str


@dataclass(frozen=True)
class HandBack(Event):
    """The agent holding the call gives it to a fresh assistant."""

    agent: str
    assistant_available: bool


@dataclass(frozen=True)
class AgentHungUp(Event):
    """The agent holding the call hangs up, closes the tab, or loses the leg."""

    agent: str
    reason: str


@dataclass(frozen=True)
class Hold(Event):
    """The agent holding the call puts the caller on hold."""

    agent: str


@dataclass(frozen=True)
class Resume(Event):
    """The agent takes the caller off hold."""

    agent: str


@dataclass(frozen=True)
class TransferToAgent(Event):
    """The agent holding the call hands it to ``target`` (another signed-in agent)."""

    agent: str
    target: str


@dataclass(frozen=True)
class SendKeys(Event):
    """The agent holding the call sends keypad tones (RFC 4733) to the caller."""

    agent: str
    digits: str


@dataclass(frozen=True)
class WhatsAppEnded(Event):
    """WhatsApp ended the call (``terminate`` webhook, ``REJECTED`` status): nothing to send."""

    reason: str


@dataclass(frozen=True)
class Fault(Event):
    """Something that ends the call from our side: WhatsApp is told (reject or terminate).

    ``kind``: ``media`` (no audio, connection failed), ``ring_timeout``, ``graph`` (Graph API
    error), ``signalling`` (an SDP that cannot be applied), ``shutdown``.
    """

    kind: Literal["media", "ring_timeout", "graph", "signalling", "shutdown"]
    reason: str


@dataclass(frozen=True)
class StorageFailed(Event):
    """A database write failed: the call goes on; the failure is reported."""

    detail: str


# -- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """Something the router must do."""


@dataclass(frozen=True)
class SendToWhatsApp(Action):
    """A Graph API call for this call."""

    action: Literal["accept", "reject", "terminate"]


@dataclass(frozen=True)
class SwitchSource(Action):
    """Change what the caller hears (``GREETING``: start playing the greeting file)."""

    source: Source


@dataclass(frozen=True)
class StartAssistant(Action):
    """Connect a fresh assistant; ``with_context``: it knows the conversation so far."""

    with_context: bool = False


@dataclass(frozen=True)
class StopAssistant(Action):
    """Hang up the assistant."""

    reason: str


@dataclass(frozen=True)
class CloseAgentLeg(Action):
    """Close the agent's browser leg (its diagnostic file saved)."""


@dataclass(frozen=True)
class SendDtmf(Action):
    """Send ``digits`` to the caller as telephone-events on the WhatsApp leg."""

    digits: str
    agent: str


@dataclass(frozen=True)
class Store(Action):
    """Append ``event`` to the call's timeline and save the call's state and ``columns``
    (``timestamps``: columns set to the current time)."""

    event: str
    fields: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, Any] = field(default_factory=dict)
    timestamps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Notify(Action):
    """Tell the console the call changed."""


@dataclass(frozen=True)
class RestartRingTimer(Action):
    """The call starts waiting for a person: the ring timeout counts from now."""


@dataclass(frozen=True)
class ReportStorageFailure(Action):
    """Log the database failure (``/healthz`` turns 503 until a write succeeds)."""

    detail: str


@dataclass(frozen=True)
class CloseCall(Action):
    """Stop every leg, save diagnostics and the end of the call, forget it."""

    reason: str


# -- the machine --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallMachine:
    """One call's life-cycle state (a value: :func:`transition` returns a new one)."""

    state: CallState
    agent: str | None = None
    """The agent holding the call (``HUMAN``, ``DIALING``), else ``None``."""
    pre_accepted: bool = False
    """``pre_accept`` went through (once per call)."""
    accepted: bool = False
    """WhatsApp has the call as accepted: ending it is ``terminate``, not ``reject``."""
    source: Source = Source.SILENCE
    transfer_to: str | None = None
    """While ``WAITING`` after an agent's transfer: the only agent who may answer."""
    whatsapp_ended: bool = False
    """WhatsApp knows the call ended (it told us, or we told it): never twice."""
    end_reason: str | None = None

    @classmethod
    def incoming(cls) -> CallMachine:
        """A user-initiated call that has just rung."""
        return cls(CallState.RINGING)

    @classmethod
    def outbound(cls, agent: str) -> CallMachine:
        """A business-initiated call an agent is dialling."""
        return cls(CallState.DIALING, agent=agent, accepted=True, source=Source.AGENT)

    @property
    def active(self) -> bool:
        """Not ended."""
        return self.state is not CallState.ENDED

    def check(self, event: Event) -> None:
        """Raise :class:`IllegalTransition` if ``event`` is not allowed now."""
        transition(self, event)


def transition(machine: CallMachine, event: Event) -> tuple[CallMachine, list[Action]]:
    """The next state of the call and the actions to carry out, or :class:`IllegalTransition`."""
    state = machine.state
    if state is CallState.ENDED:
        raise IllegalTransition(state, event, f"the call has ended ({machine.end_reason})")
    if isinstance(event, StorageFailed):
        return machine, [ReportStorageFailure(event.detail)]
    if isinstance(event, WhatsAppEnded):
        return _ended(machine, event.reason, None)
    if isinstance(event, Fault):
        return _ended(machine, event.reason, "terminate" if machine.accepted else "reject")
    handler = _HANDLERS.get(type(event))
    if handler is None:
        raise IllegalTransition(state, event, f"unknown event {type(event).__name__}")
    return handler(machine, event)


def _ended(
    machine: CallMachine, reason: str, tell: Literal["reject", "terminate"] | None
) -> tuple[CallMachine, list[Action]]:
    actions: list[Action] = [] if tell is None else [SendToWhatsApp(tell)]
    actions.append(CloseCall(reason))
    ended = replace(
        machine,
        state=CallState.ENDED,
        agent=None,
        source=Source.SILENCE,
        whatsapp_ended=True,
        end_reason=reason,
    )
    return ended, actions


def _stored(
    event: str,
    columns: dict[str, Any] | None = None,
    timestamps: tuple[str, ...] = (),
    **fields: Any,
) -> list[Action]:
    return [Store(event, fields, columns or {}, timestamps), Notify()]


def _pre_accepted(m: CallMachine, e: Event) -> tuple[CallMachine, list[Action]]:
    assert isinstance(e, PreAccepted)
    if m.pre_accepted:
        raise IllegalTransition(m.state, e, "the call was pre-accepted already")
    if m.state is not CallState.RINGING or not (e.greeting or e.assistant):
        return replace(m, pre_accepted=True), []  # an agent answered while pre_accept was sent
    actions: list[Action] = [SendToWhatsApp("accept")]
    nxt = replace(m, pre_accepted=True, accepted=True)
    if e.greeting:
        nxt = replace(nxt, state=CallState.PRERECORDED, source=Source.GREETING)
        actions += [SwitchSource(Source.GREETING), *_stored("greeting")]
    if e.assistant:
        actions.append(StartAssistant())
    return nxt, actions


def _whatsapp_answered(m: CallMachine, e: Event) -> tuple[CallMachine, list[Action]]:
    if m.state is not CallState.DIALING:
        raise IllegalTransition(m.state, e)
    nxt = replace(m, state=CallState.HUMAN)
    return nxt, _stored("connected", timestamps=("answered_at",))


def _assistant_answered(m: CallMachine, e: Event) -> tuple[CallMachine, list[Action]]:
    if m.state not in (CallState.RINGING, CallState.PRERECORDED, CallState.WAITING):
        raise IllegalTransition(m.state, e, f"the call is {m.state}: the assistant is not needed")
    if not m.accepted:
        raise IllegalTransition(m.state, e, "the assistant speaks only on an accepted call")
    if m.transfer_to is not None:
        raise IllegalTransition(m.state, e, f"the call was transferred to {m.transfer_to}")
    nxt = replace(m, state=CallState.ASSISTANT, source=Source.ASSISTANT)
    return nxt, [SwitchSource(Source.ASSISTANT), *_stored("assistant_answered")]


def _assistant_failed(m: CallMachine, e: Event) -> tuple[CallMachine, list[Action]]:
    assert isinstance(e, AssistantFailed)
    if m.state is CallState.WAITING:  # a handed-back call whose new assistant failed
        return m, []
    if m.state not in (CallState.RINGING, CallState.PRERECORDED) or not m.accepted:
        raise IllegalTransition(m.state, e)
    nxt = replace(m, state=CallState.WAITING)
    return nxt, [RestartRingTimer(), *_stored("assistant_failed", reason=e.reason)]


def _assistant_gone(m: CallMachine, e: Event) -> tuple[CallMachine, list[Action]]:
    assert isinstance(e, AssistantTransferred | AssistantLost)
    if m.state is not CallState.ASSISTANT:
        raise IllegalTransition(m.state, e)
    nxt = replace(m, state=CallState.WAITING, source=Source.HOLD)
    transferred = isinstance(e, AssistantTransferred)
    actions: list[Action] = [SwitchSource(Source.HOLD), RestartRingTimer()]
    actions += _stored("transferred" if transferred else "assistant_stopped", reason=e.reason)
    if transferred:
        actions.append(StopAssistant("transferred to a human"))
    return nxt, actions


def _agent_answered(m: CallMachine, e: Event) -> tuple[CallMachine, list[Action]]:
    assert isinstance(e, AgentAnswered)
    if m.agent == e.agent:
        raise IllegalTransition(m.state, e, "you already hold this call")
    if m.agent is not None:
        raise IllegalTransition(m.state, e, f"the call is already answered by {m.agent}")
    if m.state not in ANSWERABLE:
        raise IllegalTransition(m.state, e, "the call is not waiting for an agent")
    if m.transfer_to is not None and m.transfer_to != e.agent:
        raise IllegalTransition(m.state, e, f"the call was transferred to {m.transfer_to}")
    taking_over = m.state is CallState.ASSISTANT
    nxt = replace(
        m,
        state=CallState.HUMAN,
        agent=e.agent,
        accepted=True,
        source=Source.AGENT,
        transfer_to=None,
    )
    actions: list[Action] = [] if m.accepted else [SendToWhatsApp("accept")]
    actions.append(SwitchSource(Source.AGENT))
    actions += _stored(
        "taken_over" if taking_over else "agent_answered",
        agent=e.agent,
        columns={"agent": e.agent},
        timestamps=("answered_at",),
    )
    if taking_over:
        actions.append(StopAssistant("taken over by " + e.agent))
    return nxt, actions


def _hand_back(m: CallMachine, e: Event) -> tuple[CallMachine, list[Action]]:
    assert isinstance(e, HandBack)
    if m.state is not CallState.HUMAN or m.agent != e.agent:
        raise IllegalTransition(m.state, e, "the call is not yours to hand back")
    if not e.assistant_available:
        raise IllegalTransition(m.state, e, "the assistant is not enabled")
    nxt = replace(m, state=CallState.WAITING, agent=None, source=Source.SILENCE)
    return nxt, [
        CloseAgentLeg(),
        SwitchSource(Source.SILENCE),
        RestartRingTimer(),
        *_stored("handed_back", agent=e.agent),
        StartAssistant(with_context=True),
    ]


def _holder(
    m: CallMachine, e: Hold | Resume | TransferToAgent | SendKeys, *states: CallState
) -> None:
    if m.state not in states or m.agent != e.agent:
        raise IllegalTransition(m.state, e, f"only the agent holding a call {_verb(e)}")


def _verb(e: Event) -> str:
    return {
        Hold: "puts it on hold",
        Resume: "takes it off hold",
        TransferToAgent: "transfers it",
        SendKeys: "sends keys",
    }.get(type(e), "acts on it")


def _hold(m: CallMachine, e: Event) -> tuple[CallMachine, list[Action]]:
    assert isinstance(e, Hold)
    _holder(m, e, CallState.HUMAN)
    nxt = replace(m, state=CallState.HELD, source=Source.HOLD)
    return nxt, [SwitchSource(Source.HOLD), *_stored("held", agent=e.agent)]


def _resume(m: CallMachine, e: Event) -> tuple[CallMachine, list[Action]]:
    assert isinstance(e, Resume)
    _holder(m, e, CallState.HELD)
    nxt = replace(m, state=CallState.HUMAN, source=Source.AGENT)
    return nxt, [SwitchSource(Source.AGENT), *_stored("resumed", agent=e.agent)]


def _transfer_to_agent(m: CallMachine, e: Event) -> tuple[CallMachine, list[Action]]:
    assert isinstance(e, TransferToAgent)
    _holder(m, e, CallState.HUMAN, CallState.HELD)
    if e.target == e.agent or not e.target:
        raise IllegalTransition(m.state, e, "transfer to another agent")
    nxt = replace(m, state=CallState.WAITING, agent=None, source=Source.HOLD, transfer_to=e.target)
    return nxt, [
        CloseAgentLeg(),
        SwitchSource(Source.HOLD),
        RestartRingTimer(),
        *_stored("transferred_to_agent", agent=e.agent, to=e.target),
    ]


def _send_keys(m: CallMachine, e: Event) -> tuple[CallMachine, list[Action]]:
    assert isinstance(e, SendKeys)
    _holder(m, e, CallState.HUMAN, CallState.HELD, CallState.DIALING)
    if not e.digits or len(e.digits) > MAX_KEYS or not set(e.digits) <= DTMF_KEYS:
        raise IllegalTransition(m.state, e, f"keys are 1 to {MAX_KEYS} of 0-9 * # A-D")
    return m, [
        SendDtmf(e.digits, e.agent),
        Store("keys_sent", {"agent": e.agent, "digits": e.digits}),
    ]


def controls(machine: CallMachine, assistant_available: bool) -> list[str]:
    """What the agent holding the call can do now, as the console names its buttons."""
    agent = machine.agent
    if agent is None or not machine.active:
        return []
    candidates: list[tuple[str, Event]] = [
        ("hold", Hold(agent)),
        ("resume", Resume(agent)),
        ("keys", SendKeys(agent, "1")),
        ("transfer", TransferToAgent(agent, agent + "\x00another")),
        ("handback", HandBack(agent, assistant_available)),
        ("hangup", AgentHungUp(agent, "")),
    ]
    allowed = []
    for name, event in candidates:
        try:
            machine.check(event)
        except IllegalTransition:
            continue
        allowed.append(name)
    return allowed


def _agent_hung_up(m: CallMachine, e: Event) -> tuple[CallMachine, list[Action]]:
    assert isinstance(e, AgentHungUp)
    if m.state not in HELD_BY_AGENT or m.agent != e.agent:
        raise IllegalTransition(m.state, e, "only the agent holding a call can hang it up")
    return _ended(m, e.reason, "terminate" if m.accepted else "reject")


_HANDLERS = {
    PreAccepted: _pre_accepted,
    WhatsAppAnswered: _whatsapp_answered,
    AssistantAnswered: _assistant_answered,
    AssistantFailed: _assistant_failed,
    AssistantTransferred: _assistant_gone,
    AssistantLost: _assistant_gone,
    AgentAnswered: _agent_answered,
    HandBack: _hand_back,
    AgentHungUp: _agent_hung_up,
    Hold: _hold,
    Resume: _resume,
    TransferToAgent: _transfer_to_agent,
    SendKeys: _send_keys,
}
