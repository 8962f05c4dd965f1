"""Diagnostic files: Chromium ``webrtc-internals`` dump layout, gzip-compressed, versioned.

Writing takes the JSON produced by :class:`~webrtc_ext.stats.recorder.RecordingCore`; loading
returns typed objects. Loading accepts every schema version this library ever wrote and plain
dumps saved from Chromium's ``chrome://webrtc-internals``. Anything else raises
:class:`DiagnosticFileError` with a sentence saying what is wrong. Schema: docs/stats.md.
"""

from __future__ import annotations

import datetime
import gzip
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .columnar import ColumnError, decode_column

#: The schema version this library writes.
SCHEMA_VERSION = 3
#: The key under which the library marks its files (Chromium viewers ignore it).
MARKER = "webrtcExt"


class DiagnosticFileError(ValueError):
    """A diagnostic file cannot be read: truncated, not a diagnostic file, or too new."""


@dataclass(frozen=True)
class UpdateEvent:
    """One entry of a connection's update log: an API call, a state change or an SDP."""

    timestamp: float
    """Milliseconds since the Unix epoch."""
    type: str
    value: str


@dataclass(frozen=True)
class StatsSeries:
    """The values of one field of one stats object over time."""

    stats_id: str
    stats_type: str
    field: str
    times: tuple[float, ...]
    """Milliseconds since the Unix epoch, one per value."""
    values: tuple[Any, ...]

    @property
    def last(self) -> Any:
        """The last recorded value."""
        return self.values[-1] if self.values else None


@dataclass(frozen=True)
class ConnectionDump:
    """Everything recorded about one peer connection."""

    id: str
    configuration: Mapping[str, Any]
    events: tuple[UpdateEvent, ...]
    series: Mapping[tuple[str, str], StatsSeries] = field(default_factory=dict)
    """``(stats id, field)`` to its series."""

    def stats_ids(self, stats_type: str) -> list[str]:
        """The ids of every stats object of one W3C type, sorted."""
        return sorted({s.stats_id for s in self.series.values() if s.stats_type == stats_type})

    def latest(self, stats_id: str) -> dict[str, Any]:
        """The last recorded value of every field of one stats object."""
        return {f: s.last for (i, f), s in self.series.items() if i == stats_id}

    def get(self, stats_id: str, field_name: str) -> StatsSeries | None:
        """The series of one field of one stats object, if recorded."""
        return self.series.get((stats_id, field_name))

    def events_of(self, event_type: str) -> list[UpdateEvent]:
        """The update-log entries of one type, in order."""
        return [e for e in self.events if e.type == event_type]


@dataclass(frozen=True)
class DiagnosticFile:
    """A loaded diagnostic file."""

    schema_version: int
    """The version it was written with; 0 for a dump saved by Chromium."""
    created_at: float | None
    user_agent: str
    connections: Mapping[str, ConnectionDump]


