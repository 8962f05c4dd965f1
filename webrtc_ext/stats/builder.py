"""Sans-I/O assembly of a W3C webrtc-stats report from plain snapshots of a connection.

:func:`build_stats_report` takes a :class:`PeerConnectionInput` (plain values and counters, no
aiortc objects) and returns an :class:`RTCStatsReport` whose types, ids and field names follow
https://www.w3.org/TR/webrtc-stats/. Ids are stable over a connection's life and shaped like
Chromium's (``T01``, ``CPxxxx_yyyy``, ``OT01A<ssrc>``, ``RIA<ssrc>``...).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aioice import Candidate

from ..ice import CandidatePairInfo
from .report import RTCStats, RTCStatsReport
from .rtpcounters import RtpCounters

#: RTX payloads start with the original sequence number (RFC 4588 §4).
RTX_HEADER_BYTES = 2
#: Seconds between the NTP epoch (1900) and the Unix epoch (1970).
NTP_UNIX_OFFSET = 2208988800


@dataclass(frozen=True)
class CertificateInput:
    """A DTLS certificate: its fingerprint and DER bytes in base64."""

    fingerprint: str
    fingerprintAlgorithm: str
    base64Certificate: str


@dataclass(frozen=True)
class CodecInput:
    """A negotiated codec."""

    payloadType: int
    mimeType: str
    clockRate: int
    channels: int | None = None
    sdpFmtpLine: str | None = None


@dataclass(frozen=True)
class SenderInput:
    """An RTP sender: its SSRCs and the codec it sends."""

    kind: str
    ssrc: int
    rtx_ssrc: int | None
    mid: str | None
    codec: CodecInput | None
    dtmf_events_sent: int | None = None
    """RFC 4733 events sent, when the sender counts them (non-standard field)."""


@dataclass(frozen=True)
class ReceiverInput:
    """An RTP receiver: the media SSRCs it receives and their jitter (RTP units)."""

    kind: str
    mid: str | None
    codec: CodecInput | None
    jitter: Mapping[int, int]
    """Interarrival jitter of each media SSRC, in RTP timestamp units (RFC 3550 §6.4.1)."""
    rtx_ssrcs: Mapping[int, int] = field(default_factory=dict)
    """RTX SSRC to the media SSRC it repairs."""
    track_identifier: str | None = None
    dtmf_events_received: int | None = None
    """RFC 4733 events received, when the receiver counts them (non-standard field)."""


@dataclass(frozen=True)
class TransportInput:
    """One ICE+DTLS transport with what runs over it."""

    number: int
    ice_role: str
    ice_state: str
    ice_local_username_fragment: str | None
    dtls_state: str
    dtls_role: str
    packets_sent: int
    packets_received: int
    bytes_sent: int
    bytes_received: int
    selected_candidate_pair_changes: int
    pairs: Sequence[CandidatePairInfo]
    local_candidates: Sequence[Candidate]
    remote_candidates: Sequence[Candidate]
    local_certificate: CertificateInput | None
    remote_certificate: CertificateInput | None
    rtp: RtpCounters
    senders: Sequence[SenderInput] = ()
    receivers: Sequence[ReceiverInput] = ()


@dataclass(frozen=True)
class DataChannelInput:
    """One data channel and its message counters."""

    id: int | None
    label: str
    protocol: str
    state: str
    messages_sent: int
    bytes_sent: int
    messages_received: int
    bytes_received: int


@dataclass(frozen=True)
class PeerConnectionInput:
    """Everything a report is built from, taken at ``timestamp`` (ms since the Unix epoch)."""

    timestamp: float
    transports: Sequence[TransportInput]
    data_channels: Sequence[DataChannelInput] = ()
    data_channels_opened: int = 0
    data_channels_closed: int = 0


def transport_id(number: int) -> str:
    """The stats id of transport number ``number`` (1-based), as Chromium names it."""
    return f"T{number:02d}"


def candidate_id(candidate: Candidate, local: bool) -> str:
    """A stable id for a candidate: ``I`` (local) or ``R`` (remote) and a short digest."""
    return _candidate_id(_candidate_key(candidate), local)


def relay_protocol(candidate: Candidate) -> str | None:
    """How a local relay candidate reaches its TURN server, from its local preference.

    webrtc_ext.ice gives relay candidates the local preference ``preference << 13 - index``
    with preference 3 (UDP), 2 (TCP) or 1 (TLS), following RFC 8445 §5.1.2.1.
    """
    return _relay_protocol(candidate.type, candidate.priority)


#: A candidate's fields as its stats read them: its value, and the caches' key.
_CandidateKey = tuple[int, str, str, int, str, str, int, str | None, int | None]


def _candidate_key(candidate: Candidate) -> _CandidateKey:
    return (
        candidate.component,
        candidate.transport,
        candidate.host,
        candidate.port,
        candidate.type,
        candidate.foundation,
        candidate.priority,
        candidate.related_address,
        candidate.related_port,
    )


def _candidate_id(key: _CandidateKey, local: bool) -> str:
    component, transport, host, port, kind, foundation = key[:6]
    text = f"{component}|{transport}|{host}|{port}|{kind}|{foundation}"
    return ("I" if local else "R") + hashlib.sha1(text.encode()).hexdigest()[:8]


def _relay_protocol(kind: str, priority: int) -> str | None:
    if kind != "relay":
        return None
    preference = ((priority >> 8) & 0xFFFF) >> 13
    return {3: "udp", 2: "tcp", 1: "tls"}.get(preference, "udp")


def _kind_letter(kind: str) -> str:
    return "V" if kind == "video" else "A"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def _stats(type: str, id: str, timestamp: float, **fields: Any) -> RTCStats:
    stats = RTCStats(id=id, type=type, timestamp=timestamp)
    for name, value in fields.items():
        if value is not None:
            stats[name] = value
    return stats


# Objects that do not change over a connection's life (certificates, codecs, candidates) are
# built once per connection: each sample copies their fields and sets its timestamp.

#: A connection's static objects by their inputs' values (see :func:`build_stats_report`).
StaticStatsCache = dict[tuple[Any, ...], RTCStats]
#: Past this many, a connection's cache starts over (candidates come and go on ICE restarts).
STATIC_CACHE_SIZE = 256


def _add_static(
    report: RTCStatsReport,
    cache: StaticStatsCache | None,
    key: tuple[Any, ...],
    make: Callable[[], RTCStats],
    now: float,
) -> str:
    """Add a new stats object taken ``now`` with the fields ``make()`` gives (made once per
    key); returns its id."""
    fields = None if cache is None else cache.get(key)
    if fields is None:
        fields = make()
        if cache is not None:
            if len(cache) >= STATIC_CACHE_SIZE:
                cache.clear()
            cache[key] = fields
    stats = RTCStats(fields)
    stats["timestamp"] = now
    report.add(stats)
    return stats.id


def _certificate_fields(cert: CertificateInput) -> RTCStats:
    return _stats(
        "certificate",
        "CF" + cert.fingerprint,
        0.0,
        fingerprint=cert.fingerprint,
        fingerprintAlgorithm=cert.fingerprintAlgorithm,
        base64Certificate=cert.base64Certificate,
    )


def _codec_fields(codec: CodecInput, tid: str, inbound: bool) -> RTCStats:
    return _stats(
        "codec",
        f"C{'I' if inbound else 'O'}{tid}_{codec.payloadType}",
        0.0,
        transportId=tid,
        payloadType=codec.payloadType,
        mimeType=codec.mimeType,
        clockRate=codec.clockRate,
        channels=codec.channels,
        sdpFmtpLine=codec.sdpFmtpLine or None,
    )


def _candidate_fields(key: _CandidateKey, local: bool, tid: str) -> RTCStats:
    _, transport, host, port, kind, foundation, priority, related, related_port = key
    return _stats(
        "local-candidate" if local else "remote-candidate",
        _candidate_id(key, local),
        0.0,
        transportId=tid,
        address=host,
        port=port,
        protocol=transport.lower(),
        candidateType=kind,
        priority=priority,
        foundation=foundation,
        relayProtocol=_relay_protocol(kind, priority) if local else None,
        relatedAddress=related,
        relatedPort=related_port,
    )


def build_stats_report(
    snapshot: PeerConnectionInput, cache: StaticStatsCache | None = None
) -> RTCStatsReport:
    """The W3C stats report of one connection snapshot.

    ``cache`` (an empty dict at first, then the same dict for every report of one connection)
    keeps the objects that do not change (certificates, codecs, candidates) from being built
    again on every sample.
    """
    report = RTCStatsReport()
    now = snapshot.timestamp
    report.add(
        _stats(
            "peer-connection",
            "P",
            now,
            dataChannelsOpened=snapshot.data_channels_opened,
            dataChannelsClosed=snapshot.data_channels_closed,
        )
    )
    for channel in snapshot.data_channels:
        report.add(
            _stats(
                "data-channel",
                f"D{channel.id if channel.id is not None else channel.label}",
                now,
                label=channel.label,
                protocol=channel.protocol,
                dataChannelIdentifier=channel.id,
                state=channel.state,
                messagesSent=channel.messages_sent,
                bytesSent=channel.bytes_sent,
                messagesReceived=channel.messages_received,
                bytesReceived=channel.bytes_received,
            )
        )
    for transport in snapshot.transports:
        _add_transport(report, transport, now, cache)
    return report


def _certificate(
    report: RTCStatsReport,
    cert: CertificateInput | None,
    now: float,
    cache: StaticStatsCache | None,
) -> str | None:
    if cert is None:
        return None
    return _add_static(report, cache, ("certificate", cert), lambda: _certificate_fields(cert), now)


def _add_transport(
    report: RTCStatsReport, t: TransportInput, now: float, cache: StaticStatsCache | None
) -> None:
    tid = transport_id(t.number)
    selected = next((p for p in t.pairs if p.selected), None)
    selected_id = None
    for pair in t.pairs:
        pair_id = _add_pair(report, pair, tid, now, cache)
        if pair is selected:
            selected_id = pair_id
    for candidate in t.local_candidates:
        _add_candidate(report, candidate, True, tid, now, cache)
    for candidate in t.remote_candidates:
        _add_candidate(report, candidate, False, tid, now, cache)
    report.add(
        _stats(
            "transport",
            tid,
            now,
            packetsSent=t.packets_sent,
            packetsReceived=t.packets_received,
            bytesSent=t.bytes_sent,
            bytesReceived=t.bytes_received,
            iceRole=t.ice_role,
            iceLocalUsernameFragment=t.ice_local_username_fragment,
            iceState=t.ice_state,
            dtlsState=t.dtls_state,
            dtlsRole=t.dtls_role,
            selectedCandidatePairId=selected_id,
            selectedCandidatePairChanges=t.selected_candidate_pair_changes,
            localCertificateId=_certificate(report, t.local_certificate, now, cache),
            remoteCertificateId=_certificate(report, t.remote_certificate, now, cache),
        )
    )
    for sender in t.senders:
        _add_outbound(report, sender, t.rtp, tid, now, cache)
    for receiver in t.receivers:
        _add_inbound(report, receiver, t.rtp, tid, now, cache)


def _add_candidate(
    report: RTCStatsReport,
    candidate: Candidate,
    local: bool,
    tid: str,
    now: float,
    cache: StaticStatsCache | None,
) -> str:
    key = _candidate_key(candidate)
    return _add_static(
        report,
        cache,
        ("candidate", key, local, tid),
        lambda: _candidate_fields(key, local, tid),
        now,
    )


def _add_pair(
    report: RTCStatsReport,
    pair: CandidatePairInfo,
    tid: str,
    now: float,
    cache: StaticStatsCache | None,
) -> str:
    local_id = _add_candidate(report, pair.local, True, tid, now, cache)
    remote_id = _add_candidate(report, pair.remote, False, tid, now, cache)
    stats_id = f"CP{local_id[1:]}_{remote_id[1:]}"
    report.add(
        _stats(
            "candidate-pair",
            stats_id,
            now,
            transportId=tid,
            localCandidateId=local_id,
            remoteCandidateId=remote_id,
            state=pair.state,
            nominated=pair.nominated,
            priority=pair.priority,
            requestsSent=pair.requests_sent,
            requestsReceived=pair.requests_received,
            responsesSent=pair.responses_sent,
            responsesReceived=pair.responses_received,
            consentRequestsSent=pair.consent_requests_sent,
            packetsSent=pair.packets_sent,
            packetsReceived=pair.packets_received,
            bytesSent=pair.bytes_sent,
            bytesReceived=pair.bytes_received,
            currentRoundTripTime=pair.current_round_trip_time,
            totalRoundTripTime=pair.total_round_trip_time,
            lastPacketSentTimestamp=_ms(pair.last_packet_sent_timestamp),
            lastPacketReceivedTimestamp=_ms(pair.last_packet_received_timestamp),
        )
    )
    return stats_id


def _add_codec(
    report: RTCStatsReport,
    codec: CodecInput | None,
    tid: str,
    inbound: bool,
    now: float,
    cache: StaticStatsCache | None,
) -> str | None:
    if codec is None:
        return None
    return _add_static(
        report,
        cache,
        ("codec", codec, tid, inbound),
        lambda: _codec_fields(codec, tid, inbound),
        now,
    )


def _add_outbound(
    report: RTCStatsReport,
    sender: SenderInput,
    rtp: RtpCounters,
    tid: str,
    now: float,
    cache: StaticStatsCache | None,
) -> None:
    media = rtp.sent.get(sender.ssrc)
    if media is None:
        return
    rtx = rtp.sent.get(sender.rtx_ssrc) if sender.rtx_ssrc is not None else None
    rtx_packets = rtx.packets if rtx else 0
    rtx_bytes = rtx.payload_bytes - RTX_HEADER_BYTES * rtx.packets if rtx else 0
    letter = _kind_letter(sender.kind)
    stats_id = f"O{tid}{letter}{sender.ssrc}"
    codec_id = _add_codec(report, sender.codec, tid, False, now, cache)
    remote_id = None
    if sender.ssrc in rtp.reception_reports:
        remote_id = _add_remote_inbound(report, sender, rtp, tid, codec_id, now)
    report.add(
        _stats(
            "outbound-rtp",
            stats_id,
            now,
            ssrc=sender.ssrc,
            kind=sender.kind,
            transportId=tid,
            codecId=codec_id,
            mid=sender.mid,
            remoteId=remote_id,
            rtxSsrc=sender.rtx_ssrc if rtx else None,
            packetsSent=media.packets + rtx_packets,
            bytesSent=media.payload_bytes + rtx_bytes,
            headerBytesSent=media.header_bytes + (rtx.header_bytes if rtx else 0),
            retransmittedPacketsSent=media.retransmitted_packets + rtx_packets,
            retransmittedBytesSent=media.retransmitted_payload_bytes + rtx_bytes,
            nackCount=rtp.nacks_received.get(sender.ssrc, 0),
            lastPacketSentTimestamp=_ms(media.last_sent),
            dtmfEventsSent=sender.dtmf_events_sent,
        )
    )


def _add_inbound(
    report: RTCStatsReport,
    receiver: ReceiverInput,
    rtp: RtpCounters,
    tid: str,
    now: float,
    cache: StaticStatsCache | None,
) -> None:
    letter = _kind_letter(receiver.kind)
    repaired_by = {media: rtx for rtx, media in receiver.rtx_ssrcs.items()}
    clock_rate = receiver.codec.clockRate if receiver.codec else None
    for ssrc, jitter in sorted(receiver.jitter.items()):
        media = rtp.received.get(ssrc)
        if media is None:
            continue
        rtx_ssrc = repaired_by.get(ssrc)
        rtx = rtp.received.get(rtx_ssrc) if rtx_ssrc is not None else None
        rtx_packets = rtx.packets if rtx else 0
        rtx_bytes = rtx.payload_bytes - RTX_HEADER_BYTES * rtx.packets if rtx else 0
        stats_id = f"I{tid}{letter}{ssrc}"
        codec_id = _add_codec(report, receiver.codec, tid, True, now, cache)
        remote_id = None
        if ssrc in rtp.sender_reports:
            remote_id = _add_remote_outbound(report, receiver, rtp, ssrc, tid, codec_id, now)
        received = media.packets + rtx_packets
        report.add(
            _stats(
                "inbound-rtp",
                stats_id,
                now,
                ssrc=ssrc,
                kind=receiver.kind,
                transportId=tid,
                codecId=codec_id,
                mid=receiver.mid,
                trackIdentifier=receiver.track_identifier,
                remoteId=remote_id,
                rtxSsrc=rtx_ssrc if rtx else None,
                packetsReceived=received,
                bytesReceived=media.payload_bytes + rtx_bytes,
                headerBytesReceived=media.header_bytes + (rtx.header_bytes if rtx else 0),
                # RFC 3550 §6.4.1: expected minus received; retransmissions that repaired a
                # loss count as received, as in W3C packetsReceived.
                packetsLost=media.packets_expected - received,
                jitter=jitter / clock_rate if clock_rate else None,
                nackCount=rtp.nacks_sent.get(ssrc, 0),
                retransmittedPacketsReceived=rtx_packets,
                retransmittedBytesReceived=rtx_bytes,
                lastPacketReceivedTimestamp=_ms(media.last_received),
                dtmfEventsReceived=receiver.dtmf_events_received,
            )
        )


def _add_remote_outbound(
    report: RTCStatsReport,
    receiver: ReceiverInput,
    rtp: RtpCounters,
    ssrc: int,
    tid: str,
    codec_id: str | None,
    now: float,
) -> str:
    sender_report = rtp.sender_reports[ssrc]
    stats_id = f"RO{_kind_letter(receiver.kind)}{ssrc}"
    report.add(
        _stats(
            "remote-outbound-rtp",
            stats_id,
            now,
            ssrc=ssrc,
            kind=receiver.kind,
            transportId=tid,
            codecId=codec_id,
            localId=f"I{tid}{_kind_letter(receiver.kind)}{ssrc}",
            packetsSent=sender_report.packets_sent,
            bytesSent=sender_report.bytes_sent,
            remoteTimestamp=(sender_report.ntp_timestamp / (1 << 32) - NTP_UNIX_OFFSET) * 1000.0,
            reportsSent=sender_report.reports_sent,
        )
    )
    return stats_id


def _add_remote_inbound(
    report: RTCStatsReport,
    sender: SenderInput,
    rtp: RtpCounters,
    tid: str,
    codec_id: str | None,
    now: float,
) -> str:
    block = rtp.reception_reports[sender.ssrc]
    letter = _kind_letter(sender.kind)
    stats_id = f"RI{letter}{sender.ssrc}"
    clock_rate = sender.codec.clockRate if sender.codec else None
    report.add(
        _stats(
            "remote-inbound-rtp",
            stats_id,
            now,
            # Our SSRC: the report block is about the stream we send.
            ssrc=sender.ssrc,
            kind=sender.kind,
            transportId=tid,
            codecId=codec_id,
            localId=f"O{tid}{letter}{sender.ssrc}",
            packetsLost=block.packets_lost,
            jitter=block.jitter / clock_rate if clock_rate else None,
            fractionLost=block.fraction_lost / 256,
            roundTripTime=block.round_trip_time,
            totalRoundTripTime=block.total_round_trip_time,
            roundTripTimeMeasurements=block.round_trip_time_measurements,
            reportsReceived=block.reports_received,
        )
    )
    return stats_id
