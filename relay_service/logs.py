"""Logs through structlog: JSON lines in production, plain text in a terminal, bound to calls.

Every module logs with the standard library (``logging.getLogger(__name__)``), as do aiortc and
aioice; one handler renders all of it through structlog, adding what is bound with
:func:`structlog.contextvars.bind_contextvars` in the current task (``call_id``, ``leg``).
Tasks inherit the binding of the task that created them, so a call's background work and the
ICE/DTLS tasks of a leg carry the call's id without passing it around.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import IO, Any, ParamSpec, TypeVar

import structlog
from structlog.contextvars import bound_contextvars

P = ParamSpec("P")
T = TypeVar("T")

CHATTY = {
    # aioice logs every connectivity check's state change and failure at INFO.
    "aioice.ice": ("%s Check ",),
    # webrtc_ext's ICE check list: a failed check, a nomination that keeps the selected pair.
    "webrtc_ext.ice_engine.checklist": ("check ", "keeping "),
    # Alembic's start-up chatter on every migrate (the "Running upgrade" lines stay at INFO).
    "alembic.runtime.plugins": ("setup plugin ",),
    "alembic.runtime.migration": ("Context impl ", "Will assume "),
}
"""Logger name → message prefixes that are routine detail: shown at DEBUG, not INFO."""


class ChattyToDebug(logging.Filter):
    """Lowers routine detail (per-check ICE lines, Alembic start-up) to DEBUG, and drops it
    unless DEBUG is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, lowered if it is routine detail, unless DEBUG is off."""
        prefixes = CHATTY.get(record.name)
        if prefixes is None or record.levelno <= logging.DEBUG:
            return True
        if not isinstance(record.msg, str) or not record.msg.startswith(prefixes):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().getEffectiveLevel() <= logging.DEBUG


def wants_json(log_format: str, stream: IO[str]) -> bool:
    """``json``/``text`` as configured; ``auto``: text on a terminal, JSON otherwise."""
    if log_format == "auto":
        isatty = getattr(stream, "isatty", None)
        return not (callable(isatty) and isatty())
    return log_format == "json"


def configure(level: str = "INFO", log_format: str = "auto", stream: IO[str] | None = None) -> None:
    """Send every log record (the standard library's and structlog's) through one handler."""
    stream = sys.stderr if stream is None else stream
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if wants_json(log_format, stream):
        renderer = structlog.processors.JSONRenderer()
        final: list[Any] = [structlog.processors.format_exc_info, renderer]
    else:
        final = [structlog.dev.ConsoleRenderer(colors=False)]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(ChattyToDebug())
    handler.set_name("relay-service")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "relay-service"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def bound_leg(
    leg: str,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Decorate a coroutine that sets up a leg of a call: its logs, and those of the tasks it
    starts (ICE, DTLS, RTP), carry ``leg`` and the ``call_id`` of its first call-like argument."""

    def decorate(function: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(function)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            ids = (getattr(a, "wa_call_id", None) for a in args)
            call_id = next((i for i in ids if isinstance(i, str)), None)
            with bound_call(call_id), bound_contextvars(leg=leg):
                return await function(*args, **kwargs)

        return wrapper

    return decorate


def bound_call(call_id: str | None) -> Any:
    """A context in which logs (and tasks started) carry ``call_id``; a no-op for ``None``."""
    return bound_contextvars(call_id=call_id) if call_id else bound_contextvars()
