"""SDP negotiation of RFC 4733 ``telephone-event`` at 8000 and 48000 Hz beside the audio codec.

aiortc has no telephone-event codec and negotiates from a module-level list shared by
every connection, so the codec is added per transceiver instead: aiortc assigns
``transceiver._codecs`` whenever it negotiates (in ``createOffer`` and
``setRemoteDescription``), and :class:`TelephoneEventTransceiver` appends the
telephone-event codecs on each assignment. They always come after the audio codecs,
because aiortc's sender transmits with the first codec.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver, sdp
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

logger = logging.getLogger(__name__)

MIME_TYPE = "audio/telephone-event"

#: The clock rates negotiated, with the payload type we offer for each (Chromium's and
#: WhatsApp's choices, clear of aiortc's 96-102).
OFFERED = ((48000, 110), (8000, 126))
CLOCK_RATES = frozenset(rate for rate, _ in OFFERED)

#: ``a=fmtp:<pt> 0-15``: the sixteen DTMF events (RFC 4733 §2.4.1).
FMTP_EVENTS = {"0-15": None}

TelephoneEventSource = Callable[
    [RTCRtpTransceiver, Sequence[RTCRtpCodecParameters]], list[RTCRtpCodecParameters]
]


def is_telephone_event(codec: RTCRtpCodecParameters) -> bool:
    """The codec is RFC 4733 telephone-event."""
    return codec.mimeType.lower() == MIME_TYPE


def telephone_event_codec(clock_rate: int, payload_type: int) -> RTCRtpCodecParameters:
    """A telephone-event codec announcing the DTMF events 0-15."""
    return RTCRtpCodecParameters(
        mimeType=MIME_TYPE,
        clockRate=clock_rate,
        channels=1,
        payloadType=payload_type,
        parameters=dict(FMTP_EVENTS),
    )


def offered_codecs(taken: Sequence[RTCRtpCodecParameters]) -> list[RTCRtpCodecParameters]:
    """Our telephone-event codecs for an offer, on payload types the others do not use."""
    used = {codec.payloadType for codec in taken}
    free = (pt for pt in range(127, 95, -1) if pt not in used)
    codecs = []
    for clock_rate, payload_type in OFFERED:
        if payload_type in used:
            payload_type = next(free)
        used.add(payload_type)
        codecs.append(telephone_event_codec(clock_rate, payload_type))
    return codecs


def remote_telephone_events(description: str) -> dict[str, list[RTCRtpCodecParameters]]:
    """The telephone-event codecs we support in each audio section (by mid) of a remote SDP.

    Each keeps the remote's payload type. A section without any maps to an empty list.
    """
    try:
        session = sdp.SessionDescription.parse(description)
    except (ValueError, IndexError, KeyError) as exc:
        logger.info("telephone-event: cannot parse the remote description: %s", exc)
        return {}
    found: dict[str, list[RTCRtpCodecParameters]] = {}
    for media in session.media:
        if media.kind != "audio" or media.rtp.muxId is None:
            continue
        found[media.rtp.muxId] = [
            telephone_event_codec(codec.clockRate, codec.payloadType)
            for codec in media.rtp.codecs
            if is_telephone_event(codec)
            and codec.clockRate in CLOCK_RATES
            and codec.payloadType is not None
        ]
    return found


def sending_codec(
    codecs: Sequence[RTCRtpCodecParameters],
) -> RTCRtpCodecParameters | None:
    """The telephone-event codec to send with: the one at the audio codec's clock rate,
    else 8000 Hz, else any (as Chromium chooses)."""
    events = [codec for codec in codecs if is_telephone_event(codec)]
    media = next((codec for codec in codecs if not is_telephone_event(codec)), None)
    for wanted in (media.clockRate if media else None, 8000):
        for codec in events:
            if codec.clockRate == wanted:
                return codec
    return events[0] if events else None


class TelephoneEventTransceiver(RTCRtpTransceiver):
    """aiortc's transceiver whose negotiated codecs always include telephone-event.

    ``telephone_events(transceiver, media_codecs)`` says which telephone-event codecs to
    add (none to leave aiortc's list as it is).
    """

    def __init__(
        self,
        kind: str,
        receiver: RTCRtpReceiver,
        sender: RTCRtpSender,
        direction: str = "sendrecv",
        *,
        telephone_events: TelephoneEventSource,
    ) -> None:
        self._telephone_events = telephone_events
        self._negotiated_codecs: list[RTCRtpCodecParameters] = []
        super().__init__(kind=kind, receiver=receiver, sender=sender, direction=direction)

    @property
    def _codecs(self) -> list[RTCRtpCodecParameters]:
        return self._negotiated_codecs

    @_codecs.setter
    def _codecs(self, codecs: list[RTCRtpCodecParameters]) -> None:
        media = [codec for codec in codecs if not is_telephone_event(codec)]
        if media and self.kind == "audio":
            media += self._telephone_events(self, media)
        self._negotiated_codecs = media
