"""The recorder on a connection that never connects: the file still tells what happened."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import LOOPBACK
from webrtc_ext import RTCPeerConnection
from webrtc_ext.stats import StatsRecorder, format_summary, load_diagnostic_file

pytestmark = pytest.mark.integration


async def test_unanswered_offer_is_recorded_and_written_on_close(tmp_path: Path) -> None:
    path = tmp_path / "unanswered.json.gz"
    recorder = StatsRecorder(path, interval=0.05)
    pc = RTCPeerConnection(LOOPBACK)
    recorder.record(pc, "lonely")
    pc.addTransceiver("audio")
    await pc.setLocalDescription(await pc.createOffer())
    await pc.close()
    assert path.exists(), "closing the last recorded connection writes the file"
    assert await recorder.close() == path, "closing the recorder again changes nothing"

    conn = load_diagnostic_file(path).connections["lonely"]
    types = [e.type for e in conn.events]
    assert types[0] == "create" and types[-1] == "close"
    assert conn.events_of("setLocalDescription")[0].value.startswith("type: offer, sdp: v=0")
    assert [e.value for e in conn.events_of("signalingstatechange")] == [
        "have-local-offer",
        "closed",
    ]
    assert conn.events_of("icegatheringstatechange")[-1].value == "complete"
    (transport,) = conn.stats_ids("transport")
    assert conn.latest(transport)["dtlsState"] in ("new", "closed")
    assert conn.stats_ids("local-candidate"), "gathered candidates are recorded"
    assert "path chosen: none" in format_summary(load_diagnostic_file(path))
