"""The one place that names aiortc's and aioice's private members.

webrtc_ext pins aiortc and aioice exactly because it reaches into them. Every private name it
relies on is listed here, and ``tests/unit/test_internals.py`` fails loudly when an upgrade
moves one of them. ``docs/internals.md`` explains why each is needed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from typing import Any

import aiortc
import aiortc.rtcsctptransport
from aioice import Candidate

#: aiortc.RTCPeerConnection private members read or replaced (name-mangled ``__name``).
PEER_CONNECTION_PRIVATE = (
    "certificates",
    "createDtlsTransport",
    "createSctpTransport",
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

#: aiortc.RTCDtlsTransport private counters that webrtc_ext.RTCDtlsTransport keeps up to date
#: (name-mangled ``__name``; they feed aiortc's transport stats).
DTLS_TRANSPORT_PRIVATE = ("rx_bytes", "rx_packets", "tx_bytes", "tx_packets")

#: aiortc.RTCPeerConnection private members that webrtc_ext.RTCPeerConnection writes.
PEER_CONNECTION_WRITTEN = ("sctp",)

#: aiortc.RTCSctpTransport members that webrtc_ext.rtcsctptransport.RTCSctpTransport's
#: ``_send`` (a copy of aiortc 1.16.0's with a per-association chunk size) reads and writes.
SCTP_TRANSPORT_MEMBERS = ("_local_tsn", "_outbound_queue", "_outbound_stream_seq", "_transmit")

#: SHA-256 of aiortc 1.16.0's ``RTCSctpTransport._send`` source: webrtc_ext's copy must be
#: merged again by hand when upstream changes it (docs/fork.md).
SCTP_SEND_UPSTREAM_SHA256 = "f0f8aff63a9a87439230618a25e4e7db919f5001459f06281b4c08724ec395a6"


def upstream_source_sha256(function: Any) -> str:
    """SHA-256 of a function's source (to notice when upstream changes what we copied)."""
    import hashlib
    import inspect

    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


#: SHA-256 of aiortc 1.16.0's ``rtcrtpsender.py``, which
#: ``webrtc_ext/_vendor/aiortc/rtcrtpsender.py`` forks: when upstream changes it, merge the
#: change into the fork by hand (docs/fork.md).
RTP_SENDER_UPSTREAM_SHA256 = "f90cef75d1f58cbe415ff4329e340bf1425ca8664020e4cb83cb45f06c33c36b"

#: Members of the (forked) sender that aiortc's peer connection, transceiver and DTLS
#: transport use: the fork must keep them.
RTP_SENDER_USED_BY_AIORTC = (
    "_enabled",
    "_handle_rtcp_packet",
    "_rtx_ssrc",
    "_ssrc",
    "_stream_id",
    "_track_id",
    "getStats",
    "replaceTrack",
    "send",
    "setTransport",
    "stop",
)

#: aiortc.RTCRtpReceiver methods overridden or called (single underscore).
RTP_METHODS = (
    (aiortc.RTCRtpReceiver, "_handle_rtp_packet"),
    (aiortc.RTCDtlsTransport, "_setup_srtp"),
)

#: aiortc.RTCRtpReceiver private members read by webrtc_ext.rawrtp, webrtc_ext.dtmf.receiver
#: and webrtc_ext.stats.
RTP_RECEIVER_PRIVATE = (
    "codecs",
    "decoder_thread",
    "jitter_buffer",
    "remote_streams",
    "rtx_ssrc",
    "stop_decoder",
    # webrtc_ext.rtcpreports' copy of _run_rtcp
    "kind",
    "lsr",
    "lsr_time",
    "rtcp_exited",
    "rtcp_ssrc",
    "rtcp_started",
)

#: SHA-256 of aiortc 1.16.0's ``RTCRtpReceiver._run_rtcp`` source: webrtc_ext.rtcpreports'
#: copy must be merged again by hand when upstream changes it (docs/fork.md).
RTP_RECEIVER_RUN_RTCP_UPSTREAM_SHA256 = (
    "0f57daa3218616c0d729d4209fbe788e680b17b8bbeeabe8d5fe4efc6a25cbce"
)

