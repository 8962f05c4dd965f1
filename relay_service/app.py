"""The aiohttp application: webhook, console, call history, health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import itertools
import logging
import re
import signal
from pathlib import Path
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from webrtc_ext import PeerConnectionConfig

from . import jsonlimits
from .access import AccessPolicy, origin_middleware
from .agents import AgentConsole
from .callwords import WRAP_UP_CODES, handled_by, outcome, reason_in_words
from .cluster.node import ClusterNode
from .cluster.recovery import end_orphaned_calls
from .cluster.sessions import MemorySessionStore, RedisSessionStore, SessionStore
from .holdmusic import hold_music_file
from .metrics import CONTENT_TYPE, CallTimes, Metrics
from .router import CallRouter
from .settings import Settings
from .simulators.openai_realtime import RealtimeSimulator
from .simulators.speech import write_speech_wav
from .simulators.whatsapp import WhatsAppSimulator
from .storage import CallFilter, CallRecord, Storage
from .whatsapp.graph import GraphClient
from .whatsapp.webhook import WhatsAppWebhook

logger = logging.getLogger(__name__)

CONSOLE_DIR = Path(__file__).parent / "console"
WEBHOOK_PATH = "/webhook/whatsapp"
DRAIN_LIMIT = 26.0
"""Seconds of drain at most, so that ending the rest fits Kubernetes' default 30 s grace."""
SIMULATOR_PREFIX = "/whatsapp-sim"
REALTIME_SIMULATOR_PREFIX = "/openai-sim"
DEMO_REFERENCE = "my reference number is one two three four five"
DEMO_HUMAN = "please connect me to a human agent"
DEMO_CALLERS = [
    ("Maria Lopez", "4915112345678"),
    ("Jonas Berg", "4917623456789"),
    ("Aisha Khan", "447700900123"),
    ("Tom Novak", "15551234567"),
]
"""Who the simulated WhatsApp users placing demo calls are (profile name, number)."""
HEALTH_DATABASE_TIMEOUT = 2.0
"""Seconds the database has to answer ``/healthz`` before it counts as unavailable."""


