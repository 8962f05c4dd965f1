"""Raw RTP on aiortc's senders and receivers: packets in and out without codecs.

Three aiortc mixins, each adding one concern and overriding as little as it can (the classes
the peer connection builds, ``webrtc_ext.RtpSender``/``RtpReceiver``, compose them with DTMF's
in :mod:`webrtc_ext.composed`):

- :class:`RawRtpReceiverMixin` (``RTCRtpReceiver``): ``on_rtp(callback)`` and ``rtp_packets()``
  deliver the transceiver's RTP packets untouched; the decoder never runs for a receiver used
  this way.
- :class:`RawRtpSenderMixin` (``RTCRtpSender``): ``send_rtp(packet)`` sends pre-encoded packets
  with the sender's SSRC, payload type and header extensions. Every outgoing packet, from a
  track, from ``send_rtp`` or made by the sender (``send_rtp_inserted``, e.g. DTMF), goes
  through the sender's one :class:`~webrtc_ext.munger.RtpMunger`: the sequence space is owned
  in one place, and switching sources keeps the stream continuous.
- :class:`RtpFastPathMixin` (``RTCDtlsTransport``): the fast path. SRTP for a raw receiver is
  decrypted and delivered as the datagram arrives, and ``send_rtp`` encrypts and sends at once,
  with no task, queue or coroutine in between.

The overridden aiortc methods are listed in ``docs/rtp.md`` (for merging with other
subclasses of the same aiortc classes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Any, NamedTuple

import pylibsrtp
from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import RtpPacket, wrap_rtx
from aiortc.utils import random32

from .ice import IceConnection
from .munger import RtpMunger
from .rtp import (
    HISTORY_SIZE,
    URI_AUDIO_LEVEL,
    OutboundRtpStream,
    RawRtpPacket,
    extension_id,
    ntp_now,
)

logger = logging.getLogger(__name__)

RtpCallback = Callable[[RawRtpPacket], None]

#: Packets an ``rtp_packets()`` iterator buffers before it drops the oldest.
ITERATOR_BUFFER = 512


class _RouteKey(NamedTuple):
    ssrc: int
    payload_type: int


# -- receive ---------------------------------------------------------------------------------


class RawRtpReceiverMixin(RTCRtpReceiver):
    """Receiver side of raw RTP. Overrides ``receive``, ``stop`` and ``_handle_rtp_packet``."""

    def __init__(self, kind: str, transport: RTCDtlsTransport) -> None:
        super().__init__(kind, transport)
        self._raw = False
        self._rtp_callbacks: list[RtpCallback] = []
        self._rtp_queues: list[asyncio.Queue[RawRtpPacket | None]] = []
        self._audio_level_id = 0
        self._receiving = False

    @property
    def raw(self) -> bool:
        """Whether packets are delivered raw (and the decoder does not run)."""
        return self._raw

    def enable_raw(self) -> None:
        """Deliver packets raw from now on and stop the decoder (if it was started)."""
        if not self._raw:
            self._raw = True
            if self._receiving:
                self._RTCRtpReceiver__stop_decoder()  # type: ignore[attr-defined]

    def on_rtp(self, callback: RtpCallback) -> RtpCallback:
        """Call ``callback(packet)`` for every RTP packet received; usable as a decorator."""
        self.enable_raw()
        self._rtp_callbacks.append(callback)
        return callback

    def remove_rtp_callback(self, callback: RtpCallback) -> None:
        """Stop calling ``callback``."""
        if callback in self._rtp_callbacks:
            self._rtp_callbacks.remove(callback)

    async def rtp_packets(self) -> AsyncIterator[RawRtpPacket]:
        """The RTP packets received from now on, until the receiver stops."""
        self.enable_raw()
        queue: asyncio.Queue[RawRtpPacket | None] = asyncio.Queue(ITERATOR_BUFFER)
        self._rtp_queues.append(queue)
        try:
            while (packet := await queue.get()) is not None:
                yield packet
        finally:
            self._rtp_queues.remove(queue)

    async def receive(self, parameters: RTCRtpReceiveParameters) -> None:
        """aiortc's ``receive``; for a raw receiver the decoder thread exits at once."""
        self._audio_level_id = extension_id(parameters.headerExtensions, URI_AUDIO_LEVEL)
        await super().receive(parameters)
        self._receiving = True
        if self._raw:
            self._RTCRtpReceiver__stop_decoder()  # type: ignore[attr-defined]

    async def stop(self) -> None:
        """aiortc's ``stop``; ends every ``rtp_packets()`` iterator."""
        await super().stop()
        for queue in self._rtp_queues:
            _put_dropping_oldest(queue, None)

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        if not self._raw:
            await super()._handle_rtp_packet(packet, arrival_time_ms)
            return
        # Slow path, only when the transport has no RtpFastPathMixin: rebuild the packet.
        raw = RawRtpPacket.create(
            packet.payload,
            payload_type=packet.payload_type,
            sequence_number=packet.sequence_number,
            timestamp=packet.timestamp,
            ssrc=packet.ssrc,
            marker=bool(packet.marker),
            arrival_time=time.monotonic(),
        )
        self._deliver(raw)

    def _deliver(self, packet: RawRtpPacket) -> None:
        """Hand one received packet to the statistics, the callbacks and the iterators."""
        if not self._enabled:
            return
        codec = self._RTCRtpReceiver__codecs.get(packet.payload_type)  # type: ignore[attr-defined]
        if codec is None:
            return  # a payload type that was not negotiated, as aiortc drops it
        streams = self._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
        stream = streams.get(packet.ssrc)
        if stream is None:
            stream = streams[packet.ssrc] = _stream_statistics(codec.clockRate)
        stream.add(packet)
        for callback in self._rtp_callbacks:
            try:
                callback(packet)
            except Exception:
                logger.exception("RTP callback %r failed", callback)
        for queue in self._rtp_queues:
            _put_dropping_oldest(queue, packet)


