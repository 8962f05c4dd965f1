"""Raw RTP on aiortc's senders and receivers: packets in and out without codecs.

Three classes, each adding one concern and overriding as little as it can (the classes
the peer connection builds, ``webrtc_ext.RtpSender``/``RtpReceiver``, compose them with DTMF's
in :mod:`webrtc_ext.composed`):

- :class:`RawRtpReceiverMixin` (``RTCRtpReceiver``): ``on_rtp(callback)`` and ``rtp_packets()``
  deliver the transceiver's RTP packets untouched; the decoder never runs for a receiver used
  this way.
- :class:`RawRtpSenderMixin` (webrtc_ext's fork of aiortc's ``RTCRtpSender``, in
  :mod:`webrtc_ext._vendor.aiortc.rtcrtpsender`): ``send_rtp(packet)`` sends pre-encoded packets
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
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Hashable
from typing import TYPE_CHECKING, Any, NamedTuple

import pylibsrtp
from aiortc import RTCDtlsTransport, RTCRtpReceiver
from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpparameters import (
    RTCRtpReceiveParameters,
)
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import RtpPacket, is_rtcp

from ._internals import dtls_count_received, dtls_count_sent, receiver_private
from ._vendor.aiortc.rtcrtpsender import RTCRtpSender
from .ice import IceConnection
from .interceptor import ReceiverInterceptorChain, TransportInterceptorChain
from .native import RETRY_AFTER as NATIVE_RETRY_AFTER
from .native import fan_out as native_fan_out
from .native import media_hold, recv_path
from .native import stream_add as native_stream_add
from .opus import OpusRepacketizer
from .rtp import URI_AUDIO_LEVEL, RawRtpPacket, extension_id
from .srtp import fast_session

if TYPE_CHECKING:
    from ._native import RecvPath

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
        # A tuple, replaced on each change: a callback that adds or removes one (itself,
        # say) while a packet is delivered never makes another callback miss that packet.
        self._rtp_callbacks: tuple[RtpCallback, ...] = ()
        self._last_packet: RawRtpPacket | None = None
        self._rtp_queues: list[asyncio.Queue[RawRtpPacket | None]] = []
        self._audio_level_id = 0
        self._receiving = False
        self.interceptors = ReceiverInterceptorChain()
        """Stages every RTP packet of this receiver goes through first (e.g. DTMF reception)."""
        # aiortc's own dicts (filled in place by receive()), read on every raw packet.
        self._negotiated_codecs: dict[int, Any] = receiver_private(self, "codecs")
        self._stream_statistics: dict[int, Any] = receiver_private(self, "remote_streams")

    @property
    def raw(self) -> bool:
        """Whether packets are delivered raw (and the decoder does not run)."""
        return self._raw

    @property
    def last_arrival(self) -> float | None:
        """When (``time.monotonic()``) the last packet was delivered raw; None before one."""
        packet = self._last_packet
        return None if packet is None else packet.arrival_time

    @property
    def audio_level(self) -> float | None:
        """The level of the last packet delivered raw, from its RFC 6464 header extension,
        linear from 0 to 1.0 (0 dBov) as the W3C ``audioLevel``; None if it carried none.

        It is read from the last packet when asked, so watching a level costs nothing per
        packet (a callback that computes one costs a Python call on every packet).
        """
        packet = self._last_packet
        if packet is None or packet.audio_level is None:
            return None
        return float(10 ** (-(packet.audio_level & 0x7F) / 20))

    def enable_raw(self) -> None:
        """Deliver packets raw from now on and stop the decoder (if it was started)."""
        if not self._raw:
            self._raw = True
            if self._receiving:
                receiver_private(self, "stop_decoder")()

    def on_rtp(self, callback: RtpCallback) -> RtpCallback:
        """Call ``callback(packet)`` for every RTP packet received; usable as a decorator."""
        self.enable_raw()
        self._rtp_callbacks = (*self._rtp_callbacks, callback)
        return callback

    def is_opus(self, payload_type: int) -> bool:
        """Whether ``payload_type`` was negotiated as Opus on this receiver."""
        codec = self._negotiated_codecs.get(payload_type)
        return codec is not None and codec.mimeType.lower() == "audio/opus"

    def remove_rtp_callback(self, callback: RtpCallback) -> None:
        """Stop calling ``callback``."""
        callbacks = list(self._rtp_callbacks)
        if callback in callbacks:
            callbacks.remove(callback)
            self._rtp_callbacks = tuple(callbacks)

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
            receiver_private(self, "stop_decoder")()

    async def stop(self) -> None:
        """aiortc's ``stop``; ends every ``rtp_packets()`` iterator."""
        await super().stop()
        for queue in self._rtp_queues:
            _put_dropping_oldest(queue, None)

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        now = time.monotonic()
        if not self._enabled or not self.interceptors.rtp_received(packet, now):
            return
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
            arrival_time=now,
        )
        self._deliver_raw(raw)

    def _deliver(self, packet: RawRtpPacket) -> None:
        """One packet from the SRTP fast path: through the interceptors, then delivered raw."""
        if self._enabled and self.interceptors.rtp_received(packet, packet.arrival_time):
            self._deliver_raw(packet)

    def _deliver_raw(self, packet: RawRtpPacket) -> None:
        """Hand one received packet to the statistics, the callbacks and the iterators."""
        if not self._enabled:
            return
        codec = self._negotiated_codecs.get(packet.payload_type)
        if codec is None:
            return  # a payload type that was not negotiated, as aiortc drops it
        streams = self._stream_statistics
        stream = streams.get(packet.ssrc)
        if stream is None:
            stream = streams[packet.ssrc] = _stream_statistics(codec.clockRate)
        if native_stream_add is not None:
            native_stream_add(stream, packet)  # the same as stream.add(packet), in C
        else:
            stream.add(packet)
        self._last_packet = packet
        for callback in self._rtp_callbacks:
            try:
                callback(packet)
            except Exception:
                logger.exception("RTP callback %r failed", callback)
        for queue in self._rtp_queues:
            _put_dropping_oldest(queue, packet)