class Service:
    """Every part of the relay, wired together; :meth:`app` is the aiohttp application."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics(replica=settings.replica_id)
        self.storage = Storage(
            settings.database_url, settings.diagnostics_dir, settings.diagnostics_inline_max
        )
        self.graph = GraphClient(
            settings.graph_base_url,
            settings.whatsapp_graph_version,
            settings.whatsapp_phone_number_id,
            settings.whatsapp_access_token,
            timeout=settings.graph_timeout,
            metrics=self.metrics,
        )
        self.router = CallRouter(settings, self.storage, self.graph, self.metrics)
        self.router.listeners.append(CallTimes(self.metrics))
        self.access = AccessPolicy.from_settings(settings)
        self.node: ClusterNode | None = None
        redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        sessions: SessionStore = (
            MemorySessionStore(settings.session_ttl)
            if redis is None
            else RedisSessionStore(redis, settings.session_ttl)
        )
        self.console = AgentConsole(
            settings.agents, self.router, self.access, settings.supervisors, sessions
        )
        if redis is not None:
            self.node = ClusterNode(
                redis,
                settings.replica_id,
                lease_ttl=settings.lease_ttl,
                url=settings.base_url,
                router=self.router,
                console=self.console,
                storage=self.storage,
                graph=self.graph,
            )
        self.console.features = {
            "assistant": settings.assistant_enabled,
            "simulator": settings.simulators,
        }
        self.webhook = WhatsAppWebhook(
            settings.whatsapp_verify_token,
            settings.whatsapp_app_secret,
            self.router.handle_event if self.node is None else self.node.handle_event,
            self.router.spawn,
            self.metrics,
            phone_number_id=settings.whatsapp_phone_number_id,
        )
        self.simulator: WhatsAppSimulator | None = None
        if settings.simulators:
            self.simulator = WhatsAppSimulator(
                webhook_url=settings.base_url + WEBHOOK_PATH,
                app_secret=settings.whatsapp_app_secret,
                access_token=settings.whatsapp_access_token,
                phone_number_id=settings.whatsapp_phone_number_id,
                host_addresses=settings.media_addresses,
                no_media_timeout=settings.no_media_timeout,
                authorize=self.console.require_agent,
            )
        self.realtime_simulator: RealtimeSimulator | None = None
        if settings.simulators and not settings.openai_base_url:
            self.realtime_simulator = RealtimeSimulator(
                # Only the service's own key (always set when this simulator runs).
                api_keys={settings.openai_api_key},
                peer_config=PeerConnectionConfig(
                    host_addresses=(
                        None if settings.media_addresses is None else list(settings.media_addresses)
                    )
                ),
            )
        self.ready = False
        self.draining = False
        self._demo_callers = itertools.cycle(DEMO_CALLERS)

    def app(self) -> web.Application:
        """The application with every route and the start/stop hooks."""
        app = web.Application(middlewares=[origin_middleware(self.access)])
        app.add_routes(self.webhook.routes(WEBHOOK_PATH))
        app.add_routes(self.console.routes())
        app.add_routes(
            [
                web.get("/healthz", self.healthz),
                web.get("/readyz", self.readyz),
                web.get("/metrics", self.metrics_page),
                web.get("/", self.index),
                web.get("/api/calls", self.list_calls),
                web.get("/api/calls/{id}", self.call_detail),
                web.get("/api/calls/{id}/diagnostics/{diag}", self.download_diagnostic),
                web.post("/api/calls/{id}/disposition", self.set_disposition),
                web.get("/favicon.ico", self.favicon),
                web.static("/console", CONSOLE_DIR),
            ]
        )
        if self.simulator is not None:  # with simulators off, no simulator route exists
            app.add_routes(
                [
                    web.post("/api/simulator/calls", self.simulate_call),
                    web.post("/api/simulator/calls/{call}/keys", self.simulate_keys),
                ]
            )
            app.add_subapp(SIMULATOR_PREFIX, self.simulator.app())
        if self.realtime_simulator is not None:
            app.add_subapp(REALTIME_SIMULATOR_PREFIX, self.realtime_simulator.app)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._shutdown)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _start(self, app: web.Application) -> None:
        await self.storage.start()
        if self.node is not None:
            await self.node.start()  # it ends the calls of replicas that are gone, from now on
        else:  # one process and nothing shared: every unfinished call was left by a previous run
            self.router.spawn(end_orphaned_calls(self.storage, self.graph))
        try:
            await asyncio.to_thread(hold_music_file, self.settings.data_dir)
        except OSError as exc:
            logger.warning("no hold music (callers on hold hear silence): %s", exc)
        for warning in self.settings.warnings:
            logger.warning("%s", warning)
        self.ready = True
        logger.info("relay service ready; webhook at %s%s", self.settings.base_url, WEBHOOK_PATH)

    async def stop(self, drain_timeout: float) -> None:
        """Graceful drain: not ready at once, no new call, live calls end or time out, then end."""
        self.draining = True
        if self.node is not None:
            await self.node.set_draining()
        logger.info("draining: no new calls; live calls have %g s to end", drain_timeout)
        if self.simulator is not None:
            self.simulator.release()
        await self.router.drain(max(0.0, min(drain_timeout, DRAIN_LIMIT)))
        if self.router.calls:
            logger.info("stopping: ending %d calls", len(self.router.calls))
        await self.router.close()

    async def _shutdown(self, app: web.Application) -> None:
        self.ready = False
        if self.simulator is not None:
            self.simulator.release()
        # Calls end as the service's, not as "agent disconnected" when the consoles close.
        await self.router.close()
        await self.console.close()

    async def _cleanup(self, app: web.Application) -> None:
        if self.simulator is not None:
            await self.simulator.close()
        await self.router.close()
        if self.node is not None:
            await self.node.close()
        await self.graph.close()
        await self.storage.close()

    async def healthz(self, request: web.Request) -> web.Response:
        """200 once the service is ready and its database answers; 503 with the reason while
        starting or stopping, after a failed database write until one succeeds again, and while
        the database does not answer a query."""
        if not self.ready:
            return web.Response(status=503, text="starting")
        if self.storage.write_error is not None:
            return web.Response(status=503, text=f"database: {self.storage.write_error}")
        try:
            await asyncio.wait_for(self.storage.ping(), HEALTH_DATABASE_TIMEOUT)
        except Exception as exc:  # any failure of the database makes the replica unhealthy
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            logger.warning("health check: database unavailable: %s", reason)
            return web.Response(status=503, text=f"database unavailable: {reason}")
        return web.Response(text="ok")

    async def readyz(self, request: web.Request) -> web.Response:
        """Readiness: 200 while taking new calls, 503 while starting and from SIGTERM on."""
        if not self.ready or self.draining:
            return web.Response(status=503, text="draining" if self.draining else "starting")
        return web.Response(text="ready")

    async def metrics_page(self, request: web.Request) -> web.Response:
        """Prometheus metrics."""
        return web.Response(
            text=self.metrics.render(),
            headers={"Content-Type": CONTENT_TYPE, "X-Content-Type-Options": "nosniff"},
        )

    async def index(self, request: web.Request) -> web.Response:
        """The console's page."""
        raise web.HTTPFound("/console/index.html")

    async def list_calls(self, request: web.Request) -> web.Response:
        """Stored calls, newest first; ``?since=&until=`` (dates), ``agent``, ``outcome``,
        ``number`` (digits) filter them."""
        await self.console.require_agent(request)
        query = request.query
        try:
            since = _date_param(query.get("since"))
            until = _date_param(query.get("until"))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"bad date: {exc}") from None
        if until is not None:
            until += dt.timedelta(days=1)  # the whole last day
        number = re.sub(r"\D", "", query.get("number", ""))
        where = CallFilter(since=since, until=until, number=number)
        calls = [_call_json(c) for c in await self.storage.list_calls(200, where)]
        agent, wanted = query.get("agent", ""), query.get("outcome", "")
        calls = [
            c
            for c in calls
            if (not agent or agent in c["handled_by"]) and (not wanted or c["outcome"] == wanted)
        ]
        dispositions = await self.storage.dispositions([c["id"] for c in calls])
        for c in calls:
            c["disposition"] = dispositions.get(c["id"])
        return web.json_response(calls)

    async def call_detail(self, request: web.Request) -> web.Response:
        """One stored call with its timeline, digits and diagnostic files."""
        await self.console.require_agent(request)
        call = await self.storage.get_call(_int_param(request, "id"))
        if call is None:
            raise web.HTTPNotFound(text="no such call")
        detail = _call_json(call)
        detail["timeline"] = call.timeline
        detail["digits"] = await self.storage.dtmf_digits(call.id)
        detail["keys"] = await self.storage.dtmf_entries(call.id)
        detail["transcript"] = await self.storage.transcript(call.id)
        detail["tool_calls"] = await self.storage.tool_calls(call.id)
        detail["disposition"] = (await self.storage.dispositions([call.id])).get(call.id)
        detail["diagnostics"] = [
            {"id": d.id, "leg": d.leg, "filename": d.filename, "size": d.size}
            for d in await self.storage.diagnostics(call.id)
        ]
        return web.json_response(detail)

    async def set_disposition(self, request: web.Request) -> web.Response:
        """An agent's wrap-up of a call: ``{code, note}``, code from the configured list."""
        agent = await self.console.require_agent(request)
        call = await self.storage.get_call(_int_param(request, "id"))
        if call is None:
            raise web.HTTPNotFound(text="no such call")
        try:
            body = jsonlimits.loads(await request.read(), max_bytes=64 * 1024, max_depth=4)
        except jsonlimits.JsonRejected:
            body = None
        if not isinstance(body, dict) or body.get("code") not in WRAP_UP_CODES:
            return web.json_response(
                {"error": "expected JSON {code, note}; code one of " + ", ".join(WRAP_UP_CODES)},
                status=400,
            )
        note = str(body.get("note") or "")[:2000]
        await self.storage.set_disposition(call.id, agent, str(body["code"]), note)
        return web.json_response({"code": body["code"], "note": note, "agent": agent})

    async def download_diagnostic(self, request: web.Request) -> web.Response:
        """A leg's diagnostic file as an attachment."""
        await self.console.require_agent(request)
        wanted = _int_param(request, "diag")
        for item in await self.storage.diagnostics(_int_param(request, "id")):
            if item.id == wanted:
                content = await self.storage.read_diagnostic(item)
                if content is None:
                    logger.warning("diagnostic file %s of call %s is missing", item.path, item.id)
                    raise web.HTTPGone(text="the diagnostic file is no longer stored")
                return web.Response(
                    body=content,
                    content_type="application/gzip",
                    headers={"Content-Disposition": f'attachment; filename="{item.filename}"'},
                )
        raise web.HTTPNotFound(text="no such diagnostic file")

    async def simulate_call(self, request: web.Request) -> web.Response:
        """Demo: the WhatsApp simulator places a call to us."""
        await self.console.require_agent(request)
        assert self.simulator is not None, "routed only with simulators on"
        audio: str | Path = "tone"
        if self.settings.assistant_enabled or self.settings.transcription_enabled:
            audio = await self._demo_caller_speech()
        name, number = next(self._demo_callers)
        call_id = await self.simulator.place_call(user=number, name=name, audio=audio)
        return web.json_response({"id": call_id})

    async def simulate_keys(self, request: web.Request) -> web.Response:
        """Demo: the simulated caller presses keys (``{digits}``: 0-9, *, #)."""
        await self.console.require_agent(request)
        if self.simulator is None:
            raise web.HTTPNotFound(text="simulators are off")
        try:
            body = jsonlimits.loads(await request.read(), max_bytes=64 * 1024, max_depth=4)
        except jsonlimits.JsonRejected:
            body = None
        digits = str(body.get("digits", "")) if isinstance(body, dict) else ""
        if not re.fullmatch(r"[0-9*#]{1,32}", digits):
            return web.json_response({"error": "digits: 1 to 32 of 0-9 * #"}, status=400)
        call_id = request.match_info["call"]
        if call_id not in self.simulator.calls or not self.simulator.press(call_id, digits):
            return web.json_response({"error": "that call cannot send keys"}, status=409)
        return web.json_response({"pressed": digits})

    async def favicon(self, request: web.Request) -> web.Response:
        """The console's icon (browsers ask for it at the root)."""
        raise web.HTTPFound("/console/favicon.svg")

    async def _demo_caller_speech(self) -> Path:
        """What the simulated caller says to the assistant (made once, in the data directory)."""
        path = self.settings.data_dir / "demo-caller.wav"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            script: list[str | float] = [4.0, DEMO_REFERENCE, 9.0, DEMO_HUMAN, 120.0]
            await write_speech_wav(path, script)
        return path


