"""webrtc_ext: aiortc and aioice extended for real-time voice applications.

Change one import and keep aiortc's whole API::

    from webrtc_ext import RTCPeerConnection, PeerConnectionConfig
"""

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceServer,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy, RTCIceTransportPolicy

from .config import ConfigurationError, NominationMode, PeerConnectionConfig
from .ice import CandidatePairInfo, IceGatheringError
from .munger import RtpMunger
from .peerconnection import RTCPeerConnection
from .rawrtp import RtpFanOut, RtpReceiver, RtpSender
from .rtcicetransport import IceGatherer, IceTransport, RTCIceCandidatePair
from .rtp import RawRtpPacket

__version__ = "0.1.0"

__all__ = [
    "CandidatePairInfo",
    "ConfigurationError",
    "IceGatherer",
    "IceGatheringError",
    "IceTransport",
    "MediaStreamTrack",
    "NominationMode",
    "PeerConnectionConfig",
    "RTCBundlePolicy",
    "RTCConfiguration",
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
]
