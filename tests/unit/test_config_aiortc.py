"""aiortc's RTCConfiguration fields survive the trip through PeerConnectionConfig."""

from aiortc import RTCConfiguration
from aiortc.sdp import SessionDescription

from webrtc_ext import PeerConnectionConfig, RTCPeerConnection


def test_always_negotiate_data_channels_is_kept() -> None:
    config = PeerConnectionConfig.from_any(RTCConfiguration(alwaysNegotiateDataChannels=True))
    assert config.always_negotiate_data_channels
    assert config.to_aiortc().alwaysNegotiateDataChannels


async def test_always_negotiate_data_channels_adds_an_application_section() -> None:
    pc = RTCPeerConnection(RTCConfiguration(alwaysNegotiateDataChannels=True))
    try:
        pc.addTransceiver("audio")
        offer = await pc.createOffer()
        kinds = [media.kind for media in SessionDescription.parse(offer.sdp).media]
        assert sorted(kinds) == ["application", "audio"]
    finally:
        await pc.close()