def _nack_negotiated(codec: RTCRtpCodecParameters) -> bool:
    return any(feedback.type == "nack" for feedback in codec.rtcpFeedback)


def _stream_statistics(clock_rate: int) -> Any:
    from aiortc.rtcrtpreceiver import StreamStatistics

    return StreamStatistics(clock_rate)


def _put_dropping_oldest(queue: asyncio.Queue[Any], item: Any) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


# -- send ------------------------------------------------------------------------------------


class RawRtpSenderMixin(RTCRtpSender):
    """Sender side of raw RTP.

    Overrides ``send``, ``replaceTrack``, ``_run_rtp`` (aiortc keeps the sequence number as a
    local of this loop; here it lives in the sender's munger) and ``_retransmit``.
    """

    def __init__(self, trackOrKind: MediaStreamTrack | str, transport: RTCDtlsTransport) -> None:
        self._munger: RtpMunger | None = None
        self._outbound: OutboundRtpStream | None = None
        self._codec: RTCRtpCodecParameters | None = None
        self._pending_source: Hashable = None
        self._track_set = asyncio.Event()
        self._media_held = False
        self.packets_dropped = 0
        super().__init__(trackOrKind, transport)

    @property
    def munger(self) -> RtpMunger | None:
        """The munger every outgoing packet goes through (``None`` until negotiated)."""
        return self._munger

    @property
    def codec(self) -> RTCRtpCodecParameters | None:
        """The negotiated codec this sender sends (``None`` until negotiated)."""
        return self._codec

    def _media_may_send(self) -> bool:
        """Whether media packets go out now (a subclass may hold them back, e.g. for DTMF)."""
        return True

    def switch_source(self, source: Hashable) -> None:
        """Pass packets of ``source`` from now on; the receiver still sees one stream."""
        if self._munger is not None:
            self._munger.update(source)
        else:
            self._pending_source = source

    def replaceTrack(self, track: MediaStreamTrack | None) -> None:
        """aiortc's ``replaceTrack``; a new track becomes the sender's current source."""
        super().replaceTrack(track)
        if track is not None:
            self.switch_source(track)
            self._track_set.set()

    async def send(self, parameters: RTCRtpSendParameters) -> None:
        """aiortc's ``send``, also setting up the outgoing stream and its munger."""
        if self._outbound is None and parameters.codecs:
            codec = parameters.codecs[0]
            self._codec = codec
            assert codec.payloadType is not None
            self._munger = RtpMunger(
                codec.clockRate,
                initial_sequence_number=random_sequence_number(),
                initial_timestamp=random32(),
            )
            source = self._pending_source
            if source is not None:
                self._munger.update(source)
            self._outbound = OutboundRtpStream(
                ssrc=self._ssrc,
                payload_type=codec.payloadType,
                mid=parameters.muxId,
                header_extensions=parameters.headerExtensions,
                # No NACK negotiated (Opus with Chromium, WhatsApp): nothing to keep.
                history_size=HISTORY_SIZE if _nack_negotiated(codec) else 0,
            )
        await super().send(parameters)

    def send_rtp(
        self, packet: RawRtpPacket, *, source: Hashable = None, now: float | None = None
    ) -> bool:
        """Send a pre-encoded packet now; ``False`` if it was dropped.

        ``source`` (default: the packet's SSRC) names where the packet comes from: packets of a
        source other than the current one (see :meth:`switch_source`) are dropped, as are late
        packets of a previous source. ``now`` defaults to ``time.monotonic()``.
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
        munged = munger.munge(
            packet.sequence_number,
            packet.timestamp,
            now,
            packet.ssrc if source is None else source,
            packet.ssrc,
        )
        if munged is None:
            self.packets_dropped += 1
            return False
        ntp = ntp_now()
        data = outbound.write(packet, munged[0], munged[1], ntp)
        try:
            _send_now(self.transport, data)
        except ConnectionError:
            self.packets_dropped += 1
            return False
        self._account(outbound)
        # The sender report pairs the wall clock with the *media* timeline (RFC 3550 §6.4.1).
        self._RTCRtpSender__ntp_timestamp = ntp
        self._RTCRtpSender__rtp_timestamp = munged[1]
        return True

    def _account(self, outbound: OutboundRtpStream) -> None:
        # aiortc's RTCP loop builds sender reports from these (RFC 3550 §6.4.1).
        self._RTCRtpSender__packet_count = outbound.packet_count
        self._RTCRtpSender__octet_count = outbound.octet_count

    def send_rtp_inserted(
        self,
        payload: bytes,
        *,
        payload_type: int,
        marker: bool = False,
        timestamp: int | None = None,
        now: float | None = None,
    ) -> int | None:
        """Send a packet the sender makes itself (e.g. RFC 4733 telephone-event) in its stream.

        It takes the next sequence number of the one outgoing sequence space; ``timestamp``
        defaults to the stream's timeline at ``now``. Returns the timestamp used (to repeat it
        for the other packets of one event), or ``None`` if the packet could not be sent. It
        is counted in sender reports but leaves their wall-clock/media-timestamp pair alone.
        """
        munger, outbound = self._munger, self._outbound
        if munger is None or outbound is None:
            return None
        sequence_number, position = munger.insert(time.monotonic() if now is None else now)
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
            _send_now(self.transport, data)
        except ConnectionError:
            return None
        self._account(outbound)
        return timestamp

    async def _run_rtp(self, codec: RTCRtpCodecParameters) -> None:
        """aiortc's send loop, with every frame sent through :meth:`send_rtp`."""
        self._RTCRtpSender__rtp_started.set()  # type: ignore[attr-defined]
        sequence_number = 0
        try:
            while True:
                track = self.track
                if track is None:
                    # Woken by replaceTrack, instead of aiortc's 50 Hz polling.
                    self._track_set.clear()
                    await self._track_set.wait()
                    continue
                frame = await self._next_encoded_frame(codec)
                if frame is None:
                    continue
                last = len(frame.payloads) - 1
                for i, payload in enumerate(frame.payloads):
                    packet = RawRtpPacket.create(
                        payload,
                        payload_type=codec.payloadType or 0,
                        sequence_number=sequence_number,
                        timestamp=frame.timestamp,
                        marker=i == last,
                    )
                    if frame.audio_level is not None:
                        packet.audio_level = min(127, max(0, -frame.audio_level))
                    self.send_rtp(packet, source=track)
                    sequence_number += 1
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:
            logger.exception("RTP send loop failed")
        finally:
            track = self.track
            if track is not None:
                track.stop()
            # As aiortc's loop ends: the track is released, and the encoder with it.
            self._RTCRtpSender__track = None
            self._RTCRtpSender__encoder = None
            self._RTCRtpSender__rtp_exited.set()  # type: ignore[attr-defined]

    async def _retransmit(self, sequence_number: int) -> None:
        """Resend a packet a NACK asked for, wrapped in RTX when negotiated (RFC 4588)."""
        data = self._outbound.sent(sequence_number) if self._outbound else None
        if data is None:
            return
        rtx_payload_type = self._RTCRtpSender__rtx_payload_type  # type: ignore[attr-defined]
        if rtx_payload_type is not None:
            rtx_seq: int = getattr(self, "_RTCRtpSender__rtx_sequence_number")  # noqa: B009
            data = wrap_rtx(
                RtpPacket.parse(data),
                payload_type=rtx_payload_type,
                sequence_number=rtx_seq,
                ssrc=self._rtx_ssrc,
            ).serialize()
            self._RTCRtpSender__rtx_sequence_number = (rtx_seq + 1) & 0xFFFF
        with contextlib.suppress(ConnectionError):
            _send_now(self.transport, data)


