"""A client of the OpenAI Realtime API over WebRTC.

The SDP exchange goes through the ``openai`` SDK (``client.realtime.calls.create``) pointed at
a configurable base URL, so the simulator and the real API are one URL apart. Events travel on
the ``oai-events`` data channel that the client creates.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack
from openai import AsyncOpenAI
from pyee.asyncio import AsyncIOEventEmitter

from relay_service.realtime.events import Event, parse_event
from webrtc_ext import (
    PeerConnectionConfig,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)

logger = logging.getLogger(__name__)


class RealtimeError(Exception):
    """The Realtime call could not be set up or was lost."""


@dataclass(frozen=True)
class RealtimeSettings:
    """Where the Realtime API is and how to reach it."""

    base_url: str
    """e.g. ``https://api.openai.com/v1`` or the simulator's ``http://127.0.0.1:PORT/v1``."""
    api_key: str
    peer_config: PeerConnectionConfig = field(default_factory=PeerConnectionConfig)
    connect_timeout: float = 15.0
    max_retries: int = 1
    """SDK retries of a failed SDP exchange (each one delays the call's first audio)."""
    client: AsyncOpenAI | None = field(default=None, compare=False)
    """An ``openai`` client to share (its owner closes it); by default each call makes its
    own. One per service saves ~0.8 MB per leg (an HTTP pool and a TLS context each)."""


class RealtimeClient(AsyncIOEventEmitter):
    """One Realtime call: an audio track each way and the ``oai-events`` channel.

    Emits ``event`` (each server event, a dict), ``open`` once the data channel is open and
    ``closed`` when the call ends for any reason.
    """

    def __init__(
        self,
        settings: RealtimeSettings,
        session: dict[str, Any],
        *,
        decode_audio: bool = True,
        receive_audio: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.session = session
        self.decode_audio = decode_audio
        """Whether the remote audio is decoded for :attr:`remote_track`. A leg that never
        reads it (transcription) says ``False``: its packets are only counted."""
        self.receive_audio = receive_audio
        """Whether the Realtime side may send audio at all: ``False`` offers ``sendonly``, so
        no packet comes back to be decrypted and dropped (a transcription session's)."""
        self.pc = RTCPeerConnection(settings.peer_config)
        self.call_id: str | None = None
        self.remote_track: MediaStreamTrack | None = None
        self.sender: RTCRtpSender | None = None
        """The sender of our audio (after :meth:`connect`)."""
        self._channel = self.pc.createDataChannel("oai-events")
        self._opened = asyncio.Event()
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._closed = False
        self._owns_openai = settings.client is None
        self._openai = settings.client or new_openai_client(settings)
        self._channel.on("open", self._on_open)
        self._channel.on("message", self._on_message)
        self._channel.on("close", lambda: asyncio.ensure_future(self.close()))
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def _on_open(self) -> None:
        self._opened.set()
        self.emit("open")

    def _on_message(self, message: str | bytes) -> None:
        event = parse_event(message)
        if event is not None:
            self._queue.put_nowait(event)
            self.emit("event", event)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self.remote_track = track
        if not self.decode_audio:
            for receiver in self.pc.getReceivers():
                if receiver.track is track and isinstance(receiver, RTCRtpReceiver):
                    receiver.enable_raw()  # packets still counted by statistics, never decoded

    async def _on_state(self) -> None:
        if self.pc.connectionState == "failed":
            await self.close()

    async def connect(self, audio: MediaStreamTrack | None = None) -> None:
        """Offer audio (``audio`` or nothing yet) and the channel; wait until it is open."""
        direction = "sendrecv" if self.receive_audio else "sendonly"
        transceiver = self.pc.addTransceiver("audio", direction=direction)
        self.sender = transceiver.sender
        if audio is not None:
            transceiver.sender.replaceTrack(audio)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        assert self.pc.localDescription is not None
        try:
            response = await self._openai.realtime.calls.create(
                sdp=self.pc.localDescription.sdp,
                session=self.session,  # type: ignore[arg-type]
                timeout=self.settings.connect_timeout,
            )
        except Exception as exc:
            await self.close()
            raise RealtimeError(f"the Realtime API refused the call: {exc}") from exc
        location = response.response.headers.get("location", "")
        self.call_id = location.rstrip("/").rsplit("/", 1)[-1] or None
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
        try:
            await asyncio.wait_for(self._opened.wait(), self.settings.connect_timeout)
        except TimeoutError:
            await self.close()
            raise RealtimeError("the oai-events channel did not open in time") from None

    def send(self, event: Event) -> None:
        """Send one client event on the data channel."""
        if self._channel.readyState != "open":
            raise RealtimeError(f"cannot send {event.get('type')}: the channel is not open")
        self._channel.send(json.dumps(event))

    async def events(self) -> AsyncIterator[Event]:
        """Server events as they arrive, until the call ends."""
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event

    async def wait_for(self, kind: str, timeout: float = 15.0) -> Event:
        """The next server event of type ``kind`` (others are skipped)."""

        async def find() -> Event:
            async for event in self.events():
                if event["type"] == kind:
                    return event
            raise RealtimeError(f"the call ended before {kind}")

        return await asyncio.wait_for(find(), timeout)

    async def hangup(self) -> None:
        """Hang up through the API, then close."""
        if self.call_id is not None and not self._closed:
            try:
                await self._openai.realtime.calls.hangup(self.call_id)
            except Exception as exc:
                logger.info("Realtime hangup of %s failed: %s", self.call_id, exc)
        await self.close()

    async def close(self) -> None:
        """Close the peer connection; emits ``closed`` once."""
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(None)
        await self.pc.close()
        if self._owns_openai:
            await self._openai.close()
        self.emit("closed")


def new_openai_client(settings: RealtimeSettings) -> AsyncOpenAI:
    """An ``openai`` client for the Realtime API that ``settings`` point at."""
    return AsyncOpenAI(
        api_key=settings.api_key, base_url=settings.base_url, max_retries=settings.max_retries
    )