def _callback_failed(callback: RtpCallback, exception: BaseException | None) -> None:
    """Log an ``on_rtp`` callback that raised (the C path's delivery calls this)."""
    logger.error("RTP callback %r failed", callback, exc_info=exception)


def _stream_statistics(clock_rate: int) -> Any:
    return _SlottedStreamStatistics(clock_rate)


class _SlottedStreamStatistics(StreamStatistics):
    """aiortc's ``StreamStatistics`` with its members in slots: the same object to aiortc and
    the statistics, and the C path (``stream_add``) reads and writes them at their offsets
    rather than through the instance dictionary. A member a later aiortc adds lands in the
    ``__dict__`` the base class keeps."""

    __slots__ = (
        "_clockrate",
        "_expected_prior",
        "_jitter_q4",
        "_last_arrival",
        "_last_timestamp",
        "_received_prior",
        "base_seq",
        "cycles",
        "max_seq",
        "packets_received",
    )


def _put_dropping_oldest(queue: asyncio.Queue[Any], item: Any) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


# -- send ------------------------------------------------------------------------------------


#: The raw RTP sender: webrtc_ext's fork of aiortc's ``RTCRtpSender`` (docs/fork.md), which
#: sends every packet through its one munger. Kept under this name for the compositions.
RawRtpSenderMixin = RTCRtpSender


# -- transport fast path ---------------------------------------------------------------------


