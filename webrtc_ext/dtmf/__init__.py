"""DTMF over RTP (RFC 4733): negotiation, a loss-proof decoder, and the W3C RTCDTMFSender."""

from .receiver import DtmfReceiver, DtmfReceiverMixin
from .rfc4733 import TelephoneEvent, TelephoneEventDecoder, TelephoneEventPayload
from .sender import DtmfSenderMixin, InvalidCharacterError, RTCDTMFSender, RTCDTMFToneChangeEvent
from .tones import TonePlayer

__all__ = [
    "DtmfReceiver",
    "DtmfReceiverMixin",
    "DtmfSenderMixin",
    "InvalidCharacterError",
    "RTCDTMFSender",
    "RTCDTMFToneChangeEvent",
    "TelephoneEvent",
    "TelephoneEventDecoder",
    "TelephoneEventPayload",
    "TonePlayer",
]
