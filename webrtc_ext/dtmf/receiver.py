"""Reception: telephone-event packets taken out of aiortc's audio path, decoded into presses."""

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
from ..rawrtp import RawRtpReceiverMixin
from ..rtp import RawRtpPacket
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


class DtmfReceiverMixin(RawRtpReceiverMixin):
    """Takes telephone-event packets before aiortc or raw RTP consumers see them and decodes them.

    Overrides ``receive`` (to learn the negotiated telephone-event payload types),
    ``_handle_rtp_packet`` and the raw path's ``_deliver`` (to divert those packets, also on
    the SRTP fast path) and ``stop``. Raw consumers get every other packet untouched.
    aiortc's decoder thread has no telephone-event decoder and would die on them; its jitter
    estimate assumes the audio clock and would be disturbed by them. They are still counted
    as received packets of the stream, so loss statistics stay right.
    """

    def __init__(self, kind: str, transport: RTCDtlsTransport) -> None:
        super().__init__(kind, transport)
        self.dtmf = DtmfReceiver()
        """Key presses received on this receiver."""
        self._dtmf_decoder = TelephoneEventDecoder()
        self._dtmf_clock_rates: dict[int, int] = {}
        self._dtmf_mid: str | None = None
        self._dtmf_timer: asyncio.TimerHandle | None = None
        self._last_media: tuple[int, int, int] | None = None
        """``(ssrc, next sequence number, timestamp)`` after the last media packet decoded."""

    async def receive(self, parameters: RTCRtpReceiveParameters) -> None:
        """aiortc's ``receive``, noting which payload types carry telephone-event."""
        self._dtmf_clock_rates = {
            codec.payloadType: codec.clockRate
            for codec in parameters.codecs
            if is_telephone_event(codec) and codec.payloadType is not None
        }
        self._dtmf_mid = parameters.muxId
        await super().receive(parameters)

    async def stop(self) -> None:
        """aiortc's ``stop``, reporting a press still in progress and ending iteration."""
        self._dtmf_deliver(self._dtmf_decoder.flush())
        if self._dtmf_timer is not None:
            self._dtmf_timer.cancel()
            self._dtmf_timer = None
        self.dtmf._close()
        await super().stop()

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        if packet.payload_type in self._dtmf_clock_rates:
            self._dtmf_received(packet)
            if not self.raw:
                self._fill_jitter_buffer(packet)
            return
        if not self.raw:
            self._note_media(packet)
        await super()._handle_rtp_packet(packet, arrival_time_ms)

    def _note_media(self, packet: RtpPacket) -> None:
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
        _, frame = receiver_private(self, "jitter_buffer").add(filler)
        if frame is not None:  # only when the buffer overflowed; aiortc loses such frames too
            logger.debug("dropped a frame completed by a telephone-event filler")

    def _deliver(self, packet: RawRtpPacket) -> None:
        """The raw path's delivery (the SRTP fast path's too), telephone-event diverted."""
        if packet.payload_type not in self._dtmf_clock_rates:
            super()._deliver(packet)
            return
        try:
            parsed = RtpPacket.parse(packet.data)
        except ValueError as exc:
            logger.info("dropped malformed telephone-event packet: %s", exc)
            return
        self._dtmf_received(parsed)

    def _dtmf_received(self, packet: RtpPacket) -> None:
        clock_rate = self._dtmf_clock_rates[packet.payload_type]
        if not self._enabled:
            return
        self._count_without_jitter(packet)
        now = asyncio.get_running_loop().time()
        self._dtmf_deliver(self._dtmf_decoder.receive(packet, now, clock_rate))
        self._dtmf_schedule()

    def _count_without_jitter(self, packet: RtpPacket) -> None:
        """Count the packet in the stream's RTCP statistics, leaving the jitter estimate alone."""
        stats = receiver_private(self, "remote_streams").get(packet.ssrc)
        if stats is None:
            return
        saved = (stats._last_arrival, stats._last_timestamp, stats._jitter_q4)
        stats.add(packet)
        stats._last_arrival, stats._last_timestamp, stats._jitter_q4 = saved

    def _dtmf_schedule(self) -> None:
        if self._dtmf_timer is not None:
            self._dtmf_timer.cancel()
            self._dtmf_timer = None
        timer = self._dtmf_decoder.get_timer()
        if timer is not None:
            self._dtmf_timer = asyncio.get_running_loop().call_at(timer, self._dtmf_on_timer)

    def _dtmf_on_timer(self) -> None:
        self._dtmf_timer = None
        # call_at may fire up to the clock's resolution early.
        now = max(asyncio.get_running_loop().time(), self._dtmf_decoder.get_timer() or 0.0)
        self._dtmf_deliver(self._dtmf_decoder.handle_timer(now))
        self._dtmf_schedule()

    def _dtmf_deliver(self, events: list[TelephoneEvent]) -> None:
        for event in events:
            logger.debug("DTMF %s (%s)", event.digit, event.end_reason)
            self.dtmf._deliver(dataclasses.replace(event, mid=self._dtmf_mid))


def _newer(sequence_number: int, than: int) -> bool:
    """Whether RTP ``sequence_number`` comes after ``than`` (modulo 2^16, RFC 3550 §A.1)."""
    return 0 < (sequence_number - than) & 0xFFFF < 0x8000
