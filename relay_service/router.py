"""The :class:`CallRouter`: the I/O shell around each call's state machine.

Webhooks, the console, the assistant, timers and faults become :mod:`~relay_service.callstate`
events; :meth:`CallRouter.fire` feeds one to the call's machine and carries out the actions it
returns (Graph API, media bridge, legs, storage, console). Nothing else changes a call's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiortc.mediastreams import MediaStreamTrack
from openai import AsyncOpenAI

from webrtc_ext import (
    NominationMode,
    PeerConnectionConfig,
    RTCCertificate,
    RTCPeerConnection,
    RTCSessionDescription,
)

from .agentleg import AgentLeg, BadOffer, receiver_of
from .aihost import CallAiHost
from .assist import CallAi
from .bridge import MediaBridge, RelayMediaBridge
from .call import Call as Call  # re-exported: the router's public type
from .callstate import (
    WAITING_FOR_A_PERSON,
    Action,
    AgentAnswered,
    AgentHungUp,
    AssistantAnswered,
    AssistantFailed,
    AssistantLost,
    AssistantTransferred,
    CallMachine,
    CallState,
    CloseAgentLeg,
    CloseCall,
    Event,
    Fault,
    HandBack,
    IllegalTransition,
    Notify,
    PreAccepted,
    ReportStorageFailure,
    RestartRingTimer,
    SendDtmf,
    SendToWhatsApp,
    Source,
    StartAssistant,
    StopAssistant,
    StorageFailed,
    Store,
    SwitchSource,
    WhatsAppAnswered,
    WhatsAppEnded,
    transition,
)
from .cluster.recovery import record_late_terminate
from .diagnostics import LegRecorder
from .holdmusic import hold_music_path
from .logs import bound_leg
from .memory import release_free_pools, return_free_memory
from .metrics import Metrics
from .realtime.client import RealtimeSettings, new_openai_client
from .rtpbridge import RtpMediaBridge
from .settings import Settings
from .storage import Storage, utcnow
from .whatsapp.early import EarlyEvents
from .whatsapp.events import CallConnect, CallStatus, CallTerminate, UnknownEvent, WebhookEvent
from .whatsapp.graph import GraphApiError, GraphClient
from .whatsapp.sdp import prepare_answer, prepare_offer

logger = logging.getLogger(__name__)

EARLY_ENDS_KEPT = 256
EARLY_END_SECONDS = 120.0
"""How long a ``terminate`` that overtook its ``connect`` is remembered."""
CLOSE_TIMEOUT = 10.0
CLOSE_BUDGET = 3.0
"""Seconds the parallel ending of every call at shutdown may take."""
SHUTTING_DOWN = "service shutting down"
DTMF_TONE_MS, DTMF_GAP_MS = 160, 80
"""Keypad tones toward the caller: long enough for any IVR, short enough to feel instant."""
GREETING_LIMIT = 60.0
"""Seconds of pre-recorded greeting the assistant waits for at most."""
COLLECT_AFTER_END = 2.0
"""Seconds after a call ends before the cycle collector runs if no call is active then."""
CERTIFICATE_LIFETIME = 24 * 3600.0
"""Seconds one DTLS certificate serves new legs before the next one is generated."""


class CallUnavailable(Exception):
    """The call does not exist, has ended, another agent has it, or the request is not valid."""


Listener = Callable[[str, Call, dict[str, Any]], None]


class CallRouter:
    """Creates, bridges and ends calls; the single owner of every live :class:`Call`."""

    def __init__(
        self, settings: Settings, storage: Storage, graph: GraphClient, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.graph = graph
        self.metrics = metrics
        self.calls: dict[str, Call] = {}
        self.listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        # Status and answer webhooks of an outbound call can overtake the connect reply.
        self._early = EarlyEvents()
        # A terminate can overtake its connect (call id -> (arrival, reason)), bounded.
        self._early_ends: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self.accepting = True
        """False while draining: a new call is handed over or declined (see :meth:`drain`)."""
        self.hand_over: Callable[[CallConnect], Awaitable[bool]] | None = None
        """With replicas: gives a new call to one that is not draining (true if one took it)."""
        self._collection: asyncio.TimerHandle | None = None
        self._openai: AsyncOpenAI | None = None
        self._certificate: tuple[float, RTCCertificate] | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def peer_config(self) -> PeerConnectionConfig:
        """The configuration of every leg: our media addresses, port range, Opus only."""
        return PeerConnectionConfig(
            host_addresses=(
                None
                if self.settings.media_addresses is None
                else list(self.settings.media_addresses)
            ),
            port_range=self.settings.udp_port_range,
            audio_codecs=("audio/opus",),
            nomination=NominationMode(self.settings.ice_nomination),
            certificates=(self.dtls_certificate(),),
            rtcp_interval=self.settings.rtcp_interval,
        )

    def dtls_certificate(self) -> RTCCertificate:
        """The DTLS certificate of new legs: one for every leg (so one OpenSSL context, not one
        per leg, and no key generated per leg), replaced after :data:`CERTIFICATE_LIFETIME`.

        Peers check it against the fingerprint in the SDP, as with one certificate per leg.
        """
        now = time.monotonic()
        if self._certificate is None or now - self._certificate[0] > CERTIFICATE_LIFETIME:
            self._certificate = (now, RTCCertificate.generateCertificate())
        return self._certificate[1]

    def openai_client(self) -> AsyncOpenAI:
        """One ``openai`` client for every Realtime leg (one HTTP pool, one TLS context)."""
        if self._openai is None:
            self._openai = new_openai_client(
                RealtimeSettings(self.settings.realtime_base_url, self.settings.openai_api_key)
            )
        return self._openai

    def new_bridge(self) -> MediaBridge:
        """A call's media bridge: ``RELAY_MEDIA_BRIDGE`` ``rtp`` (default) or ``decoded``."""
        bridge: MediaBridge = (
            RtpMediaBridge() if self.settings.media_bridge == "rtp" else RelayMediaBridge()
        )
        bridge.hold_music = hold_music_path(self.settings.data_dir)
        return bridge

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a coroutine in the background, logging (not losing) its exception."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task failed", exc_info=task.exception())

    def notify(self, kind: str, call: Call, **data: Any) -> None:
        """Tell every listener (the console) about a change of ``call``."""
        for listener in list(self.listeners):
            try:
                listener(kind, call, data)
            except Exception:
                logger.exception("call listener failed")

    def active_calls(self) -> list[Call]:
        """Calls not yet ended."""
        return [call for call in self.calls.values() if call.machine.active]

    # -- the state machine's shell -------------------------------------------------------------

    async def fire(self, call: Call, event: Event) -> None:
        """Feed ``event`` to the call's machine and carry out its actions.

        Raises :class:`IllegalTransition` (nothing changed) if the call's state does not allow it.
        """
        call.machine, actions = transition(call.machine, event)
        await self._perform(call, actions)

    async def _end(self, call: Call, event: WhatsAppEnded | Fault | AgentHungUp) -> None:
        """End ``call`` by ``event`` unless it has already ended."""
        if call.machine.active:
            with contextlib.suppress(IllegalTransition):
                await self.fire(call, event)

    async def _perform(self, call: Call, actions: list[Action]) -> None:
        ending = any(isinstance(action, CloseCall) for action in actions)
        for action in actions:
            if not ending and not call.machine.active:
                return  # the call ended while an earlier action ran
            if isinstance(action, SendToWhatsApp):
                if action.action == "accept":
                    try:
                        await self._accept(call)
                    except GraphApiError as exc:
                        await self._end(call, Fault("graph", f"graph api: {exc}"))
                        return
                else:
                    await self._tell_whatsapp_ended(call, action.action)
            elif isinstance(action, SwitchSource):
                if action.source is Source.GREETING and self.settings.greeting_file is not None:
                    call.bridge.play_greeting(self.settings.greeting_file)
                else:
                    call.bridge.use(action.source)
            elif isinstance(action, StartAssistant):
                if call.ai is not None:
                    call.tasks.append(self.spawn(self._assistant_answers(call, action)))
            elif isinstance(action, StopAssistant):
                if call.ai is not None:
                    await call.ai.stop_assistant(action.reason)
            elif isinstance(action, CloseAgentLeg):
                await self._close_agent_leg(call)
            elif isinstance(action, SendDtmf):
                self._send_dtmf(call, action)
            elif isinstance(action, Store):
                await self._store(call, action)
            elif isinstance(action, Notify):
                self.notify("call", call)
            elif isinstance(action, RestartRingTimer):
                call.waiting_since = time.monotonic()
            elif isinstance(action, ReportStorageFailure):
                logger.error("call %s: database write failed: %s", call.wa_call_id, action.detail)
            elif isinstance(action, CloseCall):
                await self._close(call, action.reason)

    async def write(self, call: Call, write: Callable[[int], Awaitable[Any]]) -> None:
        """One database write for ``call``; a failure is the call's ``StorageFailed`` event."""
        if not call.db_id:
            return  # its row could not be created; the end retries
        try:
            await write(call.db_id)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            if call.machine.active:
                await self.fire(call, StorageFailed(detail))
            else:
                logger.error("call %s: database write failed: %s", call.wa_call_id, detail)

    async def _store(self, call: Call, action: Store) -> None:
        columns = {**action.columns, **{name: utcnow() for name in action.timestamps}}
        await self._record(call, action.event, columns=columns, **action.fields)

    async def _record(self, call: Call, event: str, **fields: Any) -> None:
        state = str(call.state)
        await self.write(
            call, lambda db_id: self.storage.record_event(db_id, event, state=state, **fields)
        )

    async def _create_row(self, call: Call) -> int | None:
        """The call's database row: its id, ``None`` if it exists, ``0`` if the write failed."""
        try:
            return await self.storage.create_call(
                call.wa_call_id, call.from_number, call.to_number, call.direction, call.caller_name
            )
        except Exception as exc:
            logger.error("call %s: its row could not be stored: %s", call.wa_call_id, exc)
            return 0

    # -- webhook events ---------------------------------------------------------------------

    async def handle_event(self, event: WebhookEvent) -> None:
        """Act on one (already de-duplicated) webhook event."""
        if isinstance(event, CallConnect):
            if event.direction == "USER_INITIATED" and event.sdp_type == "offer":
                await self._incoming_call(event)
            else:
                await self._outbound_event(event)
        elif isinstance(event, CallTerminate):
            call = self.calls.get(event.call_id)
            errors = "; ".join(f"{e.code} {e.title}" for e in event.errors)
            reason = f"whatsapp: {event.status}" + (f" ({errors})" if errors else "")
            if call is not None:
                await self._end(call, WhatsAppEnded(reason))
            else:
                # Remembered at once: its connect may be on its way (no await before this).
                self._remember_end(event.call_id, reason)
                if not await self._late_terminate(event, reason):
                    logger.info("terminate for unknown call %s (kept): %s", event.call_id, reason)
        elif isinstance(event, CallStatus):
            logger.info("call %s status %s", event.call_id, event.status)
            await self._outbound_event(event)
        elif isinstance(event, UnknownEvent):
            logger.info("ignored webhook event: %s", event.description)

    async def _late_terminate(self, event: CallTerminate, reason: str) -> bool:
        """A terminate of a stored call nobody holds (ended by recovery, or left by a dead run)."""
        try:
            return await record_late_terminate(self.storage, event, reason)
        except Exception as exc:
            logger.error("terminate of %s could not be stored: %s", event.call_id, exc)
            return False

    def _remember_end(self, call_id: str, reason: str) -> None:
        self._early_ends[call_id] = (time.monotonic(), reason)
        self._early_ends.move_to_end(call_id)
        while len(self._early_ends) > EARLY_ENDS_KEPT:
            self._early_ends.popitem(last=False)

    def _early_end(self, call_id: str) -> str | None:
        """The reason of a terminate that arrived before the call, if recent."""
        now = time.monotonic()
        while self._early_ends:
            oldest = next(iter(self._early_ends))
            if now - self._early_ends[oldest][0] <= EARLY_END_SECONDS:
                break
            del self._early_ends[oldest]
        entry = self._early_ends.pop(call_id, None)
        return None if entry is None else entry[1]

    async def _incoming_call(self, event: CallConnect) -> None:
        if event.call_id in self.calls:
            logger.info("connect for live call %s ignored (redelivery)", event.call_id)
            return
        # Draining: another replica takes the call if one can; decided before the row is stored,
        # so that the one that takes it stores it. Once stored here, the call is this replica's.
        draining = not self.accepting
        if draining and self.hand_over is not None and await self.hand_over(event):
            return
        call = Call(
            event.call_id,
            0,
            event.from_,
            event.to,
            event.contact_name,
            event.direction,
            self.new_bridge(),
        )
        db_id = await self._create_row(call)
        if db_id is None or event.call_id in self.calls:
            logger.info("connect for existing call %s ignored (redelivery)", event.call_id)
            await call.bridge.close()
            return
        call.db_id = db_id
        if draining:  # and no other replica took it: declined
            logger.warning("call %s declined: %s", call.wa_call_id, SHUTTING_DOWN)
            self.calls[call.wa_call_id] = call
            await self._end(call, Fault("shutdown", SHUTTING_DOWN))
            return
        if self.settings.realtime_used:
            call.ai = CallAi(CallAiHost(self, call))
        self._register(call)
        if not db_id:
            await self.fire(call, StorageFailed(self.storage.write_error or "row not stored"))
        early = self._early_end(call.wa_call_id)
        if early is not None:
            await self._end(call, WhatsAppEnded(early))
            return
        try:
            call.answer_sdp = await self._open_whatsapp_leg(call, event.sdp)
            if not call.machine.active:
                return
            await self.graph.pre_accept(call.wa_call_id, call.answer_sdp)
            call.pre_accepted.set()
            await self._record(call, "pre_accepted")
            if call.ai is not None and self.settings.transcription_enabled:
                call.tasks.append(self.spawn(call.ai.start_transcription()))
            greeting = self.settings.greeting_file is not None
            await self.fire(call, PreAccepted(greeting, self.settings.assistant_enabled))
        except IllegalTransition:
            return  # the call ended meanwhile
        except GraphApiError as exc:
            await self._end(call, Fault("graph", f"graph api: {exc}"))
        except Exception as exc:
            logger.exception("incoming call %s failed", call.wa_call_id)
            await self._end(call, Fault("signalling", f"error: {exc}"))
        else:
            call.tasks.append(self.spawn(self._watch_media(call)))

    def _register(self, call: Call) -> None:
        self.calls[call.wa_call_id] = call
        self.metrics.calls.inc(direction=call.direction)
        self.metrics.calls_active.set(len(self.active_calls()))
        self.notify("call", call)

    @bound_leg("whatsapp")
    async def _open_whatsapp_leg(self, call: Call, offer: str) -> str:
        pc = self._whatsapp_pc(call)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        call.bridge.attach_whatsapp_sender(pc.addTrack(call.bridge.to_whatsapp))
        await pc.setLocalDescription(await pc.createAnswer())
        return prepare_answer(pc.localDescription.sdp)

    def _whatsapp_pc(self, call: Call) -> RTCPeerConnection:
        # Meta refuses a description with more than one fingerprint (error 138008).
        pc = RTCPeerConnection(self.peer_config().with_changes(fingerprint_algorithms=("sha-256",)))
        call.legs["whatsapp"] = LegRecorder("whatsapp", pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            call.bridge.set_caller_track(track, receiver_of(pc, track))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "failed":
                self.spawn(self._end(call, Fault("media", "whatsapp leg: connection failed")))

        @pc.on("dtmf")
        def on_dtmf(event: Any) -> None:  # the library's RFC 4733 receiver, once it lands
            digit = getattr(event, "digit", event)
            self.spawn(self.dtmf_received(call, str(digit)))

        return pc

    async def _accept(self, call: Call) -> None:
        # An agent may answer while pre_accept is still on its way: accept goes after it.
        try:
            async with asyncio.timeout(self.settings.graph_timeout):
                await call.pre_accepted.wait()
        except TimeoutError:
            raise GraphApiError("pre_accept did not complete before accept") from None
        call.bridge.last_caller_audio = time.monotonic()
        await self.graph.accept(call.wa_call_id, call.answer_sdp)
        await self._record(call, "accepted")

    async def _tell_whatsapp_ended(self, call: Call, action: str) -> None:
        if not call.wa_call_id:
            return
        send = self.graph.terminate if action == "terminate" else self.graph.reject
        try:
            await send(call.wa_call_id)
        except GraphApiError as exc:
            logger.warning("ending %s at WhatsApp failed: %s", call.wa_call_id, exc)

    async def _watch_media(self, call: Call) -> None:
        timeout, ring_timeout = self.settings.no_media_timeout, self.settings.ring_timeout
        while call.machine.active:
            await asyncio.sleep(min(1.0, timeout / 4, ring_timeout / 4))
            silent_for = time.monotonic() - call.bridge.last_caller_audio
            state = call.state
            if call.machine.accepted and state is not CallState.DIALING and silent_for > timeout:
                await self._end(call, Fault("media", f"no media from caller for {timeout:g} s"))
            elif state in WAITING_FOR_A_PERSON and (
                time.monotonic() - call.waiting_since > ring_timeout
            ):
                who = "the user" if state is CallState.DIALING else "an agent"
                reason = f"{who} did not answer in {ring_timeout:g} s"
                await self._end(call, Fault("ring_timeout", reason))

    async def dtmf_received(self, call: Call, digit: str) -> None:
        """Store a keypad digit and show it to the agent."""
        call.digits.append(digit)
        if call.ai is not None:
            call.ai.key(digit)
        await self.write(call, lambda db_id: self.storage.add_dtmf(db_id, digit))
        self.notify("dtmf", call, digit=digit)

    # -- agent leg --------------------------------------------------------------------------

    async def answer(self, wa_call_id: str, agent: str, offer_sdp: str) -> str:
        """Connect an agent's browser offer to the call; returns our SDP answer."""
        call = self.calls.get(wa_call_id)
        if call is None:
            raise CallUnavailable(f"call {wa_call_id} is not waiting for an agent")
        _allowed(call, AgentAnswered(agent))
        leg = await self._prepare_agent_leg(call, offer_sdp)
        try:
            call.machine, actions = transition(call.machine, AgentAnswered(agent))
        except IllegalTransition as exc:  # another agent was quicker
            await leg.discard(call.bridge)
            raise CallUnavailable(f"call {wa_call_id}: {exc}") from None
        self._attach_agent_leg(call, leg)
        await self._perform(call, actions)
        if not call.machine.active:
            raise CallUnavailable(f"WhatsApp refused to accept the call: {call.end_reason}")
        return leg.answer

    @bound_leg("browser")
    async def _prepare_agent_leg(self, call: Call, offer_sdp: str) -> AgentLeg:
        """Negotiate the browser's offer; :class:`CallUnavailable` (nothing changed) if bad."""
        n = call.browser_legs + 1
        name = "browser" if n == 1 else f"browser-{n}"
        try:
            return await AgentLeg.negotiate(self.peer_config(), call.bridge, name, offer_sdp)
        except BadOffer as exc:
            logger.info("agent offer for %s refused: %s", call.wa_call_id, exc)
            raise CallUnavailable(str(exc)) from None

    def _attach_agent_leg(self, call: Call, leg: AgentLeg) -> None:
        """The leg joins the call: its audio reaches the caller, the caller's reaches it."""
        call.browser_legs += 1
        call.legs[leg.name] = leg.recorder
        call.agent_leg = leg.name
        call.agent_audio = leg.audio
        call.bridge.feed(leg.audio, leg.sender)
        agent = call.agent or ""
        pc = leg.pc

        def joined() -> bool:
            return call.legs.get(leg.name) is leg.recorder

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if joined():
                call.bridge.connect_agent(track, receiver_of(pc, track))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and joined():
                self.spawn(self._end(call, AgentHungUp(agent, "agent leg lost")))

        for track, receiver in leg.tracks:
            call.bridge.connect_agent(track, receiver)

    async def _close_agent_leg(self, call: Call) -> None:
        name = call.agent_leg
        call.agent_leg = None
        leg = call.legs.pop(name, None) if name is not None else None
        call.bridge.disconnect_agent()
        if call.agent_audio is not None:
            call.bridge.release(call.agent_audio)
            call.agent_audio = None
        if leg is not None and name is not None:
            await self._save_diagnostic(call, name, leg)
            await leg.pc.close()

    async def _save_diagnostic(self, call: Call, name: str, leg: LegRecorder) -> None:
        try:
            content = await leg.render()
        except Exception:
            logger.warning("diagnostic file of %s %s failed", call.wa_call_id, name, exc_info=True)
            return
        filename = leg.filename(call.wa_call_id)
        await self.write(
            call, lambda db_id: self.storage.save_diagnostic(db_id, name, filename, content)
        )

    # -- the assistant ------------------------------------------------------------------------

    async def _assistant_answers(self, call: Call, start: StartAssistant) -> None:
        ai = call.ai
        assert ai is not None
        greeting = call.machine.source is Source.GREETING
        context = ai.context() if start.with_context else ""
        if await ai.start_assistant(context, greet=not greeting):
            if greeting:  # the assistant speaks once the greeting has been heard in full
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(GREETING_LIMIT):
                        await call.bridge.greeting_finished()
            try:
                await self.fire(call, AssistantAnswered())
            except IllegalTransition:  # an agent answered first, or the call ended
                await ai.stop_assistant("not needed")
                return
            if greeting:
                ai.greet()
        else:
            reason = ai.status.get("assistant", "could not connect")
            with contextlib.suppress(IllegalTransition):
                await self.fire(call, AssistantFailed(reason))

    async def transfer(self, call: Call, reason: str) -> None:
        """The assistant hands the call to a human: it goes silent, the call waits for an agent."""
        try:
            await self.fire(call, AssistantTransferred(reason))
        except IllegalTransition as exc:
            logger.info("transfer of %s ignored: %s", call.wa_call_id, exc)

    async def assistant_lost(self, call: Call, reason: str) -> None:
        """The assistant's Realtime leg dropped: the call waits for an agent."""
        with contextlib.suppress(IllegalTransition):
            await self.fire(call, AssistantLost(reason))

    async def hand_back(self, wa_call_id: str, agent: str) -> None:
        """An agent gives the call back to a fresh assistant that knows the conversation."""
        call = self.calls.get(wa_call_id)
        if call is None:
            raise CallUnavailable(f"call {wa_call_id} is not yours to hand back")
        available = call.ai is not None and self.settings.assistant_enabled
        try:
            await self.fire(call, HandBack(agent, available))
        except IllegalTransition as exc:
            raise CallUnavailable(str(exc)) from None

    async def hangup(self, wa_call_id: str, by: str) -> None:
        """End a call from our side: only the agent holding it may."""
        call = self.calls.get(wa_call_id)
        if call is None:
            raise CallUnavailable(f"no call {wa_call_id}")
        try:
            await self.fire(call, AgentHungUp(by, f"hung up by {by}"))
        except IllegalTransition as exc:
            raise CallUnavailable(f"call {wa_call_id}: {exc}") from None

    async def control(self, wa_call_id: str, event: Event) -> None:
        """An agent's control (hold, resume, transfer, keys): :class:`CallUnavailable` if the
        call's state does not allow it now."""
        call = self.calls.get(wa_call_id)
        if call is None:
            raise CallUnavailable(f"no call {wa_call_id}")
        try:
            await self.fire(call, event)
        except IllegalTransition as exc:
            raise CallUnavailable(f"call {wa_call_id}: {exc}") from None

    def _send_dtmf(self, call: Call, action: SendDtmf) -> None:
        leg = call.legs.get("whatsapp")
        senders = leg.pc.getSenders() if leg is not None else []
        dtmf: Any = next(
            (getattr(s, "dtmf", None) for s in senders if getattr(s, "dtmf", None)), None
        )
        if dtmf is None or not dtmf.canInsertDTMF:
            logger.warning(
                "call %s: keys %s not sent (no telephone-event)", call.wa_call_id, action.digits
            )
            return
        # Keys pressed while earlier ones still play are queued after them.
        dtmf.insertDTMF(dtmf.toneBuffer + action.digits, DTMF_TONE_MS, DTMF_GAP_MS)
        self.notify("keys_sent", call, digits=action.digits, agent=action.agent)

    async def agent_left(self, wa_call_id: str, agent: str) -> None:
        """The agent's console closed: a call they still hold ends."""
        call = self.calls.get(wa_call_id)
        if call is not None and call.agent == agent:
            await self._end(call, AgentHungUp(agent, "agent disconnected"))

    # -- business-initiated calls ----------------------------------------------------------

    async def dial(self, agent: str, to: str, browser_offer: str) -> tuple[str, str]:
        """An agent calls a WhatsApp user; returns the call id and the browser leg's answer."""
        if not self.accepting:
            raise CallUnavailable(f"this replica is draining ({SHUTTING_DOWN}); dial again")
        bridge = self.new_bridge()
        call = Call(
            "",
            0,
            self.settings.whatsapp_phone_number_id,
            to,
            None,
            "BUSINESS_INITIATED",
            bridge,
            machine=CallMachine.outbound(agent),
        )
        try:  # the browser's offer first: a bad one never reaches WhatsApp
            leg = await self._prepare_agent_leg(call, browser_offer)
        except CallUnavailable:
            await bridge.close()
            raise
        pc = self._whatsapp_pc(call)
        bridge.attach_whatsapp_sender(pc.addTrack(bridge.to_whatsapp))
        try:
            await pc.setLocalDescription(await pc.createOffer())
            call.wa_call_id = await self.graph.connect(to, prepare_offer(pc.localDescription.sdp))
        except GraphApiError as exc:
            await leg.discard(bridge)
            with contextlib.suppress(Exception):
                await call.legs["whatsapp"].render()
            await pc.close()
            await bridge.close()
            raise CallUnavailable(f"WhatsApp refused the call: {exc}") from exc
        try:
            db_id = await self._create_row(call)
            call.db_id = db_id or 0
            self._register(call)
            self._attach_agent_leg(call, leg)
            if not db_id:
                await self.fire(call, StorageFailed(self.storage.write_error or "row not stored"))
            await self._record(call, "dialing", agent=agent, columns={"agent": agent})
            call.tasks.append(self.spawn(self._watch_media(call)))
            if self.settings.transcription_enabled:
                call.ai = CallAi(CallAiHost(self, call))
                call.tasks.append(self.spawn(call.ai.start_transcription()))
            early = self._early_end(call.wa_call_id)
            if early is not None:
                await self._end(call, WhatsAppEnded(early))
            for event in self._early.pop(call.wa_call_id, time.monotonic()):
                await self._outbound_event(event)
        except Exception as exc:
            logger.exception("outbound call %s failed", call.wa_call_id)
            await self._end(call, Fault("signalling", f"error: {exc}"))
            raise CallUnavailable(f"the call failed: {exc}") from exc
        return call.wa_call_id, leg.answer

    async def _outbound_event(self, event: CallConnect | CallStatus) -> None:
        call = self.calls.get(event.call_id)
        if call is None:
            if not self._early.add(event, time.monotonic()):
                logger.info("early event for unknown call %s dropped", event.call_id)
            return
        if isinstance(event, CallStatus):
            await self._record(call, "status", status=event.status)
            if event.status == "REJECTED":
                await self._end(call, WhatsAppEnded("whatsapp: REJECTED by the user"))
            return
        leg = call.legs.get("whatsapp")
        # Only our own outbound call's first answer applies (a webhook can claim anything).
        if (
            event.sdp_type != "answer"
            or call.direction != "BUSINESS_INITIATED"
            or leg is None
            or leg.pc.remoteDescription is not None
        ):
            logger.info("ignored %s connect for %s", event.sdp_type, call.wa_call_id)
            return
        pc = leg.pc
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=event.sdp, type="answer"))
        except Exception as exc:
            logger.warning("answer of %s could not be applied: %s", call.wa_call_id, exc)
            await self._end(call, Fault("signalling", f"bad answer from WhatsApp: {exc}"))
            return
        call.bridge.last_caller_audio = time.monotonic()
        try:
            await self.fire(call, WhatsAppAnswered())
        except IllegalTransition as exc:
            logger.info("answer of %s ignored: %s", call.wa_call_id, exc)

    # -- ending -----------------------------------------------------------------------------

    async def _close(self, call: Call, reason: str) -> None:
        """Every leg stopped, diagnostics and the end saved, the call forgotten (``CloseCall``)."""
        logger.info("call %s ended: %s", call.wa_call_id, reason)
        current = asyncio.current_task()
        for task in call.tasks:
            if task is not current:
                task.cancel()
        if not call.db_id and call.wa_call_id:  # its row could not be stored: try once more
            call.db_id = await self._create_row(call) or 0
        for name, leg in list(call.legs.items()):
            await self._save_diagnostic(call, name, leg)
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await leg.pc.close()
            except TimeoutError:
                logger.error("closing the %s leg of %s timed out", name, call.wa_call_id)
        await call.bridge.close()
        if call.ai is not None:
            await call.ai.close()
        await self._record(
            call, "ended", reason=reason, columns={"ended_at": utcnow(), "end_reason": reason[:500]}
        )
        self.metrics.calls_active.set(len(self.active_calls()))
        self.notify("call", call)
        self.calls.pop(call.wa_call_id, None)
        self._collect_soon()

    def _collect_soon(self) -> None:
        """Free ended calls once no call is active, rather than whenever the collector runs.

        A call is a graph of reference cycles (peer connections, their listeners and tasks):
        only the cycle collector frees it, and its full pass is triggered by allocations, so
        an idle service could keep the memory of its last calls for hours. While calls are
        active, new calls' allocations trigger it anyway, and a forced full pass (~0.1 s for
        a few dozen calls' objects) would be heard as a gap by every active call.
        """
        if self._collection is None:
            self._collection = asyncio.get_running_loop().call_later(
                COLLECT_AFTER_END, self._collect
            )

    def _collect(self) -> None:
        self._collection = None
        if self.active_calls():
            return  # the next call to end tries again
        self.spawn(self._release_memory())

    async def _release_memory(self) -> None:
        try:
            await self.storage.release_idle_connections()
        except Exception:
            logger.warning("idle database connections could not be closed", exc_info=True)
        started = time.perf_counter()
        freed = gc.collect()
        return_free_memory()
        released = release_free_pools()
        logger.info(
            "cycle collector after calls ended: %d objects freed in %.1f ms; "
            "%.1f MB of free Python pools given back",
            freed,
            1000 * (time.perf_counter() - started),
            released / 1e6,
        )

    async def drain(self, timeout: float) -> None:
        """Take no new call; wait up to ``timeout`` seconds for the live ones to end."""
        self.accepting = False
        deadline = time.monotonic() + timeout
        while self.calls and time.monotonic() < deadline:
            await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    async def close(self, budget: float = CLOSE_BUDGET) -> None:
        """End every call at once, in parallel (service shutdown), within ``budget`` seconds."""
        self.accepting = False
        calls = list(self.calls.values())
        endings = [
            asyncio.ensure_future(self._end(call, Fault("shutdown", SHUTTING_DOWN)))
            for call in calls
        ]
        if endings:
            _, late = await asyncio.wait(endings, timeout=budget)
            for task in late:
                task.cancel()
            await asyncio.gather(*endings, return_exceptions=True)
            # A call whose ending hung (a Graph API that does not answer), or that was already
            # closing in a task the shutdown cancelled, is still recorded, with its own reason.
            await asyncio.gather(
                *(
                    self._record_end(call, call.end_reason or SHUTTING_DOWN)
                    for call in calls
                    if call.db_id
                ),
                return_exceptions=True,
            )
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._collection is not None:
            self._collection.cancel()
            self._collection = None
        if self._openai is not None:
            await self._openai.close()
            self._openai = None

    async def _record_end(self, call: Call, reason: str) -> None:
        record = await self.storage.get_call(call.db_id)
        if record is not None and record.ended_at is None:
            await self.storage.record_event(
                call.db_id,
                "ended",
                state="ended",
                reason=reason,
                columns={"ended_at": utcnow(), "end_reason": reason},
            )
        self.calls.pop(call.wa_call_id, None)


def _allowed(call: Call, event: Event) -> None:
    """:class:`CallUnavailable` with the machine's reason if ``event`` is not allowed now."""
    try:
        call.machine.check(event)
    except IllegalTransition as exc:
        raise CallUnavailable(f"call {call.wa_call_id}: {exc}") from None
