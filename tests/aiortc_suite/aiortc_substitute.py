"""Pytest plugin: run aiortc's own test suite with webrtc_ext's classes in place of aiortc's.

Loaded with ``-p aiortc_substitute`` by ``test_aiortc_suite.py`` in a separate pytest process.
Before any test module is imported it replaces, in ``aiortc`` and its submodules:

- ``RTCPeerConnection`` by a :class:`webrtc_ext.RTCPeerConnection` gathering on loopback only;
- ``RTCIceGatherer`` / ``RTCIceTransport`` by :class:`webrtc_ext.RTCIceGatherer` /
  :class:`webrtc_ext.RTCIceTransport` with aiortc's constructor signatures, gathering on loopback.

It also guards the rule that tests talk only to loopback: a datagram to any other address, or
a name lookup of anything but an IP literal or ``localhost``, is refused and recorded in the
report written to ``$AIORTC_SUITE_REPORT`` (the wrapper asserts there are none). The report also
lists the failed tests and which test modules hold the substitutes.
"""

from __future__ import annotations

import asyncio.selector_events
import ipaddress
import json
import os
import socket
import sys
from typing import Any

import aiortc
import aiortc.rtcicetransport
import aiortc.rtcpeerconnection
import pytest
from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy

import webrtc_ext
from webrtc_ext import PeerConnectionConfig

LOOPBACK_HOSTS = ("127.0.0.1",)

ORIGINALS = {
    "RTCPeerConnection": aiortc.RTCPeerConnection,
    "RTCIceGatherer": aiortc.RTCIceGatherer,
    "RTCIceTransport": aiortc.RTCIceTransport,
}


class RTCPeerConnection(webrtc_ext.RTCPeerConnection):
    """webrtc_ext's peer connection, gathering on loopback whatever the configuration says."""

    def __init__(self, configuration: RTCConfiguration | PeerConnectionConfig | None = None):
        config = PeerConnectionConfig.from_any(configuration)
        super().__init__(config.with_changes(host_addresses=LOOPBACK_HOSTS))


class RTCIceGatherer(webrtc_ext.RTCIceGatherer):
    """webrtc_ext's gatherer with aiortc's constructor, gathering on loopback."""

    def __init__(
        self,
        iceServers: list[RTCIceServer] | None = None,
        iceTransportPolicy: RTCIceTransportPolicy = RTCIceTransportPolicy.ALL,
        local_username: str | None = None,
        local_password: str | None = None,
    ) -> None:
        config = PeerConnectionConfig(
            ice_servers=tuple(iceServers or ()),
            ice_transport_policy=iceTransportPolicy,
            host_addresses=LOOPBACK_HOSTS,
        )
        super().__init__(config, local_username=local_username, local_password=local_password)


class RTCIceTransport(webrtc_ext.RTCIceTransport):
    """webrtc_ext's ICE transport with aiortc's constructor."""

    def __init__(self, gatherer: RTCIceGatherer) -> None:
        super().__init__(gatherer)


SUBSTITUTES: dict[str, type] = {
    "RTCPeerConnection": RTCPeerConnection,
    "RTCIceGatherer": RTCIceGatherer,
    "RTCIceTransport": RTCIceTransport,
}


def _substitute_in(namespace: Any) -> None:
    for name, original in ORIGINALS.items():
        if getattr(namespace, name, None) is original:
            setattr(namespace, name, SUBSTITUTES[name])


for _module in (aiortc, aiortc.rtcpeerconnection, aiortc.rtcicetransport):
    _substitute_in(_module)


# -- loopback guard -------------------------------------------------------------------------

violations: list[str] = []


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


_sendto = asyncio.selector_events._SelectorDatagramTransport.sendto


def _guarded_sendto(self: Any, data: Any, addr: Any = None) -> None:
    target = addr if addr is not None else self._address
    if target is not None and not _is_loopback(str(target[0])):
        violations.append(f"datagram to {target[0]}")
        return
    _sendto(self, data, addr)


_getaddrinfo = socket.getaddrinfo


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None:
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(name.split("%")[0])
        except ValueError:
            if name != "localhost":
                violations.append(f"name lookup of {name}")
                raise socket.gaierror(socket.EAI_NONAME, "lookups are off in this suite") from None
    return _getaddrinfo(host, *args, **kwargs)


asyncio.selector_events._SelectorDatagramTransport.sendto = _guarded_sendto  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Also replace names a test module imported before this plugin ran (belt and braces)."""
    for module in {item.module for item in items if isinstance(item, pytest.Function)}:
        _substitute_in(module)
    for name, module in list(sys.modules.items()):
        if name.startswith("tests") and module is not None:
            _substitute_in(module)


failed: list[str] = []
passed: set[str] = set()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Record each test's outcome (a failure in setup or teardown counts)."""
    if report.failed and report.nodeid not in failed:
        failed.append(report.nodeid)
    elif report.passed and report.when == "call":
        passed.add(report.nodeid)


def _substituted() -> dict[str, list[str]]:
    return {
        name: sorted(n for n, cls in SUBSTITUTES.items() if getattr(module, n, None) is cls)
        for name, module in sys.modules.items()
        if name.startswith("tests.") and module is not None
    }


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the report the wrapper checks."""
    path = os.environ.get("AIORTC_SUITE_REPORT")
    if path:
        report = {
            "failed": failed,
            "passed": len(passed - set(failed)),
            "violations": sorted(set(violations)),
            "substituted": _substituted(),
        }
        with open(path, "w") as out:
            json.dump(report, out, indent=1)
