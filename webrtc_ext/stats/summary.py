"""What a loaded diagnostic file says about each connection, in figures and readable text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .dump import ConnectionDump, DiagnosticFile, StatsSeries


@dataclass(frozen=True)
class CandidateSummary:
    """One end of a candidate pair."""

    address: str
    port: int
    protocol: str
    candidate_type: str
    relay_protocol: str | None

    def __str__(self) -> str:
        relay = f" via TURN/{self.relay_protocol}" if self.relay_protocol else ""
        return f"{self.candidate_type} {self.protocol} {self.address}:{self.port}{relay}"


@dataclass(frozen=True)
class PairSummary:
    """A candidate pair tried by ICE."""

    local: CandidateSummary
    remote: CandidateSummary
    state: str
    nominated: bool
    requests_sent: int
    responses_received: int
    selected: bool


@dataclass(frozen=True)
class RtpSummary:
    """The last counters of one RTP stream, and its average bitrate."""

    stats_id: str
    kind: str
    ssrc: int
    packets: int
    bytes: int
    bitrate_kbps: float | None
    packets_lost: int | None
    jitter: float | None
    nack_count: int
    retransmitted_packets: int
    round_trip_time: float | None = None


@dataclass(frozen=True)
class ConnectionSummary:
    """The story of one connection."""

    id: str
    duration: float | None
    states: list[tuple[float, str, str]]
    selected_pair: PairSummary | None
    pairs: list[PairSummary]
    selected_pair_changes: int
    ice_round_trip_time: float | None
    outbound: list[RtpSummary] = field(default_factory=list)
    inbound: list[RtpSummary] = field(default_factory=list)
    dtmf_received: int | None = None
    """Key presses received (``dtmf`` update-log events, or a ``dtmfEventsReceived`` field)."""
    dtmf_sent: int | None = None
    """Tones sent (non-empty ``tonechange`` events, or a ``dtmfEventsSent`` field)."""


def number(value: Any) -> float | None:
    """A number from a file value, or None (files may hold anything)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _int(value: Any) -> int:
    value = number(value)
    return int(value) if value is not None and abs(value) < 2**63 else 0


def _opt_int(value: Any) -> int | None:
    return _int(value) if number(value) is not None else None


def _id(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _bitrate(series: StatsSeries | None) -> float | None:
    if series is None or len(series.values) < 2:
        return None
    seconds = (series.times[-1] - series.times[0]) / 1000.0
    if seconds <= 0:
        return None
    return 8 * (_int(series.values[-1]) - _int(series.values[0])) / seconds / 1000.0


def _candidate(conn: ConnectionDump, stats_id: str | None) -> CandidateSummary:
    values = conn.latest(stats_id) if stats_id else {}
    return CandidateSummary(
        address=str(values.get("address", values.get("ip", "?"))),
        port=_int(values.get("port")),
        protocol=str(values.get("protocol", "?")),
        candidate_type=str(values.get("candidateType", "?")),
        relay_protocol=_id(values.get("relayProtocol")),
    )


def _pairs(conn: ConnectionDump) -> tuple[list[PairSummary], PairSummary | None, int]:
    selected_ids, changes = set(), 0
    for transport in conn.stats_ids("transport"):
        values = conn.latest(transport)
        if selected_id := _id(values.get("selectedCandidatePairId")):
            selected_ids.add(selected_id)
        changes += _int(values.get("selectedCandidatePairChanges"))
    pairs = []
    for pair_id in conn.stats_ids("candidate-pair"):
        values = conn.latest(pair_id)
        pairs.append(
            PairSummary(
                local=_candidate(conn, _id(values.get("localCandidateId"))),
                remote=_candidate(conn, _id(values.get("remoteCandidateId"))),
                state=str(values.get("state", "?")),
                nominated=bool(values.get("nominated")),
                requests_sent=_int(values.get("requestsSent")),
                responses_received=_int(values.get("responsesReceived")),
                selected=pair_id in selected_ids,
            )
        )
    selected = next((p for p in pairs if p.selected), None)
    return pairs, selected, changes


def _rtp(conn: ConnectionDump, stats_id: str, outbound: bool) -> RtpSummary:
    values = conn.latest(stats_id)
    remote_id = _id(values.get("remoteId"))
    remote = conn.latest(remote_id) if remote_id else {}
    counted = "bytesSent" if outbound else "bytesReceived"
    return RtpSummary(
        stats_id=stats_id,
        kind=str(values.get("kind", "?")),
        ssrc=_int(values.get("ssrc")),
        packets=_int(values.get("packetsSent" if outbound else "packetsReceived")),
        bytes=_int(values.get(counted)),
        bitrate_kbps=_bitrate(conn.get(stats_id, counted)),
        packets_lost=_opt_int((remote if outbound else values).get("packetsLost")),
        jitter=number((remote if outbound else values).get("jitter")),
        nack_count=_int(values.get("nackCount")),
        retransmitted_packets=_int(
            values.get("retransmittedPacketsSent" if outbound else "retransmittedPacketsReceived")
        ),
        round_trip_time=number(remote.get("roundTripTime")) if outbound else None,
    )


def _dtmf(conn: ConnectionDump, ids: Sequence[str], name: str, event: str) -> int | None:
    counted = [_int(s.last) for (i, f), s in conn.series.items() if i in ids and f == name]
    if counted:
        return sum(counted)
    # A tonechange "" ends the tones and "," is a pause: neither is a key.
    events = [e for e in conn.events_of(event) if e.value not in ("", ",")]
    return len(events) if events else None


def summarise_connection(conn: ConnectionDump) -> ConnectionSummary:
    """The figures that tell how one connection went."""
    pairs, selected, changes = _pairs(conn)
    rtt = None
    for transport in conn.stats_ids("transport"):
        pair_id = _id(conn.latest(transport).get("selectedCandidatePairId"))
        value = number(conn.latest(pair_id).get("currentRoundTripTime")) if pair_id else None
        if value is not None:
            rtt = value
    # From the first event or sample to the last: state changes stop once connected, the
    # stats samples run until the connection closes.
    times = [e.timestamp for e in conn.events]
    times += [t for series in conn.series.values() for t in series.times[:1] + series.times[-1:]]
    states = [
        (e.timestamp, e.type, e.value)
        for e in conn.events
        if e.type.endswith("statechange") and e.type != "selectedcandidatepairchange"
    ]
    outbound_ids = conn.stats_ids("outbound-rtp")
    inbound_ids = conn.stats_ids("inbound-rtp")
    return ConnectionSummary(
        id=conn.id,
        duration=(max(times) - min(times)) / 1000.0 if times else None,
        states=states,
        selected_pair=selected,
        pairs=pairs,
        selected_pair_changes=changes,
        ice_round_trip_time=rtt,
        outbound=[_rtp(conn, i, True) for i in outbound_ids],
        inbound=[_rtp(conn, i, False) for i in inbound_ids],
        dtmf_received=_dtmf(conn, inbound_ids, "dtmfEventsReceived", "dtmf"),
        dtmf_sent=_dtmf(conn, outbound_ids, "dtmfEventsSent", "tonechange"),
    )


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f} ms"


