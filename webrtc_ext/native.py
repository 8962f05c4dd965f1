"""The raw RTP path's per-packet work in C (``webrtc_ext._native``), when it is built.

Forwarding one packet in Python is a chain of ~30 calls over ~40 objects: SRTP, the
statistics, the header, the ICE socket, each a layer with its own checks. Their CPU is most of
what a relayed call costs (docs/performance.md). The C extension does the same work in a few
calls, with the same results:

- :class:`~webrtc_ext._native.SendPath` (built by :func:`send_path` for one raw sender):
  ``send_media`` is ``RtpMunger.munge``'s common case, ``OutboundRtpStream.write``,
  ``RtpFastPathMixin.send_rtp_now`` (SRTP, the transport's counters, the statistics) and
  ``IceProtocol.send_datagram`` (the pair's counters, ``sendto``);
- :class:`~webrtc_ext._native.RecvPath` (built by :func:`recv_path` for one transport):
  ``deliver`` takes a datagram from the ICE socket's callback to the raw receiver's ``on_rtp``
  callbacks (the pair's counters, SRTP, the statistics, ``RawRtpPacket.parse``, the receiver's
  stages, its stream statistics); a receiver whose one stage is DTMF reception
  (``TelephoneEventInterceptor``) has its audio packets passed in C, as that stage passes
  them on a raw receiver without looking further; ``receive`` unprotects, counts and parses
  a packet the Python layers already hold;
- :class:`~webrtc_ext._native.FanOut` (built by :func:`fan_out` for one ``RtpFanOut``): its
  ``forward`` is the fan-out's ``on_rtp`` callback, ``send_rtp``'s work for each destination;
- :data:`stream_add`: aiortc's ``StreamStatistics.add``, the receiver-report statistics of each
  raw packet a receiver delivers.

It is used only where it gives exactly what the Python path gives: a direct UDP pair (not
TURN), libsrtp 2 through pylibsrtp, no NACK history, and interceptor stages that are the
library's statistics or none (any other stage keeps the Python path, which calls it). Each call
checks that what the object was built for still holds and returns ``None`` when it does not;
the caller then takes the Python path and builds a new one. Every counter stays where the
Python path keeps it, so statistics, RTCP reports and diagnostics read the same values.

``WEBRTC_EXT_NATIVE=0`` in the environment turns it off (the Python path, for comparison);
:data:`AVAILABLE` says whether the extension was built (a C compiler at install time).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pylibsrtp
from aiortc.rtcdtlstransport import State

from ._internals import dtls_counter_names, srtp_native_pointers
from .rtp import RawRtpPacket
from .srtp import FastSrtpSession
from .stats.rtpcounters import RtpStatsInterceptor

if TYPE_CHECKING:
    from ._native import FanOut, RecvPath, SendPath

logger = logging.getLogger(__name__)

try:
    from . import _native
except ImportError:  # built without a C compiler: the Python path
    _native = None  # type: ignore[assignment]

#: Whether the C extension is built and importable.
AVAILABLE = _native is not None
#: Whether the raw RTP path uses it (``AVAILABLE``, unless ``WEBRTC_EXT_NATIVE=0``).
ENABLED = AVAILABLE and os.environ.get("WEBRTC_EXT_NATIVE", "1") != "0"

#: Packets that take the Python path before a failed build is tried again.
RETRY_AFTER = 50

#: aiortc's ``StreamStatistics.add(packet)`` in C, called as ``stream_add(stream, packet)``
#: (None when the C path is off): the receiver-report statistics of every raw packet received.
stream_add: Callable[[Any, RawRtpPacket], None] | None = (
    _native.stream_add if ENABLED and _native is not None else None
)


def _common(transport: Any, session: Any) -> tuple[dict[str, Any], tuple[int, int, int]] | None:
    """What a send and a receive path of ``transport`` are both built with (its SRTP
    ``session``, its interceptor stages and the statistics they feed), and the libsrtp
    addresses ``(context, srtp_protect, srtp_unprotect)``; None if C cannot stand in."""
    if not isinstance(session, FastSrtpSession):
        return None
    pointers = srtp_native_pointers(session.session)
    chain = transport.interceptors
    stages = chain._stages
    if not stages:
        stats, clock = None, time.time
    elif len(stages) == 1 and type(stages[0]) is RtpStatsInterceptor:
        stats, clock = stages[0].counters, stages[0]._clock
    else:
        return None  # another stage: the Python path, which calls it
    if pointers is None:
        return None
    common = {
        "transport": transport,
        "session": session,
        "chain": chain,
        "stages": stages,
        "stats": stats,
        "clock": clock,
        "error_type": pylibsrtp.Error,
        "reasons": tuple(getattr(pylibsrtp, "ERRORS", ())),
    }
    return common, pointers


def send_path(sender: Any, outbound: Any) -> SendPath | None:
    """A :class:`~webrtc_ext._native.SendPath` for ``sender`` now, or None if C cannot send."""
    if not ENABLED or outbound.history_size:
        return None
    from .ice import IceConnection, IceProtocol

    transport = sender.transport
    connection = getattr(transport, "_ice_connection", None)
    if not isinstance(connection, IceConnection) or transport._state is not State.CONNECTED:
        return None
    common = _common(transport, transport._tx_srtp)
    engine = connection._engine
    pair = engine.selected.get(1)
    protocol = getattr(pair, "local_socket", None)
    if common is None or not isinstance(protocol, IceProtocol):
        return None
    assert pair is not None
    sock = protocol._socket
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    shared, (context, protect, _) = common
    tx_bytes, tx_packets = dtls_counter_names()[2:]
    address = pair.remote_addr
    try:
        return _native.SendPath(
            **shared,
            connected=State.CONNECTED,
            engine=engine,
            pair=pair,
            protocol=protocol,
            sock=sock,
            family=int(sock.family),
            address=address,
            outbound=outbound,
            peer_counters=protocol.peer_counters(address),
            tx_bytes_name=tx_bytes,
            tx_packets_name=tx_packets,
            protect=protect,
            context=context,
            ssrc=outbound.ssrc,
            payload_type=outbound.payload_type,
            mid_element=outbound._mid_element,
            abs_send_time_id=outbound._abs_send_time_id,
            audio_level_id=outbound._audio_level_id,
        )
    except (ValueError, TypeError, OSError) as exc:
        logger.debug("no C send path for %r: %s", sender, exc)
        return None


def recv_path(
    transport: Any, receiver_type: type | None = None, failed: Callable[..., None] | None = None
) -> RecvPath | None:
    """A :class:`~webrtc_ext._native.RecvPath` for ``transport`` now, or None.

    With ``receiver_type`` (the raw receiver class) and ``failed`` (``failed(callback,
    exception)`` logs a callback that raised), its ``deliver`` takes datagrams from the ICE
    socket through to the receiver's callbacks.
    """
    if not ENABLED:
        return None
    common = _common(transport, transport._rx_srtp)
    if common is None:
        return None
    from .dtmf.receiver import TelephoneEventInterceptor

    shared, (context, _, unprotect) = common
    rx_bytes, rx_packets = dtls_counter_names()[:2]
    return _native.RecvPath(
        **shared,
        rx_bytes_name=rx_bytes,
        rx_packets_name=rx_packets,
        packet_type=RawRtpPacket,
        unprotect=unprotect,
        context=context,
        receiver_type=receiver_type,
        failed=failed,
        event_stage_type=TelephoneEventInterceptor,
    )


def media_hold(sender: Any) -> int | None:
    """How ``sender`` holds media back, for the C fan-out: 0 never (the raw sender's
    ``_media_may_send``), 1 while its DTMF sender plays a tone (``DtmfSenderMixin``'s), None if
    another subclass decides (the C path then calls ``send_rtp`` for it)."""
    from ._vendor.aiortc.rtcrtpsender import RTCRtpSender
    from .dtmf.sender import DtmfSenderMixin

    method = getattr(type(sender), "_media_may_send", None)
    if method is RTCRtpSender._media_may_send:
        return 0
    if method is DtmfSenderMixin._media_may_send:
        return 1
    return None


def fan_out(fan: Any) -> FanOut | None:
    """A :class:`~webrtc_ext._native.FanOut` forwarding for ``fan`` (an ``RtpFanOut``), or None.

    Its ``forward`` is ``RtpFanOut._forward``: for each destination without Opus joining whose
    sender has a C send path, ``send_rtp``'s checks (a hold to resume, a DTMF tone playing)
    and its C part, then the sender-report counters ``_account`` keeps; ``send_rtp`` itself
    for anything else, and ``RtpFanOut._forward_packed`` for destinations that join frames.
    """
    if not ENABLED:
        return None
    from ._vendor.aiortc.rtcrtpsender import SENDER_REPORT_MEMBERS

    return _native.FanOut(fan=fan, report_names=SENDER_REPORT_MEMBERS, packet_type=RawRtpPacket)