#: aiortc.rtcrtpreceiver.StreamStatistics attributes saved and restored so that
#: telephone-event packets are counted without touching the jitter estimate.
STREAM_STATISTICS_ATTRIBUTES = ("_jitter_q4", "_last_arrival", "_last_timestamp")

#: Private members of other aiortc objects read or wrapped by webrtc_ext.stats (which also
#: reads RTCRtpReceiver.__remote_streams and __rtx_ssrc, listed in RTP_RECEIVER_PRIVATE).
STATS_ATTRIBUTES = {
    "RTCDtlsTransport": ("_send_rtp", "_handle_rtp_data", "_handle_rtcp_data"),
    "RTCDtlsTransport()": ("_role", "_ssl"),
    "RTCRtpSender()": ("_ssrc", "_rtx_ssrc"),
    "RTCRtpTransceiver()": ("_codecs",),
    "RTCCertificate()": ("_cert",),
    "StreamStatistics()": ("jitter",),
}


#: aiortc internals that Pipecat's SmallWebRTC transport (pipecat-ai 1.14,
#: ``pipecat/transports/smallwebrtc/connection.py``) uses on the connection it builds, which is
#: the library's once installed (:func:`webrtc_ext.install`). The library's classes must keep
#: each one working: ``tests/integration/test_framework_internals.py`` checks their behaviour
#: on its connections, and :func:`missing_internals` that the names still exist.
FRAMEWORK_INTERNALS = {
    "aiortc.RTCRtpReceiver().__jitter_buffer": (
        "replaced by a JitterBuffer of larger capacity (screen-share video)"
    ),
    "aiortc.RTCRtpReceiver()._enabled": (
        "set False so that packets are dropped before decoding while nobody reads the track"
    ),
    "aiortc.rtcrtpreceiver.RemoteStreamTrack()._queue": (
        "the decoded frames (an asyncio.Queue), drained to discard old ones"
    ),
    "aiortc.rtcsctptransport.USERDATA_MAX_LENGTH": (
        "lowered to 1100 at import so that SCTP packets fit a 1280-byte path"
    ),
}


def _missing_framework_internals(receiver: aiortc.RTCRtpReceiver) -> list[str]:
    from aiortc.rtcrtpreceiver import RemoteStreamTrack

    missing = []
    if not hasattr(receiver, "_RTCRtpReceiver__jitter_buffer"):
        missing.append("aiortc.RTCRtpReceiver().__jitter_buffer")
    if not isinstance(getattr(receiver, "_enabled", None), bool):
        missing.append("aiortc.RTCRtpReceiver()._enabled")
    if not isinstance(getattr(RemoteStreamTrack("audio"), "_queue", None), asyncio.Queue):
        missing.append("aiortc.rtcrtpreceiver.RemoteStreamTrack()._queue")
    return missing


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
        if not hasattr(receiver, _RECEIVER_PRIVATE[name]):
            missing.append(f"aiortc.RTCRtpReceiver().__{name}")
    return missing


def ice_transport_set_state(transport: aiortc.RTCIceTransport, state: str) -> None:
    """Call aiortc's private ``RTCIceTransport.__setState`` (emits ``statechange``)."""
    transport._RTCIceTransport__setState(state)  # type: ignore[attr-defined]


#: aiortc.RTCIceGatherer / RTCIceTransport instance attributes that webrtc_ext replaces or reads.
ICE_TRANSPORT_ATTRIBUTES = ("_connection",)

#: Single-underscore aiortc members the raw RTP path (webrtc_ext.rawrtp) uses or overrides, per
#: class (instance attributes among them, so they are checked on probe objects).
RTP_MEMBERS = {
    "RTCRtpSender": ("_ssrc", "_rtx_ssrc"),
    "RTCRtpReceiver": ("_enabled", "_handle_rtp_packet"),
    "RTCDtlsTransport": ("_rtp_router", "_rx_srtp", "_state", "_tx_srtp"),
}


