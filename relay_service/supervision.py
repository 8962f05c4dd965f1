"""Live call quality for supervisors: every leg of every live call, from the library's
W3C ``getStats()``, as round-trip time, loss, jitter and audio level.

:func:`leg_quality` is a pure function of one stats report (and the previous one, for loss
over the last interval); :func:`calls_quality` gathers the reports of every leg of the
router's live calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from webrtc_ext import RTCPeerConnection

if TYPE_CHECKING:
    from .call import Call

logger = logging.getLogger(__name__)

STATS_TIMEOUT = 2.0


@dataclass(frozen=True)
class Counters:
    """What a leg had received and lost at one report (for loss over the next interval)."""

    received: int
    lost: int


def _stat(report: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    return [s for s in report.values() if _get(s, "type") == kind]


def _get(stats: Any, name: str) -> Any:
    try:
        return stats[name]
    except (KeyError, TypeError):
        return getattr(stats, name, None)


def leg_quality(
    report: Mapping[str, Any], previous: Counters | None = None
) -> tuple[dict[str, Any], Counters]:
    """One leg's quality from its stats report: ``rtt_ms`` (selected ICE pair, else RTCP),
    ``loss_pct`` (since ``previous``, else over the call), ``jitter_ms``, packet counts.

    Missing figures are ``None``; the second value is what the next call compares against.
    """
    rtt: float | None = None
    for transport in _stat(report, "transport"):
        pair = report.get(str(_get(transport, "selectedCandidatePairId") or ""))
        if pair is not None and _get(pair, "currentRoundTripTime") is not None:
            rtt = float(_get(pair, "currentRoundTripTime"))
    if rtt is None:
        rtts = [_get(s, "roundTripTime") for s in _stat(report, "remote-inbound-rtp")]
        known = [float(r) for r in rtts if r is not None]
        rtt = max(known) if known else None
    audio_in = [s for s in _stat(report, "inbound-rtp") if _get(s, "kind") in ("audio", None)]
    received = sum(int(_get(s, "packetsReceived") or 0) for s in audio_in)
    lost = sum(max(0, int(_get(s, "packetsLost") or 0)) for s in audio_in)
    jitters = [float(_get(s, "jitter")) for s in audio_in if _get(s, "jitter") is not None]
    sent = sum(
        int(_get(s, "packetsSent") or 0)
        for s in _stat(report, "outbound-rtp")
        if _get(s, "kind") in ("audio", None)
    )
    new_received, new_lost = received, lost
    if previous is not None and received >= previous.received and lost >= previous.lost:
        new_received, new_lost = received - previous.received, lost - previous.lost
    expected = new_received + new_lost
    quality = {
        "rtt_ms": None if rtt is None else round(rtt * 1000, 1),
        "loss_pct": round(100 * new_lost / expected, 1) if expected else None,
        "jitter_ms": round(max(jitters) * 1000, 1) if jitters else None,
        "packets_received": received,
        "packets_sent": sent,
    }
    return quality, Counters(received, lost)


class QualityWatch:
    """The quality of every leg of the given calls, each time :meth:`sample` is called."""

    def __init__(self) -> None:
        self._previous: dict[tuple[str, str], Counters] = {}

    async def sample(self, calls: Iterable[Call]) -> list[dict[str, Any]]:
        """One snapshot: per call its id and legs (name, state, figures, audio level)."""
        out: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for call in calls:
            legs = []
            for name, pc in _legs(call):
                key = (call.wa_call_id, name)
                seen.add(key)
                try:
                    async with asyncio.timeout(STATS_TIMEOUT):
                        report = await pc.getStats()
                except Exception as exc:  # a leg closing meanwhile
                    logger.debug("no stats for %s %s: %s", call.wa_call_id, name, exc)
                    continue
                figures, self._previous[key] = leg_quality(report, self._previous.get(key))
                figures.update(leg=name, state=pc.connectionState, level=_level(call, name))
                legs.append(figures)
            out.append({"id": call.wa_call_id, "legs": legs})
        for key in set(self._previous) - seen:
            del self._previous[key]
        return out


def _legs(call: Call) -> list[tuple[str, RTCPeerConnection]]:
    """Every peer connection of a call: WhatsApp, browsers, listeners, the Realtime legs."""
    legs = [(name, leg.pc) for name, leg in call.legs.items()]
    ai = call.ai
    if ai is not None:
        for speaker, transcriber in ai.transcribers.items():
            if transcriber.active:
                legs.append((f"{speaker} transcription", transcriber.client.pc))
        if ai.assistant is not None and ai.assistant.active:
            legs.append(("assistant", ai.assistant.client.pc))
    return legs


def _level(call: Call, leg: str) -> float | None:
    """The audio level (0-1) received on a leg, where the bridge measures one."""
    if leg == "whatsapp":
        level = getattr(call.bridge, "caller_level", None)
    elif leg.startswith("browser"):
        level = getattr(call.bridge, "agent_level", None)
    else:
        return None
    return None if level is None else round(min(1.0, float(level) / 32767), 3)
