"""The one place that names aiortc's and aioice's private members.

webrtc_ext pins aiortc and aioice exactly because it reaches into them. Every private name it
relies on is listed here, and ``tests/unit/test_internals.py`` fails loudly when an upgrade
moves one of them. ``docs/internals.md`` explains why each is needed.
"""

from __future__ import annotations

import asyncio
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


#: Name-mangled private attributes the raw RTP path (webrtc_ext.rawrtp) reads or writes,
#: per aiortc class: ``_RTCRtpSender__<name>`` and so on.
RTP_PRIVATE = {
    "RTCRtpSender": (
        "ntp_timestamp",
        "octet_count",
        "packet_count",
        "rtp_exited",
        "rtp_started",
        "rtp_timestamp",
        "rtx_payload_type",
        "rtx_sequence_number",
    ),
    "RTCRtpReceiver": ("codecs", "remote_streams"),
    "RTCDtlsTransport": ("rx_bytes", "rx_packets", "tx_bytes", "tx_packets"),
}

#: Single-underscore aiortc members the raw RTP path uses or overrides, per class.
RTP_MEMBERS = {
    "RTCRtpSender": ("_next_encoded_frame", "_retransmit", "_run_rtp", "_ssrc", "_rtx_ssrc"),
    "RTCRtpReceiver": ("_RTCRtpReceiver__stop_decoder", "_enabled", "_handle_rtp_packet"),
    "RTCDtlsTransport": ("_rtp_router", "_rx_srtp", "_state", "_tx_srtp"),
}


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
    pc = aiortc.RTCPeerConnection()
    for name in PEER_CONNECTION_PRIVATE:
        if not hasattr(pc, "_RTCPeerConnection__" + name):
            missing.append(f"aiortc.RTCPeerConnection().__{name}")
    return missing + _missing_rtp_internals()


def _missing_rtp_internals() -> list[str]:
    # aiortc's sender asks for the current event loop when it is built.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return _probe_rtp_internals()
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _probe_rtp_internals() -> list[str]:
    from aiortc.rtcdtlstransport import RTCCertificate, RtpRouter
    from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport

    dtls = aiortc.RTCDtlsTransport(
        RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()]
    )
    probes = {
        "RTCRtpSender": aiortc.RTCRtpSender("audio", dtls),
        "RTCRtpReceiver": aiortc.RTCRtpReceiver("audio", dtls),
        "RTCDtlsTransport": dtls,
    }
    missing = []
    for cls, probe in probes.items():
        for name in RTP_PRIVATE[cls]:
            if not hasattr(probe, f"_{cls}__{name}"):
                missing.append(f"aiortc.{cls}().__{name}")
        for name in RTP_MEMBERS[cls]:
            if not hasattr(probe, name):
                missing.append(f"aiortc.{cls}().{name}")
    for name in ("ssrc_table", "route_rtp"):
        if not hasattr(RtpRouter(), name):
            missing.append(f"aiortc.rtcdtlstransport.RtpRouter().{name}")
    return missing
