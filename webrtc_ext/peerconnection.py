"""The drop-in :class:`RTCPeerConnection`: aiortc's, configured by :class:`PeerConnectionConfig`."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, cast

import aiortc
from aiortc import (
    RTCConfiguration,
    RTCDtlsTransport,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcdtlstransport import RTCCertificate

from ._deprecated import renamed
from ._internals import pc_private, pc_private_set, receiver_set_rtcp_ssrc, set_bundled
from .composed import DtlsTransport, RtpReceiver, RtpSender
from .config import PeerConnectionConfig
from .dtmf.connection import DtmfPeerConnectionMixin
from .dtmf.negotiation import TelephoneEventTransceiver
from .ice import IceGatheringError
from .rtcicetransport import IceGatherer, IceTransport
from .rtcsctptransport import RTCSctpTransport
from .sdp import check_parses, drop_malformed_candidates
from .stats.builder import build_stats_report
from .stats.collect import PeerConnectionStats
from .stats.report import RTCStatsReport

logger = logging.getLogger(__name__)


class RTCPeerConnection(DtmfPeerConnectionMixin, aiortc.RTCPeerConnection):
    """aiortc's :class:`~aiortc.RTCPeerConnection` with the library's capabilities on top.

    It keeps aiortc's whole API. ``configuration`` may be aiortc's own
    :class:`~aiortc.RTCConfiguration` or a :class:`PeerConnectionConfig`.

    Extra events: ``icecandidateerror`` (an :class:`IceGatheringError`) for each STUN/TURN
    server that gave no candidate; ``dtmf`` (a :class:`TelephoneEvent`) for each key press
    received (see docs/dtmf.md).
    """

    # The class shares aiortc's name on purpose: Python mangles ``__name`` attributes with the
    # class name, so the ``_RTCPeerConnection__*`` names below are aiortc's private members.
    # docs/internals.md lists each one; tests/unit/test_internals.py checks they still exist.

    def __init__(
        self,
        configuration: PeerConnectionConfig | RTCConfiguration | None = None,
        *,
        turn_ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._config = PeerConnectionConfig.from_any(configuration)
        self._turn_ssl_context = turn_ssl_context
        self._dtmf_enabled = self._config.dtmf
        super().__init__(self._config.to_aiortc())
        self._stats = PeerConnectionStats()
        self._before_close: list[Callable[[], Awaitable[None]]] = []
        self._after_close: list[Callable[[], Awaitable[None]]] = []
        self._closing: asyncio.Future[None] | None = None
        #: How many local/remote descriptions were applied: the call recorder re-reads the
        #: SDPs (aiortc re-serialises them on every read) only when this moves.
        self._description_changes = 0
        self.on("datachannel", self._stats.track_channel)

    @property
    def config(self) -> PeerConnectionConfig:
        """The configuration this connection was created with."""
        return self._config

    # -- factories: one place per transport object ----------------------------------------

    def _create_ice_gatherer(
        self, local_username: str | None, local_password: str | None
    ) -> IceGatherer:
        return IceGatherer(
            self._config,
            turn_ssl_context=self._turn_ssl_context,
            local_username=local_username,
            local_password=local_password,
        )

    def _create_dtls_transport(
        self, ice_transport: IceTransport, certificates: list[RTCCertificate]
    ) -> RTCDtlsTransport:
        return DtlsTransport(
            ice_transport,
            list(self._config.certificates[:1]) or certificates,
            mtu=self._config.dtls_mtu,
            handshake_timeout=self._config.dtls_handshake_timeout,
            fingerprint_algorithms=self._config.fingerprint_algorithms,
        )

    def _create_rtp_sender(
        self, track_or_kind: MediaStreamTrack | str, transport: RTCDtlsTransport
    ) -> RtpSender:
        sender = RtpSender(track_or_kind, transport)
        sender.rtcp_interval = self._config.rtcp_interval
        return sender

    def _create_rtp_receiver(self, kind: str, transport: RTCDtlsTransport) -> RTCRtpReceiver:
        receiver = RtpReceiver(kind, transport)
        receiver.rtcp_interval = self._config.rtcp_interval
        self._wire_dtmf_receiver(receiver)
        return receiver

    # -- aiortc private members, replaced ---------------------------------------------------

    def _RTCPeerConnection__createDtlsTransport(self) -> RTCDtlsTransport:
        """aiortc's transport factory, building our gatherer, ICE and DTLS transports."""
        transceivers: list[RTCRtpTransceiver] = pc_private(self, "transceivers")
        sctp = pc_private(self, "sctp")
        username = password = None
        if transceivers or sctp:
            # Every transport of a connection shares one ufrag/pwd, as in aiortc.
            first = transceivers[0].receiver.transport if transceivers else sctp.transport
            parameters = first.transport.iceGatherer.getLocalParameters()
            username, password = parameters.usernameFragment, parameters.password
        gatherer = self._create_ice_gatherer(username, password)
        gatherer.on("statechange", pc_private(self, "updateIceGatheringState"))
        ice_transport = IceTransport(gatherer)
        ice_transport.on("statechange", pc_private(self, "updateIceConnectionState"))
        ice_transport.on("statechange", pc_private(self, "updateConnectionState"))
        gatherer.on("statechange", lambda: self._report_gathering_errors(gatherer))
        pc_private(self, "iceTransports").add(ice_transport)

        dtls_transport = self._create_dtls_transport(
            ice_transport, pc_private(self, "certificates")
        )
        dtls_transport.on("statechange", pc_private(self, "updateConnectionState"))
        self._stats.transport_created(dtls_transport)
        pc_private(self, "dtlsTransports").add(dtls_transport)

        pc_private(self, "updateIceGatheringState")()
        pc_private(self, "updateIceConnectionState")()
        pc_private(self, "updateConnectionState")()
        return dtls_transport

    def _RTCPeerConnection__createSctpTransport(self) -> None:
        """aiortc's SCTP transport factory, building ours (DATA chunks sized per association)."""
        transceivers: list[RTCRtpTransceiver] = pc_private(self, "transceivers")
        bundled = self._config.bundle_policy == RTCBundlePolicy.MAX_BUNDLE and bool(transceivers)
        if bundled:
            dtls_transport = transceivers[0].receiver.transport
        else:
            dtls_transport = pc_private(self, "createDtlsTransport")()
        sctp = RTCSctpTransport(dtls_transport)
        set_bundled(sctp, bundled)
        sctp.mid = None
        sctp.on("datachannel", lambda channel: self.emit("datachannel", channel))
        self._stats.sctp_created(sctp)
        pc_private_set(self, "sctp", sctp)

    def _RTCPeerConnection__createTransceiver(
        self, direction: str, kind: str, sender_track: MediaStreamTrack | None = None
    ) -> RTCRtpTransceiver:
        """aiortc's transceiver factory, building senders and receivers through our hooks."""
        transceivers: list[RTCRtpTransceiver] = pc_private(self, "transceivers")
        sctp = pc_private(self, "sctp")
        dtls_transport: RTCDtlsTransport | None = None
        bundled = False
        if self._config.bundle_policy == RTCBundlePolicy.MAX_BUNDLE:
            if transceivers:
                dtls_transport, bundled = transceivers[0].receiver.transport, True
            elif sctp:
                dtls_transport, bundled = sctp.transport, True
        elif self._config.bundle_policy == RTCBundlePolicy.BALANCED:
            same_kind = next((t for t in transceivers if t.kind == kind), None)
            if same_kind is not None:
                dtls_transport, bundled = same_kind.receiver.transport, True
        if dtls_transport is None:
            dtls_transport = pc_private(self, "createDtlsTransport")()

        transceiver = TelephoneEventTransceiver(
            direction=direction,
            kind=kind,
            # webrtc_ext's forked sender keeps aiortc's interface (docs/fork.md).
            sender=cast(
                RTCRtpSender, self._create_rtp_sender(sender_track or kind, dtls_transport)
            ),
            receiver=self._create_rtp_receiver(kind, dtls_transport),
            telephone_events=self._telephone_event_codecs,
        )
        receiver_set_rtcp_ssrc(transceiver.receiver, transceiver.sender._ssrc)
        transceiver.sender._stream_id = pc_private(self, "stream_id")
        set_bundled(transceiver, bundled)
        transceivers.append(transceiver)
        self._apply_codec_preferences(transceiver)
        return transceiver

    def _apply_codec_preferences(self, transceiver: RTCRtpTransceiver) -> None:
        wanted = self._config.audio_codecs
        if transceiver.kind != "audio" or wanted is None:
            return
        available = RTCRtpSender.getCapabilities("audio").codecs
        preferred = [
            codec
            for mime in wanted
            for codec in available
            if codec.mimeType.lower() == mime.lower()
        ]
        if not preferred:
            raise ValueError(f"none of the audio codecs {list(wanted)} is supported")
        transceiver.setCodecPreferences(preferred)

    # -- public API additions ---------------------------------------------------------------

    def _report_gathering_errors(self, gatherer: IceGatherer) -> None:
        if gatherer.state == "completed":
            for error in gatherer.gathering_errors:
                self.emit("icecandidateerror", error)

    @property
    def ice_transports(self) -> list[IceTransport]:
        """The ICE transports of this connection (one per bundle group)."""
        transports: set[IceTransport] = pc_private(self, "iceTransports")
        return sorted(transports, key=id)

    @property
    def gathering_errors(self) -> list[IceGatheringError]:
        """Every STUN/TURN server failure seen while gathering, with the reason."""
        return [
            error
            for t in self.ice_transports
            for error in cast(IceGatherer, t.iceGatherer).gathering_errors
        ]

    iceTransports = renamed("ice_transports")
    gatheringErrors = renamed("gathering_errors")

    async def setRemoteDescription(self, sessionDescription: RTCSessionDescription) -> None:
        """aiortc's ``setRemoteDescription``, dropping malformed candidate lines with a log line."""
        cleaned = drop_malformed_candidates(sessionDescription.sdp)
        check_parses(cleaned)
        if cleaned != sessionDescription.sdp:
            sessionDescription = RTCSessionDescription(sdp=cleaned, type=sessionDescription.type)
        self._note_remote_description(sessionDescription.sdp)
        try:
            await super().setRemoteDescription(sessionDescription)
        finally:
            self._description_changes += 1

    async def setLocalDescription(
        self, sessionDescription: RTCSessionDescription | None = None
    ) -> None:
        """aiortc's ``setLocalDescription``."""
        try:
            await super().setLocalDescription(sessionDescription)
        finally:
            self._description_changes += 1

    # -- statistics (docs/stats.md) ---------------------------------------------------------

    async def getStats(self) -> RTCStatsReport:
        """W3C webrtc-stats of the whole connection (see docs/stats.md for the types and ids)."""
        snapshot = self._stats.snapshot(self.getTransceivers(), pc_private(self, "certificates"))
        return build_stats_report(snapshot, self._stats.static_stats)

    def createDataChannel(self, label: str, *args: Any, **kwargs: Any) -> aiortc.RTCDataChannel:
        """aiortc's ``createDataChannel``, with the channel counted in ``data-channel`` stats."""
        channel = super().createDataChannel(label, *args, **kwargs)
        self._stats.track_channel(channel)
        return channel

    def on_before_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` at the start of :meth:`close`, while stats are still complete."""
        self._before_close.append(callback)

    def on_closed(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` at the end of :meth:`close`, once every state is ``closed``."""
        self._after_close.append(callback)

    async def close(self) -> None:
        """aiortc's ``close``, after the ``on_before_close`` callbacks."""
        # aiortc also closes by itself once every DTLS transport closed: every caller waits
        # for the one closing, callbacks included.
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return
        # Closed in the caller's task, without a hop through the loop: a connection task
        # scheduled just before must not get to run (aiortc's test_close_before_connect).
        self._closing = asyncio.get_running_loop().create_future()
        try:
            await _run_callbacks(self._before_close)
            await super().close()
            await _run_callbacks(self._after_close)
        finally:
            self._closing.set_result(None)


async def _run_callbacks(callbacks: list[Callable[[], Awaitable[None]]]) -> None:
    while callbacks:
        try:
            await callbacks.pop(0)()
        except Exception:
            logger.exception("a close callback failed")
