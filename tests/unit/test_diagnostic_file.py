"""Diagnostic files: round trip, older schema versions, Chromium dumps, and bad input."""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from webrtc_ext.stats.cli import main as webrtc_diag
from webrtc_ext.stats.dump import (
    SCHEMA_VERSION,
    DiagnosticFileError,
    load_diagnostic_file,
    parse_dump,
    write_diagnostic_file,
)
from webrtc_ext.stats.recorder import RecordingCore, build_dump
from webrtc_ext.stats.summary import format_summary, summarise_connection

T0 = 1_700_000_000_000.0


def recorded() -> RecordingCore:
    core = RecordingCore("pc-1", {"iceTransportPolicy": "all"})
    core.event(T0, "setLocalDescription", "type: offer, sdp: v=0")
    core.event(T0 + 5, "connectionstatechange", "connected")
    for i in range(5):
        core.sample(
            T0 + 1000 * i,
            {
                "T01": {"id": "T01", "type": "transport", "selectedCandidatePairId": "CPa_b",
                        "selectedCandidatePairChanges": 1},
                "CPa_b": {"id": "CPa_b", "type": "candidate-pair", "localCandidateId": "Ia",
                          "remoteCandidateId": "Rb", "state": "succeeded", "nominated": True,
                          "requestsSent": 1, "responsesReceived": 1,
                          "currentRoundTripTime": 0.02},
                "Ia": {"id": "Ia", "type": "local-candidate", "address": "127.0.0.1",
                       "port": 5000, "protocol": "udp", "candidateType": "relay",
                       "relayProtocol": "tcp"},
                "Rb": {"id": "Rb", "type": "remote-candidate", "address": "127.0.0.1",
                       "port": 6000, "protocol": "udp", "candidateType": "host"},
                "OT01A1": {"id": "OT01A1", "type": "outbound-rtp", "kind": "audio", "ssrc": 1,
                           "packetsSent": 50 * i, "bytesSent": 4000 * i, "nackCount": i,
                           "retransmittedPacketsSent": i, "dtmfEventsSent": 3},
            },
        )  # fmt: skip
    return core


def test_round_trip_write_load_summarise(tmp_path: Path) -> None:
    path = write_diagnostic_file(tmp_path / "d.json.gz", build_dump([recorded()], T0))
    assert path.read_bytes()[:2] == b"\x1f\x8b", "gzip-compressed"
    loaded = load_diagnostic_file(path)
    assert loaded.schema_version == SCHEMA_VERSION and loaded.created_at == T0
    conn = loaded.connections["pc-1"]
    assert conn.configuration == {"iceTransportPolicy": "all"}
    assert [e.type for e in conn.events] == ["setLocalDescription", "connectionstatechange"]
    assert conn.events[0].value == "type: offer, sdp: v=0"
    assert conn.events[0].timestamp == T0 and conn.events[1].value == "connected"
    sent = conn.get("OT01A1", "packetsSent")
    assert sent is not None and sent.values == (0, 50, 100, 150, 200)
    assert sent.times == tuple(T0 + 1000 * i for i in range(5))
    assert conn.get("OT01A1", "timestamp") is not None
    summary = summarise_connection(conn)
    assert summary.selected_pair is not None
    assert str(summary.selected_pair.local) == "relay udp 127.0.0.1:5000 via TURN/tcp"
    (out,) = summary.outbound
    assert (out.packets, out.nack_count, out.retransmitted_packets) == (200, 4, 4)
    assert out.bitrate_kbps == pytest.approx(8 * 16000 / 4 / 1000)
    assert summary.dtmf_sent == 3 and summary.dtmf_received is None
    assert summary.ice_round_trip_time == 0.02
    # Connected after 5 ms, sampled for 4 s: the recording lasted 4 s.
    assert summary.duration == 4.0
    text = format_summary(loaded)
    assert "connection pc-1 (recorded 4.0 s)" in text
    assert "path chosen: relay udp 127.0.0.1:5000 via TURN/tcp -> host udp" in text
    assert "NACKs 4, retransmitted 4" in text and "DTMF: 0 received, 3 sent" in text


