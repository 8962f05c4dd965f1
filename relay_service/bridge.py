"""How audio moves between a call's legs, behind a small interface the router depends on.

The stream toward WhatsApp has exactly one **source** at a time: the greeting, the assistant,
the human agent, or silence (:class:`Source`). The router only ever says which one; the bridge
keeps the WhatsApp-bound stream continuous across every switch. Everything the caller says is
forked to whoever needs it (agent, assistant, transcription), and the agent's audio to its
transcription.

:class:`RelayMediaBridge` does this with decoded audio on aiortc's ``MediaRelay`` (one encoder
toward WhatsApp behind a :class:`SwitchableAudioTrack`). ``RtpMediaBridge``
(``relay_service.rtpbridge``: raw RTP fan-out, one ``RtpMunger`` toward WhatsApp) implements the
same :class:`MediaBridge` protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.contrib.media import MediaPlayer, MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame
from av.frame import Frame
from av.packet import Packet

from .callstate import Source as Source  # re-exported: the bridge's vocabulary
from .media import SwitchableAudioTrack, rms

logger = logging.getLogger(__name__)


class MediaBridge(Protocol):
    """Audio plumbing of one call: WhatsApp leg ⇄ greeting / assistant / agent."""

    hold_music: Path | None

    to_whatsapp: MediaStreamTrack
    last_caller_audio: float
    on_first_caller_audio: Callable[[float], None] | None
    """Called once with the (monotonic) arrival time of the caller's first audio."""

    @property
    def caller_level(self) -> float:
        """The caller's audio level, on the 16-bit scale :func:`~relay_service.media.rms` gives."""

    @property
    def source(self) -> Source:
        """The current source toward WhatsApp."""

    def set_caller_track(
        self, track: MediaStreamTrack, receiver: RTCRtpReceiver | None = None
    ) -> None:
        """The audio received from the WhatsApp caller (and the receiver it arrives on)."""

    def caller_audio(self) -> MediaStreamTrack:
        """A new fork of the caller's audio (silence until the caller's track arrives)."""

    def agent_audio(self) -> MediaStreamTrack:
        """The human agent's audio, for transcription (silence while no agent is connected)."""

    def feed(
        self, track: MediaStreamTrack, sender: RTCRtpSender | None, *, opus_frames: int = 1
    ) -> None:
        """``sender`` plays a fork from :meth:`caller_audio` / :meth:`agent_audio`;
        ``opus_frames`` Opus frames to a packet where the bridge forwards packets."""

    def release(self, track: MediaStreamTrack) -> None:
        """Stop a fork handed out by :meth:`caller_audio` or :meth:`agent_audio`."""

    def play_greeting(self, path: Path) -> None:
        """Play a file toward the caller (source ``greeting``)."""

    async def greeting_finished(self) -> None:
        """Return once no greeting is playing (at once if none was)."""

    def attach_whatsapp_sender(self, sender: RTCRtpSender) -> None:
        """The WhatsApp leg's sender, which plays :attr:`to_whatsapp`."""

    def connect_assistant(
        self, track: MediaStreamTrack, receiver: RTCRtpReceiver | None = None
    ) -> None:
        """The assistant's audio (it reaches the caller once the source is ``assistant``)."""

    def connect_agent(
        self, track: MediaStreamTrack, receiver: RTCRtpReceiver | None = None
    ) -> None:
        """The agent's audio (and the receiver it arrives on); the source becomes ``agent``."""

    def disconnect_agent(self) -> None:
        """Forget the agent's audio (silence toward the caller if it was the source)."""

    def use(self, source: Source) -> None:
        """Switch what the caller hears."""

    async def close(self) -> None:
        """Stop every track."""


