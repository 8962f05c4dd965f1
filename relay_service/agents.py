"""Agent sign-in and the console's WebSocket: call list push, answer, hang-up, DTMF.

Access rules (docs/service.md, "Security"): passwords are checked against Argon2 hashes off the
event loop; failed sign-ins are limited per name and per address in a sliding window (429 with
``Retry-After``); sessions expire; the cookie is HttpOnly, SameSite=Strict, and Secure when the
service is reached over https.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from . import jsonlimits, passwords
from .access import AccessPolicy, SlidingWindow, retry_after_header
from .call import Call
from .callstate import ACTIVE, Hold, Resume, SendKeys, TransferToAgent, controls
from .callwords import WRAP_UP_CODES
from .cluster.sessions import MemorySessionStore, SessionStore
from .listen import listen_in, stop_listening
from .router import CallRouter, CallUnavailable
from .supervision import QualityWatch

logger = logging.getLogger(__name__)

COOKIE = "relay_session"
MAX_MESSAGE_BYTES = 256 * 1024
"""Largest console message (an SDP offer is a few kilobytes)."""
REMOTE_KINDS = ("answer", "handback", "hangup", "hold", "resume", "keys")
"""Console requests forwarded to the replica that owns the call (the others act locally)."""
QUALITY_INTERVAL = 1.0
"""Seconds between two call-quality updates to supervisors."""
SEND_GRACE = 1.0
"""Seconds closing the console waits for messages still on their way (a call's end)."""


class RemoteCalls(Protocol):
    """The calls other replicas own, as the console sees and acts on them."""

    def summaries(self) -> list[dict[str, Any]]:
        """What the console shows of every live call of the other replicas."""

    def holds(self, call_id: str) -> bool:
        """Whether another replica owns ``call_id``."""

    async def forward(self, op: str, call_id: str, agent: str, **args: Any) -> dict[str, Any]:
        """Do ``op`` on the owner of ``call_id``; :class:`CallUnavailable` if it cannot."""


class AgentConsole:
    """Signed-in agents and their live connections."""

    def __init__(
        self,
        agents: Mapping[str, str],
        router: CallRouter,
        policy: AccessPolicy,
        supervisors: Mapping[str, str] | None = None,
        sessions: SessionStore | None = None,
    ) -> None:
        self.agents = agents
        self.supervisors: Mapping[str, str] = supervisors or {}
        self.router = router
        self.policy = policy
        self.sessions: SessionStore = sessions or MemorySessionStore(policy.session_ttl)
        self.failures_by_name = SlidingWindow(policy.login_failures_per_name, policy.login_window)
        self.failures_by_address = SlidingWindow(
            policy.login_failures_per_address, policy.login_window
        )
        self.sockets: dict[web.WebSocketResponse, str] = {}
        self.held: dict[web.WebSocketResponse, set[str]] = {}
        """The calls each open console tab holds; a call that ends is forgotten (a tab that
        stays open all day would otherwise keep every call it ever answered)."""
        self.remote: RemoteCalls | None = None
        """Calls of the other replicas (``None``: this process is the only one)."""
        self.replica_id: str | None = None
        """This replica's name, shown with its calls when there are several."""
        self._sends: set[asyncio.Task[None]] = set()
        """Messages on their way to the pages: not the router's tasks, so that ending every
        call at shutdown (which cancels those) still tells each agent why."""
        self.features: dict[str, Any] = {}
        """What the page may offer besides calls (``assistant``, ``simulator``), set by the app."""
        router.listeners.append(self._on_call_event)

    def routes(self) -> list[web.RouteDef]:
        """Login, logout and the WebSocket."""
        return [
            web.post("/api/login", self.login),
            web.post("/api/logout", self.logout),
            web.get("/api/me", self.me),
            web.get("/api/ws", self.websocket),
        ]

    async def agent_of(self, request: web.Request) -> str | None:
        """The signed-in agent of a request, if any (and its session has not expired)."""
        token = request.cookies.get(COOKIE)
        return await self.sessions.agent(token) if token else None

    async def require_agent(self, request: web.Request) -> str:
        """The signed-in agent, or a 401."""
        agent = await self.agent_of(request)
        if agent is None:
            raise web.HTTPUnauthorized(text="sign in first")
        return agent

    async def login(self, request: web.Request) -> web.Response:
        """Check a name and password; set the session cookie."""
        if request.content_type != "application/json":
            return web.json_response({"error": "send application/json"}, status=415)
        try:
            body = jsonlimits.loads(await request.read(), max_bytes=4096, max_depth=2)
        except jsonlimits.JsonRejected:
            body = None
        if not isinstance(body, dict):
            return web.json_response({"error": "expected JSON {name, password}"}, status=400)
        name, password = str(body.get("name", ""))[:128], str(body.get("password", ""))[:1024]
        address = request.remote or "?"
        now = time.monotonic()
        wait = max(
            self.failures_by_name.retry_after(name, now),
            self.failures_by_address.retry_after(address, now),
        )
        if wait > 0:
            logger.warning("sign-in for %r from %s refused: too many failures", name, address)
            return web.json_response(
                {"error": "too many failed sign-ins; try again later"},
                status=429,
                headers={"Retry-After": retry_after_header(wait)},
            )
        hashed = self.supervisors.get(name, self.agents.get(name))
        # Argon2 takes ~0.1 s of CPU: off the loop, so media never waits for a sign-in.
        ok = await asyncio.get_running_loop().run_in_executor(
            None, passwords.verify_password, hashed or passwords.dummy_hash(), password
        )
        if hashed is None or not ok:
            now = time.monotonic()
            self.failures_by_name.record(name, now)
            self.failures_by_address.record(address, now)
            logger.info("failed sign-in for %r from %s", name, address)
            return web.json_response({"error": "wrong name or password"}, status=401)
        token = await self.sessions.create(name)
        response = web.json_response({"name": name})
        # No Max-Age: the browser keeps it until it closes; the server ends it when unused.
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="Strict",
            secure=self.policy.secure_cookies,
        )
        return response

    async def logout(self, request: web.Request) -> web.Response:
        """Forget the session."""
        await self.sessions.delete(request.cookies.get(COOKIE, ""))
        response = web.json_response({})
        response.del_cookie(COOKIE)
        return response

    async def me(self, request: web.Request) -> web.Response:
        """Who is signed in (``name`` null when nobody is: the page then shows the sign-in)."""
        agent = await self.agent_of(request)
        return web.json_response(
            {
                "name": agent,
                "supervisor": agent in self.supervisors,
                "wrap_up_codes": list(WRAP_UP_CODES),
                "agents": sorted({*self.agents, *self.supervisors}),
                **self.features,
            }
        )

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        """The console's live channel."""
        agent = await self.require_agent(request)
        if not self.policy.origin_allowed(request.headers.get("Origin"), request.host):
            raise web.HTTPForbidden(text="cross-origin console connection refused")
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        self.sockets[ws] = agent
        self._broadcast_calls()  # everyone sees who is online (to transfer to)
        answered: set[str] = set()
        self.held[ws] = answered
        watch = None
        if agent in self.supervisors:
            watch = self.router.spawn(self._send_quality(ws))
        try:
            await ws.send_json(self._calls_message())
            for active in self.router.active_calls():
                if active.ai is not None and active.ai.history:
                    await ws.send_json(_history_message(active))
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await self._handle(ws, agent, message.data, answered)
                # Not kept while the tab is quiet (for hours, maybe): the last answer's SDP and
                # its message would stay among the freed objects of the calls since.
                del message
        except ConnectionError:
            logger.info("console connection of %s closed while replying", agent)
        finally:
            self.sockets.pop(ws, None)
            self.held.pop(ws, None)
            self._broadcast_calls()
            if watch is not None:
                watch.cancel()
            for listened in self.router.active_calls():
                if agent in listened.listeners:
                    await stop_listening(self.router, listened, agent)
            # The agent's tab closed: the calls it held end cleanly.
            for call_id in answered:
                if self._elsewhere(call_id):
                    assert self.remote is not None
                    with contextlib.suppress(CallUnavailable):
                        await self.remote.forward("agent_gone", call_id, agent)
                else:
                    await self.router.agent_left(call_id, agent)
        return ws

    async def _handle(
        self, ws: web.WebSocketResponse, agent: str, data: str, answered: set[str]
    ) -> None:
        """One page message; ``answered``: the calls this tab holds (only a success changes it)."""
        try:
            message = jsonlimits.loads(data, max_bytes=MAX_MESSAGE_BYTES, max_depth=4)
            kind = message["type"]
            call_id = str(message.get("call_id", ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            await ws.send_json({"type": "error", "message": "bad message"})
            return
        try:
            if self._elsewhere(call_id) and kind in REMOTE_KINDS:
                await self._forward(ws, agent, kind, call_id, message, answered)
            elif kind == "dial":
                call_id, sdp = await self.router.dial(
                    agent, str(message["to"]), str(message["sdp"])
                )
                answered.add(call_id)
                await ws.send_json({"type": "answer", "call_id": call_id, "sdp": sdp})
            elif kind == "answer":
                sdp = await self.router.answer(call_id, agent, str(message["sdp"]))
                answered.add(call_id)
                await ws.send_json({"type": "answer", "call_id": call_id, "sdp": sdp})
            elif kind == "handback":
                await self.router.hand_back(call_id, agent)
                answered.discard(call_id)
                await ws.send_json({"type": "handed_back", "call_id": call_id})
            elif kind == "hangup":
                await self.router.hangup(call_id, agent)
                answered.discard(call_id)
            elif kind == "hold":
                await self.router.control(call_id, Hold(agent))
            elif kind == "resume":
                await self.router.control(call_id, Resume(agent))
            elif kind == "keys":
                await self.router.control(call_id, SendKeys(agent, str(message["digits"])))
            elif kind == "transfer":
                target = str(message["to"])
                if target not in self.sockets.values():
                    raise CallUnavailable(f"{target} is not signed in")
                await self.router.control(call_id, TransferToAgent(agent, target))
                answered.discard(call_id)
                await ws.send_json({"type": "transferred", "call_id": call_id, "to": target})
            elif kind in ("listen", "stop_listening"):
                await self._listen(ws, agent, kind, call_id, message)
            else:
                await ws.send_json({"type": "error", "message": f"unknown type {kind!r}"})
        except KeyError as exc:
            await ws.send_json({"type": "error", "message": f"missing {exc}"})
        except CallUnavailable as exc:
            # A refused request changes nothing: a call this tab holds stays held by it.
            await ws.send_json({"type": "error", "call_id": call_id, "message": str(exc)})
        except ConnectionError:
            raise  # the page went away: the connection ends (websocket())
        except Exception:
            logger.exception("console message %r from %s failed", kind, agent)
            await ws.send_json({"type": "error", "call_id": call_id, "message": "internal error"})

    def _elsewhere(self, call_id: str) -> bool:
        return (
            call_id not in self.router.calls
            and self.remote is not None
            and self.remote.holds(call_id)
        )

    async def _forward(
        self,
        ws: web.WebSocketResponse,
        agent: str,
        kind: str,
        call_id: str,
        message: dict[str, Any],
        answered: set[str],
    ) -> None:
        """Signalling for a call another replica owns: that replica acts; the media goes there."""
        assert self.remote is not None
        if kind == "answer":
            result = await self.remote.forward("answer", call_id, agent, sdp=str(message["sdp"]))
            answered.add(call_id)
            await ws.send_json({"type": "answer", "call_id": call_id, "sdp": result["sdp"]})
        elif kind == "handback":
            await self.remote.forward("handback", call_id, agent)
            answered.discard(call_id)
            await ws.send_json({"type": "handed_back", "call_id": call_id})
        elif kind == "keys":
            await self.remote.forward("keys", call_id, agent, digits=str(message["digits"]))
        else:  # hangup, hold, resume
            await self.remote.forward(kind, call_id, agent)
            if kind == "hangup":
                answered.discard(call_id)

    async def _listen(
        self,
        ws: web.WebSocketResponse,
        supervisor: str,
        kind: str,
        call_id: str,
        message: dict[str, Any],
    ) -> None:
        if supervisor not in self.supervisors:
            raise CallUnavailable("only supervisors listen in")
        call = self.router.calls.get(call_id)
        if call is None or call.state not in ACTIVE:
            raise CallUnavailable(f"no live call {call_id}")
        if kind == "stop_listening":
            await stop_listening(self.router, call, supervisor)
            await ws.send_json({"type": "listening", "call_id": call_id, "on": False})
        else:
            sdp = await listen_in(self.router, call, supervisor, str(message["sdp"]))
            await ws.send_json({"type": "listen_answer", "call_id": call_id, "sdp": sdp})
        self.router.notify("call", call)

    async def _send_quality(self, ws: web.WebSocketResponse) -> None:
        """Every second, every live call's legs: RTT, loss, jitter, level (supervisors)."""
        watch = QualityWatch()
        while not ws.closed:
            calls = await watch.sample(self.router.active_calls())
            with contextlib.suppress(ConnectionError):
                await ws.send_json({"type": "quality", "calls": calls, "now": time.time()})
            await asyncio.sleep(QUALITY_INTERVAL)

    def call_summary(self, call: Call) -> dict[str, Any]:
        """What every console shows of one of this replica's calls."""
        summary = call.summary()
        summary["needs_agent"] = self._needs_agent(call)
        summary["listeners"] = sorted(call.listeners)
        summary["controls"] = self._controls(call)
        if self.replica_id is not None:
            summary["replica"] = self.replica_id
        return summary

    def _calls_message(self) -> dict[str, Any]:
        calls = [self.call_summary(call) for call in self.router.active_calls()]
        if self.remote is not None:
            calls += self.remote.summaries()
        online = sorted(set(self.sockets.values()))
        return {"type": "calls", "calls": calls, "now": time.time(), "online": online}

    def _broadcast_calls(self) -> None:
        message = self._calls_message()
        for ws in list(self.sockets):
            self._send(ws, [message])

    def _controls(self, call: Call) -> list[str]:
        """What the agent holding the call can do now (the state machine decides)."""
        assistant = self.router.settings.assistant_enabled and call.ai is not None
        return controls(call.machine, assistant)

    def _needs_agent(self, call: Call) -> bool:
        """Whether the call waits for a person now (and the consoles ring)."""
        if call.agent is not None:
            return False
        if call.state == "waiting":
            return True
        return (
            call.state in ("ringing", "prerecorded") and not self.router.settings.assistant_enabled
        )

    def _on_call_event(self, kind: str, call: Call, data: dict[str, Any]) -> None:
        self.push(kind, call.wa_call_id, call.state, call.end_reason, data, call.agent)

    def push(
        self,
        kind: str,
        call_id: str,
        state: str,
        end_reason: str | None,
        data: dict[str, Any],
        agent: str | None = None,
    ) -> None:
        """Tell every console about a change of a call (of this replica or another)."""
        if kind == "call" and state == "ended":
            for held in self.held.values():
                held.discard(call_id)
        messages: list[dict[str, Any]] = []
        now = time.time()
        if kind in ("call", "dtmf", "ai"):
            messages.append(self._calls_message())
        if kind == "keys_sent":
            messages.append({"type": kind, "call_id": call_id, "at": now, **data})
        if kind in ("transcript", "toolcall", "ai"):
            messages.append({"type": kind, "call_id": call_id, "at": now, **data})
        if kind == "dtmf":
            # Who heard the key: the assistant while it holds the call, else the agent.
            receiver = "assistant" if state == "assistant" else (agent or "nobody")
            messages.append(
                {
                    "type": "dtmf",
                    "call_id": call_id,
                    "digit": data["digit"],
                    "receiver": receiver,
                    "at": now,
                }
            )
        if state == "ended":
            messages.append({"type": "ended", "call_id": call_id, "reason": end_reason})
        for ws in list(self.sockets):
            self._send(ws, messages)

    def _send(self, ws: web.WebSocketResponse, messages: list[dict[str, Any]]) -> None:
        task = asyncio.ensure_future(_send(ws, messages))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def close(self) -> None:
        """Deliver what is on its way (for a moment at most), then close every connection."""
        if self._sends:
            await asyncio.wait(list(self._sends), timeout=SEND_GRACE)
        for ws in list(self.sockets):
            await ws.close()


def _history_message(call: Call) -> dict[str, Any]:
    assert call.ai is not None
    segments = [{"speaker": s.speaker, "text": s.text, "at": s.at} for s in call.ai.history]
    return {"type": "transcript_history", "call_id": call.wa_call_id, "segments": segments}


async def _send(ws: web.WebSocketResponse, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        if ws.closed:
            return
        try:
            await ws.send_json(message)
        except ConnectionError:
            return
