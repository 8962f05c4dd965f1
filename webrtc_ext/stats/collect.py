"""The asyncio-side glue: counters attached to a live connection, read into plain snapshots.

:class:`PeerConnectionStats` is owned by :class:`webrtc_ext.RTCPeerConnection`. It taps each
DTLS transport's RTP/RTCP as it is created, counts data-channel messages, and turns the live
objects into a :class:`~webrtc_ext.stats.builder.PeerConnectionInput` for the sans-I/O builder.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aioice import Candidate
from aiortc import RTCDataChannel, RTCDtlsTransport, RTCRtpTransceiver
from aiortc.rtcdtlstransport import RTCCertificate, certificate_digest
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from cryptography.hazmat.primitives.serialization import Encoding

from .._internals import dtls_totals, receiver_private
from ..ice import CandidatePairInfo
from ..interceptor import DataChannelInterceptor, TransportInterceptorChain
from .builder import (
    CertificateInput,
    CodecInput,
    DataChannelInput,
    PeerConnectionInput,
    ReceiverInput,
    SenderInput,
    StaticStatsCache,
    TransportInput,
)
from .rtpcounters import RtpCounters, RtpStatsInterceptor

logger = logging.getLogger(__name__)

#: W3C RTCDtlsRole names of aiortc's DTLS roles.
DTLS_ROLES = {"client": "client", "server": "server"}


@dataclass
class _ChannelCounters:
    messages_sent: int = 0
    bytes_sent: int = 0
    messages_received: int = 0
    bytes_received: int = 0


def _size(data: bytes | str) -> int:
    return len(data.encode("utf8")) if isinstance(data, str) else len(data)


class PeerConnectionStats(DataChannelInterceptor):
    """Counters of one peer connection, and the snapshot of everything stats are built from.

    It counts through interceptors (:mod:`webrtc_ext.interceptor`): one
    :class:`RtpStatsInterceptor` per DTLS transport, and itself on the SCTP transport for the
    messages data channels send.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._transports: dict[RTCDtlsTransport, tuple[int, RtpCounters]] = {}
        self._channels: dict[RTCDataChannel, _ChannelCounters] = {}
        # A DTLS transport's certificates never change: each is read (DER, digest) once.
        self._remote_certificates: dict[RTCDtlsTransport, CertificateInput] = {}
        self._local_certificates: dict[RTCDtlsTransport, CertificateInput] = {}
        self._configured_certificate: CertificateInput | None = None
        self.data_channels_opened = 0
        self.data_channels_closed = 0
        self.static_stats: StaticStatsCache = {}
        """The connection's stats objects that do not change (``build_stats_report``'s cache)."""

    def transport_created(self, dtls_transport: RTCDtlsTransport) -> None:
        """Start counting the RTP/RTCP of a new DTLS transport."""
        counters = RtpCounters()
        interceptors = getattr(dtls_transport, "interceptors", None)
        if isinstance(interceptors, TransportInterceptorChain):
            interceptors.add(RtpStatsInterceptor(counters, self._clock))
        else:
            logger.info("%r has no interceptor chain: its RTP is not counted", dtls_transport)
        self._transports[dtls_transport] = (len(self._transports) + 1, counters)

    def sctp_created(self, sctp: Any) -> None:
        """Count the messages sent on the data channels of a new SCTP transport."""
        interceptors = getattr(sctp, "interceptors", None)
        if interceptors is not None:
            interceptors.add(self)

    def numbered_transports(self) -> list[tuple[int, RTCDtlsTransport]]:
        """Every DTLS transport of the connection with its stats number (``T01`` is 1)."""
        return [(number, dtls) for dtls, (number, _) in self._transports.items()]

    def counters(self, dtls_transport: RTCDtlsTransport) -> RtpCounters:
        """The RTP counters of one DTLS transport of this connection."""
        return self._transports[dtls_transport][1]

    def message_sent(self, channel: Any, data: bytes | str, now: float) -> None:
        """Count one message a data channel of this connection sent."""
        self.track_channel(channel)
        counters = self._channels[channel]
        counters.messages_sent += 1
        counters.bytes_sent += _size(data)

    def track_channel(self, channel: RTCDataChannel) -> None:
        """Count the messages of a data channel and its opening and closing."""
        if channel in self._channels:
            return
        counters = self._channels[channel] = _ChannelCounters()

        def on_message(data: bytes | str) -> None:
            counters.messages_received += 1
            counters.bytes_received += _size(data)

        def on_open() -> None:
            self.data_channels_opened += 1

        def on_close() -> None:
            self.data_channels_closed += 1

        channel.on("message", on_message)
        channel.on("close", on_close)
        if channel.readyState == "open":
            on_open()
        else:
            channel.on("open", on_open)

    def snapshot(
        self, transceivers: list[RTCRtpTransceiver], certificates: list[RTCCertificate]
    ) -> PeerConnectionInput:
        """Plain values of everything the stats report is built from, taken now."""
        if self._configured_certificate is None:
            self._configured_certificate = _local_certificate(certificates)
        transports = []
        for dtls, (number, counters) in self._transports.items():
            remote = self._remote_certificates.get(dtls) or _remote_certificate(dtls)
            if remote is not None:
                # Kept after the transport closes: the last samples still show the peer's.
                self._remote_certificates[dtls] = remote
            local = self._local_certificates.get(dtls) or _transport_local_certificate(dtls)
            if local is not None:
                self._local_certificates[dtls] = local
            transports.append(
                _transport_input(
                    dtls,
                    number,
                    counters,
                    transceivers,
                    local or self._configured_certificate,
                    remote,
                )
            )
        channels = [
            DataChannelInput(
                id=channel.id,
                label=channel.label,
                protocol=channel.protocol,
                state=channel.readyState,
                messages_sent=c.messages_sent,
                bytes_sent=c.bytes_sent,
                messages_received=c.messages_received,
                bytes_received=c.bytes_received,
            )
            for channel, c in self._channels.items()
        ]
        return PeerConnectionInput(
            timestamp=self._clock() * 1000.0,
            transports=transports,
            data_channels=channels,
            data_channels_opened=self.data_channels_opened,
            data_channels_closed=self.data_channels_closed,
        )


