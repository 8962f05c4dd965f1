"""Record stats, state changes and SDPs over a call's life into one diagnostic file.

:class:`RecordingCore` is sans-I/O: it is fed events and stats reports with their time and
returns the dump document. :class:`StatsRecorder` is the asyncio shell: it listens to one or
more :class:`~webrtc_ext.RTCPeerConnection`, samples ``getStats()`` every ``interval`` seconds
and writes the file once, when closed or when every recorded connection has closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from array import array
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiortc

from .columnar import encode_column
from .dump import MARKER, SCHEMA_VERSION, chromium_series, iso_time, write_diagnostic_file

if TYPE_CHECKING:
    from ..peerconnection import RTCPeerConnection

logger = logging.getLogger(__name__)

#: Fields that identify an object rather than measure it: not recorded as series. The
#: ``timestamp`` series is kept: Chromium's dump viewers need ``<id>-timestamp``.
_NOT_SERIES = frozenset({"id", "type"})
#: Columns at least this long are written once and referred to where they repeat.
_SHARED_AT_LEAST = 8


#: Field name → whether it is a DOMHighResTimeStamp (a few dozen names, checked every sample).
_TIME_NAMES: dict[str, bool] = {}


def _is_time_name(name: str) -> bool:
    known = _TIME_NAMES.get(name)
    if known is None:
        known = _TIME_NAMES[name] = name == "timestamp" or name.endswith("Timestamp")
    return known


#: The last DOMHighResTimeStamp rounded, and its rounding: every object of one report has the
#: same ``timestamp`` object, so it is rounded once per sample rather than once per object.
_last_rounded: list[float] = [math.nan, math.nan]


def _clean_float(name: str, value: float) -> float | None:
    """A float field as recorded: ``None`` for NaN and infinities (JSON and the viewers have
    neither), timestamps rounded to the microseconds that are their precision."""
    if not math.isfinite(value):
        return None
    if not _is_time_name(name):
        return value
    if value is _last_rounded[0]:
        return _last_rounded[1]
    rounded = round(value, 3)
    _last_rounded[0], _last_rounded[1] = value, rounded
    return rounded


def _is_number(value: Any) -> bool:
    """Whether a column keeps ``value`` in its array of numbers (ints and floats, not bools)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Column:
    """One field of one stats object: its values from the object's sample ``start`` on.

    A value equal to the one before it is only counted (``repeats``) until a different one
    comes, and the run is stored then: most fields (ids, SSRCs, codecs, addresses, states)
    never change over a call, and cost nothing but this object however long the call. Stored
    numbers go to an ``array('d')`` (8 bytes a value, NaN for a missing one) until the first
    value that is not a number, so a long call's counters cost little memory.
    """

    __slots__ = ("end", "floats", "last", "numbers", "others", "repeats", "start")

    _NOTHING = object()

    def __init__(self, start: int) -> None:
        self.start = start
        self.end = start
        """The sample index after the last value (``start + len(self)``)."""
        self.numbers: array[float] | None = None
        """The stored values while they are numbers or None (made at the first one stored)."""
        self.others: list[Any] | None = None
        """The stored values once one is not a number (``numbers`` is None from then on)."""
        self.floats = False
        self.last: Any = _Column._NOTHING
        self.repeats = 0
        """How many copies of ``last`` follow the stored values."""

    def __len__(self) -> int:
        stored = self.others if self.others is not None else self.numbers or ()
        return len(stored) + self.repeats

    def append(self, value: Any) -> None:
        self.end += 1
        last = self.last
        if value is last or (
            type(value) is type(last) and value == last and value is not _Column._NOTHING
        ):
            self.repeats += 1
            return
        self._flush()
        self.last = value
        self.repeats = 1

    def _flush(self) -> None:
        """Store the run of ``last`` that is only counted so far."""
        if self.repeats:
            repeats, self.repeats = self.repeats, 0
            for _ in range(repeats):
                self._store(self.last)

    def _store(self, value: Any) -> None:
        if self.others is None:
            if value is None:
                self._numbers().append(math.nan)
                return
            if _is_number(value):
                self.floats = self.floats or isinstance(value, float)
                self._numbers().append(float(value))
                return
            self.others = self._stored_values()
            self.numbers = None
        self.others.append(value)

    def _numbers(self) -> array[float]:
        numbers = self.numbers
        if numbers is None:
            numbers = self.numbers = array("d")
        return numbers

    def _stored_values(self, floats: bool = False) -> list[Any]:
        """The stored values as given; numbers as floats if one was (or ``floats``)."""
        if self.others is not None:
            return list(self.others)
        if self.numbers is None:
            return []
        cast = float if self.floats or floats else int
        return [None if math.isnan(v) else cast(v) for v in self.numbers]

    def values(self) -> list[Any]:
        """The values as they were given (ints stay ints, NaN reads back as ``None``).

        The counted run of ``last`` reads back as it would once stored (a column holding a
        float reads every number back as a float), but is not stored: a dump is written while
        the call's memory is still held, and must not add to it.
        """
        repeats, last = self.repeats, self.last
        if not repeats:
            return self._stored_values()
        if self.others is not None or not (last is None or _is_number(last)):
            return self._stored_values() + [last] * repeats
        floats = self.floats or isinstance(last, float)
        read = None if last is None else float(last) if floats else int(float(last))
        return self._stored_values(floats) + [read] * repeats


