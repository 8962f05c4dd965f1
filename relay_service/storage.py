"""Call records in SQLAlchemy 2 (async): SQLite file by default, PostgreSQL by URL."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from . import schema


def _write_file(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(content)
    partial.replace(path)


class KeyedLocks:
    """One :class:`asyncio.Lock` per key, kept only while a task holds or awaits it.

    A lock per call that outlived its call would be kept for the life of the process.
    """

    def __init__(self) -> None:
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: int) -> AsyncIterator[None]:
        """Hold ``key``'s lock for the ``async with`` block."""
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            users = self._locks[key][1] - 1
            if users:
                self._locks[key] = (lock, users)
            else:
                del self._locks[key]


SQLITE_CONNECTIONS = 5
"""Connections to an SQLite file, never more: it takes one writer at a time anyway, and each
aiosqlite connection is a thread (with its own C heap) that a burst of calls would otherwise
multiply by three (SQLAlchemy's default overflow)."""


def _pool_size(url: str) -> dict[str, int]:
    """Pool arguments for ``url``: a bounded pool for an SQLite file, the default otherwise."""
    memory = ":memory:" in url or "mode=memory" in url or url.rstrip("/").endswith(":")
    if url.startswith("sqlite") and not memory:
        return {"pool_size": SQLITE_CONNECTIONS, "max_overflow": 0}
    return {}


def utcnow() -> dt.datetime:
    """Now, as a naive UTC datetime (portable across SQLite and PostgreSQL)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base of the relay's tables."""


