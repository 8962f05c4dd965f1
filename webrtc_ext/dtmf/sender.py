"""Sending: an RTP sender that owns its sequence space, and the W3C ``RTCDTMFSender`` on top.

aiortc's ``RTCRtpSender._run_rtp`` keeps the sequence number as a local variable, so no
other packet can be sent on the audio SSRC without breaking the sequence.
:class:`SequencedRtpSender` replaces that loop with one that sends every packet through
:meth:`SequencedRtpSender._send_rtp_packet`, which numbers it; :class:`DtmfSenderMixin`
uses it to interleave RFC 4733 packets, holding the audio back while a tone plays (as
browsers do).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiortc import RTCRtpSender, clock
from aiortc.exceptions import InvalidStateError
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import RTP_HISTORY_SIZE, RtpPacket
from aiortc.utils import random32, uint16_add, uint32_add
from pyee.asyncio import AsyncIOEventEmitter

from .._internals import sender_private, set_sender_private
from .negotiation import sending_codec
from .tones import (
    MAX_DURATION_MS,
    MIN_DURATION_MS,
    MIN_GAP_MS,
    VALID_TONES,
    EventPacket,
    ToneChange,
    TonePlayer,
)

logger = logging.getLogger(__name__)


class InvalidCharacterError(ValueError):
    """``insertDTMF`` was given a character that is not a DTMF tone (W3C webrtc-pc §7.2)."""


@dataclass(frozen=True)
class RTCDTMFToneChangeEvent:
    """The ``tonechange`` event: the tone that started, or ``""`` when the buffer is empty."""

    tone: str


class SequencedRtpSender(RTCRtpSender):
    """aiortc's sender, owning its outgoing RTP sequence numbers.

    Overrides ``_run_rtp`` (aiortc's media loop) with an equivalent loop that sends through
    :meth:`_send_rtp_packet`; everything else is aiortc's.
    """

    _media_clock: tuple[int, float, int] | None = None

    def __init__(self, trackOrKind: MediaStreamTrack | str, transport: RTCDtlsTransport) -> None:
        super().__init__(trackOrKind, transport)
        self._sequence_number = random_sequence_number()
        self._timestamp_origin = random32()

    def _media_may_send(self) -> bool:
        """Whether media packets go out now (a subclass may hold them back)."""
        return True

    def _media_timestamp(self, at: float) -> int:
        """The media RTP timestamp at loop time ``at``, extrapolated from the last frame."""
        if self._media_clock is None:
            return self._timestamp_origin
        timestamp, sent_at, clock_rate = self._media_clock
        return uint32_add(timestamp, round((at - sent_at) * clock_rate) & 0xFFFFFFFF)

    async def send(self, parameters: RTCRtpSendParameters) -> None:
        """aiortc's ``send``, also starting the media clock used to time other packets."""
        if self._media_clock is None and parameters.codecs:
            now = asyncio.get_running_loop().time()
            self._media_clock = (self._timestamp_origin, now, parameters.codecs[0].clockRate)
        await super().send(parameters)

    async def _send_rtp_packet(self, packet: RtpPacket, media: bool = True) -> None:
        """Number one packet in this sender's sequence space and send it on its SSRC."""
        packet.ssrc = self._ssrc
        packet.sequence_number = self._sequence_number
        self._sequence_number = uint16_add(self._sequence_number, 1)
        packet.extensions.abs_send_time = (clock.current_ntp_time() >> 14) & 0x00FFFFFF
        packet.extensions.mid = sender_private(self, "mid")
        sender_private(self, "rtp_history")[packet.sequence_number % RTP_HISTORY_SIZE] = packet
        data = packet.serialize(sender_private(self, "rtp_header_extensions_map"))
        await self.transport._send_rtp(data)
        if media:  # the RTCP sender report pairs wall clock and *media* timestamp
            set_sender_private(self, "ntp_timestamp", clock.current_ntp_time())
            set_sender_private(self, "rtp_timestamp", packet.timestamp)
        set_sender_private(
            self, "octet_count", sender_private(self, "octet_count") + len(packet.payload)
        )
        set_sender_private(self, "packet_count", sender_private(self, "packet_count") + 1)

    async def _run_rtp(self, codec: RTCRtpCodecParameters) -> None:
        sender_private(self, "rtp_started").set()
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self.track:
                    await asyncio.sleep(0.02)
                    continue
                frame = await self._next_encoded_frame(codec)
                if frame is None:
                    continue
                timestamp = uint32_add(self._timestamp_origin, frame.timestamp)
                self._media_clock = (timestamp, loop.time(), codec.clockRate)
                if not self._media_may_send():
                    continue
                for i, payload in enumerate(frame.payloads):
                    packet = RtpPacket(
                        payload_type=codec.payloadType or 0,
                        marker=int(i == len(frame.payloads) - 1),
                        timestamp=timestamp,
                        payload=payload,
                    )
                    if frame.audio_level is not None:
                        packet.extensions.audio_level = (False, -frame.audio_level)
                    await self._send_rtp_packet(packet)
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:
            # rtp_exited must be set whatever happens, or stop() hangs (as in aiortc).
            logger.exception("RTCRtpSender(%s) RTP loop failed", self.kind)
        if self.track:
            self.track.stop()
            set_sender_private(self, "track", None)
        set_sender_private(self, "encoder", None)
        sender_private(self, "rtp_exited").set()


class RTCDTMFSender(AsyncIOEventEmitter):
    """The W3C ``RTCDTMFSender`` of an audio sender: ``insertDTMF``, ``toneBuffer``,
    ``canInsertDTMF``, ``ontonechange`` (also emitted as the ``tonechange`` event)."""

    def __init__(self, sender: DtmfSenderMixin) -> None:
        super().__init__()
        self._sender = sender
        self._player: TonePlayer | None = None
        self._payload_type: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopped = False
        self.ontonechange: Callable[[RTCDTMFToneChangeEvent], None] | None = None

    @property
    def canInsertDTMF(self) -> bool:
        """telephone-event was negotiated and the sender is sending."""
        return (
            self._player is not None
            and not self._stopped
            and self._sender._enabled
            and self._sender._media_clock is not None
        )

    @property
    def toneBuffer(self) -> str:
        """The tones still to be played."""
        return self._player.tone_buffer if self._player is not None else ""

    def insertDTMF(self, tones: str, duration: int = 100, interToneGap: int = 70) -> None:
        """Queue ``tones`` (replacing the buffer) as RFC 4733 events (W3C webrtc-pc §7.2)."""
        if not self.canInsertDTMF or self._player is None:
            raise InvalidStateError("RTCDTMFSender cannot insert DTMF: not negotiated or sending")
        tones = tones.upper()
        invalid = set(tones) - VALID_TONES
        if invalid:
            raise InvalidCharacterError(f"not DTMF tones: {''.join(sorted(invalid))!r}")
        duration = min(max(duration, MIN_DURATION_MS), MAX_DURATION_MS)
        interToneGap = min(max(interToneGap, MIN_GAP_MS), MAX_DURATION_MS)
        loop = asyncio.get_running_loop()
        self._player.insert(tones, duration, interToneGap, loop.time())
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        self._wake.set()

    def _configure(self, codec: RTCRtpCodecParameters | None) -> None:
        if codec is None or codec.payloadType is None or self._player is not None:
            return
        self._payload_type = codec.payloadType
        self._player = TonePlayer(clock_rate=codec.clockRate)

    async def _stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        assert self._player is not None and self._payload_type is not None
        loop = asyncio.get_running_loop()
        while True:
            timer = self._player.get_timer()
            delay = None if timer is None else timer - loop.time()
            if delay is None or delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            for action in self._player.poll(max(loop.time(), timer or 0.0)):
                if isinstance(action, ToneChange):
                    self._tone_changed(RTCDTMFToneChangeEvent(action.tone))
                else:
                    await self._sender._send_telephone_event(action, self._payload_type)

    def _tone_changed(self, event: RTCDTMFToneChangeEvent) -> None:
        self.emit("tonechange", event)
        if self.ontonechange is not None:
            try:
                self.ontonechange(event)
            except Exception:
                logger.exception("ontonechange handler failed")


class DtmfSenderMixin(SequencedRtpSender):
    """Adds the W3C ``dtmf`` attribute (an :class:`RTCDTMFSender`) to audio senders.

    Overrides ``send`` (to pick the negotiated telephone-event codec), ``stop`` and
    ``_media_may_send`` (audio pauses while a tone plays).
    """

    def __init__(self, trackOrKind: MediaStreamTrack | str, transport: RTCDtlsTransport) -> None:
        super().__init__(trackOrKind, transport)
        self._dtmf = RTCDTMFSender(self) if self.kind == "audio" else None
        self._event_timestamp: tuple[int, int] | None = None

    @property
    def dtmf(self) -> RTCDTMFSender | None:
        """The DTMF sender of an audio sender (``None`` for video), as in W3C webrtc-pc."""
        return self._dtmf

    async def send(self, parameters: RTCRtpSendParameters) -> None:
        """aiortc's ``send``, enabling DTMF when telephone-event was negotiated."""
        if self._dtmf is not None:
            self._dtmf._configure(sending_codec(parameters.codecs))
        await super().send(parameters)

    async def stop(self) -> None:
        """aiortc's ``stop``, stopping DTMF first."""
        if self._dtmf is not None:
            await self._dtmf._stop()
        await super().stop()

    def _media_may_send(self) -> bool:
        player = self._dtmf._player if self._dtmf is not None else None
        return not (player is not None and player.playing) and super()._media_may_send()

    async def _send_telephone_event(self, action: EventPacket, payload_type: int) -> None:
        # Every packet of a segment carries the timestamp at which the segment began.
        if self._event_timestamp is None or self._event_timestamp[0] != action.segment:
            timestamp = self._media_timestamp(action.segment_began)
            self._event_timestamp = (action.segment, timestamp)
        packet = RtpPacket(
            payload_type=payload_type,
            marker=int(action.marker),
            timestamp=self._event_timestamp[1],
            payload=action.payload,
        )
        try:
            await self._send_rtp_packet(packet, media=False)
        except ConnectionError:
            logger.debug("telephone-event packet not sent: transport not connected")