class _SharedColumn(_Column):
    """A column equal, sample for sample, to a series its connection keeps once: the sample
    times, or the ``timestamp`` every object of one stats report shares. It stores nothing of
    its own until a value differs (or its object misses a sample); from then on it is a plain
    column.
    """

    __slots__ = ("first", "own", "shared")

    def __init__(self, start: int, shared: array[float]) -> None:
        super().__init__(start)
        self.shared = shared
        self.first = len(shared) - 1
        """The connection's sample index of this column's first value."""
        self.own = False

    def __len__(self) -> int:
        return super().__len__() if self.own else self.end - self.start

    def append(self, value: Any) -> None:
        if not self.own:
            shared = self.shared
            count = self.end - self.start
            if (
                type(value) is float
                and self.first + count == len(shared) - 1
                and value == shared[-1]
            ):
                self.end += 1
                return
            # From here on a plain column: its shared values become its own.
            self.own = True
            self.end = self.start
            for earlier in shared[self.first : self.first + count].tolist():
                super().append(earlier)
        super().append(value)

    def values(self) -> list[Any]:
        if self.own:
            return super().values()
        return self.shared[self.first : self.first + self.end - self.start].tolist()


class _StatsObject:
    """The samples of one stats object: when it was seen, and one column per field.

    When it was seen is the connection's sample times from the object's first sample on, a
    :class:`_SharedColumn` over them: nothing of its own while the object is in every sample.
    """

    __slots__ = ("columns", "stamps", "stats_type", "times_column")

    def __init__(self, stats_type: str, shared: array[float], stamps: array[float]) -> None:
        self.stats_type = stats_type
        self.times_column = _SharedColumn(0, shared)
        self.stamps = stamps
        """The reports' shared ``timestamp`` per sample (see :class:`_SharedColumn`)."""
        self.columns: dict[str, _Column] = {}

    @property
    def times(self) -> array[float]:
        """The times (ms since the epoch, rounded to µs) of this object's samples."""
        return array("d", self.times_column.values())

    def add(self, now_ms: float, stats: Mapping[str, Any]) -> None:
        """Record this object's part of the connection's latest sample."""
        times = self.times_column
        index = len(times)
        times.append(times.shared[-1])
        columns = self.columns
        if "timestamp" not in stats:
            stats = {"timestamp": now_ms, **stats}
        for name, value in stats.items():
            column = columns.get(name)
            if column is not None and column.end == index:
                # The common case, inlined (~130 fields a sample, most of them unchanged):
                # the field was in the sample before and has the value it had then.
                last = column.last
                # (``last`` is never NaN nor infinite: those are recorded as None.)
                if value is last or (type(value) is type(last) and value == last):
                    column.end = index + 1
                    column.repeats += 1
                    continue
            elif name in _NOT_SERIES:
                continue
            if isinstance(value, float):
                value = _clean_float(name, value)
            if column is None:
                column = columns[name] = (
                    _SharedColumn(index, self.stamps) if name == "timestamp" else _Column(index)
                )
            else:
                while column.end < index:
                    column.append(None)  # absent from the samples in between
            column.append(value)

    def series(self) -> Iterator[tuple[str, list[float], list[Any]]]:
        """``(field, times, values)`` of every field, as Chromium's layout keeps them."""
        times = self.times_column.values()
        for name, column in self.columns.items():
            values = column.values()
            yield name, times[column.start : column.start + len(values)], values


