"""How audio moves between a call's legs, behind a small interface the router depends on.

:class:`RelayMediaBridge` relays decoded audio with aiortc's ``MediaRelay``. It stands in
until the library's raw RTP forwarding and ``RtpMunger`` land; a packet-forwarding bridge
implementing :class:`MediaBridge` can replace it without touching the router.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Protocol

from aiortc.contrib.media import MediaPlayer, MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from .media import SwitchableAudioTrack, rms

logger = logging.getLogger(__name__)


class MediaBridge(Protocol):
    """Audio plumbing of one call: WhatsApp leg ⇄ greeting / agent."""

    to_whatsapp: MediaStreamTrack
    last_caller_audio: float
    caller_level: float

    def set_caller_track(self, track: MediaStreamTrack) -> None:
        """The audio received from the WhatsApp caller."""

    def caller_audio(self) -> MediaStreamTrack:
        """The caller's audio for the agent leg (silence until the caller's track arrives)."""

    def play_greeting(self, path: Path) -> None:
        """Play a file toward the caller until an agent is connected."""

    def connect_agent(self, track: MediaStreamTrack) -> None:
        """Send the agent's audio toward the caller (replacing the greeting)."""

    def disconnect_agent(self) -> None:
        """Stop sending the agent's audio."""

    async def close(self) -> None:
        """Stop every track."""


class RelayMediaBridge:
    """A :class:`MediaBridge` on aiortc's ``MediaRelay`` (decodes and re-encodes)."""

    def __init__(self) -> None:
        self._switch = SwitchableAudioTrack()
        self.to_whatsapp: MediaStreamTrack = self._switch
        self._to_agent = SwitchableAudioTrack()
        self.last_caller_audio = time.monotonic()
        self.caller_level = 0.0
        self._relay = MediaRelay()
        self._caller: MediaStreamTrack | None = None
        self._player: MediaPlayer | None = None
        self._monitor: asyncio.Task[None] | None = None

    def set_caller_track(self, track: MediaStreamTrack) -> None:
        """The audio received from the WhatsApp caller; starts watching its level."""
        self._caller = track
        self._monitor = asyncio.ensure_future(self._watch(self._relay.subscribe(track)))
        self._to_agent.set_source(self._relay.subscribe(track), "caller")

    def caller_audio(self) -> MediaStreamTrack:
        """The caller's audio for the agent leg (silence until the caller's track arrives)."""
        return self._to_agent

    def play_greeting(self, path: Path) -> None:
        """Play ``path`` toward the caller; silence follows when it ends."""
        self._player = MediaPlayer(str(path))
        if self._player.audio is None:
            logger.warning("greeting file %s has no audio", path)
            return
        self._switch.set_source(self._player.audio, "greeting")

    def connect_agent(self, track: MediaStreamTrack) -> None:
        """Send the agent's audio toward the caller."""
        self._switch.set_source(self._relay.subscribe(track), "agent")
        self._stop_player()

    def disconnect_agent(self) -> None:
        """Back to silence toward the caller."""
        self._switch.set_source(None)

    async def close(self) -> None:
        """Stop every track and the level watcher."""
        self._switch.stop()
        self._to_agent.stop()
        self._stop_player()
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor

    def _stop_player(self) -> None:
        if self._player is not None and self._player.audio is not None:
            self._player.audio.stop()
        self._player = None

    async def _watch(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.last_caller_audio = time.monotonic()
            if isinstance(frame, AudioFrame):
                self.caller_level = rms(frame)
