"""W3C webrtc-stats, a call recorder, and diagnostic files (see docs/stats.md)."""

from .builder import PeerConnectionInput, build_stats_report
from .dump import (
    SCHEMA_VERSION,
    ConnectionDump,
    DiagnosticFile,
    DiagnosticFileError,
    StatsSeries,
    UpdateEvent,
    load_diagnostic_file,
    write_diagnostic_file,
)
from .recorder import RecordingCore, StatsRecorder
from .report import RTCStats, RTCStatsReport
from .rtpcounters import RtpCounters
from .summary import ConnectionSummary, format_summary, summarise_connection

__all__ = [
    "SCHEMA_VERSION",
    "ConnectionDump",
    "ConnectionSummary",
    "DiagnosticFile",
    "DiagnosticFileError",
    "PeerConnectionInput",
    "RTCStats",
    "RTCStatsReport",
    "RecordingCore",
    "RtpCounters",
    "StatsRecorder",
    "StatsSeries",
    "UpdateEvent",
    "build_stats_report",
    "format_summary",
    "load_diagnostic_file",
    "summarise_connection",
    "write_diagnostic_file",
]
