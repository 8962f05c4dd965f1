"""The OpenAI side of one call: live transcription, the AI assistant and the caller's keypad.

A :class:`CallAi` belongs to one call. It starts the two transcription legs (caller audio,
agent audio) and the assistant leg, stores every finished transcript segment and tool call,
pushes them to the console, and turns the caller's DTMF digits into keypad entries for the
assistant. A leg that fails or drops never ends the call: the router is told and the call
falls back to a human. All it may ask of the router is the narrow :class:`AiHost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any, Protocol

from aiortc.mediastreams import MediaStreamTrack
from openai import AsyncOpenAI

from webrtc_ext import PeerConnectionConfig

from .assistant.keypad import KeypadCollector, KeypadEntry
from .assistant.legs import AssistantLeg, TranscriptionLeg, TranscriptSegment
from .assistant.tools import Toolbox, ToolCall, lookup_case_tool, transfer_to_human_tool
from .bridge import MediaBridge
from .realtime.client import RealtimeError, RealtimeSettings
from .settings import Settings

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0
CONTINUE = (
    "Tell the caller you are back with them and continue the conversation where it stopped. "
    "Do not greet them again."
)
HUMAN_KEY = "0"
"""A keypad entry of just this key asks the assistant for a human (it then transfers)."""


class AiHost(Protocol):
    """What the AI side of one call may ask of the router (one call; the router implements it)."""

    @property
    def settings(self) -> Settings:
        """The service's settings."""

    @property
    def call_id(self) -> str:
        """The WhatsApp call id (for log lines)."""

    @property
    def bridge(self) -> MediaBridge:
        """The call's media bridge."""

    def peer_config(self) -> PeerConnectionConfig:
        """The configuration of a new leg."""

    def openai_client(self) -> AsyncOpenAI:
        """The service's ``openai`` client, shared by every Realtime leg (the host closes it)."""

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> object:
        """Run ``coroutine`` in the background (its failure is logged)."""

    def notify(self, kind: str, **data: Any) -> None:
        """Tell the console (``transcript``, ``toolcall``, ``ai``)."""

    async def store_event(self, event: str, **fields: Any) -> None:
        """Append to the call's timeline."""

    async def store_segment(self, speaker: str, text: str) -> None:
        """Store a finished transcript segment."""

    async def store_tool_call(
        self, name: str, arguments: dict[str, Any], output: str, ok: bool
    ) -> None:
        """Store one tool call of the assistant."""

    def count_leg(self, leg: str, outcome: str) -> None:
        """Count a Realtime leg's outcome (metrics)."""

    async def transferred(self, reason: str, summary: str) -> None:
        """The assistant asked for a human (``transfer_to_human``), with a summary for them."""

    async def assistant_lost(self, reason: str) -> None:
        """The assistant's leg dropped."""


