"""The sans-I/O stats builder: W3C types, field names, units and stable ids from plain inputs."""

from __future__ import annotations

import dataclasses

from aioice import Candidate
from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket, RtpPacket

from webrtc_ext.ice import CandidatePairInfo
from webrtc_ext.stats.builder import (
    STATIC_CACHE_SIZE,
    CertificateInput,
    CodecInput,
    DataChannelInput,
    PeerConnectionInput,
    ReceiverInput,
    SenderInput,
    StaticStatsCache,
    TransportInput,
    build_stats_report,
    relay_protocol,
)
from webrtc_ext.stats.rtpcounters import RtpCounters

OPUS = CodecInput(111, "audio/opus", 48000, 2, "minptime=10;useinbandfec=1")
OURS, THEIRS = 1111, 2222


def candidate(host: str, port: int, type: str = "host", priority: int = 2130706431) -> Candidate:
    return Candidate("f1", 1, "udp", priority, host, port, type)


def pair(local: Candidate, remote: Candidate, **changes: object) -> CandidatePairInfo:
    values: dict[str, object] = dict(
        id="x", local=local, remote=remote, component=1, state="succeeded", nominated=True,
        selected=True, priority=42, requests_sent=2, requests_received=1, responses_sent=1,
        responses_received=2, consent_requests_sent=0, packets_sent=10, packets_received=9,
        bytes_sent=1000, bytes_received=900, current_round_trip_time=0.012,
        total_round_trip_time=0.03, round_trip_time_measurements=2,
        last_packet_sent_timestamp=1.5, last_packet_received_timestamp=None,
    )  # fmt: skip
    values.update(changes)
    return CandidatePairInfo(**values)  # type: ignore[arg-type]


def snapshot(counters: RtpCounters, timestamp: float = 1000.0) -> PeerConnectionInput:
    local, remote = candidate("127.0.0.1", 5000), candidate("127.0.0.1", 6000)
    other = candidate("127.0.0.1", 6001, "srflx", 1694498815)
    cert = CertificateInput("AA:BB", "sha-256", "MIIB")
    transport = TransportInput(
        number=1, ice_role="controlling", ice_state="completed",
        ice_local_username_fragment="ufrag", dtls_state="connected", dtls_role="server",
        packets_sent=10, packets_received=9, bytes_sent=1000, bytes_received=900,
        selected_candidate_pair_changes=1,
        pairs=[pair(local, remote), pair(local, other, selected=False, nominated=False,
                                         state="failed", current_round_trip_time=None)],
        local_candidates=[local], remote_candidates=[remote, other],
        local_certificate=cert, remote_certificate=CertificateInput("CC:DD", "sha-256", "MIIC"),
        rtp=counters,
        senders=[SenderInput("audio", OURS, None, "0", OPUS)],
        receivers=[ReceiverInput("audio", "0", OPUS, jitter={THEIRS: 480})],
    )  # fmt: skip
    channel = DataChannelInput(1, "chat", "", "open", 3, 30, 2, 20)
    return PeerConnectionInput(timestamp, [transport], [channel], 1, 0)


def traffic() -> RtpCounters:
    counters = RtpCounters()
    for seq in range(100, 110):
        counters.rtp_sent(
            RtpPacket(
                payload_type=111, sequence_number=seq, ssrc=OURS, payload=b"x" * 20
            ).serialize(),
            now=1.0,
        )
        if seq != 104:
            counters.rtp_received(
                RtpPacket(
                    payload_type=111, sequence_number=seq, ssrc=THEIRS, payload=b"y" * 30
                ).serialize(),
                now=1.0,
            )
    block = RtcpReceiverInfo(OURS, 0, 2, 109, 960, 0, 0)
    counters.rtcp_received(bytes(RtcpRrPacket(ssrc=THEIRS, reports=[block])), now=1.0)
    return counters


def test_every_type_with_its_w3c_fields() -> None:
    report = build_stats_report(snapshot(traffic()))
    types = sorted({s.type for s in report.values()})
    assert types == [
        "candidate-pair", "certificate", "codec", "data-channel", "inbound-rtp",
        "local-candidate", "outbound-rtp", "peer-connection", "remote-candidate",
        "remote-inbound-rtp", "transport",
    ]  # fmt: skip
    outbound = report[f"OT01A{OURS}"]
    assert (outbound.packetsSent, outbound.bytesSent, outbound.nackCount) == (10, 200, 0)
    assert outbound.retransmittedPacketsSent == outbound.retransmittedBytesSent == 0
    inbound = report[f"IT01A{THEIRS}"]
    assert (inbound.packetsReceived, inbound.bytesReceived, inbound.packetsLost) == (9, 270, 1)
    assert inbound.jitter == 480 / 48000, "jitter in seconds"
    remote = report[outbound.remoteId]
    assert remote.type == "remote-inbound-rtp"
    assert remote.ssrc == OURS, "the report block is about our stream"
    assert remote.packetsLost == 2 and remote.jitter == 960 / 48000
    codec = report[outbound.codecId]
    assert (codec.mimeType, codec.clockRate, codec.payloadType) == ("audio/opus", 48000, 111)
    transport = report["T01"]
    assert transport.selectedCandidatePairChanges == 1
    selected = report[transport.selectedCandidatePairId]
    assert selected.state == "succeeded" and selected.currentRoundTripTime == 0.012
    assert selected.lastPacketSentTimestamp == 1500.0, "W3C timestamps are milliseconds"
    assert report[transport.localCertificateId].fingerprint == "AA:BB"
    assert report[transport.remoteCertificateId].fingerprint == "CC:DD"
    assert len(report.of_type("candidate-pair")) == 2
    assert report["D1"].messagesSent == 3 and report["P"].dataChannelsOpened == 1
    assert all(s.timestamp == 1000.0 for s in report.values())


