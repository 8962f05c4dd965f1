"""Naive implementations the benchmarks measure the library against (not part of the library)."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from webrtc_ext.dtmf.rfc4733 import DTMF_EVENTS, TelephoneEventPayload


class MarkerBitDecoder:
    """The common naive DTMF decoder: a new digit on every packet with the marker bit.

    The baseline that ``benchmarks/dtmf_accuracy.py`` measures the RFC 4733 decoder against.
    """

    def receive(self, packet: RtpPacket) -> str | None:
        """The digit this packet starts, if it carries the marker bit."""
        if not packet.marker:
            return None
        try:
            payload = TelephoneEventPayload.parse(packet.payload)
        except ValueError:
            return None
        return DTMF_EVENTS[payload.event] if payload.event < len(DTMF_EVENTS) else None