class RecordingCore:
    """The record of one connection: its update log and one column per stats field."""

    def __init__(self, connection_id: str, configuration: Mapping[str, Any]) -> None:
        self.connection_id = connection_id
        self.configuration = dict(configuration)
        self.update_log: list[dict[str, Any]] = []
        self._objects: dict[str, _StatsObject] = {}
        self._times: array[float] = array("d")
        """Every sample's time, once for all the connection's objects."""
        self._stamps: array[float] = array("d")
        """Every report's ``timestamp`` (its first object's, as recorded; NaN if none)."""
        self.samples = 0
        self.frozen = False

    def freeze(self) -> None:
        """Ignore every later event and sample (the record is being written)."""
        self.frozen = True

    def event(self, now_ms: float, type: str, value: str = "") -> None:
        """Log one API call, state change or SDP at ``now_ms`` (ms since the epoch)."""
        if self.frozen:
            return
        self.update_log.append({"timestamp": now_ms, "type": type, "value": value})

    def sample(self, now_ms: float, report: Mapping[str, Mapping[str, Any]]) -> None:
        """Record one stats report (id to W3C stats dictionary) taken at ``now_ms``."""
        if self.frozen:
            return
        self.samples += 1
        self._times.append(round(now_ms, 3))
        stamp: Any = math.nan
        for stats in report.values():
            stamp = stats.get("timestamp")
            stamp = _clean_float("timestamp", stamp) if isinstance(stamp, float) else None
            break
        self._stamps.append(math.nan if stamp is None else stamp)
        for stats_id, stats in report.items():
            record = self._objects.get(stats_id)
            if record is None:
                record = self._objects[stats_id] = _StatsObject(
                    str(stats.get("type", "")), self._times, self._stamps
                )
            record.add(now_ms, stats)

    def to_json(self) -> dict[str, Any]:
        """This connection's entry of the dump's ``PeerConnections`` object (schema 3).

        A column equal to one written before it (every object's times, and the ``timestamp``
        that every object of one report shares) is written once and referred to after that.
        """
        seen: dict[str, list[str | None]] = {}

        def column(stats_id: str, name: str | None, encoded: dict[str, Any]) -> dict[str, Any]:
            if len(encoded.get("d", encoded.get("r", ()))) < _SHARED_AT_LEAST:
                return encoded
            text = json.dumps(encoded, separators=(",", ":"))
            if text in seen:
                return {"ref": seen[text]}
            seen[text] = [stats_id, name]
            return encoded

        objects = {}
        for stats_id, record in self._objects.items():
            times = column(stats_id, None, encode_column(record.times_column.values()))
            fields = {
                name: {"start": c.start, **column(stats_id, name, encode_column(c.values()))}
                for name, c in record.columns.items()
            }
            objects[stats_id] = {"statsType": record.stats_type, "times": times, "fields": fields}
        return {
            "rtcConfiguration": json.dumps(self.configuration),
            "updateLog": list(self.update_log),
            "objects": objects,
        }

    def to_chromium_json(self) -> dict[str, Any]:
        """This connection in Chromium's ``webrtc-internals`` layout (schema 2), for viewers."""
        stats = {
            f"{stats_id}-{name}": chromium_series(record.stats_type, times, values)
            for stats_id, record in self._objects.items()
            for name, times, values in record.series()
        }
        return {
            "constraints": "",
            "rtcConfiguration": json.dumps(self.configuration),
            "url": "",
            "updateLog": [{"time": iso_time(e["timestamp"]), **e} for e in self.update_log],
            "stats": stats,
        }


