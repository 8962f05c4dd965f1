"""The simulated WhatsApp user's phone, as Meta's media server presents it.

An ICE-lite peer with host candidates only, Opus plus ``telephone-event/8000`` on PT 126,
one SSRC, ``a=setup:actpass`` and one ``sha-256`` fingerprint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from webrtc_ext import PeerConnectionConfig, RTCPeerConnection, RTCSessionDescription

from ..media import ToneTrack, rms
from ..whatsapp.sdp import add_to_audio_section

logger = logging.getLogger(__name__)

_WIDEBAND_EVENT = re.compile(r"a=rtpmap:(\d+) telephone-event/48000")
OPUS_FMTP = (
    "minptime=20;useinbandfec=1;maxaveragebitrate=20000;maxplaybackrate=16000;"
    "sprop-maxcapturerate=16000"
)


def meta_offer(sdp: str, *, add_telephone_event: bool = True) -> str:
    """Shape an aiortc offer like Meta's: one fingerprint, Opus fmtp, PT 126, ptime 20."""
    lines = [line for line in sdp.replace("\r\n", "\n").split("\n") if line]
    opus = next(
        (m.group(1) for line in lines if (m := re.match(r"a=rtpmap:(\d+) opus/", line))), None
    )
    has_event = not add_telephone_event or any("telephone-event/8000" in line for line in lines)
    # Meta offers telephone-event at 8000 Hz only.
    wideband = {m.group(1) for line in lines if (m := _WIDEBAND_EVENT.match(line))}
    out: list[str] = []
    fingerprint_seen = False
    for line in lines:
        if line.startswith(
            tuple(f"a={kind}:{pt} " for pt in wideband for kind in ("rtpmap", "fmtp"))
        ):
            continue
        if line.startswith("m=audio") and wideband:
            line = " ".join(part for part in line.split(" ") if part not in wideband)
        if line.startswith("a=fingerprint:"):
            if fingerprint_seen or not line.startswith("a=fingerprint:sha-256"):
                continue
            fingerprint_seen = True
        if line.startswith("m=audio") and not has_event:
            line += " 126"
        if (opus and line.startswith(f"a=fmtp:{opus} ")) or line.startswith(
            ("a=ptime:", "a=maxptime:")
        ):
            continue
        out.append(line)
        if opus and line.startswith(f"a=rtpmap:{opus} "):
            out.append(f"a=fmtp:{opus} {OPUS_FMTP}")
            if not has_event:
                out.append("a=rtpmap:126 telephone-event/8000")
    return "\r\n".join(add_to_audio_section(out, ["a=ptime:20", "a=maxptime:20"])) + "\r\n"


class CallerPeer:
    """The caller's media: sends a tone, a file or silence, and measures what it hears."""

    def __init__(
        self,
        audio: str | Path | None = "tone",
        host_addresses: Sequence[str] | None = ("127.0.0.1",),
    ) -> None:
        self.pc = RTCPeerConnection(
            PeerConnectionConfig(
                ice_lite=True,
                host_addresses=None if host_addresses is None else list(host_addresses),
                audio_codecs=("audio/opus",),
            )
        )
        self.frames_received = 0
        self.loud_frames = 0
        self.max_level = 0.0
        self.last_audio = time.monotonic()
        self.keys_heard: list[str] = []
        """Keypad digits the business sent to this caller (RFC 4733), in order."""
        self._player: MediaPlayer | None = None
        self._reader: asyncio.Task[None] | None = None
        self.source = self._source(audio)
        self.sender = self.pc.addTrack(self.source)
        self.pc.on("track", self._on_track)
        self.pc.on("dtmf", lambda event: self.keys_heard.append(str(event.digit)))

    def _source(self, audio: str | Path | None) -> MediaStreamTrack:
        if audio is None or audio == "silence":
            return ToneTrack(amplitude=0)
        if audio == "tone":
            return ToneTrack(frequency=440.0)
        self._player = MediaPlayer(str(audio))
        if self._player.audio is None:
            raise ValueError(f"{audio} has no audio")
        return self._player.audio

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.ensure_future(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.frames_received += 1
            self.last_audio = time.monotonic()
            level = rms(frame) if isinstance(frame, AudioFrame) else 0.0
            self.max_level = max(self.max_level, level)
            if level > 300:
                self.loud_frames += 1

    async def offer(self) -> str:
        """Our offer, shaped like Meta's."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return meta_offer(self.pc.localDescription.sdp)

    async def answer(self, offer: str) -> str:
        """Answer a business-initiated offer, shaped like Meta's answer."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        # An answer may only list codecs of the offer.
        return meta_offer(self.pc.localDescription.sdp, add_telephone_event=False)

    async def apply_answer(self, sdp: str) -> None:
        """Apply the business's answer (once)."""
        if self.pc.remoteDescription is None:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    def press(self, digits: str) -> bool:
        """Send keypad digits as RFC 4733 events, if the library can; false otherwise."""
        dtmf: Any = getattr(self.sender, "dtmf", None)
        if dtmf is None:
            logger.warning("DTMF sending is not available in this webrtc_ext yet")
            return False
        dtmf.insertDTMF(digits, 500, 100)
        return True

    def mute(self) -> None:
        """Stop sending media (the caller vanishes)."""
        self.source.stop()

    async def close(self) -> None:
        """Hang up the media."""
        await self.pc.close()
        if self._player is not None and self._player.audio is not None:
            self._player.audio.stop()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