def test_chromium_layout_export_opens_in_viewers_and_loads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_diagnostic_file(tmp_path / "d.json.gz", build_dump([recorded()], T0))
    out = tmp_path / "chromium.json"
    assert webrtc_diag([str(path), "--chromium", str(out)]) == 0
    assert f"chromium layout: {out}" in capsys.readouterr().out
    document = json.loads(out.read_text())
    stats = document["PeerConnections"]["pc-1"]["stats"]
    assert "OT01A1-timestamp" in stats, "Chromium's viewers need the timestamp series"
    assert json.loads(stats["OT01A1-packetsSent"]["values"]) == [0, 50, 100, 150, 200]
    assert document["PeerConnections"]["pc-1"]["updateLog"][0]["time"].endswith("Z")
    original = load_diagnostic_file(path).connections["pc-1"]
    exported = load_diagnostic_file(out).connections["pc-1"]
    assert exported.series == original.series and exported.events == original.events


def test_schema_2_file_still_loads(tmp_path: Path) -> None:
    # The layout every earlier release wrote (Chromium's, with per-series times).
    document = build_dump([recorded()], T0, layout="chromium")
    assert document["webrtcExt"]["schemaVersion"] == 2
    path = tmp_path / "v2.json.gz"
    path.write_bytes(gzip.compress(json.dumps(document).encode()))
    loaded = load_diagnostic_file(path)
    assert loaded.schema_version == 2
    current = load_diagnostic_file(
        write_diagnostic_file(tmp_path / "v3.json.gz", build_dump([recorded()], T0))
    )
    assert loaded.connections["pc-1"].series == current.connections["pc-1"].series


def test_an_hour_of_samples_shares_repeated_columns_and_reads_back(tmp_path: Path) -> None:
    core = RecordingCore("pc", {})
    for i in range(3600):
        now = T0 + 1000 * i + (i * 7919 % 13) / 1000
        core.sample(now, {
            "OT01A1": {"id": "OT01A1", "type": "outbound-rtp", "timestamp": now,
                       "packetsSent": 50 * i + i % 3, "codecId": "COT01_111"},
            "T01": {"id": "T01", "type": "transport", "timestamp": now,
                    "bytesSent": 4000 * i},
        })  # fmt: skip
    document = core.to_json()
    transport = document["objects"]["T01"]
    assert transport["times"] == {"ref": ["OT01A1", None]}, "one time column for both"
    assert transport["fields"]["timestamp"]["ref"] == ["OT01A1", None], "same as the times"
    assert document["objects"]["OT01A1"]["fields"]["codecId"]["r"] == [[0, "COT01_111"]]
    path = write_diagnostic_file(tmp_path / "h.json.gz", build_dump([core], T0))
    assert path.stat().st_size < 20_000
    conn = load_diagnostic_file(path).connections["pc"]
    sent = conn.get("OT01A1", "packetsSent")
    assert sent is not None and sent.values[3599] == 50 * 3599 + 3599 % 3
    assert sent.times[1] == T0 + 1000 + (7919 % 13) / 1000


def test_an_hour_of_unchanging_fields_costs_almost_no_memory() -> None:
    constant = {f"f{n}": f"value-{n}" if n % 2 else n * 1000 for n in range(20)}
    core = RecordingCore("pc", {})
    core.sample(T0, {"X": {"id": "X", "type": "t", "count": 0, **constant}})
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1, 3600):
            core.sample(T0 + 1000 * i, {"X": {"id": "X", "type": "t", "count": i, **constant}})
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Times, "timestamp" and "count" change every second (8 bytes each); 20 fields do not.
    assert grown < 3600 * 8 * 3 * 1.5, f"{grown} bytes for an hour"
    assert core._objects["X"].columns["f3"].values() == ["value-3"] * 3600


def test_a_field_that_never_changes_costs_only_its_column() -> None:
    # A leg's report has ~200 such fields (ids, SSRCs, codecs, addresses, states): each
    # stores nothing until its value changes. An array or list made at the first value
    # costs ~70 bytes more a field (~15 KB a call).
    constant = {f"f{n}": f"value-{n}" if n % 2 else n * 1000 for n in range(100)}
    core = RecordingCore("pc", {})
    core.sample(T0, {"Y": {"id": "Y", "type": "t"}})
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1, 11):
            core.sample(T0 + 1000 * i, {"X": {"id": "X", "type": "t", **constant}})
        per_field = (tracemalloc.get_traced_memory()[0] - before) / len(constant)
    finally:
        tracemalloc.stop()
    assert per_field < 160, f"{per_field:.0f} bytes a field"
    assert core._objects["X"].columns["f3"].values() == ["value-3"] * 10
    assert core._objects["X"].columns["f4"].values() == [4000] * 10


