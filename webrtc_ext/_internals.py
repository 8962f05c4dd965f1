"""The one place that names aiortc's and aioice's private members.

webrtc_ext pins aiortc and aioice exactly because it reaches into them. Every private name it
relies on is listed here, and ``tests/unit/test_internals.py`` fails loudly when an upgrade
moves one of them. ``docs/internals.md`` explains why each is needed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
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
    "build_request",
    "check_complete",
    "check_incoming",
    "check_start",
    "check_start_task",
    "check_state",
    "connect",
    "gather_candidates",
    "get_component_candidates",
    "query_consent",
    "request_received",
    "sort_check_list",
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


#: Private members of other aiortc objects read or wrapped by webrtc_ext.stats.
RTP_RECEIVER_PRIVATE = ("remote_streams", "rtx_ssrc")
STATS_ATTRIBUTES = {
    "RTCDtlsTransport": ("_send_rtp", "_handle_rtp_data", "_handle_rtcp_data", "_get_stats"),
    "RTCDtlsTransport()": ("_role", "_ssl"),
    "RTCRtpSender()": ("_ssrc", "_rtx_ssrc"),
    "RTCRtpTransceiver()": ("_codecs",),
    "RTCCertificate()": ("_cert",),
    "StreamStatistics()": ("jitter",),
}


def receiver_private(receiver: aiortc.RTCRtpReceiver, name: str) -> Any:
    """Read aiortc's private ``RTCRtpReceiver.__<name>`` member."""
    assert name in RTP_RECEIVER_PRIVATE, name
    return getattr(receiver, "_RTCRtpReceiver__" + name)


def _missing_stats_internals() -> list[str]:
    from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport
    from aiortc.rtcrtpreceiver import StreamStatistics

    certificate = aiortc.RTCCertificate.generateCertificate()
    dtls = aiortc.RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [certificate])
    receiver = aiortc.RTCRtpReceiver("audio", dtls)

    async def make_sender() -> aiortc.RTCRtpSender:
        return aiortc.RTCRtpSender("audio", dtls)

    # RTCRtpSender wants an event loop: build it in a thread of its own, whatever the caller.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        sender = pool.submit(asyncio.run, make_sender()).result()
    probes: dict[str, object] = {
        "RTCDtlsTransport": aiortc.RTCDtlsTransport,
        "RTCDtlsTransport()": dtls,
        "RTCRtpSender()": sender,
        "RTCRtpTransceiver()": aiortc.RTCRtpTransceiver("audio", receiver, sender),
        "RTCCertificate()": certificate,
        "StreamStatistics()": StreamStatistics(48000),
    }
    missing = [
        f"aiortc.{owner}.{name}"
        for owner, names in STATS_ATTRIBUTES.items()
        for name in names
        if not hasattr(probes[owner], name)
    ]
    for name in RTP_RECEIVER_PRIVATE:
        if not hasattr(receiver, "_RTCRtpReceiver__" + name):
            missing.append(f"aiortc.RTCRtpReceiver().__{name}")
    return missing


def ice_transport_set_state(transport: aiortc.RTCIceTransport, state: str) -> None:
    """Call aiortc's private ``RTCIceTransport.__setState`` (emits ``statechange``)."""
    transport._RTCIceTransport__setState(state)  # type: ignore[attr-defined]


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
    if not hasattr(aiortc.RTCIceTransport, "_RTCIceTransport__setState"):
        missing.append("aiortc.RTCIceTransport.__setState")
    for name in ICE_CONNECTION_MEMBERS:
        if not hasattr(aioice.ice.Connection, name):
            missing.append(f"aioice.Connection.{name}")
    probe = aioice.ice.Connection(ice_controlling=True)
    for name in ICE_CONNECTION_ATTRIBUTES:
        if not hasattr(probe, name):
            missing.append(f"aioice.Connection().{name}")
    pc = aiortc.RTCPeerConnection()
    for name in PEER_CONNECTION_PRIVATE:
        if not hasattr(pc, "_RTCPeerConnection__" + name):
            missing.append(f"aiortc.RTCPeerConnection().__{name}")
    return missing + _missing_stats_internals()
