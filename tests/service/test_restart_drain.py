"""One replica, no Redis: calls left by a killed run are ended at start; SIGTERM drains."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from functools import partial
from pathlib import Path

import pytest

from relay_service.simulators.whatsapp import WhatsAppSimulator

from .processes import (
    ServiceProcess,
    hosted_simulator,
    place_call,
    replica_environ,
    signed_in_agent,
    sim_state,
    stored_call,
    wait_until,
)

pytestmark = pytest.mark.integration


def database(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/relay.db"


async def test_a_restart_ends_the_calls_a_killed_run_left(tmp_path: Path) -> None:
    db = database(tmp_path)
    async with hosted_simulator() as (simulator, graph_url):
        replica = ServiceProcess(tmp_path, "solo", replica_environ(graph_url, db))
        try:
            replica.start()
            await replica.wait_ready()
            async with signed_in_agent(replica) as agent:
                answered = await place_call(simulator, replica)
                call = await agent.wait_for_call("ringing")
                await agent.answer(call["id"])
                await wait_until(lambda: sim_state(simulator, answered) == "accepted")
                ringing = await place_call(simulator, replica)
                await wait_until(lambda: sim_state(simulator, ringing) == "pre_accepted")
                replica.kill()
            for wa_id in (answered, ringing):
                row = await stored_call(db, wa_id)
                assert row is not None and row.ended_at is None  # left active by the crash
            assert sim_state(simulator, answered) == "accepted"

            replica.start()
            await replica.wait_ready()
            simulator.webhook_url = replica.url + "/webhook/whatsapp"

            async def ended(wa_id: str) -> bool:
                row = await stored_call(db, wa_id)
                return row is not None and row.ended_at is not None

            await wait_until(lambda: ended(answered), what="answered call ended")
            await wait_until(lambda: ended(ringing), what="ringing call ended")
            # WhatsApp was told: the answered call terminated, the ringing one declined.
            assert simulator.calls[answered].end_status == "COMPLETED"
            assert simulator.calls[ringing].end_status == "REJECTED"
            for wa_id in (answered, ringing):
                row = await stored_call(db, wa_id)
                assert row is not None
                assert row.end_reason == "replica lost"
                assert row.state == "ended"
            # Meta's terminate webhook that follows is still recorded on the ended call.

            async def terminate_recorded(wa_id: str) -> bool:
                row = await stored_call(db, wa_id)
                assert row is not None
                return any(e["event"] == "whatsapp_terminate" for e in row.timeline)

            await wait_until(lambda: terminate_recorded(answered), what="late terminate stored")
            row = await stored_call(db, answered)
            assert row is not None
            assert [e["event"] for e in row.timeline].count("agent_answered") == 1
            assert row.agent == "alice"  # what was stored before the crash is kept
        finally:
            replica.stop_quietly()


async def test_sigterm_drains_live_calls_and_declines_new_ones(tmp_path: Path) -> None:
    db = database(tmp_path)
    async with hosted_simulator() as (simulator, graph_url):
        environ = replica_environ(graph_url, db, RELAY_DRAIN_TIMEOUT="20")
        replica = ServiceProcess(tmp_path, "solo", environ)
        try:
            replica.start()
            await replica.wait_ready()
            async with signed_in_agent(replica) as agent:
                live = await place_call(simulator, replica)
                call = await agent.wait_for_call("ringing")
                await agent.answer(call["id"])
                await wait_until(lambda: sim_state(simulator, live) == "accepted")
                replica.terminate()
                await wait_until(lambda: _is(replica.status("/readyz"), 503), what="readiness off")
                late = await place_call(simulator, replica)
                await wait_until(
                    lambda: simulator.calls[late].end_status == "REJECTED", what="new declined"
                )
                # The live call goes on while draining, media included.
                heard = agent.loud_frames
                await wait_until(lambda: agent.loud_frames > heard + 25, what="media flows")
                assert sim_state(simulator, live) == "accepted"
                assert replica.process is not None and replica.process.poll() is None
                await simulator.hangup(live)  # the caller finishes; nothing is dropped
                assert await replica.wait_exit(15) == 0
            row = await stored_call(db, live)
            assert row is not None and row.end_reason == "whatsapp: COMPLETED"
            late_row = await stored_call(db, late)
            assert late_row is not None and late_row.end_reason == "service shutting down"
        finally:
            replica.stop_quietly()


async def test_drain_timeout_ends_the_rest_in_parallel_within_the_grace(tmp_path: Path) -> None:
    db = database(tmp_path)
    async with hosted_simulator() as (simulator, graph_url):
        environ = replica_environ(graph_url, db, RELAY_DRAIN_TIMEOUT="2")
        replica = ServiceProcess(tmp_path, "solo", environ)
        try:
            replica.start()
            await replica.wait_ready()
            calls = [await place_call(simulator, replica) for _ in range(4)]
            for wa_id in calls:
                await wait_until(partial(_pre_accepted, simulator, wa_id))
            simulator.hung.update({"terminate", "reject"})  # a Graph API that never answers
            started = time.monotonic()
            replica.terminate()
            assert await replica.wait_exit(40) == 0
            # Kubernetes kills at 30 s: ending one call after the other took 40 s here.
            assert time.monotonic() - started < 30
            for wa_id in calls:
                row = await stored_call(db, wa_id)
                assert row is not None and row.ended_at is not None
                assert row.end_reason == "service shutting down"
            assert "agent disconnected" not in replica.log()
        finally:
            replica.stop_quietly()


async def _is(status: Awaitable[int], expected: int) -> bool:
    return await status == expected


def _pre_accepted(simulator: WhatsAppSimulator, wa_id: str) -> bool:
    return sim_state(simulator, wa_id) == "pre_accepted"
