"""getStats over real loopback calls with a lossy receive path: counters match the network."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.stats_support import lossy_call, wait_for
from webrtc_ext.stats.cli import main as webrtc_diag
from webrtc_ext.stats.dump import load_diagnostic_file
from webrtc_ext.stats.recorder import StatsRecorder
from webrtc_ext.stats.report import RTCStats, RTCStatsReport
from webrtc_ext.stats.summary import summarise_connection

pytestmark = pytest.mark.integration


def one(report: RTCStatsReport, type: str) -> RTCStats:
    (stats,) = report.of_type(type)
    return stats


async def test_audio_loss_is_counted_on_both_sides() -> None:
    async with lossy_call("audio", drop_every=7) as call:
        net = call.network
        await wait_for(lambda: _true(len(net.dropped) >= 8))
        await call.stop_media()
        inbound = one(await call.answerer.getStats(), "inbound-rtp")
        assert inbound.ssrc == net.media_ssrc
        assert inbound.packetsReceived == len(net.delivered)
        assert inbound.packetsLost == net.lost_in_range >= 7
        assert inbound.nackCount == 0, "aiortc sends no NACK for audio"
        assert inbound.retransmittedPacketsReceived == 0
        assert 0 <= inbound.jitter < 0.5, "jitter is in seconds, not RTP units"

        sent = await call.offerer.getStats()
        outbound = one(sent, "outbound-rtp")
        assert outbound.packetsSent == net.media_seen
        assert outbound.retransmittedPacketsSent == 0
        assert outbound.bytesSent >= inbound.bytesReceived

        async def peer_reported_all() -> bool:
            remote = (await call.offerer.getStats()).of_type("remote-inbound-rtp")
            return bool(remote) and remote[0].packetsLost == net.lost_in_range

        await wait_for(peer_reported_all)
        remote = one(await call.offerer.getStats(), "remote-inbound-rtp")
        assert remote.ssrc == outbound.ssrc, "remote-inbound-rtp carries OUR ssrc"
        assert remote.localId == outbound.id and outbound.remoteId == remote.id
        assert remote.roundTripTime is not None and remote.roundTripTime >= 0


def assert_chromium_viewer_shape(path: Path) -> None:
    """What Chromium's dump viewers need: per-object timestamps, JSON value arrays, ISO times."""
    document = json.loads(path.read_text())
    assert isinstance(document["getUserMedia"], list)
    for record in document["PeerConnections"].values():
        assert isinstance(record["rtcConfiguration"], str)
        assert all({"time", "type", "value"} <= set(e) for e in record["updateLog"])
        stats = record["stats"]
        for key, entry in stats.items():
            stats_id, _, _ = key.rpartition("-")
            stamps = json.loads(stats[f"{stats_id}-timestamp"]["values"])
            assert len(json.loads(entry["values"])) <= len(stamps)
            assert entry["startTime"].endswith("Z") and entry["endTime"].endswith("Z")
            assert isinstance(entry["statsType"], str)


async def _true(value: bool) -> bool:
    return value


async def test_video_nacks_and_retransmissions_match_the_network(tmp_path: Path) -> None:
    path = tmp_path / "call.json.gz"
    recorder = StatsRecorder(path, interval=0.25)

    async def record(offerer, answerer) -> None:  # type: ignore[no-untyped-def]
        recorder.record(offerer, "offerer")
        recorder.record(answerer, "answerer")

    async with lossy_call("video", drop_every=10, before_connect=record) as call:
        net = call.network
        assert net.rtx_ssrc is not None, "RTX is negotiated for video"
        await wait_for(lambda: _true(len(net.dropped) >= 6))
        await call.stop_media()

        inbound = one(await call.answerer.getStats(), "inbound-rtp")
        outbound = one(await call.offerer.getStats(), "outbound-rtp")
        assert net.rtx_delivered >= 5
        assert inbound.rtxSsrc == outbound.rtxSsrc == net.rtx_ssrc
        assert inbound.retransmittedPacketsReceived == net.rtx_delivered
        assert outbound.retransmittedPacketsSent == net.rtx_delivered
        assert outbound.packetsSent == net.media_seen + net.rtx_delivered
        assert inbound.packetsReceived == len(net.delivered) + net.rtx_delivered
        assert inbound.nackCount == outbound.nackCount == net.nacks_to_sender >= 5
        # Every loss was repaired by a retransmission.
        assert inbound.packetsLost == net.lost_in_range - net.rtx_delivered == 0
        assert outbound.retransmittedBytesSent == inbound.retransmittedBytesReceived > 0
        final_in, final_out = inbound, outbound
        await asyncio.sleep(0.3)

    # The file was written when both connections closed: load it and summarise it.
    loaded = load_diagnostic_file(path)
    assert set(loaded.connections) == {"offerer", "answerer"}
    sender = summarise_connection(loaded.connections["offerer"])
    receiver = summarise_connection(loaded.connections["answerer"])
    (out,) = sender.outbound
    (inn,) = receiver.inbound
    assert out.nack_count == final_out.nackCount
    assert out.retransmitted_packets == final_out.retransmittedPacketsSent
    assert inn.retransmitted_packets == final_in.retransmittedPacketsReceived
    assert out.bitrate_kbps is not None and out.bitrate_kbps > 0
    assert sender.selected_pair is not None
    assert sender.selected_pair.local.candidate_type == "host"

    offerer = loaded.connections["offerer"]
    (local_sdp,) = offerer.events_of("setLocalDescription")
    assert "a=ssrc-group:FID" in local_sdp.value and local_sdp.value.startswith("type: offer")
    assert offerer.events_of("setRemoteDescription")[0].value.startswith("type: answer")
    for kind in ("signalingstatechange", "iceconnectionstatechange", "connectionstatechange"):
        assert offerer.events_of(kind), kind
    assert any("connected" in e.value for e in offerer.events_of("dtlsstatechange"))
    assert offerer.events_of("selectedcandidatepairchange")
    sent = offerer.get(out.stats_id, "packetsSent")
    assert sent is not None and len(sent.values) >= 3
    assert list(sent.values) == sorted(sent.values)

    exported = tmp_path / "chromium.json"
    assert webrtc_diag([str(path), "--chromium", str(exported)]) == 0
    assert_chromium_viewer_shape(exported)
    (transport,) = offerer.stats_ids("transport")
    assert offerer.latest(transport)["remoteCertificateId"], "still known after close"

    charts = tmp_path / "charts"
    assert webrtc_diag([str(path), "--charts", str(charts)]) == 0
    assert sorted(p.name for p in charts.iterdir()) == ["answerer.png", "offerer.png"]