_background: set[asyncio.Future[None]] = set()


def _in_background(coroutine: Any) -> None:
    future = asyncio.ensure_future(coroutine)
    _background.add(future)
    future.add_done_callback(_background.discard)


def _send_now(transport: RTCDtlsTransport, data: bytes) -> None:
    if isinstance(transport, RtpFastPathMixin):
        transport.send_rtp_now(data)
    else:
        _in_background(transport._send_rtp(data))


# -- transport fast path ---------------------------------------------------------------------


class RtpFastPathMixin(RTCDtlsTransport):
    """A synchronous SRTP path for raw senders and receivers, on aiortc's ``RTCDtlsTransport``.

    Adds ``send_rtp_now``; hooks ``IceConnection.data_callback``. Overrides only ``__init__``,
    so it composes with other transport subclasses (``class T(RtpFastPathMixin, Other)``).
    """

    def __init__(self, transport: Any, certificates: list[Any], **kwargs: Any) -> None:
        super().__init__(transport, certificates, **kwargs)
        connection = getattr(transport, "connection", None)
        self._ice_connection = connection if isinstance(connection, IceConnection) else None
        #: Called with each plaintext RTP packet the fast path delivers (e.g. by the statistics,
        #: which wrap ``send_rtp_now`` for the sending side).
        self.rtp_received_tap: Callable[[bytes], None] | None = None
        if self._ice_connection is not None:
            self._ice_connection.data_callback = self._datagram_received

    def _datagram_received(self, data: bytes, component: int) -> bool:
        """Decrypt and deliver SRTP for a raw receiver now; anything else goes to aiortc."""
        if len(data) < 12 or not 127 < data[0] < 192 or 191 < data[1] < 224:
            return False  # DTLS, RTCP (RFC 5761 §4) and runts take aiortc's path
        rx_srtp = self._rx_srtp
        if rx_srtp is None:
            return False
        ssrc = int.from_bytes(data[8:12], "big")
        receiver = self._rtp_router.ssrc_table.get(ssrc)
        if receiver is None:  # unknown SSRC: aiortc's rules (it may learn it by payload type)
            receiver = self._rtp_router.route_rtp(_RouteKey(ssrc, data[1] & 0x7F))  # type: ignore[arg-type]
        if not isinstance(receiver, RawRtpReceiverMixin) or not receiver._raw:
            return False
        arrival = time.monotonic()
        try:
            plain = rx_srtp.unprotect(data)
        except pylibsrtp.Error as exc:
            logger.debug("dropped SRTP packet that failed to unprotect: %s", exc)
            return True
        # aiortc's transport statistics (private counters, see docs/internals.md)
        self._RTCDtlsTransport__rx_bytes += len(data)  # type: ignore[attr-defined]
        self._RTCDtlsTransport__rx_packets += 1  # type: ignore[attr-defined]
        tap = self.rtp_received_tap
        if tap is not None:
            tap(plain)
        try:
            packet = RawRtpPacket.parse(plain, arrival, receiver._audio_level_id)
        except ValueError as exc:
            logger.info("dropped malformed RTP packet: %s", exc)
            return True
        receiver._deliver(packet)
        return True

    def send_rtp_now(self, data: bytes) -> None:
        """Protect and send one RTP or RTCP packet now; raises ``ConnectionError`` if closed."""
        if self._state is not State.CONNECTED or self._tx_srtp is None:
            raise ConnectionError("Cannot send encrypted RTP, not connected")
        if 191 < data[1] < 224:
            data = self._tx_srtp.protect_rtcp(data)
        else:
            data = self._tx_srtp.protect(data)
        connection = self._ice_connection
        if connection is not None:
            connection.send_datagram(data)
        else:
            _in_background(self.transport._send(data))
        self._RTCDtlsTransport__tx_bytes += len(data)  # type: ignore[attr-defined]
        self._RTCDtlsTransport__tx_packets += 1  # type: ignore[attr-defined]


