"""The one place that names aiortc's and aioice's private members.

webrtc_ext pins aiortc and aioice exactly because it reaches into them. Every private name it
relies on is listed here, and ``tests/unit/test_internals.py`` fails loudly when an upgrade
moves one of them. ``docs/internals.md`` explains why each is needed.
"""

from __future__ import annotations

from typing import Any

import aioice.ice
import aiortc

#: aiortc.RTCPeerConnection private members read or replaced (name-mangled ``__name``).
PEER_CONNECTION_PRIVATE = (
    "certificates",
    "createDtlsTransport",
    "createTransceiver",
    "dtlsTransports",
    "iceTransports",
    "sctp",
    "stream_id",
    "transceivers",
    "updateConnectionState",
    "updateIceConnectionState",
    "updateIceGatheringState",
)

#: aioice.Connection methods that webrtc_ext.ice.IceConnection overrides or calls.
ICE_CONNECTION_MEMBERS = (
    "_check_list_maybe_complete",
    "_check_list_maybe_fail",
    "_find_pair",
    "_pair_remote_candidate",
    "_remote_candidates_expected",
    "_unfreeze_initial",
    "add_remote_candidate",
    "build_request",
    "check_complete",
    "check_incoming",
    "check_start",
    "check_start_task",
    "check_state",
    "close",
    "connect",
    "gather_candidates",
    "get_component_candidates",
    "query_consent",
    "request_received",
    "sort_check_list",
    "switch_role",
)

#: aioice.Connection instance attributes that IceConnection reads or writes.
ICE_CONNECTION_ATTRIBUTES = (
    "_check_list",
    "_check_list_done",
    "_check_list_state",
    "_closing",
    "_components",
    "_early_checks",
    "_early_checks_done",
    "_local_candidates",
    "_local_candidates_end",
    "_local_candidates_start",
    "_nominated",
    "_nominating",
    "_protocols",
    "_query_consent_task",
    "_remote_candidates",
    "_transport_policy",
    "_use_ipv4",
    "_use_ipv6",
)


#: aiortc.RTCIceGatherer / RTCIceTransport instance attributes that webrtc_ext replaces or reads.
ICE_TRANSPORT_ATTRIBUTES = ("_connection",)


def pc_private(pc: aiortc.RTCPeerConnection, name: str) -> Any:
    """Read aiortc's private ``RTCPeerConnection.__<name>`` member."""
    assert name in PEER_CONNECTION_PRIVATE, name
    return getattr(pc, "_RTCPeerConnection__" + name)


def missing_internals() -> list[str]:
    """The private members listed here that the installed aiortc/aioice no longer have."""
    missing = []
    for name in PEER_CONNECTION_PRIVATE:
        if name.startswith(("create", "update")) and not hasattr(
            aiortc.RTCPeerConnection, "_RTCPeerConnection__" + name
        ):
            missing.append(f"aiortc.RTCPeerConnection.__{name}")
    for name in ICE_CONNECTION_MEMBERS:
        if not hasattr(aioice.ice.Connection, name):
            missing.append(f"aioice.Connection.{name}")
    probe = aioice.ice.Connection(ice_controlling=True)
    for name in ICE_CONNECTION_ATTRIBUTES:
        if not hasattr(probe, name):
            missing.append(f"aioice.Connection().{name}")
    gatherer = aiortc.RTCIceGatherer(iceServers=[])
    transport = aiortc.RTCIceTransport(gatherer)
    for name in ICE_TRANSPORT_ATTRIBUTES:
        for owner in (gatherer, transport):
            if not hasattr(owner, name):
                missing.append(f"aiortc.{type(owner).__name__}().{name}")
    pc = aiortc.RTCPeerConnection()
    for name in PEER_CONNECTION_PRIVATE:
        if not hasattr(pc, "_RTCPeerConnection__" + name):
            missing.append(f"aiortc.RTCPeerConnection().__{name}")
    return missing
