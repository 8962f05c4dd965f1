"""webrtc_ext.install / installed / uninstall: aiortc's class swapped and restored exactly."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import aiortc
import aiortc.rtcpeerconnection
import pytest
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer

import webrtc_ext
from webrtc_ext import NominationMode, PeerConnectionConfig
from webrtc_ext.substitution import AIORTC_PEER_CONNECTION, merged_config

DEFAULT = PeerConnectionConfig(
    host_addresses=["127.0.0.1"],
    port_range=(41000, 41099),
    nomination="regular",
    ice_servers=(RTCIceServer(urls="turn:127.0.0.1:3478", username="u", credential="p"),),
)


@pytest.fixture
def app_module() -> Iterator[types.ModuleType]:
    """A module that did ``from aiortc import RTCPeerConnection`` before the installation."""
    module = types.ModuleType("an_app_using_aiortc")
    module.RTCPeerConnection = aiortc.RTCPeerConnection  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]
    webrtc_ext.uninstall()


def holders() -> tuple[object, object, object]:
    return (
        aiortc.RTCPeerConnection,
        aiortc.rtcpeerconnection.RTCPeerConnection,
        sys.modules["an_app_using_aiortc"].RTCPeerConnection,
    )


async def test_installed_swaps_every_holder_and_restores_it(app_module: types.ModuleType) -> None:
    with webrtc_ext.installed(DEFAULT) as installation:
        cls = installation.peer_connection_class
        assert holders() == (cls, cls, cls)
        pc = app_module.RTCPeerConnection()
        assert isinstance(pc, webrtc_ext.RTCPeerConnection)
        assert pc.config.port_range == (41000, 41099)
        assert pc.config.nomination is NominationMode.REGULAR
        await pc.close()
    assert holders() == (AIORTC_PEER_CONNECTION,) * 3
    assert webrtc_ext.substitution.current() is None
    assert type(app_module.RTCPeerConnection()) is AIORTC_PEER_CONNECTION


def test_restored_when_the_block_raises(app_module: types.ModuleType) -> None:
    with pytest.raises(ZeroDivisionError), webrtc_ext.installed(DEFAULT):
        1 / 0  # noqa: B018
    assert holders() == (AIORTC_PEER_CONNECTION,) * 3


def test_module_imported_while_installed_gets_aiortc_back(app_module: types.ModuleType) -> None:
    installation = webrtc_ext.install(DEFAULT)
    late = types.ModuleType("imported_while_installed")
    late.RTCPeerConnection = aiortc.RTCPeerConnection  # type: ignore[attr-defined]
    sys.modules[late.__name__] = late
    try:
        assert late.RTCPeerConnection is installation.peer_connection_class
        webrtc_ext.uninstall()
        assert late.RTCPeerConnection is AIORTC_PEER_CONNECTION
    finally:
        del sys.modules[late.__name__]


def test_second_install_is_refused_and_uninstall_is_idempotent(
    app_module: types.ModuleType,
) -> None:
    webrtc_ext.install(DEFAULT)
    with pytest.raises(RuntimeError, match="already installed"):
        webrtc_ext.install()
    webrtc_ext.uninstall()
    webrtc_ext.uninstall()
    assert holders() == (AIORTC_PEER_CONNECTION,) * 3


def test_modules_holding_the_library_class_are_left_alone() -> None:
    with webrtc_ext.installed(DEFAULT):
        assert webrtc_ext.RTCPeerConnection is webrtc_ext.peerconnection.RTCPeerConnection
    assert webrtc_ext.RTCPeerConnection is webrtc_ext.peerconnection.RTCPeerConnection


def test_aiortc_configuration_keeps_the_apps_policies_and_the_defaults_network() -> None:
    app = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    config = merged_config(DEFAULT, app)
    assert config.bundle_policy is RTCBundlePolicy.MAX_BUNDLE
    assert config.ice_servers == DEFAULT.ice_servers  # empty list: the default's servers
    assert config.host_addresses == ["127.0.0.1"]
    assert config.port_range == (41000, 41099)


def test_app_ice_servers_replace_the_defaults_unless_told_otherwise() -> None:
    stun = RTCIceServer(urls="stun:127.0.0.1:3478")
    app = RTCConfiguration(iceServers=[stun])
    assert merged_config(DEFAULT, app).ice_servers == (stun,)
    assert merged_config(DEFAULT, app, app_ice_servers=False).ice_servers == DEFAULT.ice_servers
    # aiortc's None (its public STUN server) never reaches the network.
    assert merged_config(DEFAULT, RTCConfiguration()).ice_servers == DEFAULT.ice_servers


def test_a_library_config_is_taken_as_it_is() -> None:
    own = PeerConnectionConfig(nomination="aggressive")
    assert merged_config(DEFAULT, own) is own
    assert merged_config(DEFAULT, None) is DEFAULT
    with pytest.raises(TypeError, match="PeerConnectionConfig or an aiortc RTCConfiguration"):
        merged_config(DEFAULT, {"iceServers": []})  # type: ignore[arg-type]
