"""Call records on both databases the service supports: an SQLite file and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from relay_service import schema
from relay_service.storage import SQLITE_CONNECTIONS, Base, KeyedLocks, Storage

from ..servers import PostgreSQL
from .conftest import running_service

TABLES = {
    "calls",
    "dtmf_digits",
    "diagnostics",
    "transcript_segments",
    "tool_calls",
    "dispositions",
}


async def started(url: str) -> Storage:
    storage = Storage(url)
    await storage.start()
    return storage


async def test_a_call_is_stored_and_read_back(database_url: str) -> None:
    storage = await started(database_url)
    try:
        call_id = await storage.create_call("wacid.1", "+4912345", "+4900000", "inbound", "Ann")
        assert call_id is not None
        assert await storage.create_call("wacid.1", "+4912345", "+4900000", "inbound") is None
        await storage.record_event(call_id, "agent_answered", state="human", agent="alice")
        await storage.record_event(
            call_id, "ended", state="ended", columns={"end_reason": "hung up by alice"}
        )
        for digit in "12#":
            await storage.add_dtmf(call_id, digit)
        await storage.add_transcript_segment(call_id, "caller", "hello there")
        await storage.add_tool_call(call_id, "lookup_case", {"reference": "4711"}, "open", True)
        diagnostic = b"\x1f\x8b" + bytes(range(256)) * 40
        await storage.save_diagnostic(call_id, "whatsapp", "call.json.gz", diagnostic)

        record = await storage.find_call("wacid.1")
        assert record is not None and record.id == call_id
        assert (record.state, record.caller_name, record.end_reason) == (
            "ended",
            "Ann",
            "hung up by alice",
        )
        assert [e["event"] for e in record.timeline] == ["created", "agent_answered", "ended"]
        assert record.timeline[1]["agent"] == "alice"
        assert await storage.dtmf_digits(call_id) == "12#"
        assert [s["text"] for s in await storage.transcript(call_id)] == ["hello there"]
        (tool,) = await storage.tool_calls(call_id)
        assert (tool["arguments"], tool["ok"]) == ({"reference": "4711"}, True)
        (stored,) = await storage.diagnostics(call_id)
        assert stored.content == diagnostic
        assert [c.id for c in await storage.list_calls()] == [call_id]
        assert await storage.count_calls() == 1
    finally:
        await storage.close()


async def test_overlong_caller_details_are_cut_to_fit_not_refused(database_url: str) -> None:
    storage = await started(database_url)
    try:
        call_id = await storage.create_call(
            "wacid.long", "9" * 100, "1" * 100, "inbound", "N" * 999
        )
        assert call_id is not None
        record = await storage.get_call(call_id)
        assert record is not None and record.caller_name == "N" * 256
        assert record.from_number == "9" * 64
    finally:
        await storage.close()


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    """A model change without its migration fails here."""
    storage = await started(database_url)
    try:
        async with storage.engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert differences == []
        assert tables == TABLES | {"alembic_version"}
        assert await schema.current_revision(storage.engine) == schema.head_revision()
    finally:
        await storage.close()


async def test_a_database_made_by_create_all_before_migrations_keeps_its_calls(
    database_url: str,
) -> None:
    # What create_all made then is revision 0001's schema, without Alembic's table.
    engine = create_async_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(alembic_step("upgrade", schema.INITIAL_REVISION))
        await connection.execute(text("DROP TABLE alembic_version"))
        await connection.execute(
            text(
                "INSERT INTO calls (wa_call_id, from_number, to_number, direction, state,"
                " created_at, timeline) VALUES ('wacid.old', '+1', '+2', 'inbound', 'ringing',"
                " '2026-01-01 00:00:00', '[]')"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO diagnostics (call_id, leg, filename, content, created_at)"
                " VALUES (1, 'whatsapp', 'old.json.gz', :content, '2026-01-01 00:00:00')"
            ),
            {"content": b"\x1f\x8b" + b"x" * 100},
        )
    await engine.dispose()

    storage = await started(database_url)
    try:
        assert await schema.current_revision(storage.engine) == schema.head_revision()
        record = await storage.find_call("wacid.old")
        assert record is not None and record.state == "ringing"
        (old_file,) = await storage.diagnostics(record.id)
        assert old_file.size == 102 and old_file.path is None, "sizes filled in by 0002"
        assert await storage.read_diagnostic(old_file) == b"\x1f\x8b" + b"x" * 100
        assert await storage.create_call("wacid.new", "+1", "+2", "inbound") is not None
    finally:
        await storage.close()


async def test_timeline_locks_are_kept_only_while_written(tmp_path: Path) -> None:
    """Each call's timeline lock goes when its writes end: no memory kept per call ever seen."""
    storage = await started(f"sqlite+aiosqlite:///{tmp_path}/relay.db")
    try:
        ids = [await storage.create_call(f"wacid.{n}", "+1", "+2", "inbound") for n in range(20)]
        assert all(ids)
        writes = [
            storage.record_event(call_id, f"event-{i}")
            for call_id in ids
            if call_id is not None
            for i in range(3)
        ]
        await asyncio.gather(*writes)
        for call_id in ids:
            assert call_id is not None
            record = await storage.get_call(call_id)
            assert record is not None and len(record.timeline) == 4  # created + 3, none lost
        assert len(storage._locks) == 0
    finally:
        await storage.close()