def build_dump(
    records: list[RecordingCore], created_at_ms: float, *, layout: str = "columnar"
) -> dict[str, Any]:
    """The whole dump document: every connection under ``PeerConnections``.

    ``layout="columnar"`` (schema 3, the default) is compact; ``"chromium"`` (schema 2) is the
    layout Chromium's own dumps use, which public dump viewers open.
    """
    if layout not in ("columnar", "chromium"):
        raise ValueError(f"unknown layout {layout!r}: 'columnar' or 'chromium'")
    columnar = layout == "columnar"
    return {
        MARKER: {"schemaVersion": SCHEMA_VERSION if columnar else 2, "createdAt": created_at_ms},
        "UserAgent": f"webrtc_ext (aiortc {aiortc.__version__})",
        "getUserMedia": [],
        "PeerConnections": {
            r.connection_id: r.to_json() if columnar else r.to_chromium_json() for r in records
        },
    }


def _configuration_of(pc: RTCPeerConnection) -> dict[str, Any]:
    config = pc.config
    return {
        "iceServers": [{"urls": s.urls} for s in config.ice_servers],
        "iceTransportPolicy": config.ice_transport_policy.value,
        "bundlePolicy": config.bundle_policy.value,
        "nomination": config.nomination.value,
        "iceLite": config.ice_lite,
        "dtlsMtu": config.dtls_mtu,
    }


class _Watched:
    """The listeners and last seen values of one recorded connection."""

    def __init__(self, pc: RTCPeerConnection, core: RecordingCore) -> None:
        self.pc = pc
        self.core = core
        self.descriptions: dict[str, str | None] = {"local": None, "remote": None}
        self.description_changes: int | None = None
        self.dtls_states: dict[int, str] = {}
        self.dtmf_senders: set[int] = set()
        self.final_sampled = False
        self.closed = False


