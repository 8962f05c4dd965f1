"""A call's OpenAI legs: live transcription of one side, and the AI assistant.

Each leg wraps a :class:`RealtimeClient` and turns its events into what the call needs:
transcript segments, tool calls run against a :class:`Toolbox`, keypad entries given to the
assistant as text. A leg that fails or drops emits ``stopped`` with the reason, and keeps
every segment it already had.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiortc.mediastreams import MediaStreamTrack
from pyee.asyncio import AsyncIOEventEmitter
from structlog.contextvars import bound_contextvars

from relay_service.assistant.keypad import KeypadEntry
from relay_service.assistant.tools import Toolbox, ToolCall
from relay_service.realtime import events as client_events
from relay_service.realtime.client import RealtimeClient, RealtimeError, RealtimeSettings
from relay_service.realtime.events import Event

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TranscriptSegment:
    """A finished piece of transcript."""

    speaker: str
    """``caller``, ``agent`` or ``assistant``."""
    item_id: str
    text: str
    at: float


class _Leg(AsyncIOEventEmitter):
    """What both legs share: the client, its event loop, and a clean stop."""

    def __init__(
        self, settings: RealtimeSettings, session: dict[str, Any], *, listen: bool = True
    ) -> None:
        super().__init__()
        self.client = RealtimeClient(settings, session, decode_audio=listen, receive_audio=listen)
        self.segments: list[TranscriptSegment] = []
        self.stopped_reason: str | None = None
        self._pump: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def active(self) -> bool:
        """Whether the leg is connected and has not stopped."""
        return self._pump is not None and self.stopped_reason is None

    leg = "realtime"
    """The ``leg`` this leg's log lines (and its tasks') carry."""

    async def start(self, audio: MediaStreamTrack | None = None) -> None:
        """Connect; on failure the leg is stopped and :class:`RealtimeError` is raised."""
        with bound_contextvars(leg=self.leg):
            try:
                await self.client.connect(audio)
            except RealtimeError as exc:
                self._stopped(str(exc))
                raise
            self._pump = asyncio.create_task(self._run())
            await self._started()

    async def _started(self) -> None:
        """Hook: the leg just connected."""

    async def _run(self) -> None:
        async for event in self.client.events():
            try:
                await self._handle(event)
            except Exception:
                logger.exception("%s: could not handle %s", type(self).__name__, event["type"])
        if not self._stopping:
            self._stopped("the Realtime call dropped")

    async def _handle(self, event: Event) -> None:
        raise NotImplementedError

    def _segment(self, speaker: str, item_id: str, text: str) -> None:
        segment = TranscriptSegment(speaker, item_id, text.strip(), time.time())
        self.segments.append(segment)
        self.emit("segment", segment)

    def _stopped(self, reason: str) -> None:
        if self.stopped_reason is None:
            self.stopped_reason = reason
            # A hang-up we asked for is routine; anything else is worth a warning.
            level = logging.INFO if self._stopping else logging.WARNING
            logger.log(level, "%s stopped: %s", type(self).__name__, reason)
            self.emit("stopped", reason)

    async def stop(self) -> None:
        """Hang up and wait for the event loop to end."""
        self._stopping = True
        await self.client.hangup()
        if self._pump is not None:
            await asyncio.gather(self._pump, return_exceptions=True)
        self._stopped("stopped")


class TranscriptionLeg(_Leg):
    """Live transcription of one side of the call (a ``transcription`` session).

    Emits ``delta`` (item_id, text) while words arrive and ``segment`` for each finished one.
    """

    def __init__(
        self, settings: RealtimeSettings, speaker: str, language: str = "en", prompt: str = ""
    ) -> None:
        session: dict[str, Any] = {
            "type": "transcription",
            "audio": {
                "input": {
                    "transcription": {"model": "gpt-4o-transcribe", "language": language},
                    "turn_detection": {"type": "server_vad"},
                }
            },
        }
        if prompt:
            session["audio"]["input"]["transcription"]["prompt"] = prompt
        # Nobody listens to a transcription session: it is asked to send no audio at all.
        super().__init__(settings, session, listen=False)
        self.speaker = speaker
        self.leg = f"{speaker}_transcription"

    async def _handle(self, event: Event) -> None:
        kind = event["type"]
        if kind == "conversation.item.input_audio_transcription.delta":
            self.emit("delta", str(event.get("item_id", "")), str(event.get("delta", "")))
        elif kind == "conversation.item.input_audio_transcription.completed":
            self._segment(self.speaker, str(event.get("item_id", "")), str(event["transcript"]))
        elif kind == "error":
            logger.warning("transcription (%s) error: %s", self.speaker, event.get("error"))


class AssistantLeg(_Leg):
    """The AI assistant (a ``realtime`` session with tools) that answers the call first.

    Emits ``segment`` for what the caller said (speaker ``caller``) and what the assistant
    said (``assistant``), and ``toolcall`` with each :class:`ToolCall`.
    """

    leg = "assistant"

    def __init__(
        self,
        settings: RealtimeSettings,
        instructions: str,
        toolbox: Toolbox,
        voice: str = "alloy",
        greet: bool = True,
    ) -> None:
        session = {
            "type": "realtime",
            "model": "gpt-realtime",
            "instructions": instructions,
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "transcription": {"model": "gpt-4o-transcribe"},
                    "turn_detection": {"type": "server_vad", "create_response": True},
                },
                "output": {"voice": voice},
            },
            "tools": toolbox.specs(),
            "tool_choice": "auto",
        }
        super().__init__(settings, session)
        self.toolbox = toolbox
        self.tool_calls: list[ToolCall] = []
        self._greet = greet

    async def _started(self) -> None:
        if self._greet:
            self.client.send(client_events.client_response_create())

    def keypad(self, entry: KeypadEntry) -> None:
        """Give a keypad entry to the assistant as text, so numbers never rely on speech."""
        text = f"The caller typed on the keypad: {entry.digits}"
        self.client.send(client_events.client_user_text(text))
        self.client.send(client_events.client_response_create())

    def tell(self, text: str) -> None:
        """Give the assistant a user text message and ask it to respond."""
        self.client.send(client_events.client_user_text(text))
        self.client.send(client_events.client_response_create())

    def say(self, instructions: str) -> None:
        """Ask the assistant to speak now (e.g. when it takes the call back from a human)."""
        self.client.send(client_events.client_response_create(instructions))

    def interrupt(self) -> None:
        """Stop the assistant's current speech at once."""
        self.client.send(client_events.client_simple("response.cancel"))
        self.client.send(client_events.client_simple("output_audio_buffer.clear"))

    async def _handle(self, event: Event) -> None:
        kind = event["type"]
        if kind == "response.function_call_arguments.done":
            call = await self.toolbox.run(
                str(event.get("call_id", "")),
                str(event.get("name", "")),
                str(event.get("arguments", "")),
            )
            self.tool_calls.append(call)
            self.emit("toolcall", call)
            if self.client.pc.connectionState == "closed":
                return
            self.client.send(client_events.client_function_output(call.call_id, call.output))
            if call.name != "transfer_to_human":
                self.client.send(client_events.client_response_create())
        elif kind == "conversation.item.input_audio_transcription.completed":
            self._segment("caller", str(event.get("item_id", "")), str(event["transcript"]))
        elif kind == "response.output_audio_transcript.done":
            self._segment("assistant", str(event.get("item_id", "")), str(event["transcript"]))
        elif kind == "error":
            logger.warning("assistant error: %s", event.get("error"))