def test_building_a_dump_adds_nothing_to_the_record() -> None:
    # The dump is written when a call ends, while the call's memory is still held (and a
    # service ends many at once): reading the columns must not store their counted runs
    # (~100 KB here: 20 fields, 600 samples).
    constant = {f"f{n}": (f"v{n}", n * 1000, n + 0.5)[n % 3] for n in range(20)}
    core = RecordingCore("pc", {})
    for i in range(600):
        core.sample(T0 + 1000 * i, {"X": {"id": "X", "type": "t", "count": i, **constant}})
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        dump = build_dump([core], T0)
        del dump
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # What stays is CPython's free lists of floats and tuples (a few KB).
    assert kept < 20_000, f"{kept} bytes kept"
    columns = core._objects["X"].columns
    assert columns["f3"].values() == ["v3"] * 600
    assert columns["f4"].values() == [4000] * 600
    assert columns["f5"].values() == [5.5] * 600


_field_values = (
    st.none()
    | st.booleans()
    | st.sampled_from([0, 1, 7, 2**40, 0.5, 1.0, "a", "b", math.nan, math.inf, 1.23456789])
)
#: Two plain fields and a DOMHighResTimeStamp (recorded rounded to microseconds).
_FIELDS = ("x", "y", "lastPacketReceivedTimestamp")


@given(st.lists(st.dictionaries(st.sampled_from(_FIELDS), _field_values), max_size=40))
@example([{"x": 0.5}, {"x": 7}, {"x": 7}])  # the counted run reads back as a float too
@settings(max_examples=300, deadline=None)
def test_any_sequence_of_samples_reads_back_as_recorded(
    samples: list[dict[str, object]],
) -> None:
    # Fields come and go, repeat (kept as a count while unchanged), change type, and are
    # not finite (recorded as None).
    core = RecordingCore("pc", {})
    for i, fields in enumerate(samples):
        core.sample(T0 + 1000 * i, {"X": {"id": "X", "type": "t", **fields}})
    record = core._objects.get("X")
    series = {name: (times, values) for name, times, values in record.series()} if record else {}
    for name in _FIELDS:
        seen = [i for i, fields in enumerate(samples) if name in fields]
        if not seen:
            assert name not in series
            continue
        times, values = series[name]
        first = seen[0]
        assert times == [T0 + 1000 * i for i in range(first, first + len(values))]
        expected = [
            _as_recorded(name, samples[i].get(name)) for i in range(first, first + len(values))
        ]
        assert len(values) == seen[-1] - first + 1
        assert [_kind(v) for v in values] == [_kind(v) for v in expected]
        if all(v is None or _kind(v)[0] == "number" for v in values):
            # A column of numbers reads back all ints, or all floats once one was a float.
            assert len({type(v) for v in values if v is not None}) <= 1, values


@given(st.lists(st.sets(st.sampled_from("ABC")), max_size=30))
@settings(max_examples=200, deadline=None)
def test_objects_that_come_and_go_keep_the_times_of_their_own_samples(
    presence: list[set[str]],
) -> None:
    # A connection's sample times are kept once for all its objects while each is in every
    # sample; one that misses a sample must still read back exactly the times it was seen.
    core = RecordingCore("pc", {})
    for i, present in enumerate(presence):
        core.sample(
            T0 + 1000 * i + 0.25,
            {obj: {"id": obj, "type": "t", "n": i} for obj in sorted(present)},
        )
    for obj in "ABC":
        seen = [i for i, present in enumerate(presence) if obj in present]
        record = core._objects.get(obj)
        if not seen:
            assert record is None
            continue
        series = {name: (times, values) for name, times, values in record.series()}
        times, values = series["n"]
        assert record.times.tolist() == [T0 + 1000 * i + 0.25 for i in seen]
        assert times == record.times.tolist()
        assert values == seen


_stamps = st.sampled_from(["shared", "other", "missing", "int", "bool", "nan"])


