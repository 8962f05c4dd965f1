"""A WhatsApp Cloud API calling simulator: Graph API endpoints, signed webhooks, caller peers.

It is as strict as Meta where the relay could go wrong: an answer with several fingerprints
or without Opus is refused with 138008, and a call without media for ``no_media_timeout``
seconds is ended with 138021.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from .. import jsonlimits
from ..whatsapp import payloads, signature
from ..whatsapp.sdp import answer_problems, offer_problems
from .caller import CallerPeer

logger = logging.getLogger(__name__)

BUSINESS_NUMBER = payloads.DISPLAY_NUMBER


@dataclass(eq=False)
class SimulatedCall:
    """One call as Meta sees it."""

    call_id: str
    user: str
    direction: str
    peer: CallerPeer
    state: str = "ringing"
    started: float = field(default_factory=time.time)
    accepted_at: float | None = None
    end_status: str | None = None
    ringing_sent: bool = False
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The call's state and what the caller heard."""
        return {
            "id": self.call_id,
            "user": self.user,
            "direction": self.direction,
            "state": self.state,
            "end_status": self.end_status,
            "frames_received": self.peer.frames_received,
            "loud_frames": self.peer.loud_frames,
            "max_level": round(self.peer.max_level, 1),
        }


def graph_error(
    status: int, code: int, message: str, error_type: str = "OAuthException"
) -> web.Response:
    """A Graph API error response."""
    body = {
        "error": {
            "message": message,
            "type": error_type,
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message},
            "fbtrace_id": secrets.token_urlsafe(12),
        }
    }
    return web.json_response(body, status=status)


class Faults(dict[str, str]):
    """Action → the fault its next request meets: ``"timeout"``, ``"error:<code>"`` or
    ``"unavailable"`` (HTTP 503, Graph code 2); ``"<fault>*N"``: the next N requests."""

    def pop(self, action: str, default: Any = None) -> Any:
        """Take the fault for one request of ``action``, keeping the rest of a ``*N``."""
        fault = super().pop(action, default)
        if isinstance(fault, str) and "*" in fault:
            kind, _, times = fault.rpartition("*")
            if int(times) > 1:
                self[action] = f"{kind}*{int(times) - 1}"
            fault = kind
        return fault


