"""Silent listening: a supervisor's browser receives a live call's audio and sends none into it.

The supervisor's leg is one more peer connection of the call, answering the browser's
receive-only offer with two tracks: the caller's audio and the agent's audio (forks of the
bridge's, like the transcription legs get). Nothing the supervisor's browser sends is read,
so neither the caller nor the agent hears them. The leg is a leg of the call: it is closed,
and its diagnostic file saved, when the call ends.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from webrtc_ext import RTCPeerConnection, RTCSessionDescription

from .diagnostics import LegRecorder
from .router import CallUnavailable

if TYPE_CHECKING:
    from .call import Call
    from .router import CallRouter

logger = logging.getLogger(__name__)


def listener_leg(supervisor: str) -> str:
    """The name of a supervisor's leg in ``Call.legs``."""
    return f"listen-{supervisor}"


async def listen_in(router: CallRouter, call: Call, supervisor: str, offer_sdp: str) -> str:
    """Add ``supervisor``'s receive-only leg to ``call``; returns our SDP answer."""
    name = listener_leg(supervisor)
    await stop_listening(router, call, supervisor)  # a second request replaces the first
    pc = RTCPeerConnection(router.peer_config())
    recorder = LegRecorder(name, pc)
    call.legs[name] = recorder
    forks = [call.bridge.caller_audio(), call.bridge.agent_audio()]
    call.listeners[supervisor] = forks
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        for fork in forks:
            call.bridge.feed(fork, pc.addTrack(fork))
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as exc:  # aiortc raises ValueError, KeyError, ... on a bad offer
        await stop_listening(router, call, supervisor)
        logger.info("listening offer of %s for %s refused: %s", supervisor, call.wa_call_id, exc)
        raise CallUnavailable(f"the offer could not be used: {exc}") from None
    logger.info("%s listens to call %s", supervisor, call.wa_call_id)
    return str(pc.localDescription.sdp)


async def stop_listening(router: CallRouter, call: Call, supervisor: str) -> None:
    """Close ``supervisor``'s listening leg of ``call``, if any."""
    for fork in call.listeners.pop(supervisor, []):
        call.bridge.release(fork)
    leg = call.legs.pop(listener_leg(supervisor), None)
    if leg is not None:
        with contextlib.suppress(Exception):
            content = await leg.render()
            await router.storage.save_diagnostic(
                call.db_id, leg.leg, leg.filename(call.wa_call_id), content
            )
        await leg.pc.close()
