"""A Python stand-in for the agent's browser: WebSocket signalling and a WebRTC leg."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import aiohttp
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from relay_service.media import ToneTrack, rms
from webrtc_ext import PeerConnectionConfig, RTCPeerConnection, RTCSessionDescription

if TYPE_CHECKING:
    from relay_service.assist import CallAi
    from relay_service.router import Call
    from relay_service.simulators.whatsapp import WhatsAppSimulator

LOOPBACK = PeerConnectionConfig(host_addresses=["127.0.0.1"])


class Agent:
    """Signs in, answers a call with a tone, and measures what it hears."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.pc: RTCPeerConnection | None = None
        self.loud_frames = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def connect(self) -> None:
        self.ws = await self.session.ws_connect(self.url + "/api/ws")
        self._tasks.append(asyncio.ensure_future(self._receive()))

    async def _receive(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                await self.messages.put(message.json())

    async def wait_for(self, predicate: Any, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("expected console message did not arrive")
            message = await asyncio.wait_for(self.messages.get(), remaining)
            if predicate(message):
                return message

    async def wait_for_call(self, state: str = "ringing") -> dict[str, Any]:
        message = await self.wait_for(
            lambda m: m["type"] == "calls" and any(c["state"] == state for c in m["calls"])
        )
        return next(c for c in message["calls"] if c["state"] == state)

    async def take_call(self, simulator: WhatsAppSimulator) -> str:
        """A call from the simulated caller (a tone), rung here and answered; its id once the
        console shows it with the agent."""
        call_id = await simulator.place_call(audio="tone")
        await self.wait_for_call("ringing")
        await self.answer(call_id)
        await self.wait_for_call("human")
        return call_id

    async def answer(self, call_id: str, frequency: float = 660.0) -> None:
        await self._signal({"type": "answer", "call_id": call_id}, frequency)

    async def dial(self, to: str, frequency: float = 660.0) -> str:
        return await self._signal({"type": "dial", "to": to}, frequency)

    async def _signal(self, request: dict[str, Any], frequency: float) -> str:
        assert self.ws is not None
        self.pc = RTCPeerConnection(LOOPBACK)
        self.pc.addTrack(ToneTrack(frequency=frequency))
        self.pc.on(
            "track", lambda track: self._tasks.append(asyncio.ensure_future(self._read(track)))
        )
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.ws.send_json({**request, "sdp": self.pc.localDescription.sdp})
        reply = await self.wait_for(lambda m: m["type"] in ("answer", "error"))
        if reply["type"] != "answer":
            await self.pc.close()
            self.pc = None
        assert reply["type"] == "answer" and self.pc is not None, reply
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
        return str(reply["call_id"])

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, AudioFrame) and rms(frame) > 300:
                self.loud_frames += 1

    async def hangup(self, call_id: str) -> None:
        assert self.ws is not None
        await self.ws.send_json({"type": "hangup", "call_id": call_id})

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        if self.ws is not None:
            await self.ws.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def until(predicate: Any, timeout: float = 20.0, what: str = "condition") -> None:
    """Poll ``predicate`` (sync or async) until true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


async def until_transcribing(call: Call) -> CallAi:
    """Until both of a call's transcription legs (caller and agent) are running; its AI."""
    ai = call.ai
    assert ai is not None, "the call has no AI (transcription off?)"
    await until(
        lambda: len(ai.transcribers) == 2 and all(leg.active for leg in ai.transcribers.values()),
        what="both transcription legs",
    )
    return ai
