"""W3C webrtc-stats, a call recorder, and diagnostic files (see docs/stats.md)."""

from .builder import PeerConnectionInput, build_stats_report
from .report import RTCStats, RTCStatsReport
from .rtpcounters import RtpCounters

__all__ = [
    "PeerConnectionInput",
    "RTCStats",
    "RTCStatsReport",
    "RtpCounters",
    "build_stats_report",
]
