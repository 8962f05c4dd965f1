"""The sender, receiver and DTLS transport the peer connection builds: every capability at once.

Each capability subclasses the same aiortc class as a mixin; the classes here put them
together, so one sender both forwards raw RTP and sends DTMF in the same sequence space,
one receiver both delivers raw RTP and decodes DTMF, and one transport both packs DTLS to
the MTU and takes the SRTP fast path.
"""

from __future__ import annotations

from .dtmf.receiver import DtmfReceiverMixin
from .dtmf.sender import DtmfSenderMixin
from .rawrtp import RawRtpReceiverMixin, RawRtpSenderMixin, RtpFastPathMixin
from .rtcdtlstransport import RTCDtlsTransport


class RtpSender(DtmfSenderMixin, RawRtpSenderMixin):
    """aiortc's ``RTCRtpSender`` with raw RTP sending, DTMF and one owned sequence space."""


class RtpReceiver(DtmfReceiverMixin, RawRtpReceiverMixin):
    """aiortc's ``RTCRtpReceiver`` with raw RTP access and DTMF reception."""


class DtlsTransport(RtpFastPathMixin, RTCDtlsTransport):
    """webrtc_ext's ``RTCDtlsTransport`` (MTU packing, fingerprints) with the SRTP fast path."""