@given(
    st.lists(
        st.tuples(st.booleans(), st.dictionaries(st.sampled_from("ABC"), _stamps)), max_size=30
    )
)
@settings(max_examples=300, deadline=None)
def test_each_object_s_timestamp_reads_back_as_recorded(
    reports: list[tuple[bool, dict[str, str]]],
) -> None:
    # The report's shared timestamp is kept once per connection: objects whose timestamp is
    # something else (another time, none, an int, a bool, NaN), or that miss samples, must
    # still read back exactly their own values; 1 and True equal a stamp of 1.0, yet are not it.
    core = RecordingCore("pc", {})
    expected: dict[str, list[object]] = {obj: [] for obj in "ABC"}
    for i, (one, kinds) in enumerate(reports):
        shared = 1.0 if one else T0 + 1000 * i + 0.1234567
        now = T0 + 1000 * i + 0.5
        values = {
            "shared": shared, "other": shared + 3.0, "int": 1 if one else i, "bool": True,
            "nan": math.nan,
        }  # fmt: skip
        report = {}
        for obj, kind in sorted(kinds.items()):
            stats: dict[str, object] = {"id": obj, "type": "t"}
            if kind != "missing":
                stats["timestamp"] = values[kind]
            report[obj] = stats
        core.sample(now, report)
        for obj, kind in kinds.items():
            value = values[kind] if kind != "missing" else now
            expected[obj].append(_as_recorded("timestamp", value))
    for obj in "ABC":
        record = core._objects.get(obj)
        if record is None:
            assert not expected[obj]
            continue
        series = {name: values for name, _, values in record.series()}
        assert [_kind(v) for v in series["timestamp"]] == [_kind(v) for v in expected[obj]]


def _as_recorded(name: str, value: object) -> object:
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if name == "timestamp" or name.endswith("Timestamp"):
            return round(value, 3)
    return value