def _mangled(owner: str, names: tuple[str, ...]) -> dict[str, str]:
    """``name`` → ``_<owner>__<name>``, built once.

    The accessors below look names up here rather than concatenating them per call: CPython's
    type attribute cache keeps a reference to the last name string looked up in each of its
    slots, so a fresh string per call is kept alive at a random place in the heap, where it
    stops the allocator from returning the memory of ended calls (docs/performance.md).
    """
    return {name: sys.intern(f"_{owner}__{name}") for name in names}


_PC_PRIVATE = _mangled("RTCPeerConnection", PEER_CONNECTION_PRIVATE)
_PC_WRITTEN = _mangled("RTCPeerConnection", PEER_CONNECTION_WRITTEN)
_DTLS_PRIVATE = _mangled("RTCDtlsTransport", DTLS_TRANSPORT_PRIVATE)
_RECEIVER_PRIVATE = _mangled("RTCRtpReceiver", RTP_RECEIVER_PRIVATE)


def pc_private(pc: aiortc.RTCPeerConnection, name: str) -> Any:
    """Read aiortc's private ``RTCPeerConnection.__<name>`` member."""
    return getattr(pc, _PC_PRIVATE[name])


def dtls_count_received(transport: aiortc.RTCDtlsTransport, size: int) -> None:
    """Count one datagram of ``size`` bytes in aiortc's private ``__rx_*`` transport counters."""
    transport._RTCDtlsTransport__rx_bytes += size  # type: ignore[attr-defined]
    transport._RTCDtlsTransport__rx_packets += 1  # type: ignore[attr-defined]


def dtls_count_sent(transport: aiortc.RTCDtlsTransport, size: int) -> None:
    """Count one datagram of ``size`` bytes in aiortc's private ``__tx_*`` transport counters."""
    transport._RTCDtlsTransport__tx_bytes += size  # type: ignore[attr-defined]
    transport._RTCDtlsTransport__tx_packets += 1  # type: ignore[attr-defined]


def dtls_totals(transport: aiortc.RTCDtlsTransport) -> tuple[int, int, int, int]:
    """aiortc's transport counters: packets sent and received, bytes sent and received.

    What ``RTCDtlsTransport._get_stats()`` reports, without the stats object and the
    ``datetime`` it makes on each call (the statistics read it every second on every leg).
    """
    return (
        transport._RTCDtlsTransport__tx_packets,  # type: ignore[attr-defined]
        transport._RTCDtlsTransport__rx_packets,  # type: ignore[attr-defined]
        transport._RTCDtlsTransport__tx_bytes,  # type: ignore[attr-defined]
        transport._RTCDtlsTransport__rx_bytes,  # type: ignore[attr-defined]
    )


def dtls_private_add(transport: aiortc.RTCDtlsTransport, name: str, amount: int) -> None:
    """Add ``amount`` to aiortc's private ``RTCDtlsTransport.__<name>`` counter."""
    attribute = _DTLS_PRIVATE[name]
    setattr(transport, attribute, getattr(transport, attribute) + amount)


def pc_private_set(pc: aiortc.RTCPeerConnection, name: str, value: Any) -> None:
    """Set aiortc's private ``RTCPeerConnection.__<name>`` member."""
    setattr(pc, _PC_WRITTEN[name], value)


def receiver_private(receiver: aiortc.RTCRtpReceiver, name: str) -> Any:
    """Read aiortc's private ``RTCRtpReceiver.__<name>`` member."""
    return getattr(receiver, _RECEIVER_PRIVATE[name])


def set_receiver_private(receiver: aiortc.RTCRtpReceiver, name: str, value: Any) -> None:
    """Write aiortc's private ``RTCRtpReceiver.__<name>`` member."""
    setattr(receiver, _RECEIVER_PRIVATE[name], value)


