import pytest
from aiortc import RTCConfiguration, RTCIceServer

from webrtc_ext import ConfigurationError, NominationMode, PeerConnectionConfig, RTCPeerConnection


def test_default_has_no_stun_server_and_aggressive_nomination() -> None:
    config = PeerConnectionConfig()
    assert list(config.ice_servers) == []
    assert config.to_aiortc().iceServers == []  # not None: None means Google's STUN in aiortc
    assert config.nomination is NominationMode.AGGRESSIVE
    assert config.dtls_mtu == 1200


def test_nomination_accepts_strings() -> None:
    assert PeerConnectionConfig(nomination="regular").nomination is NominationMode.REGULAR  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="aggressive"):
        PeerConnectionConfig(nomination="eager")  # type: ignore[arg-type]


@pytest.mark.parametrize("port_range", [(0, 10), (5000, 4000), (1, 70000)])
def test_bad_port_range_is_refused(port_range: tuple[int, int]) -> None:
    with pytest.raises(ConfigurationError, match="port_range"):
        PeerConnectionConfig(port_range=port_range)


def test_bad_mtu_and_unknown_change_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="dtls_mtu"):
        PeerConnectionConfig(dtls_mtu=100)
    with pytest.raises(ConfigurationError, match="unknown"):
        PeerConnectionConfig().with_changes(mtu=1200)


def test_aiortc_configuration_is_accepted() -> None:
    server = RTCIceServer("turn:turn.example.org", username="u", credential="p")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[server]))
    assert list(pc.config.ice_servers) == [server]
    with pytest.raises(TypeError):
        PeerConnectionConfig.from_any("stun:example.org")  # type: ignore[arg-type]


def test_fingerprint_algorithms_default_to_all_three_and_are_validated() -> None:
    assert PeerConnectionConfig().fingerprint_algorithms == ("sha-256", "sha-384", "sha-512")
    assert PeerConnectionConfig(fingerprint_algorithms=["SHA-512"]).fingerprint_algorithms == (
        "sha-512",
    )
    for bad in ((), ("md5",), ("sha-256", "sha-256")):
        with pytest.raises(ConfigurationError, match="fingerprint_algorithms"):
            PeerConnectionConfig(fingerprint_algorithms=bad)