async def test_a_burst_of_writes_opens_at_most_a_few_sqlite_connections(tmp_path: Path) -> None:
    """Each SQLite connection is a thread with its own C heap: a burst of calls waits for one
    of a few connections rather than opening (and keeping the memory of) many more."""
    storage = await started(f"sqlite+aiosqlite:///{tmp_path}/relay.db")
    opened: list[object] = []
    event.listen(storage.engine.sync_engine, "connect", lambda conn, record: opened.append(conn))
    try:
        ids = [await storage.create_call(f"wacid.{n}", "+1", "+2", "inbound") for n in range(40)]
        await asyncio.gather(
            *(storage.record_event(call_id, "answered") for call_id in ids if call_id is not None)
        )
        assert 1 <= len(opened) <= SQLITE_CONNECTIONS
        for call_id in ids:
            assert call_id is not None
            record = await storage.get_call(call_id)
            assert record is not None and record.timeline[-1]["event"] == "answered"
    finally:
        await storage.close()


async def test_idle_sqlite_connections_are_released_and_reopened(tmp_path: Path) -> None:
    storage = await started(f"sqlite+aiosqlite:///{tmp_path}/relay.db")
    pool = storage.engine.sync_engine.pool
    try:
        ids = [await storage.create_call(f"wacid.{n}", "+1", "+2", "inbound") for n in range(8)]
        await asyncio.gather(*(storage.record_event(i, "answered") for i in ids if i is not None))
        assert pool.checkedin() >= 1  # type: ignore[attr-defined]
        threads = threading.active_count()
        await storage.release_idle_connections()
        pool = storage.engine.sync_engine.pool
        assert pool.checkedin() == 0  # type: ignore[attr-defined]
        assert threading.active_count() < threads  # each aiosqlite connection's thread ended
        call_id = await storage.create_call("wacid.after", "+1", "+2", "inbound")
        assert call_id is not None and await storage.get_call(call_id) is not None
    finally:
        await storage.close()


async def test_keyed_locks_serialise_one_key_and_forget_it() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def write(name: str, key: int) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    await asyncio.gather(write("a", 1), write("b", 1), write("c", 2))
    assert order.index("a out") < order.index("b in")  # one writer per key at a time
    assert order.index("c in") < order.index("a out")  # other keys do not wait
    assert len(locks) == 0
    with contextlib.suppress(RuntimeError):
        async with locks.hold(3):
            raise RuntimeError("a failed write")
    assert len(locks) == 0


async def test_large_diagnostic_files_live_outside_the_rows(
    database_url: str, tmp_path: Path
) -> None:
    storage = Storage(database_url, tmp_path / "diagnostics", inline_max=1000)
    await storage.start()
    try:
        call_id = await storage.create_call("wacid.big", "+1", "+2", "inbound")
        assert call_id is not None
        small, large = b"s" * 1000, bytes(range(256)) * 40
        await storage.save_diagnostic(call_id, "whatsapp", "small.json.gz", small)
        await storage.save_diagnostic(call_id, "browser", "../large.json.gz", large)
        kept_small, kept_large = await storage.diagnostics(call_id)
        assert (kept_small.content, kept_small.path, kept_small.size) == (small, None, 1000)
        assert kept_large.content is None and kept_large.size == len(large)
        assert kept_large.path is not None and kept_large.path.is_relative_to(tmp_path)
        assert kept_large.path.name.endswith("-large.json.gz"), "no directory part kept"
        assert await storage.read_diagnostic(kept_large) == large
        assert [p.name for p in (tmp_path / "diagnostics").rglob("*.partial")] == []

        async with storage.engine.begin() as connection:
            await connection.execute(text("UPDATE diagnostics SET path = '../../etc/passwd'"))
        (_, escaped) = await storage.diagnostics(call_id)
        assert escaped.path is None and await storage.read_diagnostic(escaped) is None
    finally:
        await storage.close()


async def test_starting_again_migrates_nothing_and_keeps_data(database_url: str) -> None:
    first = await started(database_url)
    await first.create_call("wacid.kept", "+1", "+2", "inbound")
    await first.close()
    second = await started(database_url)
    try:
        assert await second.find_call("wacid.kept") is not None
    finally:
        await second.close()


