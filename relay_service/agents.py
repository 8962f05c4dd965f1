"""Agent sign-in and the console's WebSocket: call list push, answer, hang-up, DTMF."""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from .call import Call
from .cluster.sessions import MemorySessionStore, SessionStore
from .router import CallRouter, CallUnavailable

logger = logging.getLogger(__name__)

COOKIE = "relay_session"


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
        sessions: SessionStore | None = None,
    ) -> None:
        self.agents = agents
        self.router = router
        self.sessions: SessionStore = sessions or MemorySessionStore()
        self.sockets: dict[web.WebSocketResponse, str] = {}
        self.remote: RemoteCalls | None = None
        """Calls of the other replicas (``None``: this process is the only one)."""
        self.replica_id: str | None = None
        """This replica's name, shown with its calls when there are several."""
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
        """The signed-in agent of a request, if any."""
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
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return web.json_response({"error": "expected JSON {name, password}"}, status=400)
        name, password = str(body.get("name", "")), str(body.get("password", ""))
        expected = self.agents.get(name)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            logger.info("failed sign-in for %r", name)
            return web.json_response({"error": "wrong name or password"}, status=401)
        token = await self.sessions.create(name)
        response = web.json_response({"name": name})
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response

    async def logout(self, request: web.Request) -> web.Response:
        """Forget the session."""
        await self.sessions.delete(request.cookies.get(COOKIE, ""))
        response = web.json_response({})
        response.del_cookie(COOKIE)
        return response

    async def me(self, request: web.Request) -> web.Response:
        """Who is signed in."""
        return web.json_response({"name": await self.require_agent(request)})

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        """The console's live channel."""
        agent = await self.require_agent(request)
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != request.host:
            raise web.HTTPForbidden(text="cross-origin console connection refused")
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        self.sockets[ws] = agent
        answered: set[str] = set()
        try:
            await ws.send_json(self._calls_message())
            for active in self.router.active_calls():
                if active.ai is not None and active.ai.history:
                    await ws.send_json(_history_message(active))
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                await self._handle(ws, agent, message.data, answered)
        finally:
            self.sockets.pop(ws, None)
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
            message = json.loads(data)
            kind = message["type"]
            call_id = str(message.get("call_id", ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            await ws.send_json({"type": "error", "message": "bad message"})
            return
        try:
            if self._elsewhere(call_id) and kind in ("answer", "handback", "hangup"):
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
            else:
                await ws.send_json({"type": "error", "message": f"unknown type {kind!r}"})
        except KeyError as exc:
            await ws.send_json({"type": "error", "message": f"missing {exc}"})
        except CallUnavailable as exc:
            # A refused request changes nothing: a call this tab holds stays held by it.
            await ws.send_json({"type": "error", "call_id": call_id, "message": str(exc)})
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
            answered.add(call_id)
            result = await self.remote.forward("answer", call_id, agent, sdp=str(message["sdp"]))
            await ws.send_json({"type": "answer", "call_id": call_id, "sdp": result["sdp"]})
        elif kind == "handback":
            await self.remote.forward("handback", call_id, agent)
            await ws.send_json({"type": "handed_back", "call_id": call_id})
        else:
            await self.remote.forward("hangup", call_id, agent)

    def _calls_message(self) -> dict[str, Any]:
        calls = [c.summary() for c in self.router.active_calls()]
        if self.replica_id is not None:
            calls = [{**call, "replica": self.replica_id} for call in calls]
        if self.remote is not None:
            calls += self.remote.summaries()
        return {"type": "calls", "calls": calls}

    def _on_call_event(self, kind: str, call: Call, data: dict[str, Any]) -> None:
        self.push(kind, call.wa_call_id, call.state, call.end_reason, data)

    def push(
        self, kind: str, call_id: str, state: str, end_reason: str | None, data: dict[str, Any]
    ) -> None:
        """Tell every console about a change of a call (of this replica or another)."""
        messages: list[dict[str, Any]] = []
        if kind in ("call", "dtmf", "ai"):
            messages.append(self._calls_message())
        if kind in ("transcript", "toolcall", "ai"):
            messages.append({"type": kind, "call_id": call_id, **data})
        if kind == "dtmf":
            messages.append({"type": "dtmf", "call_id": call_id, "digit": data["digit"]})
        if state == "ended":
            messages.append({"type": "ended", "call_id": call_id, "reason": end_reason})
        for ws in list(self.sockets):
            self.router.spawn(_send(ws, messages))

    async def close(self) -> None:
        """Close every console connection."""
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