class WhatsAppSimulator:
    """Meta's side of WhatsApp calling, for one business phone number."""

    def __init__(
        self,
        *,
        webhook_url: str,
        app_secret: str,
        access_token: str,
        phone_number_id: str,
        host_addresses: tuple[str, ...] | None = ("127.0.0.1",),
        no_media_timeout: float = 20.0,
        duplicate_webhooks: bool = False,
        authorize: Callable[[web.Request], object] | None = None,
    ) -> None:
        """``authorize``: called with each control API request; it raises an HTTP error to
        refuse it (the relay passes its console's sign-in check)."""
        self.webhook_url = webhook_url
        self.app_secret = app_secret
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self.host_addresses = host_addresses
        self.no_media_timeout = no_media_timeout
        self.duplicate_webhooks = duplicate_webhooks
        self.authorize = authorize
        self.calls: dict[str, SimulatedCall] = {}
        self.requests: list[dict[str, Any]] = []
        self.webhook_statuses: list[int] = []
        self.statuses_before_reply = False
        """Deliver an outbound call's ``RINGING`` before the ``connect`` reply (as Meta may)."""
        self.faults: dict[str, str] = Faults()
        """Action → ``"timeout"`` or ``"error:<code>"``: the next such request fails so."""
        self._numbers = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self._released = asyncio.Event()

    def release(self) -> None:
        """Let requests held by a ``timeout`` fault finish (before shutdown)."""
        self._released.set()

    def app(self) -> web.Application:
        """The Graph API (``/{version}/{phone_number_id}/calls``) and the control API."""
        app = web.Application()
        app.router.add_post("/{version}/{phone_number_id}/calls", self._graph_calls)
        app.router.add_get("/simulator/calls", self._list_calls)
        app.router.add_post("/simulator/calls", self._place_call)
        app.router.add_post("/simulator/calls/{call_id}/hangup", self._hangup)
        return app

    # -- the user's actions -----------------------------------------------------------------

    async def place_call(
        self,
        user: str = "15551234567",
        name: str | None = "Simulated Caller",
        audio: str | Path | None = "tone",
        hangup_after: float | None = None,
    ) -> str:
        """The user calls the business: a caller peer and a signed ``connect`` webhook."""
        call_id = f"wacid.SIM{next(self._numbers):04d}{secrets.token_hex(6).upper()}"
        peer = CallerPeer(audio, self.host_addresses)
        call = SimulatedCall(call_id, user, "USER_INITIATED", peer)
        self.calls[call_id] = call
        offer = await peer.offer()
        body = payloads.connect(
            self.phone_number_id, call_id, user, BUSINESS_NUMBER, offer, name=name
        )
        await self.send_webhook(body)
        if hangup_after is not None:
            call.tasks.append(asyncio.ensure_future(self._hangup_later(call, hangup_after)))
        return call_id

    async def hangup(self, call_id: str) -> None:
        """The user hangs up."""
        call = self.calls[call_id]
        await self._end(call, "COMPLETED")

    def press(self, call_id: str, digits: str) -> bool:
        """The user presses keys (RFC 4733 in RTP; false if the library cannot send DTMF yet)."""
        return self.calls[call_id].peer.press(digits)

    def vanish(self, call_id: str) -> None:
        """The user's phone stops sending anything, without a goodbye."""
        self.calls[call_id].peer.mute()

    async def _hangup_later(self, call: SimulatedCall, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._end(call, "COMPLETED")

    # -- webhooks ---------------------------------------------------------------------------

    async def send_webhook(self, document: dict[str, Any]) -> int:
        """POST a signed webhook to the service (twice with ``duplicate_webhooks``)."""
        body = payloads.encode(document)
        headers = {
            signature.HEADER: signature.sign(self.app_secret, body),
            "Content-Type": "application/json",
        }
        if self._session is None:
            self._session = aiohttp.ClientSession()
        status = 0
        for _ in range(2 if self.duplicate_webhooks else 1):
            try:
                async with self._session.post(self.webhook_url, data=body, headers=headers) as r:
                    status = r.status
            except aiohttp.ClientError as exc:
                logger.warning("webhook delivery failed: %s", exc)
            self.webhook_statuses.append(status)
        return status

    # -- Graph API --------------------------------------------------------------------------

    async def _graph_calls(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return graph_error(401, 190, "Invalid OAuth access token.")
        if request.match_info["phone_number_id"] != self.phone_number_id:
            return graph_error(400, 100, "Unknown phone number id.", "GraphMethodException")
        try:
            body = jsonlimits.loads(await request.read())
        except jsonlimits.JsonRejected:
            return graph_error(400, 100, "Body is not JSON.", "GraphMethodException")
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return graph_error(
                400, 100, "messaging_product must be whatsapp.", "GraphMethodException"
            )
        action = str(body.get("action"))
        self.requests.append(body)
        fault = self.faults.pop(action, None)
        if fault == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), 3600)
            return graph_error(503, 1, "Simulated timeout released.")
        if fault is not None and fault.startswith("error:"):
            return graph_error(400, int(fault[6:]), f"Simulated failure of {action}.")
        if fault == "unavailable":
            return graph_error(503, 2, "Service temporarily unavailable.")
        if action == "connect":
            return await self._connect(body)
        call = self.calls.get(str(body.get("call_id")))
        if call is None or call.state == "ended":
            return graph_error(
                400, 138004, "Call not found or already ended.", "GraphMethodException"
            )
        if action in ("pre_accept", "accept"):
            return await self._accept(call, action, body)
        if action in ("reject", "terminate"):
            call.tasks.append(
                asyncio.ensure_future(
                    self._end(call, "REJECTED" if action == "reject" else "COMPLETED")
                )
            )
            return web.json_response({"messaging_product": "whatsapp", "success": True})
        return graph_error(400, 100, f"Unknown action {action!r}.", "GraphMethodException")

    async def _accept(self, call: SimulatedCall, action: str, body: dict[str, Any]) -> web.Response:
        session = body.get("session") if isinstance(body.get("session"), dict) else None
        sdp = session.get("sdp") if session else None
        if not isinstance(sdp, str) or session is None or session.get("sdp_type") != "answer":
            return graph_error(400, 138008, "session with an SDP answer is required.")
        problems = answer_problems(sdp)
        if problems:
            return graph_error(400, 138008, "SDP validation error: " + "; ".join(problems))
        await call.peer.apply_answer(sdp)
        if action == "pre_accept":
            call.state = "pre_accepted"
        elif call.accepted_at is None:
            call.state, call.accepted_at = "accepted", time.time()
            call.peer.last_audio = time.monotonic()
            call.tasks.append(asyncio.ensure_future(self._watch_media(call)))
        return web.json_response({"messaging_product": "whatsapp", "success": True})

    async def _connect(self, body: dict[str, Any]) -> web.Response:
        session = body.get("session") if isinstance(body.get("session"), dict) else {}
        sdp, to = session.get("sdp") if session else None, body.get("to")
        if not isinstance(sdp, str) or not isinstance(to, str):
            return graph_error(400, 138008, "to and session.sdp (offer) are required.")
        problems = offer_problems(sdp)
        if problems:
            return graph_error(400, 138008, "SDP validation error: " + "; ".join(problems))
        call_id = f"wacid.SIMB{next(self._numbers):04d}{secrets.token_hex(6).upper()}"
        peer = CallerPeer("tone", self.host_addresses)
        call = SimulatedCall(call_id, to, "BUSINESS_INITIATED", peer)
        self.calls[call_id] = call
        if self.statuses_before_reply:
            await self._ringing(call)
        call.tasks.append(asyncio.ensure_future(self._ring_and_answer(call, sdp)))
        return web.json_response({"messaging_product": "whatsapp", "calls": [{"id": call_id}]})

    async def _ringing(self, call: SimulatedCall) -> None:
        call.ringing_sent = True
        await self.send_webhook(
            payloads.status(self.phone_number_id, call.call_id, call.user, "RINGING")
        )

    async def _ring_and_answer(self, call: SimulatedCall, offer: str) -> None:
        if not call.ringing_sent:
            await self._ringing(call)
        answer = await call.peer.answer(offer)
        await asyncio.sleep(0.5)
        await self.send_webhook(
            payloads.status(self.phone_number_id, call.call_id, call.user, "ACCEPTED")
        )
        call.state, call.accepted_at = "accepted", time.time()
        document = payloads.connect(
            self.phone_number_id,
            call.call_id,
            BUSINESS_NUMBER,
            call.user,
            answer,
            direction="BUSINESS_INITIATED",
            name=None,
        )
        await self.send_webhook(document)
        call.peer.last_audio = time.monotonic()
        await self._watch_media(call)

    async def _watch_media(self, call: SimulatedCall) -> None:
        while call.state != "ended":
            await asyncio.sleep(min(1.0, self.no_media_timeout / 4))
            if time.monotonic() - call.peer.last_audio > self.no_media_timeout:
                error = {"code": 138021, "title": "No media for a long time."}
                await self._end(call, "FAILED", errors=[error])

    async def _end(
        self, call: SimulatedCall, status: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        if call.state == "ended":
            return
        call.state, call.end_status = "ended", status
        current = asyncio.current_task()
        for task in call.tasks:
            if task is not current:
                task.cancel()
        await call.peer.close()
        start = int(call.accepted_at or call.started)
        await self.send_webhook(
            payloads.terminate(
                self.phone_number_id,
                call.call_id,
                call.user,
                BUSINESS_NUMBER,
                status=status,
                start_time=start,
                errors=errors,
            )
        )

    # -- control API (the demo's "place a call" button) ---------------------------------

    async def _list_calls(self, request: web.Request) -> web.Response:
        self._check_control(request)
        return web.json_response([call.summary() for call in self.calls.values()])

    async def _place_call(self, request: web.Request) -> web.Response:
        self._check_control(request)
        try:
            options = jsonlimits.loads(await request.read(), max_bytes=4096, max_depth=2)
        except jsonlimits.JsonRejected:
            options = {}
        if not isinstance(options, dict):
            options = {}
        # Only built-in sources: the control API must not read arbitrary files.
        audio = "silence" if options.get("audio") == "silence" else "tone"
        call_id = await self.place_call(
            user=str(options.get("from") or "15551234567"),
            name=str(options.get("name") or "Simulated Caller"),
            audio=audio,
        )
        return web.json_response({"id": call_id})

    async def _hangup(self, request: web.Request) -> web.Response:
        self._check_control(request)
        call = self.calls.get(request.match_info["call_id"])
        if call is None:
            return web.json_response({"error": "no such call"}, status=404)
        await self._end(call, "COMPLETED")
        return web.json_response(call.summary())

    def _check_control(self, request: web.Request) -> None:
        if self.authorize is not None:
            self.authorize(request)

    async def close(self) -> None:
        """End every call silently and close the HTTP session."""
        for call in self.calls.values():
            for task in call.tasks:
                task.cancel()
            if call.state != "ended":
                call.state = "ended"
                with contextlib.suppress(Exception):
                    await call.peer.close()
        if self._session is not None:
            await self._session.close()