def iso_time(ms: float) -> str:
    """A W3C timestamp (ms since the epoch) as the ISO 8601 UTC text Chromium dumps use."""
    moment = datetime.datetime.fromtimestamp(ms / 1000.0, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso_time(text: str) -> float:
    """Milliseconds since the epoch of an ISO 8601 time (``Z`` or an offset)."""
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp() * 1000.0


def chromium_series(stats_type: str, times: list[float], values: list[Any]) -> dict[str, Any]:
    """One series as Chromium's dumps hold it (arrays written as strings)."""
    return {
        "startTime": iso_time(times[0]),
        "endTime": iso_time(times[-1]),
        "statsType": stats_type,
        "values": json.dumps(values, separators=(",", ":")),
        "times": json.dumps(times, separators=(",", ":")),
    }


def chromium_document(diagnostic: DiagnosticFile) -> dict[str, Any]:
    """A loaded file (any version) in Chromium's ``webrtc-internals`` layout, for its viewers."""
    connections = {}
    for label, connection in diagnostic.connections.items():
        connections[label] = {
            "constraints": "",
            "rtcConfiguration": json.dumps(dict(connection.configuration)),
            "url": "",
            "updateLog": [
                {"time": iso_time(e.timestamp), "timestamp": e.timestamp, "type": e.type,
                 "value": e.value}
                for e in connection.events
            ],
            "stats": {
                f"{s.stats_id}-{s.field}": chromium_series(
                    s.stats_type, list(s.times), list(s.values)
                )
                for s in connection.series.values()
                if s.times
            },
        }  # fmt: skip
    return {
        MARKER: {"schemaVersion": 2, "createdAt": diagnostic.created_at},
        "UserAgent": diagnostic.user_agent,
        "getUserMedia": [],
        "PeerConnections": connections,
    }


#: How deep :func:`write_diagnostic_file` splits the dump's objects (the document, its
#: ``PeerConnections``, a connection, its ``objects``, a stats object, its ``fields``): below
#: that, each part (one field's column) is encoded whole.
_SPLIT_DEPTH = 6
#: Encoded text gathered before it is handed to the compressor.
_WRITE_CHUNK = 64 * 1024


def _json_parts(value: Any, depth: int) -> Iterator[str]:
    """``json.dumps(value, separators=(",", ":"), allow_nan=False)``, in parts.

    Objects down to ``depth`` levels are encoded member by member, so no one call builds the
    whole document's list of pieces: encoding a dump at once costs ~13 times its text in
    short-lived objects, and a service ends many calls at once.
    """
    if depth and type(value) is dict and value and all(type(k) is str for k in value):
        separator = "{"
        for key, item in value.items():
            yield separator + _encode(key) + ":"
            separator = ","
            yield from _json_parts(item, depth - 1)
        yield "}"
    else:
        yield _encode(value)


def _encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def write_diagnostic_file(path: str | Path, dump: Mapping[str, Any]) -> Path:
    """Write a dump (as built by the recorder) gzip-compressed; returns the path.

    The JSON is the text of ``json.dumps(dump, separators=(",", ":"))``, encoded and
    compressed part by part (see :func:`_json_parts`). A value JSON cannot hold (NaN, an
    object of another type) raises ``ValueError``/``TypeError`` and leaves no file.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        with gzip.open(tmp, "wb", compresslevel=6) as out:
            pending: list[str] = []
            size = 0
            for part in _json_parts(dict(dump), _SPLIT_DEPTH):
                pending.append(part)
                size += len(part)
                if size >= _WRITE_CHUNK:
                    out.write("".join(pending).encode("utf8"))
                    pending.clear()
                    size = 0
            out.write("".join(pending).encode("utf8"))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return path


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DiagnosticFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DiagnosticFileError(
            f"{path} is a damaged or truncated gzip file ({exc or type(exc).__name__})"
        ) from None


def load_diagnostic_file(path: str | Path) -> DiagnosticFile:
    """Load a diagnostic file (any schema version, or a Chromium webrtc-internals dump)."""
    path = Path(path)
    raw = _read_bytes(path)
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DiagnosticFileError(f"{path} is not JSON, so not a diagnostic file: {exc}") from None
    try:
        return parse_dump(document)
    except DiagnosticFileError as exc:
        raise DiagnosticFileError(f"{path}: {exc}") from None


def parse_dump(document: Any) -> DiagnosticFile:
    """Typed objects from a decoded dump document."""
    if not isinstance(document, dict) or not isinstance(document.get("PeerConnections"), dict):
        raise DiagnosticFileError(
            "not a diagnostic file: no 'PeerConnections' object "
            "(expected a webrtc_ext diagnostic file or a webrtc-internals dump)"
        )
    marker = document.get(MARKER)
    version = 0
    created_at = None
    if marker is not None:
        if not isinstance(marker, dict) or not isinstance(marker.get("schemaVersion"), int):
            raise DiagnosticFileError(f"'{MARKER}' has no integer schemaVersion")
        version = marker["schemaVersion"]
        if version > SCHEMA_VERSION or version < 1:
            raise DiagnosticFileError(
                f"schema version {version} is not supported (this library reads 1 to "
                f"{SCHEMA_VERSION}); upgrade webrtc_ext to read it"
            )
        created = marker.get("createdAt")
        created_at = float(created) if isinstance(created, int | float) else None
    connections = {}
    for pc_id, record in document["PeerConnections"].items():
        try:
            connections[pc_id] = _parse_connection(str(pc_id), record)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise DiagnosticFileError(f"connection {pc_id!r} is malformed: {exc!r}") from None
    return DiagnosticFile(
        schema_version=version,
        created_at=created_at,
        user_agent=str(document.get("UserAgent", "")),
        connections=connections,
    )


def _parse_configuration(value: Any) -> Mapping[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {"text": value}
        return parsed if isinstance(parsed, dict) else {"text": value}
    return {"text": str(value)} if value else {}


def _event_time(entry: Mapping[str, Any]) -> float:
    timestamp = entry.get("timestamp")
    if isinstance(timestamp, int | float):
        return float(timestamp)
    # Schema 1 and Chromium dumps: only the textual time.
    return parse_iso_time(str(entry["time"]))


def _series_times(
    entry: Mapping[str, Any], count: int, timestamps: list[float] | None
) -> tuple[float, ...]:
    times = entry.get("times")
    if isinstance(times, str):
        parsed = json.loads(times)
        if isinstance(parsed, list) and len(parsed) == count:
            return tuple(float(t) for t in parsed)
    if timestamps is not None and len(timestamps) >= count:
        # Schema 1 and Chromium dumps (M117+): the object's ``<id>-timestamp`` series, aligned
        # from the end as Chromium's viewers do (a field may appear late, never early).
        return tuple(timestamps[len(timestamps) - count :])
    # Older dumps: samples spread evenly from startTime to endTime.
    start, end = parse_iso_time(entry["startTime"]), parse_iso_time(entry["endTime"])
    if count <= 1:
        return (end,) * count
    step = (end - start) / (count - 1)
    return tuple(start + i * step for i in range(count))


def _timestamp_series(stats: Mapping[str, Any]) -> dict[str, list[float]]:
    """Each stats id's ``<id>-timestamp`` values, when numeric."""
    found = {}
    for key, entry in stats.items():
        stats_id, _, field_name = str(key).rpartition("-")
        if field_name != "timestamp" or not isinstance(entry, dict):
            continue
        values = entry.get("values")
        values = json.loads(values) if isinstance(values, str) else values
        if isinstance(values, list) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            found[stats_id] = [float(v) for v in values]
    return found


def _parse_connection(pc_id: str, record: Any) -> ConnectionDump:
    if not isinstance(record, dict):
        raise TypeError("not an object")
    events = tuple(
        UpdateEvent(timestamp=_event_time(e), type=str(e["type"]), value=str(e.get("value", "")))
        for e in record.get("updateLog", [])
    )
    if "objects" in record:
        series = _columnar_series(record["objects"])
    else:
        series = _chromium_series(record.get("stats", {}))
    return ConnectionDump(
        id=pc_id,
        configuration=_parse_configuration(record.get("rtcConfiguration")),
        events=events,
        series=series,
    )


def _columnar_series(objects: Any) -> dict[tuple[str, str], StatsSeries]:
    """Schema 3: one time column per stats object, one encoded column per field."""
    if not isinstance(objects, dict):
        raise TypeError("'objects' is not an object")
    decoded: dict[tuple[str, str | None], list[Any]] = {}

    def column(stats_id: str, name: str | None, encoded: Any) -> list[Any]:
        if isinstance(encoded, dict) and "ref" in encoded:
            ref = encoded["ref"]
            if not isinstance(ref, list) or len(ref) != 2 or (ref[0], ref[1]) not in decoded:
                raise ValueError(f"{stats_id!r} refers to a column not written before it")
            values = decoded[(ref[0], ref[1])]
        else:
            values = decode_column(encoded)
        decoded[(stats_id, name)] = values
        return values

    series: dict[tuple[str, str], StatsSeries] = {}
    for stats_id, entry in objects.items():
        try:
            times = column(stats_id, None, entry["times"])
            stats_type = str(entry["statsType"])
            for name, encoded in entry["fields"].items():
                start, values = encoded["start"], column(stats_id, name, encoded)
                if not isinstance(start, int) or start < 0 or start + len(values) > len(times):
                    raise ValueError(f"field {name!r} runs past the object's samples")
                series[(str(stats_id), str(name))] = StatsSeries(
                    stats_id=str(stats_id),
                    stats_type=stats_type,
                    field=str(name),
                    times=tuple(float(t) for t in times[start : start + len(values)]),
                    values=tuple(values),
                )
        except ColumnError as exc:
            raise ValueError(f"stats object {stats_id!r}: {exc}") from None
    return series


def _chromium_series(stats: Any) -> dict[tuple[str, str], StatsSeries]:
    """Schemas 0 to 2: Chromium's layout, one ``<id>-<field>`` entry per series."""
    series: dict[tuple[str, str], StatsSeries] = {}
    timestamps = _timestamp_series(stats)
    for key, entry in stats.items():
        stats_id, _, field_name = str(key).rpartition("-")
        if not stats_id:
            continue
        values = entry["values"]
        values = json.loads(values) if isinstance(values, str) else values
        if not isinstance(values, list):
            raise TypeError(f"values of {key!r} is not a list")
        series[(stats_id, field_name)] = StatsSeries(
            stats_id=stats_id,
            stats_type=str(entry["statsType"]),
            field=field_name,
            times=_series_times(entry, len(values), timestamps.get(stats_id)),
            values=tuple(values),
        )
    return series
