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


def _routine(checklist_logger: logging.Logger) -> None:
    """One line of each kind of routine detail, through the loggers that really write them."""
    checklist_logger.info("check %s failed: %s", "pair A", "timeout")
    checklist_logger.info("keeping %s: nominated %s has lower priority", "pair A", "pair B")
    logging.getLogger("alembic.runtime.plugins").info("setup plugin %s", "alembic.autogenerate")
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    logging.getLogger("alembic.runtime.migration").info("Will assume non-transactional DDL.")


async def test_ice_checks_and_alembic_start_up_are_debug_detail(captured: io.StringIO) -> None:
    from webrtc_ext.ice_engine import checklist

    async with audio_call():
        pass
    _routine(checklist.logger)
    logging.getLogger("alembic.runtime.migration").info("Running upgrade  -> 0001, Initial")
    events = [line["event"] for line in lines(captured)]
    assert "ICE completed" in events  # the check list's own lines stay at INFO
    assert not [e for e in events if e.startswith(("check ", "keeping ", "setup plugin "))]
    assert not [e for e in events if e.startswith(("Context impl", "Will assume"))]
    assert "Running upgrade  -> 0001, Initial" in events
    logging.getLogger().setLevel(logging.DEBUG)
    before = len(lines(captured))
    _routine(checklist.logger)
    detail = lines(captured)[before:]
    assert len(detail) == 5 and {line["level"] for line in detail} == {"debug"}


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
        await simulator.hangup(call_id)
        await until(lambda: call_id not in running.service.router.calls, what="the call ended")
    legs = {line.get("leg") for line in lines(captured) if line.get("call_id") == call_id}
    assert {"whatsapp", "assistant", "caller_transcription", "agent_transcription"} <= legs
