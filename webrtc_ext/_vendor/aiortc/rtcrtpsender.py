"""aiortc 1.16.0's ``rtcrtpsender``, forked (upstream: ``aiortc/rtcrtpsender.py``).

BSD-3-Clause, see LICENSE next to this file. Every change from upstream is recorded in
docs/fork.md; ``python scripts/fork_diff.py`` shows them. The sender owns its sequence
space and sends raw RTP: every outgoing packet, encoded from a track, pre-encoded
(:meth:`RTCRtpSender.send_rtp`) or made by the sender itself
(:meth:`RTCRtpSender.send_rtp_inserted`, e.g. DTMF), goes through one
:class:`~webrtc_ext.munger.RtpMunger`, so switching sources keeps the stream continuous.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import traceback
import uuid
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Optional, Union

import aiortc.rtcrtpsender
from aiortc import clock, rtp
from aiortc.codecs import get_capabilities, get_encoder, is_rtx
from aiortc.codecs.base import Encoder
from aiortc.exceptions import InvalidStateError
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import (
    RTCRtpCapabilities,
    RTCRtpCodecParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
    wrap_rtx,
)
from aiortc.stats import (
    RTCOutboundRtpStreamStats,
    RTCRemoteInboundRtpStreamStats,
    RTCStatsReport,
)
from aiortc.utils import random16, random32, uint16_add
from av import AudioFrame
from av.frame import Frame

from ..._aio import Flag
from ...config import RTCP_INTERVAL
from ...munger import RtpMunger
from ...native import RETRY_AFTER as NATIVE_RETRY_AFTER
from ...native import send_path
from ...rtp import HISTORY_SIZE, OutboundRtpStream, RawRtpPacket, ntp_now

if TYPE_CHECKING:
    from ..._native import SendPath

logger = logging.getLogger(__name__)

#: webrtc_ext: the members ``_account`` keeps for sender reports
#: (packet and octet counts, the NTP / RTP timestamp pair), by their mangled names,
#: for the C fan-out.
SENDER_REPORT_MEMBERS = (
    "_RTCRtpSender__packet_count",
    "_RTCRtpSender__octet_count",
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
)

RTT_ALPHA = 0.85


def random_sequence_number() -> int:
    """
    Generate a random RTP sequence number.

    The sequence number is chosen in the lower half of the allowed range in
    order to avoid wraparounds which break SRTP decryption.

    See:
    https://chromiumdash.appspot.com/commit/13b327b05fa3788b4daa9c3463e13282824cb320
    """
    return random16() % 32768


class RTCEncodedFrame:
    def __init__(self, payloads: list[bytes], timestamp: int, audio_level: int):
        self.payloads = payloads
        self.timestamp = timestamp
        self.audio_level = audio_level


# webrtc_ext: a subclass of aiortc's only so that ``isinstance(sender,
# aiortc.RTCRtpSender)`` holds in user code; every member is defined here (this is the
# whole upstream class), so none of aiortc's code runs on these objects.
class RTCRtpSender(aiortc.rtcrtpsender.RTCRtpSender):
    """
    The :class:`RTCRtpSender` interface provides the ability to control and
    obtain details about how a particular :class:`MediaStreamTrack` is encoded
    and sent to a remote peer.

    :param trackOrKind: Either a :class:`MediaStreamTrack` instance or a
                         media kind (`'audio'` or `'video'`).
    :param transport: An :class:`RTCDtlsTransport`.
    """

    def __init__(
        self, trackOrKind: Union[MediaStreamTrack, str], transport: RTCDtlsTransport
    ) -> None:
        if transport.state == "closed":
            raise InvalidStateError

        # webrtc_ext: the outgoing stream, owned by the sender (set up in send()).
        self._munger: Optional[RtpMunger] = None
        self._outbound: Optional[OutboundRtpStream] = None
        self._codec: Optional[RTCRtpCodecParameters] = None
        self._pending_source: Hashable = None
        self._track_set = Flag()
        self._media_held = False
        self._pending_sends: set[asyncio.Future[None]] = set()
        # webrtc_ext: the C send path (webrtc_ext.native), built after a Python send.
        self._native: Optional[SendPath] = None
        self._native_retry = 0
        self.packets_dropped = 0
        """Packets given to :meth:`send_rtp` that were not sent."""
        self.rtcp_interval = RTCP_INTERVAL
        """Mean seconds between sender reports (PeerConnectionConfig.rtcp_interval)."""

        if isinstance(trackOrKind, MediaStreamTrack):
            self.__kind = trackOrKind.kind
            self.replaceTrack(trackOrKind)
        else:
            self.__kind = trackOrKind
            self.replaceTrack(None)
        self.__cname: Optional[str] = None
        self._ssrc = random32()
        self._rtx_ssrc = random32()
        # FIXME: how should this be initialised?
        self._stream_id = str(uuid.uuid4())
        self._enabled = True
        self.__encoder: Optional[Encoder] = None
        self.__force_keyframe = False
        self.__loop = asyncio.get_event_loop()
        self.__mid: Optional[str] = None
        self.__rtp_exited = Flag()  # type: ignore[assignment]
        self.__rtp_header_extensions_map = rtp.HeaderExtensionsMap()
        self.__rtp_started = Flag()  # type: ignore[assignment]
        self.__rtp_task: Optional[asyncio.Future[None]] = None
        self.__rtcp_exited = Flag()  # type: ignore[assignment]
        self.__rtcp_started = Flag()  # type: ignore[assignment]
        self.__rtcp_task: Optional[asyncio.Future[None]] = None
        self.__rtx_payload_type: Optional[int] = None
        self.__rtx_sequence_number = random_sequence_number()
        self.__started = False
        self.__stats = RTCStatsReport()
        self.__transport = transport

        # stats
        self.__lsr: Optional[int] = None
        self.__lsr_time: Optional[float] = None
        self.__ntp_timestamp = 0
        self.__rtp_timestamp = 0
        self.__octet_count = 0
        self.__packet_count = 0
        self.__rtt: Optional[float] = None

        # logging
        self.__log_debug: Callable[..., None] = lambda *args: None
        if logger.isEnabledFor(logging.DEBUG):
            self.__log_debug = lambda msg, *args: logger.debug(
                f"RTCRtpSender(%s) {msg}", self.__kind, *args
            )

    @property
    def kind(self) -> str:
        return self.__kind

    @property
    def track(self) -> MediaStreamTrack:
        """
        The :class:`MediaStreamTrack` which is being handled by the sender.
        """
        return self.__track  # type: ignore[return-value]

    @property
    def transport(self) -> RTCDtlsTransport:
        """
        The :class:`RTCDtlsTransport` over which media data for the track is
        transmitted.
        """
        return self.__transport

    @classmethod
    def getCapabilities(self, kind: str) -> RTCRtpCapabilities:
        """
        Returns the most optimistic view of the system's capabilities for
        sending media of the given `kind`.

        :rtype: :class:`RTCRtpCapabilities`
        """
        return get_capabilities(kind)

    async def getStats(self) -> RTCStatsReport:
        """
        Returns statistics about the RTP sender.

        :rtype: :class:`RTCStatsReport`
        """
        self.__stats.add(
            RTCOutboundRtpStreamStats(
                # RTCStats
                timestamp=clock.current_datetime(),
                type="outbound-rtp",
                id="outbound-rtp_" + str(id(self)),
                # RTCStreamStats
                ssrc=self._ssrc,
                kind=self.__kind,
                transportId=self.transport._stats_id,
                # RTCSentRtpStreamStats
                packetsSent=self.__packet_count,
                bytesSent=self.__octet_count,
                # RTCOutboundRtpStreamStats
                trackId=str(id(self.track)),
            )
        )
        self.__stats.update(self.transport._get_stats())

        return self.__stats

    def replaceTrack(self, track: Optional[MediaStreamTrack]) -> None:
        """Send ``track`` from now on; it becomes the sender's current source."""
        self.__track = track
        if track is not None:
            self._track_id = track.id
            self.switch_source(track)
            self._track_set.set()
        else:
            self._track_id = str(uuid.uuid4())

    def setTransport(self, transport: RTCDtlsTransport) -> None:
        self.__transport = transport

    async def send(self, parameters: RTCRtpSendParameters) -> None:
        """
        Attempt to set the parameters controlling the sending of media.

        :param parameters: The :class:`RTCRtpSendParameters` for the sender.
        """
        if not self.__started:
            self._start_outbound(parameters)
            self.__cname = parameters.rtcp.cname
            self.__mid = parameters.muxId

            # make note of the RTP header extension IDs
            self.__transport._register_rtp_sender(self, parameters)
            self.__rtp_header_extensions_map.configure(parameters)

            # make note of RTX payload type
            for codec in parameters.codecs:
                if (
                    is_rtx(codec)
                    and codec.parameters["apt"] == parameters.codecs[0].payloadType
                ):
                    self.__rtx_payload_type = codec.payloadType
                    break

            self.__rtp_task = asyncio.ensure_future(self._run_rtp(parameters.codecs[0]))
            self.__rtcp_task = asyncio.ensure_future(self._run_rtcp())
            self.__started = True

    async def stop(self) -> None:
        """
        Irreversibly stop the sender.
        """
        for future in list(self._pending_sends):
            future.cancel()
        if self.__started:
            self.__transport._unregister_rtp_sender(self)

            # shutdown RTP and RTCP tasks
            await asyncio.gather(self.__rtp_started.wait(), self.__rtcp_started.wait())
            self.__rtp_task.cancel()  # type: ignore[union-attr]
            self.__rtcp_task.cancel()  # type: ignore[union-attr]
            await asyncio.gather(self.__rtp_exited.wait(), self.__rtcp_exited.wait())

    async def _handle_rtcp_packet(self, packet: AnyRtcpPacket) -> None:
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in filter(lambda x: x.ssrc == self._ssrc, packet.reports):
                # estimate round-trip time
                if self.__lsr == report.lsr and report.dlsr:
                    rtt = time.time() - self.__lsr_time - (report.dlsr / 65536)  # type: ignore[operator]
                    if self.__rtt is None:
                        self.__rtt = rtt
                    else:
                        self.__rtt = RTT_ALPHA * self.__rtt + (1 - RTT_ALPHA) * rtt

                self.__stats.add(
                    RTCRemoteInboundRtpStreamStats(
                        # RTCStats
                        timestamp=clock.current_datetime(),
                        type="remote-inbound-rtp",
                        id="remote-inbound-rtp_" + str(id(self)),
                        # RTCStreamStats
                        ssrc=packet.ssrc,
                        kind=self.__kind,
                        transportId=self.transport._stats_id,
                        # RTCReceivedRtpStreamStats
                        packetsReceived=self.__packet_count - report.packets_lost,
                        packetsLost=report.packets_lost,
                        jitter=report.jitter,
                        # RTCRemoteInboundRtpStreamStats
                        roundTripTime=self.__rtt,  # type: ignore[arg-type]
                        fractionLost=report.fraction_lost,
                    )
                )
        elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            for seq in packet.lost:
                await self._retransmit(seq)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (
            RTCP_PSFB_FIR,  # Full Instantaneous Resolution
            RTCP_PSFB_PLI,  # Picture Loss Indication
        ):
            self._send_keyframe()
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
                if self._ssrc in ssrcs:
                    self.__log_debug(
                        "- receiver estimated maximum bitrate %d bps", bitrate
                    )
                    if self.__encoder and hasattr(self.__encoder, "target_bitrate"):
                        self.__encoder.target_bitrate = bitrate
            except ValueError:
                pass

    async def _next_encoded_frame(  # type: ignore[override]
        self, codec: RTCRtpCodecParameters
    ) -> Optional[RTCEncodedFrame]:
        # Get [Frame|Packet].
        data = await self.__track.recv()  # type: ignore[union-attr]

        # If the sender is disabled, drop the frame instead of encoding it.
        # We still want to read from the track in order to avoid frames
        # accumulating in memory.
        if not self._enabled:
            return None

        audio_level = None

        if self.__encoder is None:
            self.__encoder = get_encoder(codec)

        if isinstance(data, Frame):
            # Encode the frame.
            if isinstance(data, AudioFrame):
                audio_level = rtp.compute_audio_level_dbov(data)

            force_keyframe = self.__force_keyframe
            self.__force_keyframe = False
            payloads, timestamp = await self.__loop.run_in_executor(
                None, self.__encoder.encode, data, force_keyframe
            )
        else:
            # Pack the pre-encoded data.
            payloads, timestamp = self.__encoder.pack(data)

        # If the encoder did not return any payloads, return `None`.
        # This may be due to a delay caused by resampling.
        if not payloads:
            return None

        return RTCEncodedFrame(payloads, timestamp, audio_level)  # type: ignore[arg-type]

    async def _retransmit(self, sequence_number: int) -> None:
        """
        Retransmit an RTP packet which was reported as lost.
        """
        # webrtc_ext: from the outgoing stream's history, whatever the packet's source.
        data = self._outbound.sent(sequence_number) if self._outbound else None
        if data is None:
            return
        if self.__rtx_payload_type is not None:
            data = wrap_rtx(
                RtpPacket.parse(data),
                payload_type=self.__rtx_payload_type,
                sequence_number=self.__rtx_sequence_number,
                ssrc=self._rtx_ssrc,
            ).serialize()
            self.__rtx_sequence_number = uint16_add(self.__rtx_sequence_number, 1)
        try:
            self._send_packet(data)
        except ConnectionError:
            pass

    def _send_keyframe(self) -> None:
        """
        Request the next frame to be a keyframe.
        """
        self.__force_keyframe = True

    async def _run_rtp(self, codec: RTCRtpCodecParameters) -> None:
        self.__log_debug("- RTP started")
        self.__rtp_started.set()

        # webrtc_ext: numbered by the track's frames; the munger maps them to the
        # stream.
        sequence_number = 0
        try:
            while True:
                track = self.__track
                if track is None:
                    # webrtc_ext: woken by replaceTrack, instead of polling at 50 Hz.
                    self._track_set.clear()
                    await self._track_set.wait()
                    continue

                # Fetch the next encoded frame. This can be `None` if the sender
                # is disabled, in which case we just continue the loop.
                enc_frame = await self._next_encoded_frame(codec)
                if enc_frame is None:
                    continue

                last = len(enc_frame.payloads) - 1
                for i, payload in enumerate(enc_frame.payloads):
                    packet = RawRtpPacket.create(
                        payload,
                        payload_type=codec.payloadType or 0,
                        sequence_number=sequence_number,
                        timestamp=enc_frame.timestamp,
                        marker=i == last,
                    )
                    if enc_frame.audio_level is not None:
                        packet.audio_level = min(127, max(0, -enc_frame.audio_level))
                    self.send_rtp(packet, source=track)
                    sequence_number += 1
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:
            # we *need* to set __rtp_exited, otherwise RTCRtpSender.stop() will hang,
            # so issue a warning if we hit an unexpected exception
            self.__log_warning(traceback.format_exc())

        # stop track
        if self.__track:
            self.__track.stop()
            self.__track = None

        # release encoder
        self.__encoder = None

        self.__log_debug("- RTP finished")
        self.__rtp_exited.set()

    async def _run_rtcp(self) -> None:
        self.__log_debug("- RTCP started")
        self.__rtcp_started.set()

        try:
            while True:
                # The interval between RTCP packets is varied randomly over the
                # range [0.5, 1.5] times the calculated interval.
                await asyncio.sleep(self.rtcp_interval * (0.5 + random.random()))

                # RTCP SR
                packets: list[AnyRtcpPacket] = [
                    RtcpSrPacket(
                        ssrc=self._ssrc,
                        sender_info=RtcpSenderInfo(
                            ntp_timestamp=self.__ntp_timestamp,
                            rtp_timestamp=self.__rtp_timestamp,
                            packet_count=self.__packet_count & 0xFFFFFFFF,
                            octet_count=self.__octet_count & 0xFFFFFFFF,
                        ),
                    )
                ]
                self.__lsr = ((self.__ntp_timestamp) >> 16) & 0xFFFFFFFF
                self.__lsr_time = time.time()

                # RTCP SDES
                if self.__cname is not None:
                    packets.append(
                        RtcpSdesPacket(
                            chunks=[
                                RtcpSourceInfo(
                                    ssrc=self._ssrc,
                                    items=[(1, self.__cname.encode("utf8"))],
                                )
                            ]
                        )
                    )

                await self._send_rtcp(packets)
        except asyncio.CancelledError:
            pass

        # RTCP BYE
        packet = RtcpByePacket(sources=[self._ssrc])
        await self._send_rtcp([packet])

        self.__log_debug("- RTCP finished")
        self.__rtcp_exited.set()

    async def _send_rtcp(self, packets: list[AnyRtcpPacket]) -> None:
        payload = b""
        for packet in packets:
            self.__log_debug("> %s", packet)
            payload += bytes(packet)

        try:
            await self.transport._send_rtp(payload)
        except ConnectionError:
            pass

    # -- webrtc_ext: the sender's one outgoing stream --------------------------------

    @property
    def munger(self) -> RtpMunger | None:
        """The munger every outgoing packet goes through (``None`` until negotiated)."""
        return self._munger

    @property
    def codec(self) -> RTCRtpCodecParameters | None:
        """The negotiated codec this sender sends (``None`` until negotiated)."""
        return self._codec

    def _media_may_send(self) -> bool:
        """Whether media packets go out now (a subclass may hold them back: DTMF)."""
        return True

    def switch_source(self, source: Hashable) -> None:
        """Pass packets of ``source`` from now on; the receiver sees one stream."""
        if self._munger is not None:
            self._munger.update(source)
        else:
            self._pending_source = source

    def _start_outbound(self, parameters: RTCRtpSendParameters) -> None:
        """Set up the outgoing stream and its munger for the negotiated codec."""
        if self._outbound is not None or not parameters.codecs:
            return
        codec = parameters.codecs[0]
        self._codec = codec
        assert codec.payloadType is not None
        self._munger = RtpMunger(
            codec.clockRate,
            initial_sequence_number=random_sequence_number(),
            initial_timestamp=random32(),
        )
        if self._pending_source is not None:
            self._munger.update(self._pending_source)
        # No NACK negotiated (Opus with Chromium, WhatsApp): no sent packet is kept.
        nack = any(feedback.type == "nack" for feedback in codec.rtcpFeedback)
        self._outbound = OutboundRtpStream(
            ssrc=self._ssrc,
            payload_type=codec.payloadType,
            mid=parameters.muxId,
            header_extensions=parameters.headerExtensions,
            history_size=HISTORY_SIZE if nack else 0,
        )

    def send_rtp(
        self, packet: RawRtpPacket, *, source: Hashable = None, now: float | None = None
    ) -> bool:
        """Send a pre-encoded packet now; ``False`` if it was dropped.

        ``source`` (default: the packet's SSRC) names where the packet comes from:
        packets of a source other than the current one (see :meth:`switch_source`) are
        dropped, as are late packets of a previous source. ``now`` defaults to
        ``time.monotonic()``.
        """
        munger, outbound = self._munger, self._outbound
        if munger is None or outbound is None:
            self.packets_dropped += 1
            return False
        if not self._media_may_send():
            self._media_held = True
            self.packets_dropped += 1
            return False
        if self._media_held:
            # Resume as a new segment: the held packets leave no gap in the sequence.
            self._media_held = False
            if munger.source is not None:
                munger.update(munger.source)
        if now is None:
            now = time.monotonic()
        if source is None:
            source = packet.ssrc
        native = self._native
        if native is not None:
            # The munger's common case, writing, SRTP, sending and counting, in C
            # (webrtc_ext.native): the same results as below.
            sent_at = native.send_media(outbound, munger, packet, source, now)
            if sent_at is not None:
                if sent_at is False:
                    self.packets_dropped += 1
                    return False
                self._account(outbound, sent_at)
                return True
        munged = munger.munge(
            packet.sequence_number, packet.timestamp, now, source, packet.ssrc
        )
        if munged is None:
            self.packets_dropped += 1
            return False
        if native is not None:
            sent_at = native.send(outbound, packet, munged[0], munged[1])
            if sent_at is not None:
                self._account(outbound, sent_at)
                return True
            self._native = None  # what it was built for changed: Python, then a new one
            self._native_retry = 0
        ntp = ntp_now()
        data = outbound.write(packet, munged[0], munged[1], ntp)
        try:
            self._send_packet(data)
        except ConnectionError:
            self.packets_dropped += 1
            return False
        self._account(outbound, ntp)
        self._native_retry -= 1
        if self._native_retry <= 0:
            self._native = send_path(self, outbound)
            self._native_retry = NATIVE_RETRY_AFTER
        return True

    def _send_packet(self, data: bytes) -> None:
        transport = self.transport
        # webrtc_ext's SRTP fast path, when the transport has it
        send_now = getattr(transport, "send_rtp_now", None)
        if send_now is not None:
            send_now(data)
            return
        # aiortc's own transport sends from a coroutine: a task this sender owns (stop()
        # cancels what is left), never an orphan.
        future = asyncio.ensure_future(transport._send_rtp(data))
        self._pending_sends.add(future)
        future.add_done_callback(self._pending_sends.discard)

    def _account(self, outbound: OutboundRtpStream, ntp: Optional[int] = None) -> None:
        # aiortc's RTCP loop builds sender reports from these (RFC 3550 §6.4.1).
        self.__packet_count = outbound.packet_count
        self.__octet_count = outbound.octet_count
        if ntp is not None:
            # A media packet sent at ``ntp``: the sender report pairs the wall clock
            # with the *media* timeline (inserted packets leave the pair alone).
            self.__ntp_timestamp = ntp
            self.__rtp_timestamp = outbound.last_timestamp

    def send_rtp_inserted(
        self,
        payload: bytes,
        *,
        payload_type: int,
        marker: bool = False,
        timestamp: int | None = None,
        now: float | None = None,
    ) -> int | None:
        """Send a packet the sender makes itself (e.g. RFC 4733 telephone-event).

        It takes the next sequence number of the one outgoing sequence space;
        ``timestamp`` defaults to the stream's timeline at ``now``. Returns the
        timestamp used (to repeat it for the other packets of one event), or ``None``
        if the packet could not be sent. It is counted in sender reports but leaves
        their wall-clock/media-timestamp pair alone.
        """
        munger, outbound = self._munger, self._outbound
        if munger is None or outbound is None:
            return None
        sequence_number, position = munger.insert(
            time.monotonic() if now is None else now
        )
        if timestamp is None:
            timestamp = position
        packet = RawRtpPacket.create(
            payload,
            payload_type=payload_type,
            sequence_number=sequence_number,
            timestamp=timestamp,
            marker=marker,
        )
        ntp = ntp_now()
        data = outbound.write(packet, sequence_number, timestamp, ntp, payload_type)
        try:
            self._send_packet(data)
        except ConnectionError:
            return None
        self._account(outbound)
        return timestamp

    def __log_warning(self, msg: str, *args: object) -> None:
        logger.warning(f"RTCRtpsender(%s) {msg}", self.__kind, *args)
