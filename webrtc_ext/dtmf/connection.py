"""The peer-connection side of DTMF: codec negotiation per transceiver and the ``dtmf`` event."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import aiortc
from aiortc import RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from .._deprecated import renamed
from .negotiation import offered_codecs, remote_telephone_events
from .receiver import DtmfReceiverMixin
from .rfc4733 import TelephoneEvent


class DtmfPeerConnectionMixin(aiortc.RTCPeerConnection):
    """Negotiates telephone-event when ``config.dtmf`` is true and re-emits key presses.

    The connection emits ``dtmf`` with a :class:`TelephoneEvent` (its ``mid`` names the
    transceiver) for every key press received; :meth:`dtmf_events` iterates over them.
    """

    _dtmf_enabled = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._remote_telephone_events: dict[str, list[RTCRtpCodecParameters]] = {}
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def _telephone_event_codecs(
        self, transceiver: RTCRtpTransceiver, media: Sequence[RTCRtpCodecParameters]
    ) -> list[RTCRtpCodecParameters]:
        """What :class:`TelephoneEventTransceiver` appends to aiortc's negotiated codecs."""
        if not self._dtmf_enabled:
            return []
        if transceiver.mid is not None and transceiver.mid in self._remote_telephone_events:
            # Answering, or applying the answer: exactly what the remote offered/accepted,
            # with its payload types.
            return list(self._remote_telephone_events[transceiver.mid])
        return offered_codecs(media)

    def _note_remote_description(self, sdp: str) -> None:
        """Remember the telephone-event codecs of a remote description before aiortc applies it."""
        self._remote_telephone_events.update(remote_telephone_events(sdp))

    def _wire_dtmf_receiver(self, receiver: DtmfReceiverMixin) -> None:
        receiver.dtmf.on("dtmf", lambda event: self.emit("dtmf", event))

    def dtmf_events(self, transceiver: RTCRtpTransceiver) -> AsyncIterator[TelephoneEvent]:
        """The key presses received on ``transceiver`` from now on, until it stops.

        ``async for event in pc.dtmf_events(transceiver): ...``
        """
        receiver = transceiver.receiver
        if not isinstance(receiver, DtmfReceiverMixin):
            raise TypeError("this transceiver was not created by webrtc_ext")
        return receiver.dtmf.events()

    dtmfEvents = renamed("dtmf_events")