class StatsRecorder:
    """Samples the stats of connections and writes one diagnostic file for all of them."""

    def __init__(
        self,
        path: str | Path,
        interval: float = 1.0,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.path = Path(path)
        self.interval = interval
        self._clock = clock
        self._watched: list[_Watched] = []
        self._task: asyncio.Task[None] | None = None
        self._closing: asyncio.Future[Path] | None = None
        self._finished = False

    def _now_ms(self) -> float:
        return self._clock() * 1000.0

    def record(self, pc: RTCPeerConnection, label: str | None = None) -> None:
        """Start recording ``pc`` under ``label`` (default ``pc-<n>``)."""
        connection_id = label or f"pc-{len(self._watched) + 1}"
        core = RecordingCore(connection_id, _configuration_of(pc))
        watched = _Watched(pc, core)
        self._watched.append(watched)
        core.event(self._now_ms(), "create", json.dumps(core.configuration))
        for name, attribute in (
            ("signalingstatechange", "signalingState"),
            ("iceconnectionstatechange", "iceConnectionState"),
            ("icegatheringstatechange", "iceGatheringState"),
            ("connectionstatechange", "connectionState"),
        ):
            pc.on(name, self._state_listener(watched, name, attribute))
        pc.on(
            "icecandidateerror",
            lambda error: core.event(self._now_ms(), "icecandidateerror", repr(error)),
        )
        pc.on(
            "dtmf",
            lambda event: core.event(self._now_ms(), "dtmf", str(getattr(event, "digit", event))),
        )
        pc.on_before_close(lambda: self._final_sample(watched))
        pc.on_closed(lambda: self._connection_closed(watched))
        self._check(watched)
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def _state_listener(self, watched: _Watched, name: str, attribute: str) -> Callable[[], None]:
        def listener() -> None:
            watched.core.event(self._now_ms(), name, str(getattr(watched.pc, attribute)))
            self._check(watched)

        return listener

    def _check(self, watched: _Watched) -> None:
        """Log SDPs and DTLS/ICE transports that are new since the last look."""
        pc, now = watched.pc, self._now_ms()
        changes = getattr(pc, "_description_changes", None)
        if changes is None or changes != watched.description_changes:
            watched.description_changes = changes
            self._check_descriptions(watched, now)
        for transceiver in pc.getTransceivers():
            self._watch_dtmf_sender(watched, transceiver.sender)
        for number, dtls in pc._stats.numbered_transports():
            if id(dtls) not in watched.dtls_states:
                dtls.on("statechange", lambda: self._check(watched))
                ice = dtls.transport
                ice.on(
                    "selectedcandidatepairchange",
                    lambda ice=ice, n=number: watched.core.event(
                        self._now_ms(), "selectedcandidatepairchange", _pair_text(ice, n)
                    ),
                )
            if watched.dtls_states.get(id(dtls)) != dtls.state:
                watched.dtls_states[id(dtls)] = dtls.state
                watched.core.event(now, "dtlsstatechange", f"T{number:02d}: {dtls.state}")

    def _check_descriptions(self, watched: _Watched, now: float) -> None:
        pc = watched.pc
        for side, description in (
            ("local", pc.localDescription),
            ("remote", pc.remoteDescription),
        ):
            text = f"type: {description.type}, sdp: {description.sdp}" if description else None
            if text is not None and text != watched.descriptions[side]:
                watched.descriptions[side] = text
                event = "setLocalDescription" if side == "local" else "setRemoteDescription"
                watched.core.event(now, event, text)

    def _watch_dtmf_sender(self, watched: _Watched, sender: Any) -> None:
        """Log the tones an ``RTCDTMFSender`` plays (W3C ``tonechange``), once per sender."""
        dtmf = getattr(sender, "dtmf", None)
        if dtmf is None or not hasattr(dtmf, "on") or id(dtmf) in watched.dtmf_senders:
            return
        watched.dtmf_senders.add(id(dtmf))
        dtmf.on(
            "tonechange",
            lambda event: watched.core.event(
                self._now_ms(), "tonechange", str(getattr(event, "tone", event))
            ),
        )

    async def _sample(self, watched: _Watched) -> None:
        if self._finished:
            return
        try:
            report = await watched.pc.getStats()
        except Exception:
            logger.warning(
                "could not sample stats of %s", watched.core.connection_id, exc_info=True
            )
            return
        if not self._finished:
            self._check(watched)
            watched.core.sample(self._now_ms(), report)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            for watched in self._watched:
                if not watched.final_sampled:
                    await self._sample(watched)

    async def _final_sample(self, watched: _Watched) -> None:
        if not watched.final_sampled:
            await self._sample(watched)
            watched.final_sampled = True

    async def _connection_closed(self, watched: _Watched) -> None:
        watched.closed = True
        watched.core.event(self._now_ms(), "close")
        if all(w.closed for w in self._watched):
            await self.close()

    async def close(self) -> Path:
        """Take a last sample of open connections and write the file (once); its path."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._write())
        return await asyncio.shield(self._closing)

    async def _write(self) -> Path:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for watched in self._watched:
            await self._final_sample(watched)
        # Nothing is recorded from now on, so the cores can be serialised off the loop.
        self._finished = True
        cores, now = [w.core for w in self._watched], self._now_ms()
        for core in cores:
            core.freeze()
        path = await asyncio.get_running_loop().run_in_executor(
            None, lambda: write_diagnostic_file(self.path, build_dump(cores, now))
        )
        logger.info("wrote diagnostic file %s", path)
        return path


def _pair_text(ice: Any, number: int) -> str:
    pair = ice.getSelectedCandidatePair()
    if pair is None:
        return f"T{number:02d}: none"
    local, remote = pair.local, pair.remote
    return (
        f"T{number:02d}: {local.type} {local.protocol} {local.ip}:{local.port} -> "
        f"{remote.type} {remote.protocol} {remote.ip}:{remote.port}"
    )
