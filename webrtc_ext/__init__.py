"""webrtc_ext: aiortc and aioice extended for real-time voice applications.

Change one import and keep aiortc's whole API::

    from webrtc_ext import RTCPeerConnection, PeerConnectionConfig

Names follow docs/naming.md: a W3C interface's name (``RTC`` prefix, camelCase members) for
what the W3C defines, exported as the class the library actually builds; snake_case for the
library's own extensions.
"""

from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceCandidate,
    RTCIceServer,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy, RTCIceTransportPolicy

from ._deprecated import warn_renamed
from .certificates import CertificateError, RTCCertificate
from .composed import DtlsTransport as RTCDtlsTransport
from .composed import RtpReceiver as RTCRtpReceiver
from .composed import RtpSender as RTCRtpSender
from .config import ConfigurationError, NominationMode, PeerConnectionConfig
from .dtmf import (
    InvalidCharacterError,
    RTCDTMFSender,
    RTCDTMFToneChangeEvent,
    TelephoneEvent,
    TelephoneEventDecoder,
)
from .dtmf.negotiation import TelephoneEventTransceiver as RTCRtpTransceiver
from .ice import CandidatePairInfo, IceGatheringError
from .munger import RtpMunger
from .peerconnection import RTCPeerConnection
from .rawrtp import RtpFanOut
from .rtcdtlstransport import DtlsCounters, RTCDtlsError
from .rtcicetransport import IceGatherer as RTCIceGatherer
from .rtcicetransport import IceTransport as RTCIceTransport
from .rtcicetransport import RTCIceCandidatePair
from .rtp import RawRtpPacket
from .stats.report import RTCStats, RTCStatsReport
from .substitution import Installation, install, installed, uninstall

#: Names before docs/naming.md, still importable with a DeprecationWarning.
_RENAMED = {
    "IceGatherer": "RTCIceGatherer",
    "IceTransport": "RTCIceTransport",
    "RtpReceiver": "RTCRtpReceiver",
    "RtpSender": "RTCRtpSender",
}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        warn_renamed(f"webrtc_ext.{name}", f"webrtc_ext.{_RENAMED[name]}")
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module 'webrtc_ext' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "CandidatePairInfo",
    "CertificateError",
    "ConfigurationError",
    "DtlsCounters",
    "IceGatheringError",
    "Installation",
    "InvalidCharacterError",
    "MediaStreamTrack",
    "NominationMode",
    "PeerConnectionConfig",
    "RTCBundlePolicy",
    "RTCCertificate",
    "RTCConfiguration",
    "RTCDTMFSender",
    "RTCDTMFToneChangeEvent",
    "RTCDataChannel",
    "RTCDtlsError",
    "RTCDtlsTransport",
    "RTCIceCandidate",
    "RTCIceCandidatePair",
    "RTCIceGatherer",
    "RTCIceServer",
    "RTCIceTransport",
    "RTCIceTransportPolicy",
    "RTCPeerConnection",
    "RTCRtpReceiver",
    "RTCRtpSender",
    "RTCRtpTransceiver",
    "RTCSessionDescription",
    "RTCStats",
    "RTCStatsReport",
    "RawRtpPacket",
    "RtpFanOut",
    "RtpMunger",
    "TelephoneEvent",
    "TelephoneEventDecoder",
    "install",
    "installed",
    "uninstall",
]