def _rtp_lines(direction: str, streams: list[RtpSummary]) -> list[str]:
    lines = []
    for s in streams:
        rate = "n/a" if s.bitrate_kbps is None else f"{s.bitrate_kbps:.1f} kbit/s"
        lost = "n/a" if s.packets_lost is None else str(s.packets_lost)
        verb = "sent" if direction == "out" else "received"
        loss = "peer reports lost" if direction == "out" else "lost"
        line = (
            f"  {direction:>3} {s.kind} ssrc={s.ssrc}: {s.packets} packets {verb}, {rate}, "
            f"{loss} {lost}, jitter {_ms(s.jitter)}, NACKs {s.nack_count}, "
            f"retransmitted {s.retransmitted_packets}"
        )
        if s.round_trip_time is not None:
            line += f", RTCP RTT {_ms(s.round_trip_time)}"
        lines.append(line)
    return lines


def format_summary(diagnostic: DiagnosticFile) -> str:
    """A readable multi-line summary of every connection of a diagnostic file."""
    lines = [
        f"diagnostic file: schema {diagnostic.schema_version}, {len(diagnostic.connections)} "
        f"connection(s), written by {diagnostic.user_agent or 'unknown'}"
    ]
    for conn in diagnostic.connections.values():
        s = summarise_connection(conn)
        duration = "n/a" if s.duration is None else f"{s.duration:.1f} s"
        lines += ["", f"connection {s.id} (recorded {duration})"]
        final = {kind: value for _, kind, value in s.states}
        if final:
            lines.append(
                "  final states: " + ", ".join(f"{k}={v}" for k, v in sorted(final.items()))
            )
        if s.selected_pair is not None:
            lines.append(f"  path chosen: {s.selected_pair.local} -> {s.selected_pair.remote}")
        else:
            lines.append("  path chosen: none (ICE never selected a pair)")
        lines.append(
            f"  ICE RTT {_ms(s.ice_round_trip_time)}, selected pair changed "
            f"{s.selected_pair_changes} time(s)"
        )
        lines.append(f"  candidate pairs tried: {len(s.pairs)}")
        for p in s.pairs:
            mark = "*" if p.selected else " "
            lines.append(
                f"   {mark} {p.local} -> {p.remote}: {p.state}"
                f"{' nominated' if p.nominated else ''}, {p.requests_sent} checks sent, "
                f"{p.responses_received} answered"
            )
        lines += _rtp_lines("out", s.outbound) + _rtp_lines("in", s.inbound)
        lines.append(f"  DTMF: {s.dtmf_received or 0} received, {s.dtmf_sent or 0} sent")
    return "\n".join(lines)
