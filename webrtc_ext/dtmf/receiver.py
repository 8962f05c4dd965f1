"""Reception: telephone-event packets taken out of a receiver's path by an interceptor, decoded."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator

from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters
from aiortc.rtp import RtpPacket
from pyee.asyncio import AsyncIOEventEmitter

from .._internals import receiver_private
from ..interceptor import ReceiverInterceptor, RtpPacketView
from ..rawrtp import RawRtpReceiverMixin
from .negotiation import is_telephone_event
from .rfc4733 import TelephoneEvent, TelephoneEventDecoder

logger = logging.getLogger(__name__)


class DtmfReceiver(AsyncIOEventEmitter):
    """The key presses arriving on one receiver.

    Emits ``dtmf`` with a :class:`TelephoneEvent` per press; ``async for event in it``
    yields the presses that arrive after iteration starts and ends when the receiver stops.
    """

    def __init__(self) -> None:
        super().__init__()
        self._queues: set[asyncio.Queue[TelephoneEvent | None]] = set()
        self._closed = False

    def _deliver(self, event: TelephoneEvent) -> None:
        for queue in self._queues:
            queue.put_nowait(event)
        self.emit("dtmf", event)

    def _close(self) -> None:
        self._closed = True
        for queue in self._queues:
            queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[TelephoneEvent]:
        return self.events()

    async def events(self) -> AsyncIterator[TelephoneEvent]:
        """The key presses from now on, until the receiver stops."""
        queue: asyncio.Queue[TelephoneEvent | None] = asyncio.Queue()
        if self._closed:
            return
        self._queues.add(queue)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._queues.discard(queue)


class TelephoneEventInterceptor(ReceiverInterceptor):
    """The receiver stage that takes telephone-event packets out and decodes them (RFC 4733).

    It consumes those packets before raw RTP consumers or aiortc's decoder see them: aiortc's
    decoder thread has no telephone-event decoder and would die on them, and its jitter
    estimate assumes the audio clock. They are still counted as received packets of the
    stream, so loss statistics stay right; on the decoded path their sequence numbers are
    filled in aiortc's jitter buffer so that audio is not held back (docs/dtmf.md).
    """

    def __init__(self, receiver: RawRtpReceiverMixin, presses: DtmfReceiver) -> None:
        self._receiver = receiver
        self._presses = presses
        self._decoder = TelephoneEventDecoder()
        self._clock_rates: dict[int, int] = {}
        self._mid: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_media: tuple[int, int, int] | None = None
        """``(ssrc, next sequence number, timestamp)`` after the last media packet."""

    @property
    def payload_types(self) -> frozenset[int]:
        """The negotiated telephone-event payload types (taken out of the receiver's path)."""
        return frozenset(self._clock_rates)

    def configure(self, parameters: RTCRtpReceiveParameters) -> None:
        """Learn which payload types carry telephone-event, and the transceiver's mid."""
        self._clock_rates = {
            codec.payloadType: codec.clockRate
            for codec in parameters.codecs
            if is_telephone_event(codec) and codec.payloadType is not None
        }
        self._mid = parameters.muxId

    def close(self) -> None:
        """Report a press still in progress; no timer is left behind."""
        self._deliver(self._decoder.flush())
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def rtp_received(self, packet: RtpPacketView, now: float) -> bool:
        """Consume telephone-event packets; every other packet goes on."""
        clock_rate = self._clock_rates.get(packet.payload_type)
        if clock_rate is None:
            if not self._receiver.raw:
                self._note_media(packet)
            return True
        if isinstance(packet, RtpPacket):
            parsed = packet
        else:
            try:
                parsed = RtpPacket.parse(getattr(packet, "data", b""))
            except ValueError as exc:
                logger.info("dropped malformed telephone-event packet: %s", exc)
                return False
        self._count_without_jitter(parsed)
        self._deliver(self._decoder.receive(parsed, now, clock_rate))
        self._schedule()
        if not self._receiver.raw:
            self._fill_jitter_buffer(parsed)
        return False

    def _count_without_jitter(self, packet: RtpPacket) -> None:
        """Count the packet in the stream's RTCP statistics, leaving the jitter estimate alone."""
        stats = receiver_private(self._receiver, "remote_streams").get(packet.ssrc)
        if stats is None:
            return
        saved = (stats._last_arrival, stats._last_timestamp, stats._jitter_q4)
        stats.add(packet)
        stats._last_arrival, stats._last_timestamp, stats._jitter_q4 = saved

    def _note_media(self, packet: RtpPacketView) -> None:
        last = self._last_media
        if last is None or last[0] != packet.ssrc or _newer(packet.sequence_number, last[1] - 1):
            next_sequence_number = (packet.sequence_number + 1) & 0xFFFF
            self._last_media = (packet.ssrc, next_sequence_number, packet.timestamp)

    def _fill_jitter_buffer(self, packet: RtpPacket) -> None:
        """Fill the slot of a telephone-event packet in aiortc's audio jitter buffer.

        The packet uses a sequence number of the audio stream; left empty, the slot is a
        gap that aiortc's jitter buffer waits on (until 16 packets later) before it hands
        the decoder any more audio. The filler carries no audio and the timestamp of the
        audio just before it, so it joins that frame and adds nothing to it.
        """
        last = self._last_media
        if last is None or last[0] != packet.ssrc:
            return
        ssrc, expected, timestamp = last
        if not (packet.sequence_number == expected or _newer(packet.sequence_number, expected)):
            return  # late: its slot is behind audio already received
        filler = RtpPacket(
            payload_type=packet.payload_type,
            sequence_number=packet.sequence_number,
            timestamp=timestamp,
            ssrc=ssrc,
        )
        filler._data = b""  # type: ignore[attr-defined]
        self._last_media = (ssrc, (packet.sequence_number + 1) & 0xFFFF, timestamp)
        _, frame = receiver_private(self._receiver, "jitter_buffer").add(filler)
        if frame is not None:  # only when the buffer overflowed; aiortc loses such frames too
            logger.debug("dropped a frame completed by a telephone-event filler")

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        timer = self._decoder.get_timer()
        if timer is not None:
            self._timer = asyncio.get_running_loop().call_at(timer, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        # call_at may fire up to the clock's resolution early.
        now = max(asyncio.get_running_loop().time(), self._decoder.get_timer() or 0.0)
        self._deliver(self._decoder.handle_timer(now))
        self._schedule()

    def _deliver(self, events: list[TelephoneEvent]) -> None:
        for event in events:
            logger.debug("DTMF %s (%s)", event.digit, event.end_reason)
            self._presses._deliver(dataclasses.replace(event, mid=self._mid))


class DtmfReceiverMixin(RawRtpReceiverMixin):
    """Adds ``dtmf`` (a :class:`DtmfReceiver`) to receivers: key presses, decoded by a
    :class:`TelephoneEventInterceptor` in the receiver's interceptor chain.

    Overrides ``receive`` (to learn the negotiated telephone-event payload types) and ``stop``.
    Raw consumers and aiortc's decoder get every other packet untouched.
    """

    def __init__(self, kind: str, transport: RTCDtlsTransport) -> None:
        super().__init__(kind, transport)
        self.dtmf = DtmfReceiver()
        """Key presses received on this receiver."""
        self.telephone_events = TelephoneEventInterceptor(self, self.dtmf)
        """The interceptor stage that decodes them."""
        self.interceptors.add(self.telephone_events)

    async def receive(self, parameters: RTCRtpReceiveParameters) -> None:
        """aiortc's ``receive``, noting which payload types carry telephone-event."""
        self.telephone_events.configure(parameters)
        await super().receive(parameters)

    async def stop(self) -> None:
        """aiortc's ``stop``, reporting a press still in progress and ending iteration."""
        self.telephone_events.close()
        self.dtmf._close()
        await super().stop()


def _newer(sequence_number: int, than: int) -> bool:
    """Whether RTP ``sequence_number`` comes after ``than`` (modulo 2^16, RFC 3550 §A.1)."""
    return 0 < (sequence_number - than) & 0xFFFF < 0x8000
