"""Ended calls leave nothing behind: the service forgets every object a call made.

Calls go through the real service (WhatsApp simulator, an agent answering in the browser's
place, both transcription legs on the Realtime simulator); once they have ended, weak
references to each call, its peer connections, media bridge and Realtime clients must be
dead after a garbage collection. A leak shows as a growing service process (calls per day).
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMessage, WSMsgType

from .agent import until, until_transcribing
from .conftest import running_service

pytestmark = pytest.mark.integration

CALLS = 3


def _holders(obj: Any) -> str:
    """What refers to ``obj`` (type names), to make a failure say where the leak is."""
    return ", ".join(sorted({type(r).__name__ for r in gc.get_referrers(obj)}))


async def test_ended_calls_leave_no_objects_behind(tmp_path: Path) -> None:
    refs: dict[str, weakref.ref[Any]] = {}
    async with running_service(tmp_path, TRANSCRIPTION_ENABLED="on") as running:
        simulator = running.service.simulator
        router = running.service.router
        assert simulator is not None
        for n in range(CALLS):
            agent = await running.agent()
            try:
                call_id = await agent.take_call(simulator)
                call = router.calls[call_id]
                ai = await until_transcribing(call)
                refs[f"call {n}"] = weakref.ref(call)
                refs[f"bridge {n}"] = weakref.ref(call.bridge)
                for name, leg in call.legs.items():
                    refs[f"{name} leg {n}"] = weakref.ref(leg.pc)
                    refs[f"{name} recorder {n}"] = weakref.ref(leg)
                for name, realtime in ai.transcribers.items():
                    refs[f"{name} realtime {n}"] = weakref.ref(realtime.client.pc)
                del call, ai, leg, realtime
                await simulator.hangup(call_id)
                await until(lambda: not router.calls, what="the call to end")
            finally:
                await agent.close()
        gc.collect()
        alive = {name: ref() for name, ref in refs.items() if ref() is not None}
        assert not alive, "still referenced: " + "; ".join(
            f"{name} (held by {_holders(obj)})" for name, obj in alive.items()
        )


async def test_the_service_frees_an_ended_call_without_waiting_for_the_collector(
    tmp_path: Path,
) -> None:
    async with running_service(tmp_path, TRANSCRIPTION_ENABLED="on") as running:
        simulator = running.service.simulator
        router = running.service.router
        assert simulator is not None
        agent = await running.agent()
        try:
            call_id = await agent.take_call(simulator)
            call = weakref.ref(router.calls[call_id])
            gc.disable()  # from here on only an explicit collection frees reference cycles
            try:
                await simulator.hangup(call_id)
                await until(lambda: not router.calls, what="the call to end")
                await until(lambda: call() is None, 15, "the service to free the ended call")
            finally:
                gc.enable()
        finally:
            await agent.close()


async def test_an_idle_service_closes_its_sqlite_connections(tmp_path: Path) -> None:
    """What past calls' queries left in the pooled connections goes when no call is active."""
    async with running_service(tmp_path) as running:
        simulator, router = running.service.simulator, running.service.router
        assert simulator is not None
        agent = await running.agent()
        try:
            call_id = await agent.take_call(simulator)
            await simulator.hangup(call_id)
            await until(lambda: not router.calls, what="the call to end")
            await until(
                lambda: router.storage.engine.sync_engine.pool.checkedin() == 0,  # type: ignore[attr-defined]
                15,
                "the pooled connections to close",
            )
            record = await router.storage.find_call(call_id)  # a connection reopened on demand
            assert record is not None and record.state == "ended"
        finally:
            await agent.close()


async def test_an_open_console_forgets_the_calls_it_answered_once_they_end(
    tmp_path: Path,
) -> None:
    """A tab open all day keeps only the calls it holds, not every call it ever answered."""
    async with running_service(tmp_path) as running:
        simulator, router = running.service.simulator, running.service.router
        console = running.service.console
        assert simulator is not None
        agent = await running.agent()
        try:
            for _ in range(3):
                call_id = await agent.take_call(simulator)
                assert [held for held in console.held.values() if held] == [{call_id}]
                await simulator.hangup(call_id)  # the caller ends it: the tab stays open
                await until(lambda: not router.calls, what="the call to end")
                assert all(not held for held in console.held.values())
            assert len(console.held) == 1
        finally:
            await agent.close()
        await until(lambda: not console.held, what="the closed tab to be forgotten")


async def test_a_quiet_console_keeps_no_message_it_has_handled(tmp_path: Path) -> None:
    """The agent's answer (its SDP) is not kept by the tab's connection until its next message."""
    async with running_service(tmp_path) as running:
        simulator = running.service.simulator
        assert simulator is not None
        agent = await running.agent()
        try:
            await agent.take_call(simulator)
            assert agent.pc is not None
            offer = agent.pc.localDescription.sdp
            ufrag = next(line for line in offer.splitlines() if line.startswith("a=ice-ufrag:"))
            kept = [
                m
                for m in gc.get_objects()
                if isinstance(m, WSMessage) and m.type == WSMsgType.TEXT and ufrag in m.data
            ]
            assert kept == []
        finally:
            await agent.close()