# -- fan-out ---------------------------------------------------------------------------------


class RtpFanOut:
    """One received stream forwarded to several senders at once, each with its own munger."""

    def __init__(self, receiver: RawRtpReceiverMixin, source: Hashable = None) -> None:
        self.receiver = receiver
        self.source: Hashable = receiver if source is None else source
        self._senders: list[RawRtpSenderMixin] = []
        receiver.on_rtp(self._forward)

    @property
    def senders(self) -> list[RawRtpSenderMixin]:
        """The senders the stream goes to."""
        return list(self._senders)

    def add(self, sender: RawRtpSenderMixin, *, switch: bool = True) -> None:
        """Forward to ``sender`` too; with ``switch``, make this stream its current source."""
        if sender not in self._senders:
            self._senders.append(sender)
        if switch:
            sender.switch_source(self.source)

    def remove(self, sender: RawRtpSenderMixin) -> None:
        """Stop forwarding to ``sender``."""
        if sender in self._senders:
            self._senders.remove(sender)

    def close(self) -> None:
        """Stop forwarding altogether."""
        self._senders.clear()
        self.receiver.remove_rtp_callback(self._forward)

    def _forward(self, packet: RawRtpPacket) -> None:
        now = packet.arrival_time
        for sender in self._senders:
            sender.send_rtp(packet, source=self.source, now=now)
