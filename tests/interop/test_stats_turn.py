"""A TURN-relayed call (real coturn on loopback): the diagnostic file shows the relay selected."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers import coturn
from tests.support import LOOPBACK, audio_call
from webrtc_ext import RTCIceTransportPolicy
from webrtc_ext.stats.dump import load_diagnostic_file
from webrtc_ext.stats.recorder import StatsRecorder
from webrtc_ext.stats.summary import format_summary, summarise_connection

pytestmark = pytest.mark.interop


async def test_relayed_call_file_shows_the_relay_candidate_selected(tmp_path: Path) -> None:
    with coturn(tmp_path) as turn:
        config = LOOPBACK.with_changes(
            ice_servers=(turn.ice_server("udp"),),
            ice_transport_policy=RTCIceTransportPolicy.RELAY,
        )
        path = tmp_path / "relayed.json.gz"
        recorder = StatsRecorder(path, interval=0.2)
        async with audio_call(config, config, timeout=20) as call:
            recorder.record(call.offerer, "caller")
            report = await call.offerer.getStats()
            (transport,) = report.of_type("transport")
            pair = report[transport.selectedCandidatePairId]
            local = report[pair.localCandidateId]
            assert local.candidateType == "relay" and local.relayProtocol == "udp"
            assert report[pair.remoteCandidateId].candidateType == "relay"
            await recorder.close()

    loaded = load_diagnostic_file(path)
    summary = summarise_connection(loaded.connections["caller"])
    assert summary.selected_pair is not None
    assert summary.selected_pair.local.candidate_type == "relay"
    assert summary.selected_pair.local.relay_protocol == "udp"
    assert summary.selected_pair.remote.candidate_type == "relay"
    assert all(p.local.candidate_type == "relay" for p in summary.pairs)
    assert "path chosen: relay udp 127.0.0.1:" in format_summary(loaded)
    assert "via TURN/udp" in format_summary(loaded)
