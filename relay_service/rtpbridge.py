"""A :class:`~relay_service.bridge.MediaBridge` that forwards the assistant's RTP packets.

Toward WhatsApp there is one ``RtpSender`` and therefore one ``RtpMunger``: the greeting, the
agent and silence reach it as a track (encoded once, the track is the munger's source), the
assistant's packets arrive raw from its Realtime leg's receiver and are sent as they are
(``send_rtp``, no decoding or encoding) under the source name ``"assistant"``. Switching between
them is ``switch_source`` on that sender, so WhatsApp sees one stream: no sequence gap,
timestamps advancing by real time.

Still decoded here (see docs/service.md): the caller's audio toward the agent, the assistant and
transcription, and the agent's audio (it also feeds the agent's transcription).
"""

from __future__ import annotations

import logging

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack

from webrtc_ext import RawRtpPacket, RtpReceiver, RtpSender

from .bridge import RelayMediaBridge, Source

logger = logging.getLogger(__name__)

ASSISTANT = "assistant"


class RtpMediaBridge(RelayMediaBridge):
    """Assistant → WhatsApp as raw RTP through the WhatsApp sender's munger."""

    def __init__(self) -> None:
        super().__init__()
        self._sender: RtpSender | None = None
        self._assistant: RtpReceiver | None = None
        self.assistant_packets = 0
        """Assistant packets that went out toward WhatsApp."""

    def attach_whatsapp_sender(self, sender: RTCRtpSender) -> None:
        """The WhatsApp leg's sender (it plays :attr:`to_whatsapp`)."""
        if isinstance(sender, RtpSender):
            self._sender = sender
        else:
            logger.warning("the WhatsApp sender has no raw RTP: the assistant is decoded")

    def connect_assistant(
        self, track: MediaStreamTrack, receiver: RTCRtpReceiver | None = None
    ) -> None:
        """The assistant's audio: its packets go to WhatsApp raw when it is the source."""
        if self._sender is None or not isinstance(receiver, RtpReceiver):
            super().connect_assistant(track, receiver)
            return
        if self._assistant is not None:
            self._assistant.remove_rtp_callback(self._forward)
        self._assistant = receiver
        receiver.on_rtp(self._forward)

    def _forward(self, packet: RawRtpPacket) -> None:
        sender = self._sender
        if sender is not None and sender.send_rtp(packet, source=ASSISTANT):
            self.assistant_packets += 1

    def use(self, source: Source) -> None:
        """Switch what the caller hears: raw assistant packets, or the track."""
        if source is Source.ASSISTANT and self._assistant is not None and self._sender:
            super().use(Source.SILENCE)  # the track idles; the munger drops its packets
            self._source = Source.ASSISTANT
            self._sender.switch_source(ASSISTANT)
            return
        super().use(source)
        if self._sender is not None:
            self._sender.switch_source(self.to_whatsapp)

    async def close(self) -> None:
        """Stop forwarding and every track."""
        if self._assistant is not None:
            self._assistant.remove_rtp_callback(self._forward)
            self._assistant = None
        await super().close()
