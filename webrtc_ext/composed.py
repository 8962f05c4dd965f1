"""The sender, receiver and DTLS transport the peer connection builds: every capability at once.

Each capability subclasses the same aiortc class as a mixin; the classes here put them
together, so one sender both forwards raw RTP and sends DTMF in the same sequence space,
one receiver both delivers raw RTP and decodes DTMF (and decodes audio only for a track that
is read), and one transport both packs DTLS to
the MTU and takes the SRTP fast path.
"""

from __future__ import annotations

from ._internals import dtls_counter_names
from ._vendor.aiortc.rtcrtpsender import SENDER_REPORT_MEMBERS
from .dtmf.receiver import DtmfReceiverMixin
from .dtmf.sender import DtmfSenderMixin
from .lazydecode import LazyDecoderReceiverMixin
from .rawrtp import RawRtpReceiverMixin, RawRtpSenderMixin, RtpFastPathMixin
from .rtcdtlstransport import RTCDtlsTransport
from .rtcpreports import RtcpIntervalReceiverMixin


class RtpSender(DtmfSenderMixin, RawRtpSenderMixin):
    """aiortc's ``RTCRtpSender`` with raw RTP sending, DTMF and one owned sequence space."""

    # The members the C path (webrtc_ext._native) reads or writes for every packet, in slots:
    # read at their offsets rather than looked up in the instance dictionary. Everything
    # else stays in the ``__dict__`` the bases keep.
    __slots__ = ("_native", "_media_held", "_dtmf", "_munger", "_outbound", *SENDER_REPORT_MEMBERS)


class RtpReceiver(
    DtmfReceiverMixin, RawRtpReceiverMixin, LazyDecoderReceiverMixin, RtcpIntervalReceiverMixin
):
    """aiortc's ``RTCRtpReceiver`` with raw RTP access, DTMF reception, a decoder that
    runs only once the track is read, and receiver reports at ``rtcp_interval``."""

    # Per-packet members of the C receive path, in slots (see RtpSender).
    __slots__ = (
        "_audio_level_id",
        "_enabled",
        "_last_packet",
        "_negotiated_codecs",
        "_raw",
        "_rtp_callbacks",
        "_rtp_queues",
        "_stream_statistics",
        "interceptors",
    )


class DtlsTransport(RtpFastPathMixin, RTCDtlsTransport):
    """webrtc_ext's ``RTCDtlsTransport`` (MTU packing, fingerprints) with the SRTP fast path."""

    # Per-packet members of the C send and receive paths, in slots (see RtpSender).
    __slots__ = ("_state", "_tx_srtp", "_rx_srtp", "_rtp_router", *dtls_counter_names())
