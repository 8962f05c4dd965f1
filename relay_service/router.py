"""Calls and the :class:`CallRouter` that owns them: WhatsApp leg, greeting, agent leg."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.mediastreams import MediaStreamTrack

from webrtc_ext import (
    NominationMode,
    PeerConnectionConfig,
    RTCPeerConnection,
    RTCSessionDescription,
)

from .assist import CallAi
from .bridge import MediaBridge, RelayMediaBridge, Source
from .call import Call as Call  # re-exported: the router's public type
from .cluster.recovery import record_late_terminate
from .diagnostics import LegRecorder
from .metrics import Metrics
from .rtpbridge import RtpMediaBridge
from .settings import Settings
from .storage import Storage, utcnow
from .whatsapp.events import CallConnect, CallStatus, CallTerminate, UnknownEvent, WebhookEvent
from .whatsapp.graph import GraphApiError, GraphClient
from .whatsapp.sdp import prepare_answer, prepare_offer

logger = logging.getLogger(__name__)

ACTIVE_STATES = ("dialing", "ringing", "prerecorded", "assistant", "waiting", "human")
WAITING_STATES = ("dialing", "ringing", "prerecorded", "waiting")
"""States in which a call waits for a person (and the ring timeout runs)."""
ANSWERABLE = ("ringing", "prerecorded", "waiting", "assistant")
EARLY_EVENTS_KEPT = 64
CLOSE_TIMEOUT = 10.0
CLOSE_BUDGET = 3.0
"""Seconds the parallel ending of every call at shutdown may take."""
SHUTTING_DOWN = "service shutting down"
GREETING_LIMIT = 60.0
"""Seconds of pre-recorded greeting the assistant waits for at most."""


class CallUnavailable(Exception):
    """The call does not exist, has ended, or another agent has it."""


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
        self._early: dict[str, list[CallConnect | CallStatus]] = {}
        self.accepting = True
        """False while draining: a new call is declined (see :meth:`drain`)."""

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
        )

    def new_bridge(self) -> MediaBridge:
        """A call's media bridge: ``RELAY_MEDIA_BRIDGE`` ``rtp`` (default) or ``decoded``."""
        if self.settings.media_bridge == "rtp":
            return RtpMediaBridge()
        return RelayMediaBridge()

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
        return [call for call in self.calls.values() if call.state in ACTIVE_STATES]

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
                await self.end(call, reason, tell_whatsapp=False)
            else:  # ended by recovery, or left by a run that died: still recorded
                await record_late_terminate(self.storage, event, reason)
        elif isinstance(event, CallStatus):
            logger.info("call %s status %s", event.call_id, event.status)
            await self._outbound_event(event)
        elif isinstance(event, UnknownEvent):
            logger.info("ignored webhook event: %s", event.description)

    async def _incoming_call(self, event: CallConnect) -> None:
        db_id = await self.storage.create_call(
            event.call_id, event.from_, event.to, event.direction, event.contact_name
        )
        if db_id is None:
            logger.info("connect for existing call %s ignored (redelivery)", event.call_id)
            return
        if not self.accepting:
            await self._decline_while_draining(event.call_id, db_id)
            return
        call = Call(
            event.call_id,
            db_id,
            event.from_,
            event.to,
            event.contact_name,
            event.direction,
            self.new_bridge(),
        )
        if self.settings.realtime_used:
            call.ai = CallAi(self, call)
        self.calls[call.wa_call_id] = call
        self.metrics.calls.inc(direction=event.direction)
        self.metrics.calls_active.set(len(self.active_calls()))
        self.notify("call", call)
        try:
            call.answer_sdp = await self._open_whatsapp_leg(call, event.sdp)
            await self.graph.pre_accept(call.wa_call_id, call.answer_sdp)
            call.pre_accepted.set()
            await self.storage.record_event(call.db_id, "pre_accepted")
            if call.ai is not None and self.settings.transcription_enabled:
                call.tasks.append(self.spawn(call.ai.start_transcription()))
            greeting, assistant = self.settings.greeting_file, self.settings.assistant_enabled
            if (greeting is not None or assistant) and call.state == "ringing":
                await self._accept(call)
                if greeting is not None:
                    call.bridge.play_greeting(greeting)
                    await self._set_state(call, "prerecorded", "greeting")
                if assistant:
                    call.tasks.append(self.spawn(self._assistant_answers(call)))
        except GraphApiError as exc:
            await self.end(call, f"graph api: {exc}", tell_whatsapp=True)
        except Exception as exc:
            logger.exception("incoming call %s failed", call.wa_call_id)
            await self.end(call, f"error: {exc}", tell_whatsapp=True)
        else:
            call.tasks.append(self.spawn(self._watch_media(call)))

    async def _decline_while_draining(self, wa_call_id: str, db_id: int) -> None:
        logger.warning("call %s declined: %s", wa_call_id, SHUTTING_DOWN)
        await self.storage.record_event(
            db_id,
            "ended",
            state="ended",
            reason=SHUTTING_DOWN,
            columns={"ended_at": utcnow(), "end_reason": SHUTTING_DOWN},
        )
        try:
            await self.graph.reject(wa_call_id)
        except GraphApiError as exc:
            logger.warning("declining %s at WhatsApp failed: %s", wa_call_id, exc)

    async def _open_whatsapp_leg(self, call: Call, offer: str) -> str:
        pc = self._whatsapp_pc(call)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        call.bridge.attach_whatsapp_sender(pc.addTrack(call.bridge.to_whatsapp))
        await pc.setLocalDescription(await pc.createAnswer())
        return prepare_answer(pc.localDescription.sdp)

    def _whatsapp_pc(self, call: Call) -> RTCPeerConnection:
        pc = RTCPeerConnection(self.peer_config())
        call.legs["whatsapp"] = LegRecorder("whatsapp", pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            call.bridge.set_caller_track(track, _receiver_of(pc, track))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "failed":
                self.spawn(self.end(call, "whatsapp leg: connection failed", tell_whatsapp=True))

        @pc.on("dtmf")
        def on_dtmf(event: Any) -> None:  # the library's RFC 4733 receiver, once it lands
            digit = getattr(event, "digit", event)
            self.spawn(self.dtmf_received(call, str(digit)))

        return pc

    async def _accept(self, call: Call) -> None:
        if not call.accepted:
            call.accepted = True
            # An agent may answer while pre_accept is still on its way: accept goes after it.
            try:
                async with asyncio.timeout(self.settings.graph_timeout):
                    await call.pre_accepted.wait()
            except TimeoutError:
                raise GraphApiError("pre_accept did not complete before accept") from None
            call.bridge.last_caller_audio = time.monotonic()
            await self.graph.accept(call.wa_call_id, call.answer_sdp)
            await self.storage.record_event(call.db_id, "accepted")

    async def _set_state(self, call: Call, state: str, event: str, **fields: Any) -> None:
        if state == "waiting" and call.state != "waiting":
            call.waiting_since = time.monotonic()
        call.state = state
        await self.storage.record_event(call.db_id, event, state=state, **fields)
        self.notify("call", call)

    async def _watch_media(self, call: Call) -> None:
        timeout, ring_timeout = self.settings.no_media_timeout, self.settings.ring_timeout
        while call.state in ACTIVE_STATES:
            await asyncio.sleep(min(1.0, timeout / 4, ring_timeout / 4))
            silent_for = time.monotonic() - call.bridge.last_caller_audio
            if call.accepted and call.state != "dialing" and silent_for > timeout:
                await self.end(call, f"no media from caller for {timeout:g} s", tell_whatsapp=True)
            elif (
                call.state in WAITING_STATES
                and time.monotonic() - call.waiting_since > ring_timeout
            ):
                who = "the user" if call.state == "dialing" else "an agent"
                await self.end(
                    call, f"{who} did not answer in {ring_timeout:g} s", tell_whatsapp=True
                )

    async def dtmf_received(self, call: Call, digit: str) -> None:
        """Store a keypad digit and show it to the agent."""
        call.digits.append(digit)
        if call.ai is not None:
            call.ai.key(digit)
        await self.storage.add_dtmf(call.db_id, digit)
        self.notify("dtmf", call, digit=digit)

    # -- agent leg --------------------------------------------------------------------------

    async def answer(self, wa_call_id: str, agent: str, offer_sdp: str) -> str:
        """Connect an agent's browser offer to the call; returns our SDP answer."""
        call = self.calls.get(wa_call_id)
        if call is not None and call.agent is not None:
            raise CallUnavailable(f"call {wa_call_id} is already answered by {call.agent}")
        if call is None or call.state not in ANSWERABLE:
            raise CallUnavailable(f"call {wa_call_id} is not waiting for an agent")
        call.agent = agent
        taking_over = call.state == "assistant"
        try:
            answer = await self._open_agent_leg(call, offer_sdp)
            await self._accept(call)
        except GraphApiError as exc:
            await self.end(call, f"graph api: {exc}", tell_whatsapp=True)
            raise CallUnavailable(f"WhatsApp refused to accept the call: {exc}") from exc
        call.bridge.use(Source.AGENT)
        await self._set_state(
            call,
            "human",
            "taken_over" if taking_over else "agent_answered",
            agent=agent,
            columns={"agent": agent, "answered_at": utcnow()},
        )
        if call.ai is not None:
            await call.ai.stop_assistant("taken over by " + agent)
        return answer

    async def _open_agent_leg(self, call: Call, offer_sdp: str) -> str:
        pc = RTCPeerConnection(self.peer_config())
        call.browser_legs += 1
        name = "browser" if call.browser_legs == 1 else f"browser-{call.browser_legs}"
        recorder = LegRecorder(name, pc)
        call.legs[name] = recorder

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if call.legs.get(name) is recorder:
                call.bridge.connect_agent(track, _receiver_of(pc, track))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            lost = pc.connectionState in ("failed", "closed")
            if lost and call.state in ACTIVE_STATES and call.legs.get(name) is recorder:
                self.spawn(self.end(call, "agent leg lost", tell_whatsapp=True))

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        call.agent_audio = call.bridge.caller_audio()
        call.bridge.feed(call.agent_audio, pc.addTrack(call.agent_audio))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    # -- the assistant ------------------------------------------------------------------------

    async def _assistant_answers(self, call: Call) -> None:
        assert call.ai is not None
        greeting = call.bridge.source is Source.GREETING
        if await call.ai.start_assistant(greet=not greeting):
            if greeting:  # the assistant speaks once the greeting has been heard in full
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(GREETING_LIMIT):
                        await call.bridge.greeting_finished()
            if call.state in ("ringing", "prerecorded"):
                call.bridge.use(Source.ASSISTANT)
                await self._set_state(call, "assistant", "assistant_answered")
                if greeting:
                    call.ai.greet()
            else:  # an agent answered first, or the call ended
                await call.ai.stop_assistant("not needed")
        elif call.state in ("ringing", "prerecorded"):
            reason = call.ai.status.get("assistant", "could not connect")
            await self._set_state(call, "waiting", "assistant_failed", reason=reason)

    async def transfer(self, call: Call, reason: str) -> None:
        """The assistant hands the call to a human: it goes silent, the call waits for an agent."""
        if call.state != "assistant" or call.ai is None:
            return
        call.bridge.use(Source.SILENCE)
        await self._set_state(call, "waiting", "transferred", reason=reason)
        await call.ai.stop_assistant("transferred to a human")

    async def assistant_lost(self, call: Call, reason: str) -> None:
        """The assistant's Realtime leg dropped: the call waits for an agent."""
        if call.state == "assistant":
            call.bridge.use(Source.SILENCE)
            await self._set_state(call, "waiting", "assistant_stopped", reason=reason)

    async def hand_back(self, wa_call_id: str, agent: str) -> None:
        """An agent gives the call back to a fresh assistant that knows the conversation."""
        call = self.calls.get(wa_call_id)
        if call is None or call.state != "human" or call.agent != agent:
            raise CallUnavailable(f"call {wa_call_id} is not yours to hand back")
        if call.ai is None or not self.settings.assistant_enabled:
            raise CallUnavailable("the assistant is not enabled")
        name = "browser" if call.browser_legs == 1 else f"browser-{call.browser_legs}"
        leg = call.legs.pop(name, None)
        call.agent = None
        call.bridge.disconnect_agent()
        if call.agent_audio is not None:
            call.bridge.release(call.agent_audio)
            call.agent_audio = None
        if leg is not None:
            with contextlib.suppress(Exception):
                content = await leg.render()
                await self.storage.save_diagnostic(
                    call.db_id, name, leg.filename(call.wa_call_id), content
                )
            await leg.pc.close()
        await self._set_state(call, "waiting", "handed_back", agent=agent)
        if not await call.ai.start_assistant(call.ai.context()):
            return  # the call stays waiting for an agent; the console shows why
        if call.state == "waiting":
            call.bridge.use(Source.ASSISTANT)
            await self._set_state(call, "assistant", "assistant_answered")
        else:
            await call.ai.stop_assistant("not needed")

    async def hangup(self, wa_call_id: str, by: str) -> None:
        """End a call from our side (agent hangs up)."""
        call = self.calls.get(wa_call_id)
        if call is None:
            raise CallUnavailable(f"no call {wa_call_id}")
        await self.end(call, f"hung up by {by}", tell_whatsapp=True)

    # -- business-initiated calls ----------------------------------------------------------

    async def dial(self, agent: str, to: str, browser_offer: str) -> tuple[str, str]:
        """An agent calls a WhatsApp user; returns the call id and the browser leg's answer."""
        if not self.accepting:
            raise CallUnavailable(f"this replica is draining ({SHUTTING_DOWN}); dial again")
        bridge = self.new_bridge()
        call = Call(
            "", 0, self.settings.whatsapp_phone_number_id, to, None, "BUSINESS_INITIATED", bridge
        )
        call.state, call.agent, call.accepted = "dialing", agent, True
        pc = self._whatsapp_pc(call)
        bridge.attach_whatsapp_sender(pc.addTrack(bridge.to_whatsapp))
        await pc.setLocalDescription(await pc.createOffer())
        try:
            call.wa_call_id = await self.graph.connect(to, prepare_offer(pc.localDescription.sdp))
        except GraphApiError as exc:
            await pc.close()
            await bridge.close()
            raise CallUnavailable(f"WhatsApp refused the call: {exc}") from exc
        db_id = await self.storage.create_call(
            call.wa_call_id, call.from_number, to, call.direction
        )
        assert db_id is not None, "Meta returned an existing call id"
        call.db_id = db_id
        self.calls[call.wa_call_id] = call
        self.metrics.calls.inc(direction=call.direction)
        self.metrics.calls_active.set(len(self.active_calls()))
        await self._set_state(call, "dialing", "dialing", agent=agent, columns={"agent": agent})
        answer = await self._open_agent_leg(call, browser_offer)
        call.tasks.append(self.spawn(self._watch_media(call)))
        if self.settings.transcription_enabled:
            call.ai = CallAi(self, call)
            call.tasks.append(self.spawn(call.ai.start_transcription()))
        for early in self._early.pop(call.wa_call_id, []):
            await self._outbound_event(early)
        return call.wa_call_id, answer

    async def _outbound_event(self, event: CallConnect | CallStatus) -> None:
        call = self.calls.get(event.call_id)
        if call is None:
            if len(self._early) < EARLY_EVENTS_KEPT:
                self._early.setdefault(event.call_id, []).append(event)
            return
        if isinstance(event, CallStatus):
            await self.storage.record_event(call.db_id, "status", status=event.status)
            if event.status == "REJECTED":
                await self.end(call, "whatsapp: REJECTED by the user", tell_whatsapp=False)
            return
        pc = call.legs["whatsapp"].pc
        if event.sdp_type != "answer" or pc.remoteDescription is not None:
            logger.info("ignored %s connect for %s", event.sdp_type, call.wa_call_id)
            return
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=event.sdp, type="answer"))
        except Exception as exc:
            logger.warning("answer of %s could not be applied: %s", call.wa_call_id, exc)
            await self.end(call, f"bad answer from WhatsApp: {exc}", tell_whatsapp=True)
            return
        call.bridge.last_caller_audio = time.monotonic()
        await self._set_state(call, "human", "connected", columns={"answered_at": utcnow()})

    # -- ending -----------------------------------------------------------------------------

    async def end(self, call: Call, reason: str, *, tell_whatsapp: bool) -> None:
        """End a call on every leg, once; save its state and diagnostics."""
        if call.state == "ended":
            return
        call.state, call.end_reason = "ended", reason
        logger.info("call %s ended: %s", call.wa_call_id, reason)
        current = asyncio.current_task()
        for task in call.tasks:
            if task is not current:
                task.cancel()
        if tell_whatsapp:
            # A call never accepted is declined; an accepted one is terminated.
            action = self.graph.terminate if call.accepted else self.graph.reject
            try:
                await action(call.wa_call_id)
            except GraphApiError as exc:
                logger.warning("ending %s at WhatsApp failed: %s", call.wa_call_id, exc)
        for name, leg in call.legs.items():
            with contextlib.suppress(Exception):
                content = await leg.render()
                await self.storage.save_diagnostic(
                    call.db_id, name, leg.filename(call.wa_call_id), content
                )
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await leg.pc.close()
            except TimeoutError:
                logger.error("closing the %s leg of %s timed out", name, call.wa_call_id)
        await call.bridge.close()
        if call.ai is not None:
            await call.ai.close()
        await self.storage.record_event(
            call.db_id,
            "ended",
            state="ended",
            reason=reason,
            columns={"ended_at": utcnow(), "end_reason": reason[:500]},
        )
        self.metrics.calls_active.set(len(self.active_calls()))
        self.notify("call", call)
        self.calls.pop(call.wa_call_id, None)

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
            asyncio.ensure_future(self.end(call, SHUTTING_DOWN, tell_whatsapp=True))
            for call in calls
        ]
        if endings:
            _, late = await asyncio.wait(endings, timeout=budget)
            for task in late:
                task.cancel()
            await asyncio.gather(*endings, return_exceptions=True)
            # A call whose ending hung (a Graph API that does not answer) is still recorded.
            await asyncio.gather(
                *(self._record_end(call, SHUTTING_DOWN) for call in calls if call.db_id),
                return_exceptions=True,
            )
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

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


def _receiver_of(pc: RTCPeerConnection, track: MediaStreamTrack) -> RTCRtpReceiver | None:
    """The receiver of ``pc`` that ``track`` arrives on."""
    return next((r for r in pc.getReceivers() if r.track is track), None)