class CallRecord(Base):
    """One call, with its timeline of events."""

    __tablename__ = "calls"
    id: Mapped[int] = mapped_column(primary_key=True)
    wa_call_id: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    from_number: Mapped[str] = mapped_column(String(64), default="")
    to_number: Mapped[str] = mapped_column(String(64), default="")
    caller_name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    direction: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(32), default="ringing")
    agent: Mapped[str | None] = mapped_column(String(128), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(512), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    timeline: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class DtmfDigit(Base):
    """A keypad digit the caller pressed."""

    __tablename__ = "dtmf_digits"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    digit: Mapped[str] = mapped_column(String(1))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Diagnostic(Base):
    """One leg's diagnostic file (JSON)."""

    __tablename__ = "diagnostics"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    leg: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(256))
    content: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """The file itself when small; ``None`` when it is kept at ``path``."""
    path: Mapped[str | None] = mapped_column(String(512), nullable=True)
    """Where a large file is kept, relative to the diagnostics directory."""
    size: Mapped[int | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TranscriptSegmentRecord(Base):
    """A finished piece of transcript: who said what, when."""

    __tablename__ = "transcript_segments"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    speaker: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ToolCallRecord(Base):
    """A function call the assistant made, with its arguments and result."""

    __tablename__ = "tool_calls"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON)
    output: Mapped[str] = mapped_column(Text)
    ok: Mapped[bool] = mapped_column(default=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DispositionRecord(Base):
    """The wrap-up an agent recorded after a call: a code from a short list and a free note.

    A table of its own (migration 0003); the latest row of a call is its disposition.
    """

    __tablename__ = "dispositions"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    agent: Mapped[str] = mapped_column(String(128))
    code: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class CallFilter:
    """What the history shows: a date range (UTC), a number fragment (digits)."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    number: str = ""


@dataclass(frozen=True)
class DiagnosticFile:
    """A stored diagnostic file: its bytes in the row, or a path in the diagnostics directory."""

    id: int
    leg: str
    filename: str
    size: int
    content: bytes | None
    path: Path | None


P = ParamSpec("P")
R = TypeVar("R")


def _write(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A write of :class:`Storage`: a failure (other than a duplicate) is remembered."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except IntegrityError:
            raise
        except Exception as exc:
            storage = args[0]
            assert isinstance(storage, Storage)
            storage.write_error = f"{type(exc).__name__}: {exc}"
            raise

    return wrapper


class Storage:
    """Async access to the call tables."""

    def __init__(
        self, url: str, diagnostics_dir: Path | None = None, inline_max: int = 65536
    ) -> None:
        self.url = url
        self.diagnostics_dir = diagnostics_dir
        """Where diagnostic files over ``inline_max`` bytes are written (``None``: in rows)."""
        self.inline_max = inline_max
        self.write_error: str | None = None
        """Why the last write failed; ``None`` once a write succeeds (``/healthz`` shows it)."""
        # A pooled connection a PostgreSQL restart closed is noticed and replaced, not used.
        pool = _pool_size(url)
        self.engine: AsyncEngine = create_async_engine(url, pool_pre_ping=True, **pool)
        self._sqlite_file = bool(pool)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._locks = KeyedLocks()

    async def start(self) -> None:
        """Create the SQLite directory if needed and migrate the schema to the newest revision."""
        if self.url.startswith("sqlite") and ":///" in self.url:
            path = self.url.split(":///", 1)[1]
            if "uri=true" in path:  # an SQLite URI filename: file:PATH?mode=ro&uri=true
                path = path.split("?", 1)[0].removeprefix("file:")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        await schema.upgrade(self.engine)

    async def revision(self) -> str:
        """The schema revision the database is at."""
        return await schema.current_revision(self.engine) or "none"

    async def ping(self) -> None:
        """Raise if the database does not answer a trivial query."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Release the connection pool."""
        await self.engine.dispose()

    async def release_idle_connections(self) -> None:
        """Close the idle pooled connections to an SQLite file (the next query opens one).

        Each keeps what the queries of past calls left in it, allocated among those calls'
        objects: its statement cache, and a list with a dead weak reference per cursor (CPython
        prunes it only every 200 cursors), enough to keep the freed memory around them from
        being returned. Its thread goes too. A server database's connections are kept.
        """
        if self._sqlite_file:
            await self.engine.dispose()

    @_write
    async def create_call(
        self,
        wa_call_id: str,
        from_number: str,
        to_number: str,
        direction: str,
        caller_name: str | None = None,
    ) -> int | None:
        """Insert a call; ``None`` if a call with this WhatsApp id already exists."""
        record = CallRecord(
            wa_call_id=wa_call_id,
            # PostgreSQL enforces column lengths (SQLite does not): display fields are cut to fit.
            from_number=from_number[:64],
            to_number=to_number[:64],
            direction=direction,
            caller_name=None if caller_name is None else caller_name[:256],
            timeline=[{"at": utcnow().isoformat(), "event": "created", "direction": direction}],
        )
        try:
            async with self._sessions.begin() as session:
                session.add(record)
        except IntegrityError:
            return None
        self.write_error = None
        return record.id

    @_write
    async def record_event(
        self, call_id: int, event: str, *, state: str | None = None, **fields: Any
    ) -> None:
        """Append an event to the call's timeline, optionally changing its state and columns."""
        # The timeline is read, extended and written back: one writer per call at a time
        # (the lock within this process, the row lock across replicas on PostgreSQL).
        async with self._locks.hold(call_id), self._sessions.begin() as session:
            record = await session.get(CallRecord, call_id, with_for_update=True)
            if record is None:
                return
            entry = {"at": utcnow().isoformat(), "event": event}
            entry.update({k: v for k, v in fields.items() if v is not None and k != "columns"})
            record.timeline = [*record.timeline, entry]
            if state is not None:
                record.state = state
            for name, value in dict(fields.get("columns") or {}).items():
                setattr(record, name, value)
        self.write_error = None

    @_write
    async def add_dtmf(self, call_id: int, digit: str) -> None:
        """Store a keypad digit."""
        async with self._sessions.begin() as session:
            session.add(DtmfDigit(call_id=call_id, digit=digit))
        self.write_error = None

    @_write
    async def add_transcript_segment(
        self, call_id: int, speaker: str, text: str, at: dt.datetime | None = None
    ) -> None:
        """Store a finished transcript segment."""
        row = TranscriptSegmentRecord(
            call_id=call_id, speaker=speaker, text=text, at=at or utcnow()
        )
        async with self._sessions.begin() as session:
            session.add(row)
        self.write_error = None

    async def transcript(self, call_id: int) -> list[dict[str, Any]]:
        """A call's transcript segments, in order."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(TranscriptSegmentRecord)
                .where(TranscriptSegmentRecord.call_id == call_id)
                .order_by(TranscriptSegmentRecord.id)
            )
            return [{"speaker": r.speaker, "text": r.text, "at": r.at.isoformat()} for r in rows]

    @_write
    async def add_tool_call(
        self, call_id: int, name: str, arguments: dict[str, Any], output: str, ok: bool
    ) -> None:
        """Store one tool call of the assistant and its result."""
        row = ToolCallRecord(call_id=call_id, name=name, arguments=arguments, output=output, ok=ok)
        async with self._sessions.begin() as session:
            session.add(row)
        self.write_error = None

    async def tool_calls(self, call_id: int) -> list[dict[str, Any]]:
        """A call's tool calls, in order."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ToolCallRecord)
                .where(ToolCallRecord.call_id == call_id)
                .order_by(ToolCallRecord.id)
            )
            return [
                {
                    "name": r.name,
                    "arguments": r.arguments,
                    "output": r.output,
                    "ok": r.ok,
                    "at": r.at.isoformat(),
                }
                for r in rows
            ]

    @_write
    async def save_diagnostic(self, call_id: int, leg: str, filename: str, content: bytes) -> int:
        """Store one leg's diagnostic file; returns its id.

        A file over ``inline_max`` bytes is written to ``diagnostics_dir`` first (a long call's
        file would bloat the row and every backup), and the row keeps its path.
        """
        row = Diagnostic(call_id=call_id, leg=leg, filename=filename, size=len(content))
        if self.diagnostics_dir is not None and len(content) > self.inline_max:
            relative = Path(str(call_id)) / f"{uuid.uuid4().hex}-{Path(filename).name}"
            await asyncio.to_thread(_write_file, self.diagnostics_dir / relative, content)
            row.path = relative.as_posix()
        else:
            row.content = content
        async with self._sessions.begin() as session:
            session.add(row)
        self.write_error = None
        return row.id

    async def list_calls(
        self, limit: int = 100, where: CallFilter | None = None
    ) -> list[CallRecord]:
        """The most recent calls, newest first, optionally only those matching ``where``."""
        query = select(CallRecord)
        if where is not None:
            if where.since is not None:
                query = query.where(CallRecord.created_at >= where.since)
            if where.until is not None:
                query = query.where(CallRecord.created_at < where.until)
            if where.number:
                pattern = f"%{where.number}%"
                query = query.where(
                    CallRecord.from_number.like(pattern) | CallRecord.to_number.like(pattern)
                )
        async with self._sessions() as session:
            result = await session.scalars(query.order_by(CallRecord.id.desc()).limit(limit))
            return list(result)

    @_write
    async def set_disposition(self, call_id: int, agent: str, code: str, note: str) -> None:
        """Record the wrap-up of a call (a later one replaces it)."""
        row = DispositionRecord(call_id=call_id, agent=agent, code=code, note=note)
        async with self._sessions.begin() as session:
            session.add(row)

    async def dispositions(self, call_ids: list[int]) -> dict[int, dict[str, Any]]:
        """The latest disposition of each of ``call_ids`` that has one."""
        if not call_ids:
            return {}
        async with self._sessions() as session:
            rows = await session.scalars(
                select(DispositionRecord)
                .where(DispositionRecord.call_id.in_(call_ids))
                .order_by(DispositionRecord.id)
            )
            return {
                r.call_id: {
                    "code": r.code,
                    "note": r.note,
                    "agent": r.agent,
                    "at": r.at.isoformat(),
                }
                for r in rows
            }

    async def dtmf_entries(self, call_id: int) -> list[dict[str, Any]]:
        """The digits pressed during a call, each with its time."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(DtmfDigit).where(DtmfDigit.call_id == call_id).order_by(DtmfDigit.id)
            )
            return [{"digit": r.digit, "at": r.at.isoformat()} for r in rows]

    async def get_call(self, call_id: int) -> CallRecord | None:
        """One call by its database id."""
        async with self._sessions() as session:
            return await session.get(CallRecord, call_id)

    async def find_call(self, wa_call_id: str) -> CallRecord | None:
        """One call by its WhatsApp id."""
        async with self._sessions() as session:
            return await session.scalar(
                select(CallRecord).where(CallRecord.wa_call_id == wa_call_id)
            )

    async def unfinished_calls(self) -> list[CallRecord]:
        """Calls without an end: live somewhere, or left behind by a replica that died."""
        async with self._sessions() as session:
            result = await session.scalars(
                select(CallRecord).where(CallRecord.ended_at.is_(None)).order_by(CallRecord.id)
            )
            return list(result)

    async def dtmf_digits(self, call_id: int) -> str:
        """The digits pressed during a call, in order."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(DtmfDigit.digit).where(DtmfDigit.call_id == call_id).order_by(DtmfDigit.id)
            )
            return "".join(rows)

    async def diagnostics(self, call_id: int) -> list[DiagnosticFile]:
        """Every diagnostic file of a call."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Diagnostic).where(Diagnostic.call_id == call_id).order_by(Diagnostic.id)
            )
            return [
                DiagnosticFile(
                    r.id,
                    r.leg,
                    r.filename,
                    r.size if r.size is not None else len(r.content or b""),
                    r.content,
                    None if r.path is None else self._diagnostic_path(r.path),
                )
                for r in rows
            ]

    def _diagnostic_path(self, relative: str) -> Path | None:
        if self.diagnostics_dir is None:
            return None
        path = (self.diagnostics_dir / relative).resolve()
        if not path.is_relative_to(self.diagnostics_dir.resolve()):
            return None  # a row naming a path outside the directory is never followed
        return path

    async def read_diagnostic(self, item: DiagnosticFile) -> bytes | None:
        """The bytes of a stored diagnostic file; ``None`` if its file is gone."""
        if item.content is not None:
            return item.content
        if item.path is None:
            return None
        try:
            return await asyncio.to_thread(item.path.read_bytes)
        except OSError:
            return None

    async def count_calls(self) -> int:
        """How many calls are stored."""
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count(CallRecord.id))) or 0)