class RtpFastPathMixin(RTCDtlsTransport):
    """A synchronous SRTP path for raw senders and receivers, on aiortc's ``RTCDtlsTransport``.

    Adds ``send_rtp_now`` and :attr:`interceptors` (observers of every plaintext RTP/RTCP
    packet, on this path and on aiortc's); hooks ``IceConnection.data_callback``. Overrides
    ``__init__``, ``stop``, ``_setup_srtp`` (the sessions are wrapped by
    :func:`webrtc_ext.srtp.fast_session`) and aiortc's plaintext entry points (``_send_rtp``,
    ``_handle_rtp_data``, ``_handle_rtcp_data``) calling up, so it composes with other
    transport subclasses (``class T(RtpFastPathMixin, Other)``).
    """

    def __init__(self, transport: Any, certificates: list[Any], **kwargs: Any) -> None:
        super().__init__(transport, certificates, **kwargs)
        connection = getattr(transport, "connection", None)
        self._ice_connection = connection if isinstance(connection, IceConnection) else None
        self.interceptors = TransportInterceptorChain()
        """Observers of every plaintext RTP/RTCP packet sent and received (e.g. statistics)."""
        self._pending_sends: set[asyncio.Future[None]] = set()
        # The C receive path (webrtc_ext.native), built at the first raw packet.
        self._native_recv: RecvPath | None = None
        self._native_retry = 0
        if self._ice_connection is not None:
            self._ice_connection.data_callback = self._datagram_received

    def _setup_srtp(self) -> None:
        """aiortc's, then both SRTP sessions called without pylibsrtp's per-call overhead."""
        super()._setup_srtp()
        self._rx_srtp = fast_session(self._rx_srtp)
        self._tx_srtp = fast_session(self._tx_srtp)

    def _datagram_received(self, data: bytes, component: int) -> bool:
        """Decrypt and deliver SRTP for a raw receiver, and SRTCP, now; the rest goes to aiortc."""
        if len(data) < 12 or not 127 < data[0] < 192:
            return False  # DTLS and runts take aiortc's path
        rx_srtp = self._rx_srtp
        if rx_srtp is None:
            return False
        if 191 < data[1] < 224:  # RTCP (RFC 5761 §4)
            try:
                plain = rx_srtp.unprotect_rtcp(data)
            except pylibsrtp.Error as exc:
                logger.debug("dropped SRTCP packet that failed to unprotect: %s", exc)
                return True
            dtls_count_received(self, len(data))
            # aiortc's handlers are coroutines that do not wait on anything: run them now
            # rather than through the transport's queue and its reading task.
            run_eagerly(self._handle_rtcp_data(plain))
            return True
        ssrc = int.from_bytes(data[8:12], "big")
        router = self._rtp_router
        receiver = router.ssrc_table.get(ssrc)
        unknown_ssrc = receiver is None
        if unknown_ssrc:
            # Looked up without learning: the SSRC is learnt once the packet authenticates,
            # so spoofed packets with random SSRCs allocate nothing (issue 12, defect 3).
            receiver = _only_receiver_of(router, data[1] & 0x7F)
        if not isinstance(receiver, RawRtpReceiverMixin) or not receiver._raw:
            return False
        arrival = time.monotonic()
        native = self._native_recv
        if native is not None and not unknown_ssrc:
            # Unprotect, count and parse in C (webrtc_ext.native): the same results.
            try:
                native_packet = native.receive(data, arrival, receiver._audio_level_id)
            except pylibsrtp.Error as exc:
                logger.debug("dropped SRTP packet that failed to unprotect: %s", exc)
                return True
            except ValueError as exc:
                logger.info("dropped malformed RTP packet: %s", exc)
                return True
            if native_packet is not None:
                receiver._deliver(native_packet)
                return True
            self._set_native_recv(None)  # what it was built for changed: Python, then anew
            self._native_retry = 0
        elif native is None:
            self._native_retry -= 1
            if self._native_retry <= 0:
                self._set_native_recv(
                    recv_path(self, receiver_type=RawRtpReceiverMixin, failed=_callback_failed)
                )
                self._native_retry = NATIVE_RETRY_AFTER
        try:
            plain = rx_srtp.unprotect(data)
        except pylibsrtp.Error as exc:
            logger.debug("dropped SRTP packet that failed to unprotect: %s", exc)
            return True
        if unknown_ssrc:  # authenticated: aiortc's rule learns the SSRC now
            router.route_rtp(_RouteKey(ssrc, data[1] & 0x7F))  # type: ignore[arg-type]
        # aiortc's transport statistics (private counters, see docs/internals.md)
        dtls_count_received(self, len(data))
        self.interceptors.rtp_received(plain, arrival)
        try:
            packet = RawRtpPacket.parse(plain, arrival, receiver._audio_level_id)
        except ValueError as exc:
            logger.info("dropped malformed RTP packet: %s", exc)
            return True
        receiver._deliver(packet)
        return True

    def _set_native_recv(self, path: RecvPath | None) -> None:
        """Use ``path`` (or the Python path): here, and from the ICE socket's callback."""
        self._native_recv = path
        if self._ice_connection is not None:
            self._ice_connection.native_receive = path

    def send_rtp_now(self, data: bytes) -> None:
        """Protect and send one RTP or RTCP packet now; raises ``ConnectionError`` if closed."""
        if self._state is not State.CONNECTED or self._tx_srtp is None:
            raise ConnectionError("Cannot send encrypted RTP, not connected")
        rtcp = 191 < data[1] < 224
        protected = self._tx_srtp.protect_rtcp(data) if rtcp else self._tx_srtp.protect(data)
        connection = self._ice_connection
        if connection is not None:
            connection.send_datagram(protected)
        else:
            self._send_later(protected)
        dtls_count_sent(self, len(protected))
        if rtcp:
            self.interceptors.rtcp_sent(data, time.monotonic())
        else:
            self.interceptors.rtp_sent(data, time.monotonic())

    def _send_later(self, data: bytes) -> None:
        # An ICE transport without the synchronous send: a task the transport owns (stop()
        # cancels what is left), never an orphan.
        future = asyncio.ensure_future(self.transport._send(data))
        self._pending_sends.add(future)
        future.add_done_callback(self._sent_later)

    def _sent_later(self, future: asyncio.Future[None]) -> None:
        self._pending_sends.discard(future)
        if not future.cancelled() and future.exception() is not None:
            logger.debug("RTP packet not sent: %s", future.exception())

    async def stop(self) -> None:
        """aiortc's ``stop``, also cancelling sends still pending."""
        for future in list(self._pending_sends):
            future.cancel()
        self._set_native_recv(None)
        self._native_retry = 1 << 62  # never again: the transport is done
        await super().stop()

    # The plaintext paths aiortc's own senders and receivers use, observed by the interceptors.

    async def _send_rtp(self, data: bytes) -> None:
        if self._ice_connection is not None:
            # aiortc's own senders and receivers (RTCP reports, track RTP) take the
            # synchronous path too: the same checks, protection, counters and interceptors,
            # without three more awaits down to the socket.
            self.send_rtp_now(data)
            return
        await super()._send_rtp(data)
        # Observed once sent: a packet refused (not connected) never went out.
        if is_rtcp(data):
            self.interceptors.rtcp_sent(data, time.monotonic())
        else:
            self.interceptors.rtp_sent(data, time.monotonic())

    async def _handle_rtp_data(self, data: bytes, arrival_time_ms: int) -> None:
        self.interceptors.rtp_received(data, time.monotonic())
        await super()._handle_rtp_data(data, arrival_time_ms=arrival_time_ms)

    async def _handle_rtcp_data(self, data: bytes) -> None:
        self.interceptors.rtcp_received(data, time.monotonic())
        await super()._handle_rtcp_data(data)


