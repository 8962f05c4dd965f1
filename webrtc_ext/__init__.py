"""webrtc_ext: aiortc and aioice extended for real-time voice applications.

Change one import and keep aiortc's whole API::

    from webrtc_ext import RTCPeerConnection, PeerConnectionConfig
"""

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceCandidate,
    RTCIceServer,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy, RTCIceTransportPolicy

from .certificates import CertificateError, RTCCertificate
from .composed import RtpReceiver, RtpSender
from .config import ConfigurationError, NominationMode, PeerConnectionConfig
from .dtmf import (
    InvalidCharacterError,
    RTCDTMFSender,
    RTCDTMFToneChangeEvent,
    TelephoneEvent,
    TelephoneEventDecoder,
)
from .ice import CandidatePairInfo, IceGatheringError
from .munger import RtpMunger
from .peerconnection import RTCPeerConnection
from .rawrtp import RtpFanOut
from .rtcdtlstransport import DtlsCounters, RTCDtlsError, RTCDtlsTransport
from .rtcicetransport import IceGatherer, IceTransport, RTCIceCandidatePair
from .rtp import RawRtpPacket
from .substitution import Installation, install, installed, uninstall

__version__ = "0.1.0"

__all__ = [
    "CandidatePairInfo",
    "CertificateError",
    "ConfigurationError",
    "DtlsCounters",
    "IceGatherer",
    "IceGatheringError",
    "IceTransport",
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
    "RTCIceServer",
    "RTCIceTransportPolicy",
    "RTCPeerConnection",
    "RTCRtpSender",
    "RTCSessionDescription",
    "RawRtpPacket",
    "RtpFanOut",
    "RtpMunger",
    "RtpReceiver",
    "RtpSender",
    "TelephoneEvent",
    "TelephoneEventDecoder",
    "install",
    "installed",
    "uninstall",
]