def _certificate_input(cert: Any) -> CertificateInput:
    return CertificateInput(
        fingerprint=certificate_digest(cert, "sha-256"),
        fingerprintAlgorithm="sha-256",
        base64Certificate=base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii"),
    )


def _local_certificate(certificates: list[RTCCertificate]) -> CertificateInput | None:
    return _certificate_input(certificates[0]._cert) if certificates else None


def _transport_local_certificate(dtls: RTCDtlsTransport) -> CertificateInput | None:
    """The certificate this transport presents (it may come from the configuration)."""
    ssl = dtls._ssl
    cert = ssl.get_certificate(as_cryptography=True) if ssl is not None else None
    return _certificate_input(cert) if cert is not None else None


def _remote_certificate(dtls: RTCDtlsTransport) -> CertificateInput | None:
    ssl = dtls._ssl
    if ssl is None or dtls.state != "connected":
        return None
    cert = ssl.get_peer_certificate(as_cryptography=True)
    return _certificate_input(cert) if cert is not None else None


def _codec_input(codec: RTCRtpCodecParameters) -> CodecInput:
    fmtp = ";".join(
        f"{key}={value}" if value is not None else key for key, value in codec.parameters.items()
    )
    return CodecInput(
        payloadType=codec.payloadType if codec.payloadType is not None else -1,
        mimeType=codec.mimeType,
        clockRate=codec.clockRate,
        channels=codec.channels,
        sdpFmtpLine=fmtp or None,
    )


def _optional_count(owner: object, name: str) -> int | None:
    """A counter another capability may add to senders/receivers (e.g. DTMF), if present."""
    value = getattr(owner, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _rtp_inputs(
    dtls: RTCDtlsTransport, transceivers: list[RTCRtpTransceiver]
) -> tuple[list[SenderInput], list[ReceiverInput]]:
    senders, receivers = [], []
    for transceiver in transceivers:
        if transceiver.receiver.transport is not dtls:
            continue
        codecs = transceiver._codecs
        codec = _codec_input(codecs[0]) if codecs else None
        sender = transceiver.sender
        senders.append(
            SenderInput(
                kind=transceiver.kind,
                ssrc=sender._ssrc,
                rtx_ssrc=sender._rtx_ssrc,
                mid=transceiver.mid,
                codec=codec,
                dtmf_events_sent=_optional_count(sender, "dtmfEventsSent"),
            )
        )
        rtx_ssrcs: dict[int, int] = dict(receiver_private(transceiver.receiver, "rtx_ssrc"))
        streams = receiver_private(transceiver.receiver, "remote_streams")
        receivers.append(
            ReceiverInput(
                kind=transceiver.kind,
                mid=transceiver.mid,
                codec=codec,
                jitter={
                    ssrc: stream.jitter
                    for ssrc, stream in list(streams.items())
                    if ssrc not in rtx_ssrcs
                },
                rtx_ssrcs=rtx_ssrcs,
                track_identifier=getattr(transceiver.receiver.track, "id", None),
                dtmf_events_received=_optional_count(transceiver.receiver, "dtmfEventsReceived"),
            )
        )
    return senders, receivers


def _transport_input(
    dtls: RTCDtlsTransport,
    number: int,
    counters: RtpCounters,
    transceivers: list[RTCRtpTransceiver],
    local_certificate: CertificateInput | None,
    remote_certificate: CertificateInput | None,
) -> TransportInput:
    from ..rtcicetransport import IceTransport

    ice = dtls.transport
    packets_sent, packets_received, bytes_sent, bytes_received = dtls_totals(dtls)
    pairs: list[CandidatePairInfo] = []
    local_candidates: list[Candidate] = []
    remote_candidates: list[Candidate] = []
    changes = 0
    if isinstance(ice, IceTransport):
        pairs = ice.candidate_pairs()
        local_candidates = list(ice.connection.local_candidates)
        remote_candidates = list(ice.connection.remote_candidates)
        changes = ice.selectedCandidatePairChanges
    senders, receivers = _rtp_inputs(dtls, transceivers)
    return TransportInput(
        number=number,
        ice_role=ice.role,
        ice_state=ice.state,
        ice_local_username_fragment=ice.iceGatherer.getLocalParameters().usernameFragment,
        dtls_state=dtls.state,
        dtls_role=DTLS_ROLES.get(dtls._role, "unknown"),
        packets_sent=packets_sent,
        packets_received=packets_received,
        bytes_sent=bytes_sent,
        bytes_received=bytes_received,
        selected_candidate_pair_changes=changes,
        pairs=pairs,
        local_candidates=local_candidates,
        remote_candidates=remote_candidates,
        local_certificate=local_certificate,
        remote_certificate=remote_certificate,
        rtp=counters,
        senders=senders,
        receivers=receivers,
    )
