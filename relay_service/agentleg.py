"""An agent's browser leg, negotiated before it joins a call: a bad offer changes nothing."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack

from webrtc_ext import PeerConnectionConfig, RTCPeerConnection, RTCSessionDescription

from .bridge import MediaBridge
from .diagnostics import LegRecorder


class BadOffer(Exception):
    """The browser's SDP offer cannot be used."""


@dataclass(eq=False)
class AgentLeg:
    """A negotiated browser leg and what it needs to join a call (``attach`` in the router)."""

    name: str
    pc: RTCPeerConnection
    recorder: LegRecorder
    audio: MediaStreamTrack
    """The caller's audio toward the browser (a consumer of the call's bridge)."""
    sender: RTCRtpSender
    answer: str
    tracks: list[tuple[MediaStreamTrack, RTCRtpReceiver | None]] = field(default_factory=list)
    """The browser's tracks that arrived while negotiating."""

    @classmethod
    async def negotiate(
        cls, config: PeerConnectionConfig, bridge: MediaBridge, name: str, offer: str
    ) -> AgentLeg:
        """Apply ``offer`` and answer it; :class:`BadOffer` (everything closed) if it fails."""
        pc = RTCPeerConnection(config)
        recorder = LegRecorder(name, pc)
        audio = bridge.caller_audio()
        tracks: list[tuple[MediaStreamTrack, RTCRtpReceiver | None]] = []

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            tracks.append((track, receiver_of(pc, track)))

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            sender = pc.addTrack(audio)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises ValueError, KeyError, ... on bad SDP
            bridge.release(audio)
            with contextlib.suppress(Exception):
                await recorder.render()
            await pc.close()
            raise BadOffer(f"the browser's offer cannot be used: {exc!r}") from None
        return cls(name, pc, recorder, audio, sender, str(pc.localDescription.sdp), tracks)

    async def discard(self, bridge: MediaBridge) -> None:
        """Close a leg that never joined the call."""
        bridge.release(self.audio)
        with contextlib.suppress(Exception):
            await self.recorder.render()
        await self.pc.close()


def receiver_of(pc: RTCPeerConnection, track: MediaStreamTrack) -> RTCRtpReceiver | None:
    """The receiver of ``pc`` that ``track`` arrives on."""
    return next((r for r in pc.getReceivers() if r.track is track), None)
