"""PNG charts of a diagnostic file's time series (matplotlib, Agg backend, optional extra)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from .dump import ConnectionDump, DiagnosticFile, StatsSeries
from .summary import number


class ChartsUnavailable(RuntimeError):
    """matplotlib is not installed (``pip install webrtc-relay[diag]``)."""


def _rate(series: StatsSeries) -> tuple[list[float], list[float]]:
    """Per-interval bitrate in kbit/s from a cumulative byte counter."""
    xs, ys = [], []
    points = [(t, v) for t, v in zip(series.times, map(number, series.values), strict=True)]
    numeric = [(t, v) for t, v in points if v is not None]
    for (t0, v0), (t1, v1) in itertools.pairwise(numeric):
        if t1 > t0:
            xs.append(t1)
            ys.append(8 * (v1 - v0) / ((t1 - t0) / 1000.0) / 1000.0)
    return xs, ys


def _milliseconds(series: StatsSeries) -> tuple[list[float], list[Any]]:
    values = [number(v) for v in series.values]
    return list(series.times), [None if v is None else v * 1000 for v in values]


def _plot(axis: Any, start: float, times: list[float], values: list[Any], label: str) -> None:
    points = [(t, v) for t, v in zip(times, map(number, values), strict=True) if v is not None]
    if points:
        axis.plot([(t - start) / 1000.0 for t, _ in points], [v for _, v in points], label=label)


def _panels(conn: ConnectionDump) -> list[tuple[str, list[tuple[str, list[float], list[Any]]]]]:
    bitrate, loss, rtt, repair = [], [], [], []
    for stats_id in conn.stats_ids("outbound-rtp"):
        if (s := conn.get(stats_id, "bytesSent")) is not None:
            bitrate.append((f"sent {stats_id}", *_rate(s)))
        for name in ("nackCount", "retransmittedPacketsSent"):
            if (s := conn.get(stats_id, name)) is not None:
                repair.append((f"{name} {stats_id}", list(s.times), list(s.values)))
    for stats_id in conn.stats_ids("inbound-rtp"):
        if (s := conn.get(stats_id, "bytesReceived")) is not None:
            bitrate.append((f"received {stats_id}", *_rate(s)))
        if (s := conn.get(stats_id, "packetsLost")) is not None:
            loss.append((f"lost {stats_id}", list(s.times), list(s.values)))
        for name in ("nackCount", "retransmittedPacketsReceived"):
            if (s := conn.get(stats_id, name)) is not None:
                repair.append((f"{name} {stats_id}", list(s.times), list(s.values)))
    for stats_id in conn.stats_ids("remote-inbound-rtp"):
        if (s := conn.get(stats_id, "packetsLost")) is not None:
            loss.append((f"peer lost {stats_id}", list(s.times), list(s.values)))
        if (s := conn.get(stats_id, "roundTripTime")) is not None:
            rtt.append((f"RTCP {stats_id}", *_milliseconds(s)))
    for stats_id in conn.stats_ids("candidate-pair"):
        s = conn.get(stats_id, "currentRoundTripTime")
        if s is not None and any(number(v) for v in s.values):
            rtt.append((f"ICE {stats_id[:12]}", *_milliseconds(s)))
    return [
        ("bitrate (kbit/s)", bitrate),
        ("packets lost (cumulative)", loss),
        ("round-trip time (ms)", rtt),
        ("NACKs / retransmissions (cumulative)", repair),
    ]


def draw_charts(diagnostic: DiagnosticFile, directory: str | Path) -> list[Path]:
    """One PNG per connection (bitrate, loss, RTT, NACKs over time); the paths written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ChartsUnavailable(
            "drawing charts needs matplotlib, which comes with the [diag] extra: "
            "pip install 'webrtc-relay[diag]'"
        ) from exc
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for conn in diagnostic.connections.values():
        times = [e.timestamp for e in conn.events] + [
            t for s in conn.series.values() for t in s.times[:1]
        ]
        start = min(times, default=0.0)
        panels = _panels(conn)
        figure, axes = plt.subplots(len(panels), 1, figsize=(10, 11), sharex=True)
        for axis, (title, lines) in zip(axes, panels, strict=True):
            axis.set_title(title, fontsize=10)
            axis.grid(True, alpha=0.3)
            for label, xs, ys in lines:
                _plot(axis, start, xs, ys, label)
            if axis.get_legend_handles_labels()[0]:
                axis.legend(fontsize=7, loc="upper left")
            else:
                axis.text(0.5, 0.5, "no data", ha="center", va="center", transform=axis.transAxes)
        axes[-1].set_xlabel("seconds since the recording started")
        figure.suptitle(f"connection {conn.id}")
        figure.tight_layout()
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in conn.id)
        path = directory / f"{safe}.png"
        figure.savefig(path, dpi=80)
        plt.close(figure)
        written.append(path)
    return written