def missing_rtp_internals(sender: Any, receiver: aiortc.RTCRtpReceiver) -> list[str]:
    """The RTP sender/receiver members listed here that these objects lack.

    Needs a sender and receiver built inside a running event loop (aiortc's need one).
    """
    from aiortc.rtcrtpreceiver import StreamStatistics

    missing = [
        f"webrtc_ext RTCRtpSender().{name}"
        for name in RTP_SENDER_USED_BY_AIORTC
        if not hasattr(sender, name)
    ]
    missing += [
        f"aiortc.RTCRtpReceiver().__{name}"
        for name in RTP_RECEIVER_PRIVATE
        if not hasattr(receiver, _RECEIVER_PRIVATE[name])
    ]
    missing += [f"{cls.__name__}.{name}" for cls, name in RTP_METHODS if not hasattr(cls, name)]
    stats = StreamStatistics(8000)
    missing += [
        f"StreamStatistics().{name}"
        for name in STREAM_STATISTICS_ATTRIBUTES
        if not hasattr(stats, name)
    ]
    return missing


def missing_internals() -> list[str]:
    """The private members listed here that the installed aiortc/aioice no longer have."""
    missing = []
    for name in PEER_CONNECTION_PRIVATE:
        if name.startswith(("create", "update")) and not hasattr(
            aiortc.RTCPeerConnection, _PC_PRIVATE[name]
        ):
            missing.append(f"aiortc.RTCPeerConnection.__{name}")
    if not hasattr(aiortc.RTCIceTransport, "_RTCIceTransport__setState"):
        missing.append("aiortc.RTCIceTransport.__setState")
    gatherer = aiortc.RTCIceGatherer(iceServers=[])
    transport = aiortc.RTCIceTransport(gatherer)
    for name in ICE_TRANSPORT_ATTRIBUTES:
        for owner in (gatherer, transport):
            if not hasattr(owner, name):
                missing.append(f"aiortc.{type(owner).__name__}().{name}")
    pc = aiortc.RTCPeerConnection()
    for name in PEER_CONNECTION_PRIVATE:
        if not hasattr(pc, _PC_PRIVATE[name]):
            missing.append(f"aiortc.RTCPeerConnection().__{name}")
    dtls = aiortc.RTCDtlsTransport(
        aiortc.RTCIceTransport(aiortc.RTCIceGatherer()),
        [aiortc.RTCCertificate.generateCertificate()],
    )
    for name in DTLS_TRANSPORT_PRIVATE:
        if not hasattr(dtls, _DTLS_PRIVATE[name]):
            missing.append(f"aiortc.RTCDtlsTransport().__{name}")
    return missing + _missing_stats_internals() + _missing_raw_rtp_internals()


def _missing_raw_rtp_internals() -> list[str]:
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
    sender = aiortc.RTCRtpSender("audio", dtls)
    receiver = aiortc.RTCRtpReceiver("audio", dtls)
    probes = {"RTCRtpSender": sender, "RTCRtpReceiver": receiver, "RTCDtlsTransport": dtls}
    missing = missing_rtp_internals(sender, receiver) + _missing_framework_internals(receiver)
    for cls, probe in probes.items():
        for name in RTP_MEMBERS[cls]:
            if not hasattr(probe, name):
                missing.append(f"aiortc.{cls}().{name}")
    for name in ("ssrc_table", "route_rtp"):
        if not hasattr(RtpRouter(), name):
            missing.append(f"aiortc.rtcdtlstransport.RtpRouter().{name}")
    return missing


def candidate_network_host(candidate: Candidate) -> str:
    """The address aioice reaches a candidate at (private ``Candidate._network_host``).

    The candidate's host, or the address its mDNS name resolved to; aioice's
    ``Candidate.can_pair_with`` compares it.
    """
    return str(candidate._network_host)


def set_candidate_network_host(candidate: Candidate, address: str) -> None:
    """Set the address a remote candidate is reached at (an mDNS name's resolved address)."""
    candidate._network_host = address


