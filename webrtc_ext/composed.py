"""The sender, receiver and DTLS transport the peer connection builds: every capability at once.

Each capability subclasses the same aiortc class as a mixin; the classes here put them
together, so one sender both forwards raw RTP and sends DTMF in the same sequence space,
one receiver both delivers raw RTP and decodes DTMF (and decodes audio only for a track that
is read), and one transport both packs DTLS to
the MTU and takes the SRTP fast path.
"""

from __future__ import annotations

from .dtmf.receiver import DtmfReceiverMixin
from .dtmf.sender import DtmfSenderMixin
from .lazydecode import LazyDecoderReceiverMixin
from .rawrtp import RawRtpReceiverMixin, RawRtpSenderMixin, RtpFastPathMixin
from .rtcdtlstransport import RTCDtlsTransport
from .rtcpreports import RtcpIntervalReceiverMixin


class RtpSender(DtmfSenderMixin, RawRtpSenderMixin):
    """aiortc's ``RTCRtpSender`` with raw RTP sending, DTMF and one owned sequence space."""


class RtpReceiver(
    DtmfReceiverMixin, RawRtpReceiverMixin, LazyDecoderReceiverMixin, RtcpIntervalReceiverMixin
):
    """aiortc's ``RTCRtpReceiver`` with raw RTP access, DTMF reception, a decoder that
    runs only once the track is read, and receiver reports at ``rtcp_interval``."""


class DtlsTransport(RtpFastPathMixin, RTCDtlsTransport):
    """webrtc_ext's ``RTCDtlsTransport`` (MTU packing, fingerprints) with the SRTP fast path."""