MAX_ROW_ID = 2**63 - 1
"""Largest row id any supported database stores (a larger one is no row: 404, not 500)."""


def _int_param(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    # Digits only and at most 19 of them: no sign, no spaces, no 4300-digit conversion.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not 0 < int(raw) <= MAX_ROW_ID:
        raise web.HTTPNotFound(text=f"no such {name}")
    return int(raw)


def _date_param(value: str | None) -> dt.datetime | None:
    """A ``YYYY-MM-DD`` query parameter as midnight UTC (empty: none)."""
    return dt.datetime.strptime(value, "%Y-%m-%d") if value else None


def _utc(moment: dt.datetime | None) -> str | None:
    """A stored naive UTC time in ISO 8601 with its zone, so that browsers show local time."""
    return moment.isoformat() + "Z" if moment is not None else None


def _call_json(call: CallRecord) -> dict[str, Any]:
    handlers = handled_by(call.timeline or [])
    outbound = call.direction == "BUSINESS_INITIATED"
    duration = None
    if call.ended_at is not None:
        duration = round((call.ended_at - call.created_at).total_seconds())
    summary = next(
        (e.get("summary") for e in reversed(call.timeline or []) if e.get("event") == "handover"),
        None,
    )
    return {
        "id": call.id,
        "wa_call_id": call.wa_call_id,
        "from": call.from_number,
        "to": call.to_number,
        "number": call.to_number if outbound else call.from_number,
        "name": call.caller_name,
        "direction": call.direction,
        "state": call.state,
        "agent": call.agent,
        "handled_by": handlers,
        "outcome": outcome(call.end_reason, handlers),
        "end_reason": call.end_reason,
        "end_words": reason_in_words(call.end_reason),
        "handover": summary,
        "duration": duration,
        "created_at": _utc(call.created_at),
        "answered_at": _utc(call.answered_at),
        "ended_at": _utc(call.ended_at),
    }


async def run(settings: Settings, *, sign_in_hint: str | None = None) -> None:
    """Serve until SIGTERM (graceful drain) or Ctrl-C (calls end at once)."""
    service = Service(settings)
    runner = web.AppRunner(service.app(), shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    # What start-up made (modules, the app) lives as long as the process: the cycle collector
    # need not walk it again on every full pass while calls run.
    gc.collect()
    gc.freeze()
    print(f"Agent console: {settings.base_url}/console/index.html", flush=True)
    if service.realtime_simulator is not None:
        print(f"OpenAI Realtime simulator: {settings.realtime_base_url}", flush=True)
    if sign_in_hint:
        print(f"Sign in as (name / password): {sign_in_hint}", flush=True)
    stop = asyncio.Event()
    drain = {"timeout": 0.0}

    def on_signal(timeout: float) -> None:
        drain["timeout"] = timeout
        stop.set()

    loop = asyncio.get_running_loop()
    # Kubernetes' SIGTERM drains (live calls may finish); Ctrl-C ends calls cleanly at once.
    for signum, timeout in ((signal.SIGINT, 0.0), (signal.SIGTERM, settings.drain_timeout)):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, on_signal, timeout)
    try:
        await stop.wait()
        await service.stop(drain["timeout"])
    finally:
        logger.info("stopping")
        await runner.cleanup()