def _kind(value: object) -> tuple[str, object]:
    """A value as a series gives it back: a number column is all ints or all floats."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number", float(value)
    return type(value).__name__, value


#: A schema-1 file: no per-series "times", no numeric update-log "timestamp".
SCHEMA_1 = {
    "webrtcExt": {"schemaVersion": 1},
    "UserAgent": "webrtc_ext",
    "getUserMedia": [],
    "PeerConnections": {
        "pc-1": {
            "rtcConfiguration": "{\"bundlePolicy\": \"balanced\"}",
            "updateLog": [
                {"time": "2023-11-14T22:13:20.000Z", "type": "iceconnectionstatechange",
                 "value": "checking"},
            ],
            "stats": {
                "OT01A1-packetsSent": {
                    "startTime": "2023-11-14T22:13:20.000Z",
                    "endTime": "2023-11-14T22:13:22.000Z",
                    "statsType": "outbound-rtp", "values": "[0,50,100]",
                },
            },
        },
    },
}  # fmt: skip


_json_documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=4), inner, max_size=4)
        | st.dictionaries(st.integers(0, 9), inner, min_size=1, max_size=2)
    ),
    max_leaves=40,
)


@given(_json_documents, st.integers(0, 8))
@settings(max_examples=300, deadline=None)
def test_a_dump_written_in_parts_is_the_text_json_dumps_gives(document: object, depth: int) -> None:
    from webrtc_ext.stats.dump import _json_parts

    whole = json.dumps(document, separators=(",", ":"), allow_nan=False)
    assert "".join(_json_parts(document, depth)) == whole


def test_writing_a_long_leg_s_dump_costs_a_fraction_of_its_text(tmp_path: Path) -> None:
    # A service ends many calls at once and writes their dumps side by side: encoding one at
    # once (json.dumps) takes ~16 times its text in short-lived objects.
    from webrtc_ext.stats.dump import _json_parts

    core = RecordingCore("pc", {})
    for i in range(600):
        core.sample(
            T0 + 1000 * i,
            {f"O{n}": {"id": f"O{n}", "type": "t", **{f"c{k}": i * (k + n) for k in range(20)}}
             for n in range(10)},
        )  # fmt: skip
    dump = build_dump([core], T0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        size = sum(len(part) for part in _json_parts(dump, 6))
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < size, f"{peak} bytes to encode {size}"
    path = write_diagnostic_file(tmp_path / "long.json.gz", dump)
    assert json.loads(gzip.decompress(path.read_bytes())) == json.loads(json.dumps(dump))


def test_a_dump_json_cannot_hold_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_diagnostic_file(tmp_path / "nan.json.gz", {"PeerConnections": {"a": [math.nan]}})
    assert list(tmp_path.iterdir()) == []


def test_non_finite_numbers_are_recorded_as_null(tmp_path: Path) -> None:
    core = RecordingCore("pc", {})
    core.sample(T0, {"X": {"id": "X", "type": "t", "a": float("nan"), "b": float("inf")}})
    path = write_diagnostic_file(tmp_path / "n.json.gz", build_dump([core], T0))
    conn = load_diagnostic_file(path).connections["pc"]
    assert conn.latest("X") == {"timestamp": T0, "a": None, "b": None}


def test_schema_1_file_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.json.gz"
    path.write_bytes(gzip.compress(json.dumps(SCHEMA_1).encode()))
    loaded = load_diagnostic_file(path)
    assert loaded.schema_version == 1
    conn = loaded.connections["pc-1"]
    assert conn.events[0].timestamp == T0
    sent = conn.get("OT01A1", "packetsSent")
    assert sent is not None and sent.times == (T0, T0 + 1000, T0 + 2000)
    assert conn.configuration == {"bundlePolicy": "balanced"}


def test_plain_chromium_dump_loads(tmp_path: Path) -> None:
    # Chromium (M117+) dumps: no marker, an "<id>-timestamp" series per stats object, and a
    # field that appears late is aligned from the end.
    stamps = [T0, T0 + 1000, T0 + 2000]
    window = {"startTime": "2023-11-14T22:13:20.000Z", "endTime": "2023-11-14T22:13:22.000Z"}
    dump = {
        "getUserMedia": [],
        "PeerConnections": {
            "7-1": {
                "rtcConfiguration": "{iceServers: []}",
                "updateLog": [{"time": "2023-11-14T22:13:20.000Z", "type": "createOffer",
                               "value": ""}],
                "stats": {
                    "RIA1-timestamp": {**window, "statsType": "remote-inbound-rtp",
                                       "values": json.dumps(stamps)},
                    "RIA1-roundTripTime": {**window, "statsType": "remote-inbound-rtp",
                                           "values": "[0.02,0.03]"},
                },
            }
        },
    }  # fmt: skip
    path = tmp_path / "webrtc_internals_dump.txt"
    path.write_text(json.dumps(dump))
    loaded = load_diagnostic_file(path)
    assert loaded.schema_version == 0
    conn = loaded.connections["7-1"]
    rtt = conn.get("RIA1", "roundTripTime")
    assert rtt is not None and rtt.times == (T0 + 1000, T0 + 2000)
    assert conn.configuration == {"text": "{iceServers: []}"}
    assert "7-1" in format_summary(loaded)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not JSON"),
        (b"\x00\x01garbage", "not JSON"),
        (b'{"hello": "world"}', "not a diagnostic file"),
        (b"[1, 2, 3]", "not a diagnostic file"),
        (b'{"webrtcExt": {"schemaVersion": 99}, "PeerConnections": {}}', "upgrade"),
        (b'{"webrtcExt": "x", "PeerConnections": {}}', "schemaVersion"),
        (b'{"PeerConnections": {"a": {"stats": {"X-y": {"values": 3}}}}}', "malformed"),
        (b'{"PeerConnections": {"a": {"updateLog": [{"type": "x"}]}}}', "malformed"),
    ],
)
def test_foreign_or_broken_content_gives_a_clear_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(DiagnosticFileError, match=message):
        load_diagnostic_file(path)


def test_truncated_file_gives_a_clear_error(tmp_path: Path) -> None:
    good = write_diagnostic_file(tmp_path / "d.json.gz", build_dump([recorded()], T0))
    truncated = tmp_path / "t.json.gz"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(DiagnosticFileError, match="truncated"):
        load_diagnostic_file(truncated)
    with pytest.raises(DiagnosticFileError, match="cannot read"):
        load_diagnostic_file(tmp_path / "missing.json.gz")


def test_cli_reports_bad_files_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.json.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00trunc")
    assert webrtc_diag([str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("webrtc-diag: error: ") and "Traceback" not in captured.err
    assert captured.out == ""


def test_cli_summarises_and_draws(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_diagnostic_file(tmp_path / "d.json.gz", build_dump([recorded()], T0))
    assert webrtc_diag([str(path), "--charts", str(tmp_path / "png")]) == 0
    out = capsys.readouterr().out
    assert "connection pc-1" in out and "chart: " in out
    png = tmp_path / "png" / "pc-1.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


def stats_entries() -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries(
        {
            "startTime": st.just("2023-11-14T22:13:20.000Z"),
            "endTime": st.just("2023-11-14T22:13:21.000Z"),
            "statsType": st.sampled_from(
                ["transport", "candidate-pair", "outbound-rtp", "inbound-rtp", "x"]
            ),
            "values": st.lists(json_values, max_size=3).map(json.dumps),
        }
    )


stats_keys = st.sampled_from(["T01", "CP1", "OT01A1", "IT01A2", "RIA1"]).flatmap(
    lambda i: st.sampled_from(["selectedCandidatePairId", "remoteId", "bytesSent", "jitter",
                               "packetsLost", "localCandidateId", "roundTripTime"])
    .map(lambda f: f"{i}-{f}")
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["PeerConnections", "webrtcExt", "UserAgent", "x"]), json_values
    )
    | st.fixed_dictionaries(
        {"PeerConnections": st.dictionaries(st.text(max_size=3), json_values, max_size=2)}
    )
    | st.fixed_dictionaries(
        {
            "PeerConnections": st.fixed_dictionaries(
                {
                    "pc": st.fixed_dictionaries(
                        {"stats": st.dictionaries(stats_keys, stats_entries(), max_size=8)}
                    )
                }
            )
        }
    )
)
def test_any_json_document_loads_or_raises_the_dedicated_error(document: object) -> None:
    try:
        loaded = parse_dump(document)
    except DiagnosticFileError:
        return
    format_summary(loaded)


start = st.integers(-1, 3)
columns = st.one_of(
    st.fixed_dictionaries(
        {"start": start, "d": st.lists(st.integers() | st.none(), max_size=4), "e": start}
    ),
    st.fixed_dictionaries(
        {"start": start, "r": st.lists(st.lists(json_values, max_size=2), max_size=3), "n": start}
    ),
    st.fixed_dictionaries(
        {"start": start, "ref": st.lists(st.sampled_from(["T01", None, "jitter"]), max_size=2)}
    ),
    json_values,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["T01", "OT01A1"]),
        st.fixed_dictionaries(
            {
                "statsType": st.sampled_from(["transport", "outbound-rtp"]),
                "times": columns,
                "fields": st.dictionaries(st.sampled_from(["bytesSent", "jitter"]), columns),
            }
        )
        | json_values,
        max_size=2,
    )
)
def test_any_schema_3_objects_load_or_raise_the_dedicated_error(objects: object) -> None:
    document = {"webrtcExt": {"schemaVersion": 3}, "PeerConnections": {"pc": {"objects": objects}}}
    try:
        loaded = parse_dump(document)
    except DiagnosticFileError:
        return
    format_summary(loaded)


def test_cli_charts_without_matplotlib_names_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_diagnostic_file(tmp_path / "d.json.gz", build_dump([recorded()], T0))
    for name in [m for m in list(sys.modules) if m.partition(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what a missing package looks like
    assert webrtc_diag([str(path), "--charts", str(tmp_path / "png")]) == 2
    err = capsys.readouterr().err
    assert "matplotlib" in err and "pip install 'webrtc-relay[diag]'" in err
    assert not (tmp_path / "png").exists() or not any((tmp_path / "png").iterdir())


def test_cli_reports_an_unwritable_output_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_diagnostic_file(tmp_path / "d.json.gz", build_dump([recorded()], T0))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert webrtc_diag([str(path), "--chromium", str(tmp_path / "missing" / "x.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("webrtc-diag: error: cannot write ") and "No such file" in err
    assert webrtc_diag([str(path), "--charts", str(blocker / "png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("webrtc-diag: error: cannot write charts into ")


def test_cli_piped_into_a_reader_that_leaves_has_no_traceback(tmp_path: Path) -> None:
    path = write_diagnostic_file(tmp_path / "d.json.gz", build_dump([recorded()], T0))
    read_end, write_end = os.pipe()
    os.close(read_end)  # ``webrtc-diag d.json.gz | head -0``: nobody reads
    try:
        result = subprocess.run(
            [sys.executable, "-m", "webrtc_ext.stats.cli", str(path)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr
    assert result.returncode == 1
