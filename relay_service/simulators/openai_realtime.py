"""A simulator of the OpenAI Realtime API over WebRTC, speaking its exact wire shapes.

Endpoints (under ``/v1``): ``POST /realtime/calls`` (multipart ``sdp`` + ``session`` with an API
key, or raw ``application/sdp`` with an ephemeral key) answering ``201`` with the SDP answer and
``Location: /v1/realtime/calls/{call_id}``; ``POST /realtime/calls/{call_id}/hangup``;
``POST /realtime/client_secrets``. Media: one Opus audio track both ways and the client's
``oai-events`` data channel carrying JSON events (GA names).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioResampler

from relay_service import jsonlimits
from relay_service.realtime.events import Event, new_id, parse_event
from relay_service.simulators.realtime_session import RealtimeSession, Speak
from relay_service.simulators.speech import (
    ASR_RATE,
    DEFAULT_PHRASES,
    OUTPUT_RATE,
    Recognizer,
    SpeechTrack,
    synthesize,
)
from relay_service.simulators.vad import EnergyVad, SpeechStarted, SpeechStopped
from webrtc_ext import (
    PeerConnectionConfig,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)

logger = logging.getLogger(__name__)


def openai_error(status: int, message: str, kind: str = "invalid_request_error",
                 code: str | None = None) -> web.Response:  # fmt: skip
    """An error response in OpenAI's shape."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status)


EPHEMERAL_SECONDS = (10, 7200, 600)
"""Lifetime of an ephemeral key: least, most, default (OpenAI's documented bounds)."""


def _expiry_seconds(expires_after: Any) -> int:
    """Seconds from ``expires_after {anchor:"created_at", seconds}``; ValueError if unusable."""
    low, high, default = EPHEMERAL_SECONDS
    if expires_after is None:
        return default
    if not isinstance(expires_after, dict):
        raise ValueError("expires_after must be an object {anchor, seconds}.")
    if expires_after.get("anchor", "created_at") != "created_at":
        raise ValueError("expires_after.anchor must be 'created_at'.")
    seconds = expires_after.get("seconds", default)
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not low <= seconds <= high:
        raise ValueError(f"expires_after.seconds must be an integer from {low} to {high}.")
    return seconds


@dataclass
class SimulatedCall:
    """One WebRTC call to the simulator."""

    call_id: str
    pc: RTCPeerConnection
    session: RealtimeSession
    speaker: SpeechTrack
    channel: RTCDataChannel | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    received_events: list[Event] = field(default_factory=list)

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