class CallAi:
    """Transcription legs, the assistant and the keypad of one call."""

    def __init__(self, host: AiHost) -> None:
        self.host = host
        self.settings = host.settings
        self.transcribers: dict[str, TranscriptionLeg] = {}
        self.assistant: AssistantLeg | None = None
        self.history: list[TranscriptSegment] = []
        self.status: dict[str, str] = {}
        """Leg (``assistant``, ``caller transcription``, ...) → ``running`` or why it stopped."""
        self.keypad = KeypadCollector(pause=self.settings.keypad_pause)
        self._assistant_audio: MediaStreamTrack | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False

    def realtime_settings(self) -> RealtimeSettings:
        """Where the Realtime API is, with the router's peer configuration."""
        return RealtimeSettings(
            self.settings.realtime_base_url,
            self.settings.openai_api_key,
            self.host.peer_config(),
            client=self.host.openai_client(),
        )

    # -- transcription ------------------------------------------------------------------------

    async def start_transcription(self) -> None:
        """Start transcribing the caller's and the agent's audio (failures are reported)."""
        bridge = self.host.bridge
        await asyncio.gather(
            self._transcribe("caller", bridge.caller_audio()),
            self._transcribe("agent", bridge.agent_audio()),
        )

    async def _transcribe(self, speaker: str, audio: MediaStreamTrack) -> None:
        name = f"{speaker} transcription"
        leg = TranscriptionLeg(self.realtime_settings(), speaker)
        self.transcribers[speaker] = leg
        leg.on("segment", self._on_segment)
        leg.on("delta", lambda item_id, text: self._on_delta(speaker, item_id, text))
        leg.on("stopped", lambda reason: self._on_stopped(name, reason))
        try:
            await leg.start(audio)
        except RealtimeError:
            return  # ``stopped`` said why
        # Transcription needs no 20 ms latency: a packet per transcription_ptime (fewer
        # packets to encrypt and send, the frames untouched).
        frames = max(1, self.settings.transcription_ptime // 20)
        self.host.bridge.feed(audio, leg.client.sender, opus_frames=frames)
        if self._closing:
            await leg.stop()
            return
        self._set_status(name, "running")

    @property
    def caller_transcribed(self) -> bool:
        """Whether the caller transcription leg is running."""
        leg = self.transcribers.get("caller")
        return leg is not None and leg.active

    # -- the assistant --------------------------------------------------------------------------

    async def start_assistant(self, context: str = "", greet: bool = True) -> bool:
        """Connect a fresh assistant (knowing ``context``); false if it could not connect.

        With ``greet`` it speaks first at once; otherwise call :meth:`greet` when it is heard.
        """
        toolbox = Toolbox()
        toolbox.add(lookup_case_tool(self.settings.case_directory))
        toolbox.add(transfer_to_human_tool(self._on_transfer))
        instructions = self.settings.assistant_instructions
        if context:
            instructions += "\n\nYou are taking the call back from a human agent. " + context
        leg = AssistantLeg(
            self.realtime_settings(), instructions, toolbox, greet=greet and not context
        )
        self.assistant = leg
        leg.on("segment", self._on_assistant_segment)
        leg.on("toolcall", self._on_toolcall)
        leg.on("stopped", lambda reason: self._on_assistant_stopped(leg, reason))
        audio = self.host.bridge.caller_audio()
        self._assistant_audio = audio
        try:
            await leg.start(audio)
        except RealtimeError:
            self._release_assistant(leg)
            return False
        self.host.bridge.feed(audio, leg.client.sender)
        track = leg.client.remote_track
        if track is not None:
            receiver = next((r for r in leg.client.pc.getReceivers() if r.track is track), None)
            self.host.bridge.connect_assistant(track, receiver)
        self._set_status("assistant", "running")
        if context:
            try:
                leg.say(CONTINUE)
            except RealtimeError as exc:
                logger.warning("could not ask the assistant to continue: %s", exc)
        return True

    def greet(self) -> None:
        """Ask the assistant to greet the caller now (after a pre-recorded greeting)."""
        if self.assistant is not None and self.assistant.active:
            try:
                self.assistant.say("Greet the caller and ask how you can help.")
            except RealtimeError as exc:
                logger.warning("could not ask the assistant to speak: %s", exc)

    async def stop_assistant(self, reason: str) -> None:
        """Silence and hang up the assistant (its transcript stays)."""
        leg = self.assistant
        if leg is None:
            return
        self._release_assistant(leg)
        with contextlib.suppress(RealtimeError):
            leg.interrupt()
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await leg.stop()
        except TimeoutError:
            logger.warning("stopping the assistant of %s timed out", self.host.call_id)
        self._set_status("assistant", reason)

    def _release_assistant(self, leg: AssistantLeg) -> None:
        if self.assistant is leg:
            self.assistant = None
            if self._assistant_audio is not None:
                self.host.bridge.release(self._assistant_audio)
                self._assistant_audio = None

    def context(self) -> str:
        """The conversation so far, as text for a new assistant's instructions."""
        if not self.history:
            return "Nothing has been said yet."
        lines = "\n".join(f"{s.speaker}: {s.text}" for s in self.history if s.text)
        return "The conversation so far:\n" + lines

    async def _on_transfer(self, reason: str, summary: str) -> None:
        # Runs inside the assistant's event loop: the handover itself goes in the background.
        self.host.spawn(self.host.transferred(reason, summary))

    def _on_assistant_stopped(self, leg: AssistantLeg, reason: str) -> None:
        if self.assistant is not leg or self._closing:
            return
        self._release_assistant(leg)
        self._set_status("assistant", f"stopped: {reason}")
        self.host.spawn(self.host.assistant_lost(reason))

    def _on_assistant_segment(self, segment: TranscriptSegment) -> None:
        # The caller's words come from the caller transcription leg when it runs.
        if segment.speaker == "caller" and self.caller_transcribed:
            return
        self._on_segment(segment)

    def _on_toolcall(self, call: ToolCall) -> None:
        self.host.spawn(self.host.store_tool_call(call.name, call.arguments, call.output, call.ok))
        self.host.notify("toolcall", name=call.name, arguments=call.arguments, output=call.output)

    # -- keypad ---------------------------------------------------------------------------------

    def key(self, digit: str) -> None:
        """One DTMF digit from the caller."""
        entry = self.keypad.press(digit, time.monotonic())
        if entry is not None:
            self._entry(entry)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.keypad.deadline()
        if deadline is not None:
            delay = max(0.0, deadline - time.monotonic()) + 0.05
            self._timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        entry = self.keypad.tick(time.monotonic())
        if entry is not None:
            self._entry(entry)

    def _entry(self, entry: KeypadEntry) -> None:
        self.host.spawn(
            self.host.store_event("keypad_entry", digits=entry.digits, ended_by=entry.ended_by)
        )
        leg = self.assistant
        if leg is None or not leg.active:
            return
        try:
            if entry.digits == HUMAN_KEY:
                leg.tell("The caller pressed 0 to talk to a human agent.")
            else:
                leg.keypad(entry)
        except RealtimeError as exc:
            logger.warning("keypad entry not given to the assistant: %s", exc)

    # -- shared ---------------------------------------------------------------------------------

    def _on_segment(self, segment: TranscriptSegment) -> None:
        if not segment.text:
            return
        self.history.append(segment)
        self.host.spawn(self.host.store_segment(segment.speaker, segment.text))
        self.host.notify("transcript", speaker=segment.speaker, text=segment.text, final=True)

    def _on_delta(self, speaker: str, item_id: str, text: str) -> None:
        self.host.notify("transcript", speaker=speaker, item_id=item_id, text=text, final=False)

    def _on_stopped(self, name: str, reason: str) -> None:
        if not self._closing:
            self._set_status(name, f"stopped: {reason}")

    def _set_status(self, name: str, status: str) -> None:
        self.status[name] = status
        self.host.count_leg(name.replace(" ", "_"), _outcome(status))
        self.host.spawn(self.host.store_event("ai_status", leg=name, status=status))
        self.host.notify("ai", leg=name, status=status)

    def summary(self) -> dict[str, Any]:
        """What the console shows of the AI legs."""
        return dict(self.status)

    async def close(self) -> None:
        """Stop every leg (the call ended)."""
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
        legs: list[TranscriptionLeg | AssistantLeg] = list(self.transcribers.values())
        if self.assistant is not None:
            legs.append(self.assistant)
            self._release_assistant(self.assistant)
        for leg in legs:
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await leg.stop()
            except TimeoutError:
                logger.warning("stopping a Realtime leg of %s timed out", self.host.call_id)


def _outcome(status: str) -> str:
    """A leg's status as a metric label: running, failed, dropped or ended (by us)."""
    if status == "running":
        return "running"
    if "dropped" in status:
        return "dropped"
    return "failed" if status.startswith("stopped") else "ended"