async def test_replicas_starting_together_migrate_once(postgres_server: PostgreSQL) -> None:
    url = postgres_server.create_database()
    replicas = [Storage(url) for _ in range(3)]
    try:
        await asyncio.gather(*(r.start() for r in replicas))
        assert await replicas[0].create_call("wacid.r", "+1", "+2", "inbound") is not None
    finally:
        for replica in replicas:
            await replica.close()


async def test_two_replicas_writing_one_calls_timeline_lose_no_event(
    postgres_server: PostgreSQL,
) -> None:
    url = postgres_server.create_database()
    one, two = await started(url), Storage(url)
    try:
        call_id = await one.create_call("wacid.shared", "+1", "+2", "inbound")
        assert call_id is not None
        await asyncio.gather(
            *(
                s.record_event(call_id, f"{n}-{i}")
                for i in range(20)
                for n, s in (("a", one), ("b", two))
            )
        )
        record = await one.get_call(call_id)
        assert record is not None and len(record.timeline) == 41
    finally:
        await one.close()
        await two.close()


def run_cli(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.run(
        [sys.executable, "-m", "relay_service.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_migrate_command_brings_the_database_to_the_newest_revision(database_url: str) -> None:
    first = run_cli("migrate", RELAY_DATABASE_URL=database_url, RELAY_LOG_FORMAT="auto")
    assert first.returncode == 0, first.stderr
    head = schema.head_revision()
    assert f"at revision {head}" in first.stdout
    # stderr is not a terminal: every log line is a JSON object (structlog), Alembic's included.
    logged = [json.loads(line) for line in first.stderr.splitlines()]
    assert any(line["event"].startswith("Running upgrade") for line in logged)
    again = run_cli("migrate", RELAY_DATABASE_URL=database_url)
    assert again.returncode == 0 and f"at revision {head}" in again.stdout


def test_migrate_command_reports_an_unreachable_database() -> None:
    result = run_cli("migrate", RELAY_DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:9/none")
    assert result.returncode == 1
    assert "relay-service: cannot migrate the database" in result.stderr
    assert "Traceback" not in result.stderr


async def test_healthz_fails_with_the_reason_while_the_database_is_gone(
    postgres_server: PostgreSQL, tmp_path: Path
) -> None:
    url = postgres_server.create_database()
    name = url.rsplit("/", 1)[1]
    async with running_service(tmp_path, RELAY_DATABASE_URL=url) as running:
        async with running.session.get(running.url + "/healthz") as response:
            assert (response.status, await response.text()) == (200, "ok")
        postgres_server.execute(f"DROP DATABASE {name} WITH (FORCE)")
        async with running.session.get(running.url + "/healthz") as response:
            assert response.status == 503
            assert (await response.text()).startswith("database unavailable: ")
        postgres_server.execute(f"CREATE DATABASE {name}")
        async with running.session.get(running.url + "/healthz") as response:
            assert (response.status, await response.text()) == (200, "ok")


def alembic_step(command_name: str, revision: str) -> Any:
    """An Alembic command on the connection it is run with (``run_sync``)."""

    def step(connection: Any) -> None:
        config = schema.alembic_config()
        config.attributes["connection"] = connection
        getattr(command, command_name)(config, revision)

    return step


async def test_migrations_go_down_to_nothing_and_up_again(database_url: str) -> None:
    storage = await started(database_url)
    try:
        async with storage.engine.begin() as connection:
            await connection.run_sync(alembic_step("downgrade", "base"))
        async with storage.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert tables <= {"alembic_version"}
        await storage.start()
        assert await storage.create_call("wacid.again", "+1", "+2", "inbound") is not None
    finally:
        await storage.close()


async def test_a_diagnostic_file_kept_outside_downloads_and_a_lost_one_says_so(
    tmp_path: Path,
) -> None:
    async with running_service(tmp_path, RELAY_DIAGNOSTICS_INLINE_MAX="0") as running:
        storage = running.service.storage
        assert storage.diagnostics_dir == tmp_path / "diagnostics", "under the data directory"
        call_id = await storage.create_call("wacid.file", "+1", "+2", "inbound")
        assert call_id is not None
        content = b"\x1f\x8b" + os.urandom(300)
        file_id = await storage.save_diagnostic(call_id, "whatsapp", "leg.json.gz", content)
        await running.login()
        url = f"{running.url}/api/calls/{call_id}/diagnostics/{file_id}"
        async with running.session.get(url) as response:
            assert response.status == 200 and await response.read() == content
        async with running.session.get(f"{running.url}/api/calls/{call_id}") as response:
            (listed,) = (await response.json())["diagnostics"]
            assert listed["size"] == len(content)
        (stored,) = await storage.diagnostics(call_id)
        assert stored.path is not None
        stored.path.unlink()
        async with running.session.get(url) as response:
            assert response.status == 410
