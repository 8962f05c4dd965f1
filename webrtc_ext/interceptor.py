"""Interceptors: any number of stages on the library's RTP/RTCP paths (after pion/interceptor).

Two chains, each an ordered list of small stages, read top to bottom:

- every DTLS transport the library builds has ``interceptors``, a
  :class:`TransportInterceptorChain` (:class:`~webrtc_ext.rawrtp.RtpFastPathMixin`): its
  stages *observe* each plaintext RTP and RTCP packet the transport sends or receives, on
  aiortc's path and on the raw RTP fast path alike. The statistics
  (:class:`webrtc_ext.stats.rtpcounters.RtpStatsInterceptor`) are one such stage.
- every receiver has ``interceptors``, a :class:`ReceiverInterceptorChain`
  (:class:`~webrtc_ext.rawrtp.RawRtpReceiverMixin`): its stages see each RTP packet routed to
  the receiver, before raw delivery or aiortc's decoder, and may *consume* it (DTMF reception
  takes the telephone-event packets this way).

The library's SCTP transport has a third, :class:`DataChannelInterceptorChain`, whose stages
observe the messages its data channels send.

Stages are plain objects with no sockets, tasks or clocks: they are given the packet and the
time. A stage that raises is logged and skipped; the packet goes on. No method of any object is
replaced: a stage is added with ``chain.add(stage)`` and taken out with ``chain.remove(stage)``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Generic, Protocol, TypeVar

logger = logging.getLogger(__name__)


class RtpPacketView(Protocol):
    """The RTP header fields and payload a receiver stage reads (aiortc's ``RtpPacket`` or
    :class:`~webrtc_ext.rtp.RawRtpPacket`)."""

    @property
    def payload_type(self) -> int: ...
    @property
    def sequence_number(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def ssrc(self) -> int: ...
    @property
    def payload(self) -> bytes: ...


class TransportInterceptor:
    """A stage that observes a DTLS transport's plaintext RTP/RTCP; the defaults do nothing."""

    def rtp_sent(self, data: bytes, now: float) -> None:
        """One RTP packet left the transport (after the SRTP step succeeded)."""

    def rtcp_sent(self, data: bytes, now: float) -> None:
        """One (compound) RTCP packet left the transport."""

    def rtp_received(self, data: bytes, now: float) -> None:
        """One RTP packet arrived and passed SRTP authentication."""

    def rtcp_received(self, data: bytes, now: float) -> None:
        """One (compound) RTCP packet arrived and passed SRTCP authentication."""


class ReceiverInterceptor:
    """A stage on a receiver's packet path; it may consume packets (the default passes them on)."""

    def rtp_received(self, packet: RtpPacketView, now: float) -> bool:
        """``False`` if this stage consumed ``packet``: no later stage or consumer sees it."""
        return True


class DataChannelInterceptor:
    """A stage that observes the messages an SCTP transport's data channels send."""

    def message_sent(self, channel: Any, data: bytes | str, now: float) -> None:
        """``channel`` (an ``RTCDataChannel``) handed ``data`` to SCTP."""


StageT = TypeVar("StageT")


class InterceptorChain(Generic[StageT]):
    """An ordered list of stages; adding or removing one never disturbs a packet in flight."""

    # In slots: the C path (webrtc_ext._native) reads ``_stages`` for every packet at its
    # offset rather than in the instance dictionary; the rest stays in ``__dict__``.
    __slots__ = ("__dict__", "__weakref__", "_stages")

    def __init__(self) -> None:
        # A tuple, replaced on each change: dispatch iterates a snapshot without copying.
        self._stages: tuple[StageT, ...] = ()

    def add(self, stage: StageT) -> StageT:
        """Append ``stage`` (once); returns it, so it can be kept for :meth:`remove`."""
        if stage not in self._stages:
            self._stages = (*self._stages, stage)
        return stage

    def remove(self, stage: StageT) -> None:
        """Take ``stage`` out (no error if it is not there)."""
        self._stages = tuple(s for s in self._stages if s is not stage)

    def __iter__(self) -> Iterator[StageT]:
        return iter(self._stages)

    def __len__(self) -> int:
        return len(self._stages)

    def __contains__(self, stage: object) -> bool:
        return stage in self._stages


def _failed(stage: object, hook: str) -> None:
    logger.exception("interceptor %r failed in %s; the packet goes on", stage, hook)


class TransportInterceptorChain(InterceptorChain[TransportInterceptor]):
    """The observers of one DTLS transport's plaintext RTP/RTCP."""

    def rtp_sent(self, data: bytes, now: float) -> None:
        """Tell every stage that ``data`` (RTP) was sent."""
        for stage in self._stages:
            try:
                stage.rtp_sent(data, now)
            except Exception:
                _failed(stage, "rtp_sent")

    def rtcp_sent(self, data: bytes, now: float) -> None:
        """Tell every stage that ``data`` (RTCP) was sent."""
        for stage in self._stages:
            try:
                stage.rtcp_sent(data, now)
            except Exception:
                _failed(stage, "rtcp_sent")

    def rtp_received(self, data: bytes, now: float) -> None:
        """Tell every stage that ``data`` (RTP) arrived."""
        for stage in self._stages:
            try:
                stage.rtp_received(data, now)
            except Exception:
                _failed(stage, "rtp_received")

    def rtcp_received(self, data: bytes, now: float) -> None:
        """Tell every stage that ``data`` (RTCP) arrived."""
        for stage in self._stages:
            try:
                stage.rtcp_received(data, now)
            except Exception:
                _failed(stage, "rtcp_received")


class ReceiverInterceptorChain(InterceptorChain[ReceiverInterceptor]):
    """The stages a receiver's packets go through before delivery or decoding."""

    def rtp_received(self, packet: RtpPacketView, now: float) -> bool:
        """Run ``packet`` through the stages; ``False`` if one of them consumed it."""
        for stage in self._stages:
            try:
                if not stage.rtp_received(packet, now):
                    return False
            except Exception:
                _failed(stage, "rtp_received")
        return True


class DataChannelInterceptorChain(InterceptorChain[DataChannelInterceptor]):
    """The observers of one SCTP transport's data-channel messages."""

    def message_sent(self, channel: Any, data: bytes | str, now: float) -> None:
        """Tell every stage that ``channel`` sent ``data``."""
        for stage in self._stages:
            try:
                stage.message_sent(channel, data, now)
            except Exception:
                _failed(stage, "message_sent")
