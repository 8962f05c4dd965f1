"""Run an application that builds aiortc's ``RTCPeerConnection`` itself on the library.

:func:`install` replaces aiortc's class, in ``aiortc``, ``aiortc.rtcpeerconnection`` and every
loaded module that imported the name (a framework's transport, for instance), by
:class:`webrtc_ext.RTCPeerConnection` configured with a default :class:`PeerConnectionConfig`;
:func:`uninstall` (or leaving :func:`installed`) puts aiortc's class back everywhere. See
docs/frameworks.md.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiortc
import aiortc.rtcpeerconnection
from aiortc import RTCConfiguration

from .config import PeerConnectionConfig
from .peerconnection import RTCPeerConnection

logger = logging.getLogger(__name__)

#: aiortc's own class, whatever is installed.
AIORTC_PEER_CONNECTION: type[aiortc.RTCPeerConnection] = aiortc.rtcpeerconnection.RTCPeerConnection

_NAME = "RTCPeerConnection"


@dataclass(frozen=True)
class Installation:
    """What :func:`install` replaced: the class it put in place and where."""

    peer_connection_class: type[RTCPeerConnection]
    """The class modules now hold: a :class:`webrtc_ext.RTCPeerConnection` subclass."""

    config: PeerConnectionConfig
    """The default configuration of every connection it builds."""

    app_ice_servers: bool
    """Whether servers the application names replace ``config.ice_servers``."""


_installed: Installation | None = None


def merged_config(
    default: PeerConnectionConfig,
    requested: PeerConnectionConfig | RTCConfiguration | None,
    *,
    app_ice_servers: bool = True,
) -> PeerConnectionConfig:
    """The configuration of a connection an application asked for with ``requested``.

    A :class:`PeerConnectionConfig` is taken as it is. From aiortc's
    :class:`~aiortc.RTCConfiguration` the bundle policy, ICE transport policy and
    ``alwaysNegotiateDataChannels`` are taken, and its ``iceServers`` when it names any and
    ``app_ice_servers`` is true; everything else (host addresses, port range, nomination, DTLS,
    TURN servers otherwise) comes from ``default``. aiortc's ``None`` (its public STUN server)
    never reaches the network: it means the default's servers.
    """
    if isinstance(requested, PeerConnectionConfig):
        return requested
    if requested is None:
        return default
    if not isinstance(requested, RTCConfiguration):
        raise TypeError(
            "configuration must be a PeerConnectionConfig or an aiortc RTCConfiguration, "
            f"not {type(requested).__name__}"
        )
    changes: dict[str, Any] = {
        "bundle_policy": requested.bundlePolicy,
        "ice_transport_policy": requested.iceTransportPolicy,
        "always_negotiate_data_channels": requested.alwaysNegotiateDataChannels,
    }
    if app_ice_servers and requested.iceServers:
        changes["ice_servers"] = tuple(requested.iceServers)
    return default.with_changes(**changes)


def _configured_class(default: PeerConnectionConfig, app_ice_servers: bool) -> type[Any]:
    class InstalledRTCPeerConnection(RTCPeerConnection):
        def __init__(
            self, configuration: PeerConnectionConfig | RTCConfiguration | None = None
        ) -> None:
            super().__init__(merged_config(default, configuration, app_ice_servers=app_ice_servers))

    InstalledRTCPeerConnection.__doc__ = (
        f"webrtc_ext.RTCPeerConnection installed in aiortc's place, defaults: {default!r}"
    )
    return InstalledRTCPeerConnection


def _modules_holding(cls: type[Any]) -> list[str]:
    holders = []
    for name, module in list(sys.modules.items()):
        namespace = getattr(module, "__dict__", None)
        if isinstance(namespace, dict) and namespace.get(_NAME) is cls:
            holders.append(name)
    return holders


def install(
    config: PeerConnectionConfig | None = None, *, app_ice_servers: bool = True
) -> Installation:
    """Put :class:`webrtc_ext.RTCPeerConnection` with default ``config`` in aiortc's place.

    Every loaded module whose ``RTCPeerConnection`` is aiortc's class gets the library's
    instead, and so does any module importing it from ``aiortc`` later. Each connection then
    takes its configuration from :func:`merged_config`. Raises :class:`RuntimeError` when
    already installed.
    """
    global _installed
    if _installed is not None:
        raise RuntimeError("webrtc_ext is already installed in aiortc's place; uninstall() first")
    config = config if config is not None else PeerConnectionConfig()
    installation = Installation(_configured_class(config, app_ice_servers), config, app_ice_servers)
    holders = _modules_holding(AIORTC_PEER_CONNECTION)
    for name in holders:
        setattr(sys.modules[name], _NAME, installation.peer_connection_class)
    _installed = installation
    logger.info("webrtc_ext.RTCPeerConnection installed in %d modules", len(holders))
    return installation


def uninstall() -> None:
    """Put aiortc's own ``RTCPeerConnection`` back in every module holding the installed one."""
    global _installed
    if _installed is None:
        return
    for name in _modules_holding(_installed.peer_connection_class):
        setattr(sys.modules[name], _NAME, AIORTC_PEER_CONNECTION)
    _installed = None


def current() -> Installation | None:
    """The active installation, if any."""
    return _installed


@contextlib.contextmanager
def installed(
    config: PeerConnectionConfig | None = None, *, app_ice_servers: bool = True
) -> Iterator[Installation]:
    """:func:`install` for the duration of a ``with`` block, then :func:`uninstall`."""
    installation = install(config, app_ice_servers=app_ice_servers)
    try:
        yield installation
    finally:
        uninstall()