def test_ids_are_stable_as_counters_move() -> None:
    first = build_stats_report(snapshot(RtpCounters(), 1.0))
    second = build_stats_report(snapshot(traffic(), 2.0))
    assert set(first) <= set(second)
    assert f"OT01A{OURS}" not in first, "no outbound-rtp before the first packet"


def test_rtx_retransmissions_are_part_of_the_media_stream() -> None:
    counters = RtpCounters()
    for seq in range(5):
        counters.rtp_sent(
            RtpPacket(
                payload_type=96, sequence_number=seq, ssrc=OURS, payload=b"v" * 50
            ).serialize(),
            0.0,
        )
    rtx = RtpPacket(
        payload_type=97, sequence_number=900, ssrc=3333, payload=b"\x00\x02" + b"v" * 50
    )
    counters.rtp_sent(rtx.serialize(), 0.0)
    inputs = snapshot(counters)
    transport = inputs.transports[0]
    video = SenderInput("video", OURS, 3333, "1", CodecInput(96, "video/VP8", 90000))
    inputs = PeerConnectionInput(
        inputs.timestamp,
        [TransportInput(**{**transport.__dict__, "senders": [video], "receivers": []})],
    )
    outbound = build_stats_report(inputs)[f"OT01V{OURS}"]
    assert outbound.rtxSsrc == 3333
    assert (outbound.packetsSent, outbound.bytesSent) == (6, 300)
    assert (outbound.retransmittedPacketsSent, outbound.retransmittedBytesSent) == (1, 50)


def test_relay_protocol_follows_the_local_preference() -> None:
    def relay(preference: int) -> Candidate:
        return candidate("127.0.0.1", 1, "relay", (0 << 24) + ((preference << 13) << 8) + 255)

    assert [relay_protocol(relay(p)) for p in (3, 2, 1)] == ["udp", "tcp", "tls"]
    assert relay_protocol(candidate("127.0.0.1", 1)) is None


def as_lists(report: object) -> list[tuple[str, list[tuple[str, object]]]]:
    """A report as ordered (id, ordered fields) pairs: what a dump or a viewer reads."""
    return [(stats_id, list(stats.items())) for stats_id, stats in report.items()]  # type: ignore[attr-defined]


def test_a_connections_cache_gives_the_reports_built_without_it() -> None:
    cache: StaticStatsCache = {}
    samples = [snapshot(RtpCounters(), 1.0), snapshot(traffic(), 2.0), snapshot(traffic(), 3.5)]
    # A fourth sample after an ICE restart: other candidates, another remote certificate.
    restarted = snapshot(traffic(), 4.0)
    transport = dataclasses.replace(
        restarted.transports[0],
        local_candidates=[candidate("127.0.0.1", 5002)],
        remote_candidates=[candidate("127.0.0.1", 6002, "relay", 16777215)],
        pairs=[],
        remote_certificate=CertificateInput("EE:FF", "sha-256", "MIID"),
    )
    samples.append(dataclasses.replace(restarted, transports=[transport]))
    built = [build_stats_report(sample, cache) for sample in samples]
    for report, sample in zip(built, samples, strict=True):
        assert as_lists(report) == as_lists(build_stats_report(sample))
        assert all(s.timestamp == sample.timestamp for s in report.values())
    assert built[0]["CFAA:BB"] is not built[1]["CFAA:BB"], "each report has its own objects"
    assert built[2]["CFCC:DD"].timestamp == 3.5 and built[1]["CFCC:DD"].timestamp == 2.0
    assert len(cache) == 10, "3 certificates, 2 codecs, 3 + 2 candidates: made once each"


def test_a_cache_that_fills_up_starts_over() -> None:
    cache: StaticStatsCache = {}
    for port in range(STATIC_CACHE_SIZE + 10):
        sample = snapshot(RtpCounters(), float(port))
        transport = dataclasses.replace(
            sample.transports[0], remote_candidates=[candidate("127.0.0.1", 10000 + port)]
        )
        sample = dataclasses.replace(sample, transports=[transport])
        assert as_lists(build_stats_report(sample, cache)) == as_lists(build_stats_report(sample))
        assert len(cache) <= STATIC_CACHE_SIZE