def set_bundled(owner: Any, bundled: bool) -> None:
    """Mark a transceiver or SCTP transport as riding the first one's transports (BUNDLE).

    aiortc's private ``_bundled``: its ``__connect`` starts the ICE and DTLS transports of
    owners that are not bundled, and skips the others.
    """
    owner._bundled = bundled


def receiver_set_rtcp_ssrc(receiver: aiortc.RTCRtpReceiver, ssrc: int) -> None:
    """The SSRC a receiver's RTCP receiver reports are sent from (private ``_set_rtcp_ssrc``)."""
    receiver._set_rtcp_ssrc(ssrc)


def certificate_key_and_cert(certificate: aiortc.RTCCertificate) -> tuple[Any, Any]:
    """The private key and X.509 certificate inside an aiortc certificate (``_key``, ``_cert``)."""
    return certificate._key, certificate._cert


#: pylibsrtp.Session private members that webrtc_ext.srtp.FastSrtpSession reads: the libsrtp
#: context (``srtp_t *``), the 1500-byte C buffer and its Python buffer view.
SRTP_SESSION_PRIVATE = ("_srtp", "_cdata", "_buffer")
#: pylibsrtp's cffi binding functions it calls (libsrtp 2's in-place signatures).
SRTP_FUNCTIONS = ("srtp_protect", "srtp_protect_rtcp", "srtp_unprotect", "srtp_unprotect_rtcp")


def srtp_session_parts(session: Any) -> tuple[Any, ...] | None:
    """What calling libsrtp directly for ``session`` needs, or None if pylibsrtp differs.

    ``(context, cdata, buffer, length cell, (protect, protect_rtcp, unprotect,
    unprotect_rtcp), error reasons)``: pylibsrtp's own objects, plus one new ``int *``.
    """
    try:
        import pylibsrtp
        from pylibsrtp._binding import ffi, lib  # type: ignore[import-not-found]

        context = session._srtp[0]
        cdata, buffer = session._cdata, session._buffer
        functions = tuple(getattr(lib, name) for name in SRTP_FUNCTIONS)
        errors = tuple(getattr(pylibsrtp, "ERRORS", ()))
    except (ImportError, AttributeError, TypeError, IndexError):
        return None
    if len(buffer) < 1500:
        return None
    return context, cdata, buffer, ffi.new("int *"), functions, errors


def srtp_native_pointers(session: Any) -> tuple[int, int, int] | None:
    """``(context, srtp_protect, srtp_unprotect)`` of a pylibsrtp session, as addresses.

    For webrtc_ext's C path (:mod:`webrtc_ext.native`): pylibsrtp's own libsrtp context and
    functions, so that C and Python share one libsrtp and one session state. None if
    pylibsrtp's internals are not as expected.
    """
    try:
        from pylibsrtp._binding import ffi, lib

        context = session._srtp[0]
        protect = ffi.addressof(lib, "srtp_protect")
        unprotect = ffi.addressof(lib, "srtp_unprotect")
        addresses: tuple[int, int, int] = (
            int(ffi.cast("uintptr_t", context)),
            int(ffi.cast("uintptr_t", protect)),
            int(ffi.cast("uintptr_t", unprotect)),
        )
    except (ImportError, AttributeError, TypeError, IndexError):
        return None
    if "int *" not in str(ffi.typeof(protect)) or 0 in addresses:
        return None  # not libsrtp 2's (ctx, packet, int *length)
    return addresses


def dtls_counter_names() -> tuple[str, str, str, str]:
    """The mangled names of aiortc's ``rx_bytes``, ``rx_packets``, ``tx_bytes``, ``tx_packets``."""
    return (
        _DTLS_PRIVATE["rx_bytes"],
        _DTLS_PRIVATE["rx_packets"],
        _DTLS_PRIVATE["tx_bytes"],
        _DTLS_PRIVATE["tx_packets"],
    )