class RealtimeSimulator:
    """The aiohttp application and the calls it holds."""

    def __init__(
        self,
        *,
        api_keys: set[str] | None = None,
        peer_config: PeerConnectionConfig | None = None,
        phrases: tuple[str, ...] = DEFAULT_PHRASES,
    ) -> None:
        self.api_keys = api_keys
        self.peer_config = peer_config or PeerConnectionConfig(host_addresses=["127.0.0.1"])
        self.phrases = phrases
        self.calls: dict[str, SimulatedCall] = {}
        self.ephemeral: dict[str, tuple[float, dict[str, Any]]] = {}
        self.fail_next_calls = 0
        self._recognizer: Recognizer | None = None
        self.app = web.Application()
        self.app.add_routes(
            [
                web.post("/v1/realtime/calls", self.create_call),
                web.post("/v1/realtime/calls/{call_id}/hangup", self.hangup),
                web.post("/v1/realtime/client_secrets", self.client_secret),
            ]
        )
        self.app.on_shutdown.append(self._shutdown)

    # -- HTTP -------------------------------------------------------------------------------

    def _bearer(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        return header[7:].strip() if header.startswith("Bearer ") else None

    def _authorised(self, key: str | None) -> bool:
        if not key:
            return False
        if key.startswith("ek_"):
            expiry = self.ephemeral.get(key, (0.0, {}))[0]
            return expiry > time.time()
        return self.api_keys is None or key in self.api_keys

    async def client_secret(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/realtime/client_secrets``: an ephemeral key bound to a session."""
        if not self._authorised(self._bearer(request)):
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        try:
            body = jsonlimits.loads(await request.read())
        except jsonlimits.JsonRejected:
            return openai_error(400, "The body must be JSON.")
        if not isinstance(body, dict):
            return openai_error(400, "The body must be a JSON object.")
        try:
            seconds = _expiry_seconds(body.get("expires_after"))
        except ValueError as exc:
            return openai_error(400, str(exc), code="invalid_value")
        session = body.get("session", {"type": "realtime"})
        if not isinstance(session, dict):
            return openai_error(400, "session must be an object.", code="invalid_type")
        session.setdefault("type", "realtime")
        now = time.time()
        for expired in [k for k, (expiry, _) in self.ephemeral.items() if expiry <= now]:
            del self.ephemeral[expired]
        value, expires_at = new_id("ek"), int(now) + seconds
        self.ephemeral[value] = (float(expires_at), session)
        return web.json_response({"value": value, "expires_at": expires_at, "session": session})

    async def create_call(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/realtime/calls``: answer an SDP offer."""
        key = self._bearer(request)
        if not self._authorised(key):
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        if self.fail_next_calls > 0:
            self.fail_next_calls -= 1
            return openai_error(500, "The server had an error.", kind="server_error")
        try:
            offer, session = await self._read_offer(request, key or "")
        except ValueError as exc:
            return openai_error(400, str(exc))
        if session.get("type", "realtime") not in ("realtime", "transcription"):
            return openai_error(400, "session.type must be 'realtime' or 'transcription'")
        try:
            call = await self._answer(offer, session)
        except Exception as exc:
            logger.warning("could not answer a Realtime offer: %s", exc)
            return openai_error(400, f"Invalid SDP offer: {exc}")
        assert call.pc.localDescription is not None
        return web.Response(
            status=201,
            body=call.pc.localDescription.sdp.encode(),
            content_type="application/sdp",
            headers={"Location": f"/v1/realtime/calls/{call.call_id}"},
        )

    async def _read_offer(self, request: web.Request, key: str) -> tuple[str, dict[str, Any]]:
        if request.content_type == "application/sdp":
            if not key.startswith("ek_"):
                raise ValueError("A raw SDP offer needs an ephemeral key (ek_...)")
            return await request.text(), dict(self.ephemeral[key][1])
        if request.content_type != "multipart/form-data":
            raise ValueError("Send multipart/form-data (sdp, session) or application/sdp")
        sdp, session = None, {"type": "realtime"}
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            if part.name == "sdp":
                sdp = await part.text()
            elif part.name == "session":
                session = jsonlimits.loads(await part.text())
        if not sdp:
            raise ValueError("Missing the 'sdp' part")
        if not isinstance(session, dict):
            raise ValueError("The 'session' part must be a JSON object")
        return sdp, session

    async def hangup(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/realtime/calls/{call_id}/hangup``."""
        if not self._authorised(self._bearer(request)):
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        call = self.calls.get(request.match_info["call_id"])
        if call is None:
            return openai_error(404, "Call not found.", code="call_not_found")
        await self._close(call)
        return web.Response(status=200)

    # -- WebRTC -----------------------------------------------------------------------------

    async def _answer(self, offer: str, session: dict[str, Any]) -> SimulatedCall:
        pc = RTCPeerConnection(self.peer_config)
        speaker = SpeechTrack()
        call = SimulatedCall(new_id("rtc"), pc, RealtimeSession(dict(session)), speaker)
        self.calls[call.call_id] = call

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label != "oai-events":
                logger.info("ignored data channel %r", channel.label)
                return
            call.channel = channel
            channel.on("message", lambda message: self._on_message(call, message))
            call.session.start()
            self._flush(call)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                call.spawn(self._listen(call, track))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._close(call)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        pc.addTrack(speaker)
        await pc.setLocalDescription(await pc.createAnswer())
        return call

    def _on_message(self, call: SimulatedCall, message: str | bytes) -> None:
        event = parse_event(message)
        if event is None:
            call.session.outbox.append(call.session.events.error("Invalid JSON event"))
        else:
            call.received_events.append(event)
            if event["type"] == "output_audio_buffer.clear":
                call.speaker.clear()
            call.session.client_event(event)
        self._flush(call)

    def _flush(self, call: SimulatedCall) -> None:
        events, speech = call.session.drain()
        channel = call.channel
        if channel is not None and channel.readyState == "open":
            for event in events:
                channel.send(json.dumps(event))
        for speak in speech:
            call.spawn(self._speak(call, speak))

    async def _speak(self, call: SimulatedCall, speak: Speak) -> None:
        pcm = await synthesize(speak.text, OUTPUT_RATE)
        await call.speaker.play(speak.response_id, pcm)
        call.session.playback_finished(speak.response_id)
        self._flush(call)

    def recognizer(self, session: dict[str, Any]) -> Recognizer:
        """A recogniser biased toward the default phrases and the session's ``prompt``."""
        transcription = session.get("audio", {}).get("input", {}).get("transcription") or {}
        prompt = str(transcription.get("prompt") or "")
        extra = tuple(p for p in re.split(r"[.!?;\n]+", prompt.lower()) if p.strip())
        if not extra:
            if self._recognizer is None:
                self._recognizer = Recognizer(self.phrases)
            return self._recognizer
        return Recognizer(self.phrases + extra)

    async def _listen(self, call: SimulatedCall, track: MediaStreamTrack) -> None:
        turn = call.session.session.get("audio", {}).get("input", {}).get("turn_detection") or {}
        vad = EnergyVad(
            ASR_RATE,
            threshold=float(turn.get("threshold", 0.5)),
            prefix_padding_ms=int(turn.get("prefix_padding_ms", 300)),
            silence_duration_ms=int(turn.get("silence_duration_ms", 500)),
        )
        resampler = AudioResampler(format="s16", layout="mono", rate=ASR_RATE)
        loop = asyncio.get_running_loop()
        recognizer = await loop.run_in_executor(None, self.recognizer, call.session.session)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            for out in resampler.resample(frame):  # type: ignore[arg-type]
                pcm = bytes(out.planes[0])[: out.samples * 2]
                for vad_event in vad.feed(pcm):
                    if isinstance(vad_event, SpeechStarted):
                        if call.speaker.playing:
                            call.speaker.clear()
                        call.session.speech_started(vad_event.audio_start_ms)
                    elif isinstance(vad_event, SpeechStopped):
                        item_id = call.session.speech_stopped(vad_event.audio_end_ms)
                        seconds = len(vad_event.audio) / 2 / ASR_RATE
                        text = await loop.run_in_executor(
                            None, recognizer.recognize, vad_event.audio
                        )
                        call.session.transcribed(item_id, text, seconds)
                    self._flush(call)

    async def _close(self, call: SimulatedCall) -> None:
        if call.closed.is_set():
            return
        call.closed.set()
        call.speaker.clear()
        for task in list(call.tasks):
            task.cancel()
        await call.pc.close()

    async def _shutdown(self, app: web.Application) -> None:
        for call in list(self.calls.values()):
            await self._close(call)
