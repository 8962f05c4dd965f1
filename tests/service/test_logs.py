"""Logs: JSON lines bound to the call and leg, plain text in a terminal, ICE checks at DEBUG."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relay_service import logs

from ..support import audio_call
from .agent import until
from .conftest import Running, running_service

pytestmark = pytest.mark.integration


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The service's log handler configured as in production (JSON), writing into a buffer."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    logs.configure("INFO", "auto", stream)
    try:
        yield stream
    finally:
        for handler in [h for h in root.handlers if h.get_name() == "relay-service"]:
            root.removeHandler(handler)
        root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_log_line_is_one_json_object_with_what_is_bound(captured: io.StringIO) -> None:
    with logs.bound_call("wacid.LOG"):
        logging.getLogger("relay_service.router").info("call %s ended: %s", "wacid.LOG", "done")
    logging.getLogger("relay_service.app").warning("not about a call")
    first, second = lines(captured)
    assert first["event"] == "call wacid.LOG ended: done"
    assert (first["level"], first["logger"], first["call_id"]) == (
        "info",
        "relay_service.router",
        "wacid.LOG",
    )
    assert first["timestamp"].endswith("Z")
    assert "call_id" not in second and second["level"] == "warning"


def test_a_terminal_gets_plain_text() -> None:
    root = logging.getLogger()
    level, terminal = root.level, Terminal()
    logs.configure("INFO", "auto", terminal)
    try:
        with logs.bound_call("wacid.TTY"):
            logging.getLogger("relay_service.router").info("ringing")
    finally:
        for handler in [h for h in root.handlers if h.get_name() == "relay-service"]:
            root.removeHandler(handler)
        root.setLevel(level)
    text = terminal.getvalue()
    assert "ringing" in text and "call_id=wacid.TTY" in text
    assert not text.lstrip().startswith("{")


PER_CHECK = [
    ("aioice.ice", "%s Check %s %s -> %s", ("Connection(0)", "pair", "WAITING", "IN_PROGRESS")),
    ("webrtc_ext.ice_engine.checklist", "check %s failed: %s", ("pair", "timeout")),
    ("webrtc_ext.ice_engine.checklist", "keeping %s: nominated %s has lower priority", (1, 2)),
]


def test_per_check_ice_lines_are_debug_detail(captured: io.StringIO) -> None:
    checklist = logging.getLogger("webrtc_ext.ice_engine.checklist")
    for name, message, args in PER_CHECK:
        logging.getLogger(name).info(message, *args)
    checklist.info("selected %s", "pair")
    assert [line["event"] for line in lines(captured)] == ["selected pair"]
    logging.getLogger().setLevel(logging.DEBUG)
    for name, message, args in PER_CHECK:
        logging.getLogger(name).info(message, *args)
    shown = lines(captured)[1:]
    assert [(line["logger"], line["level"]) for line in shown] == [
        (name, "debug") for name, _, _ in PER_CHECK
    ]


def test_alembic_start_up_chatter_is_debug_detail(captured: io.StringIO) -> None:
    migration = logging.getLogger("alembic.runtime.migration")
    logging.getLogger("alembic.runtime.plugins").info("setup plugin %s", "alembic.autogenerate")
    migration.info("Context impl SQLiteImpl.")
    migration.info("Will assume non-transactional DDL.")
    migration.info("Running upgrade  -> 0001, Initial")
    assert [line["event"] for line in lines(captured)] == ["Running upgrade  -> 0001, Initial"]


async def test_a_loopback_call_logs_its_ice_outcome_without_per_check_lines(
    captured: io.StringIO,
) -> None:
    async with audio_call():
        pass
    events = [line["event"] for line in lines(captured)]
    assert any(e.startswith("selected ") for e in events), events
    assert not [e for e in events if e.startswith(("check ", "keeping ")) or " Check " in e]


async def test_a_call_s_lines_carry_its_id_and_leg(running: Running, captured: io.StringIO) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    logging.getLogger().setLevel(logging.DEBUG)
    agent = await running.agent()
    try:
        call_id = await simulator.place_call(audio="tone")
        await agent.wait_for_call("ringing")
        await agent.answer(call_id)
        await agent.wait_for_call("human")
        await until(lambda: agent.loud_frames >= 5, what="caller's audio at the agent")
        await agent.hangup(call_id)
        await agent.wait_for(lambda m: m["type"] == "ended")
    finally:
        await agent.close()
    bound = [line for line in lines(captured) if line.get("call_id") == call_id]
    legs = {line.get("leg") for line in bound}
    assert {"whatsapp", "browser"} <= legs
    ice = {line["leg"] for line in bound if line["logger"].startswith(("aioice", "webrtc_ext"))}
    assert {"whatsapp", "browser"} <= ice, "the legs' ICE lines name their call and leg"
    graph = [line for line in bound if line["event"].startswith("graph pre_accept")]
    assert graph, "the webhook's work is bound to the call"


async def test_the_realtime_legs_lines_name_their_leg(
    tmp_path: Path, captured: io.StringIO
) -> None:
    environ = {"ASSISTANT_ENABLED": "on", "TRANSCRIPTION_ENABLED": "on"}
    async with running_service(tmp_path, **environ) as running:
        simulator = running.service.simulator
        assert simulator is not None
        logging.getLogger().setLevel(logging.DEBUG)
        call_id = await simulator.place_call(audio="tone")
        calls = running.service.router.calls
        await until(
            lambda: call_id in calls and calls[call_id].state == "assistant",
            what="the assistant answering",
        )
        answered = 'relay_answer_seconds_count{by="assistant",direction="USER_INITIATED"} 1.0'
        await until(
            lambda: answered in running.service.metrics.render(), what="the answer time observed"
        )
        await simulator.hangup(call_id)
        await until(lambda: call_id not in running.service.router.calls, what="the call ended")
    legs = {line.get("leg") for line in lines(captured) if line.get("call_id") == call_id}
    assert {"whatsapp", "assistant", "caller_transcription", "agent_transcription"} <= legs