class RelayMediaBridge:
    """A :class:`MediaBridge` on aiortc's ``MediaRelay`` (decodes and re-encodes)."""

    def __init__(self) -> None:
        self._switch = SwitchableAudioTrack()
        self.to_whatsapp: MediaStreamTrack = self._switch
        self.last_caller_audio = time.monotonic()
        self.on_first_caller_audio: Callable[[float], None] | None = None
        self.caller_level = 0.0
        self._relay = MediaRelay()
        self._caller: MediaStreamTrack | None = None
        self._player: MediaPlayer | None = None
        self._inputs: dict[Source, MediaStreamTrack] = {}
        self._source = Source.SILENCE
        self._feeding: MediaStreamTrack | None = None
        self._caller_forks: dict[SwitchableAudioTrack, MediaStreamTrack | None] = {}
        self._agent_fork = SwitchableAudioTrack()
        self._agent_proxy: MediaStreamTrack | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._greeting_done = asyncio.Event()
        self._greeting_done.set()
        self._drain: asyncio.Task[None] | None = None
        self.hold_music: Path | None = None
        """What the caller hears on hold (silence when ``None``)."""
        self._hold_player: MediaPlayer | None = None

    @property
    def source(self) -> Source:
        """The current source toward WhatsApp."""
        return self._source

    def set_caller_track(
        self, track: MediaStreamTrack, receiver: RTCRtpReceiver | None = None
    ) -> None:
        """The audio received from the WhatsApp caller; starts watching its level."""
        self._caller = track
        self._monitor = asyncio.ensure_future(self._watch(self._relay.subscribe(track)))
        for fork in self._caller_forks:
            self._feed_fork(fork)

    def caller_audio(self) -> MediaStreamTrack:
        """A new fork of the caller's audio (silence until the caller's track arrives)."""
        fork = SwitchableAudioTrack()
        self._caller_forks[fork] = None
        if self._caller is not None:
            self._feed_fork(fork)
        return fork

    def _feed_fork(self, fork: SwitchableAudioTrack) -> None:
        assert self._caller is not None
        proxy = self._relay.subscribe(self._caller)
        self._caller_forks[fork] = proxy
        fork.set_source(proxy, "caller")

    def agent_audio(self) -> MediaStreamTrack:
        """The agent's audio, for transcription (silence while no agent is connected)."""
        return self._agent_fork

    def feed(
        self, track: MediaStreamTrack, sender: RTCRtpSender | None, *, opus_frames: int = 1
    ) -> None:
        """Nothing to do: the sender plays (and encodes) the fork's decoded frames."""

    def release(self, track: MediaStreamTrack) -> None:
        """Stop a fork (and its relay subscription)."""
        if isinstance(track, SwitchableAudioTrack) and track in self._caller_forks:
            proxy = self._caller_forks.pop(track)
            if proxy is not None:
                proxy.stop()
        track.stop()

    def play_greeting(self, path: Path) -> None:
        """Play ``path`` toward the caller; silence follows when it ends."""
        self._player = MediaPlayer(str(path))
        if self._player.audio is None:
            logger.warning("greeting file %s has no audio", path)
            return
        self._greeting_done.clear()
        self._inputs[Source.GREETING] = _EndNotifyingTrack(self._player.audio, self._greeting_done)
        self.use(Source.GREETING)

    async def greeting_finished(self) -> None:
        """Return once no greeting is playing (at once if none was)."""
        await self._greeting_done.wait()

    def attach_whatsapp_sender(self, sender: RTCRtpSender) -> None:
        """Nothing to do: this bridge only hands the sender a track."""

    def connect_assistant(
        self, track: MediaStreamTrack, receiver: RTCRtpReceiver | None = None
    ) -> None:
        """The assistant's audio; it reaches the caller once the source is ``assistant``."""
        self._inputs[Source.ASSISTANT] = track
        # Until then its frames are read and dropped, so none pile up to be heard late.
        self._stop_drain()
        self._drain = asyncio.ensure_future(_discard(self._relay.subscribe(track, buffered=False)))
        if self._source is Source.ASSISTANT:
            self.use(Source.ASSISTANT)

    def connect_agent(
        self, track: MediaStreamTrack, receiver: RTCRtpReceiver | None = None
    ) -> None:
        """Send the agent's audio toward the caller (and to its transcription)."""
        self._inputs[Source.AGENT] = track
        if self._agent_proxy is not None:
            self._agent_proxy.stop()
        self._agent_proxy = self._relay.subscribe(track)
        self._agent_fork.set_source(self._agent_proxy, "agent")
        self.use(Source.AGENT)

    def disconnect_agent(self) -> None:
        """Forget the agent's audio."""
        self._inputs.pop(Source.AGENT, None)
        self._agent_fork.set_source(None)
        if self._agent_proxy is not None:
            self._agent_proxy.stop()
            self._agent_proxy = None
        if self._source is Source.AGENT:
            self.use(Source.SILENCE)

    def use(self, source: Source) -> None:
        """Switch what the caller hears; an input not connected (yet) is silence."""
        if self._feeding is not None and self._source not in (Source.GREETING, Source.HOLD):
            self._feeding.stop()  # a relay subscription: unsubscribe
        self._feeding = None
        if source is not Source.GREETING:
            self._stop_player()
        if source is not Source.HOLD:
            self._stop_hold()
        elif self._hold_player is None and self.hold_music is not None:
            self._hold_player = MediaPlayer(str(self.hold_music), loop=True)
            if self._hold_player.audio is not None:
                self._inputs[Source.HOLD] = self._hold_player.audio
        self._source = source
        track = self._inputs.get(source)
        if track is None:
            self._switch.set_source(None)
            return
        if source not in (Source.GREETING, Source.HOLD):
            track = self._relay.subscribe(track)
        self._feeding = track
        self._switch.set_source(track, source.value)

    def _stop_drain(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None

    async def close(self) -> None:
        """Stop every track and the level watcher."""
        self._stop_drain()
        self._switch.stop()
        self._agent_fork.stop()
        for fork in list(self._caller_forks):
            self.release(fork)
        self._stop_player()
        self._stop_hold()
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor

    def _stop_hold(self) -> None:
        if self._hold_player is not None and self._hold_player.audio is not None:
            self._hold_player.audio.stop()
        self._hold_player = None
        self._inputs.pop(Source.HOLD, None)

    def _stop_player(self) -> None:
        if self._player is not None and self._player.audio is not None:
            self._player.audio.stop()
        self._player = None
        self._inputs.pop(Source.GREETING, None)
        self._greeting_done.set()

    async def _watch(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.last_caller_audio = time.monotonic()
            if self.on_first_caller_audio is not None:
                first, self.on_first_caller_audio = self.on_first_caller_audio, None
                first(self.last_caller_audio)
            if isinstance(frame, AudioFrame):
                self.caller_level = rms(frame)


class _EndNotifyingTrack(MediaStreamTrack):
    """A track that passes ``source``'s frames on and sets ``ended`` when it ends."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack, ended: asyncio.Event) -> None:
        super().__init__()
        self._source = source
        self._ended = ended

    async def recv(self) -> Frame | Packet:  # type: ignore[type-arg]
        """The source's next frame."""
        try:
            return await self._source.recv()
        except MediaStreamError:
            self._ended.set()
            raise

    def stop(self) -> None:
        """Stop the source too."""
        super().stop()
        self._source.stop()
        self._ended.set()


async def _discard(track: MediaStreamTrack) -> None:
    """Read ``track`` until it ends, dropping every frame."""
    try:
        while True:
            await track.recv()
    except MediaStreamError:
        return
    finally:
        track.stop()