def run_eagerly(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` now, to its end if it never suspends (the common case for RTCP handlers).

    If it does suspend (a handler that really waits), the rest runs when what it waits for
    is done, as a task would run it. Exceptions are logged, like a task's that nobody awaits.
    """
    try:
        waited = coro.send(None)
    except StopIteration:
        return
    except Exception:
        logger.exception("RTCP handling failed")
        return
    _Continuation(coro).wait(waited)


class _Continuation:
    """The rest of a coroutine :func:`run_eagerly` started, driven by what it waits for."""

    def __init__(self, coro: Coroutine[Any, Any, None]) -> None:
        self._coro = coro

    def wait(self, waited: Any) -> None:
        if waited is None:  # a bare yield (asyncio.sleep(0)): go on at the next loop turn
            asyncio.get_running_loop().call_soon(self._step)
            return
        waited._asyncio_future_blocking = False
        waited.add_done_callback(self._resume)

    def _resume(self, _future: Any) -> None:
        self._step()

    def _step(self) -> None:
        try:
            waited = self._coro.send(None)
        except StopIteration:
            return
        except asyncio.CancelledError:
            return  # what it waited for was cancelled (the transport closed)
        except Exception:
            logger.exception("RTCP handling failed")
            return
        self.wait(waited)


def _only_receiver_of(router: Any, payload_type: int) -> Any:
    """The receiver aiortc's router would learn an unknown SSRC for, without learning it."""
    receivers = router.payload_type_table.get(payload_type, ())
    return next(iter(receivers)) if len(receivers) == 1 else None


# -- fan-out ---------------------------------------------------------------------------------


class RtpFanOut:
    """One received stream forwarded to several senders at once, each with its own munger.

    A destination added with ``opus_frames`` above 1 gets the stream's Opus frames joined
    that many to a packet (:class:`~webrtc_ext.opus.OpusRepacketizer`): fewer packets, each
    up to ``opus_frames - 1`` frames later, for consumers that need no 20 ms latency.
    """

    # In slots: the C fan-out (webrtc_ext._native) reads these for every packet at their
    # offsets rather than in the instance dictionary; the rest stays in ``__dict__``.
    __slots__ = ("__dict__", "__weakref__", "_native_targets", "source")

    def __init__(self, receiver: RawRtpReceiverMixin, source: Hashable = None) -> None:
        self.receiver = receiver
        self.source: Hashable = receiver if source is None else source
        self._senders: list[RawRtpSenderMixin] = []
        self._packers: dict[RawRtpSenderMixin, OpusRepacketizer] = {}
        self._targets: tuple[tuple[RawRtpSenderMixin, OpusRepacketizer | None], ...] = ()
        # The C path's view of the targets: (sender, packer, how the sender holds media).
        self._native_targets: tuple[tuple[Any, ...], ...] = ()
        native = native_fan_out(self)
        self._callback: RtpCallback = self._forward if native is None else native.forward
        receiver.on_rtp(self._callback)

    @property
    def senders(self) -> list[RawRtpSenderMixin]:
        """The senders the stream goes to."""
        return list(self._senders)

    def add(self, sender: RawRtpSenderMixin, *, switch: bool = True, opus_frames: int = 1) -> None:
        """Forward to ``sender`` too; with ``switch``, make this stream its current source.

        ``opus_frames`` (1 to 6): Opus frames per packet toward this sender; packets of
        other codecs pass unchanged.
        """
        if sender not in self._senders:
            self._senders.append(sender)
        if opus_frames > 1:
            self._packers[sender] = OpusRepacketizer(opus_frames)
        else:
            self._packers.pop(sender, None)
        self._retarget()
        if switch:
            sender.switch_source(self.source)

    def remove(self, sender: RawRtpSenderMixin) -> None:
        """Stop forwarding to ``sender``."""
        if sender in self._senders:
            self._senders.remove(sender)
        self._packers.pop(sender, None)
        self._retarget()

    def close(self) -> None:
        """Stop forwarding altogether."""
        self._senders.clear()
        self._packers.clear()
        self._targets = ()
        self._native_targets = ()
        self.receiver.remove_rtp_callback(self._callback)

    def _retarget(self) -> None:
        self._targets = tuple((sender, self._packers.get(sender)) for sender in self._senders)
        self._native_targets = tuple(
            (sender, packer, media_hold(sender)) for sender, packer in self._targets
        )

    def _forward(self, packet: RawRtpPacket) -> None:
        now = packet.arrival_time
        source = self.source
        for sender, packer in self._targets:
            if packer is None:
                sender.send_rtp(packet, source=source, now=now)
            else:
                self._forward_packed(sender, packer, packet)

    def _forward_packed(
        self, sender: RawRtpSenderMixin, packer: OpusRepacketizer, packet: RawRtpPacket
    ) -> None:
        """One packet toward a destination that takes joined Opus frames (other codecs'
        packets pass unchanged)."""
        source, now = self.source, packet.arrival_time
        if not self.receiver.is_opus(packet.payload_type):
            sender.send_rtp(packet, source=source, now=now)
            return
        for joined in packer.push(packet):
            sender.send_rtp(joined, source=source, now=now)
