"""A leg's diagnostic file: the library's recorder, kept in the database instead of on disk.

Each leg of a call is recorded by :class:`webrtc_ext.stats.StatsRecorder` (stats sampled every
second, every state change, both SDPs, DTMF); the file it writes — gzip JSON in Chromium's
webrtc-internals layout, readable by ``webrtc-diag`` — is what the call stores.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from webrtc_ext import RTCPeerConnection
from webrtc_ext.stats import StatsRecorder

#: Seconds between two stats samples of a leg.
SAMPLE_INTERVAL = 1.0
#: Seconds the last sample and the file may take: ending a call must never hang on it.
RENDER_TIMEOUT = 10.0


class LegRecorder:
    """Records one peer connection of a call for its diagnostic file."""

    def __init__(self, leg: str, pc: RTCPeerConnection, interval: float = SAMPLE_INTERVAL) -> None:
        self.leg = leg
        self.pc = pc
        self._directory = tempfile.TemporaryDirectory(prefix="relay-diagnostic-")
        self._recorder = StatsRecorder(Path(self._directory.name) / "leg.json.gz", interval)
        self._recorder.record(pc, leg)

    def filename(self, call_id: str) -> str:
        """The file's name in downloads."""
        return f"{call_id}-{self.leg}.json.gz"

    async def render(self) -> bytes:
        """Finish recording and return the diagnostic file's bytes."""
        try:
            async with asyncio.timeout(RENDER_TIMEOUT):
                path = await self._recorder.close()
            return path.read_bytes()
        finally:
            self._directory.cleanup()
