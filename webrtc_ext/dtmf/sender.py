"""Sending: the W3C ``RTCDTMFSender`` on a sender that owns its sequence space.

aiortc's ``RTCRtpSender._run_rtp`` keeps the sequence number as a local variable, so no
other packet can be sent on the audio SSRC without breaking the sequence. The raw RTP
sender (:class:`~webrtc_ext.rawrtp.RawRtpSenderMixin`) owns it in one munger;
:class:`DtmfSenderMixin` sends RFC 4733 packets in it with ``send_rtp_inserted`` and holds
the audio (from a track or raw) back while a tone plays, as browsers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiortc.exceptions import InvalidStateError
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters
from pyee.asyncio import AsyncIOEventEmitter

from ..rawrtp import RawRtpSenderMixin
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


class RTCDTMFSender(AsyncIOEventEmitter):
    """The W3C ``RTCDTMFSender`` of an audio sender: ``insertDTMF``, ``toneBuffer``,
    ``canInsertDTMF``, ``ontonechange`` (also emitted as the ``tonechange`` event)."""

    # In a slot: the C fan-out (webrtc_ext._native) reads it for every packet at its offset.
    __slots__ = ("_player",)

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
            and self._sender.munger is not None
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
                    self._sender._send_telephone_event(action, self._payload_type)

    def _tone_changed(self, event: RTCDTMFToneChangeEvent) -> None:
        self.emit("tonechange", event)
        if self.ontonechange is not None:
            try:
                self.ontonechange(event)
            except Exception:
                logger.exception("ontonechange handler failed")


class DtmfSenderMixin(RawRtpSenderMixin):
    """Adds the W3C ``dtmf`` attribute (an :class:`RTCDTMFSender`) to audio senders.

    Overrides ``send`` (to pick the negotiated telephone-event codec), ``stop`` and
    ``_media_may_send`` (audio pauses while a tone plays); sends its packets with
    ``send_rtp_inserted``, in the sender's one sequence space.
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

    def _send_telephone_event(self, action: EventPacket, payload_type: int) -> None:
        # Every packet of a segment carries the timestamp at which the segment began.
        timestamp = None
        if self._event_timestamp is not None and self._event_timestamp[0] == action.segment:
            timestamp = self._event_timestamp[1]
        used = self.send_rtp_inserted(
            action.payload,
            payload_type=payload_type,
            marker=action.marker,
            timestamp=timestamp,
            now=action.segment_began if timestamp is None else None,
        )
        if used is None:
            logger.debug("telephone-event packet not sent: transport not connected")
        elif timestamp is None:
            self._event_timestamp = (action.segment, used)
