"""A :class:`~relay_service.bridge.MediaBridge` that forwards RTP packets, never decoding them.

Toward WhatsApp there is one ``RtpSender`` and therefore one ``RtpMunger``; every source
reaches it as packets under its own name, and ``use()`` is ``switch_source`` on that sender,
so WhatsApp sees one stream (no sequence gap, timestamps advancing by real time):

- the assistant: its Realtime leg's ``RtpReceiver.on_rtp``, sent as it is (``"assistant"``);
- the agent: an ``RtpFanOut`` of the agent leg's receiver to the WhatsApp sender (not
  switched to until ``use(Source.AGENT)``) and to the agent-transcription sender;
- the greeting: ``webrtc_ext.media.play`` of the file, Ogg/Opus as stored, anything else
  encoded to Opus once (``"greeting"``);
- hold music: ``hold_music`` (a file) played in a loop, each round under a new name, while
  the caller is on hold or waits for an agent (``"hold"``);
- silence: a fixed Opus silence frame every 20 ms (``"silence"``), so WhatsApp (which ends a
  call after ~20 s without media) always has a stream while the caller waits; its timer runs
  only while silence is the source.

The caller's packets go through an ``RtpFanOut`` of the WhatsApp leg's receiver to each
consumer's sender (agent leg, assistant, caller transcription). A consumer gets a placeholder
track from :meth:`RtpMediaBridge.caller_audio` (it never yields a frame) and is wired with
:meth:`RtpMediaBridge.feed` once its sender exists. The caller's liveness is the arrival time
of its packets, and its level the RFC 6464 audio level when the caller sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.frame import Frame
from av.packet import Packet

from webrtc_ext import RawRtpPacket
from webrtc_ext import RTCRtpReceiver as RtpReceiver
from webrtc_ext import RTCRtpSender as RtpSender
from webrtc_ext.media import open_source, play
from webrtc_ext.rawrtp import RtpFanOut

from .bridge import Source

logger = logging.getLogger(__name__)

ASSISTANT = "assistant"
GREETING = "greeting"
HOLD = "hold"
SILENCE = "silence"
SILENCE_FRAME = b"\xf8\xff\xfe"
"""A 20 ms Opus frame of silence (CELT fullband, RFC 6716 §3.1), sent while nobody speaks."""
FRAME_SECONDS = 0.02
CONNECT_WAIT = 30.0
"""Seconds the greeting waits at most for the WhatsApp leg to connect."""


class RawFork(MediaStreamTrack):
    """A placeholder track for a raw consumer: it never yields a frame (packets go around it)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._ended = asyncio.Event()

    async def recv(self) -> Frame | Packet:  # type: ignore[type-arg]
        """Wait until stopped: the sender's packets come from the bridge, not from here."""
        await self._ended.wait()
        raise MediaStreamError

    def stop(self) -> None:
        """End the track."""
        super().stop()
        self._ended.set()


class RtpMediaBridge:
    """Every path as raw RTP: WhatsApp leg ⇄ greeting / assistant / agent / transcription."""

    def __init__(self) -> None:
        self.to_whatsapp: MediaStreamTrack = RawFork()
        self._caller_audio_floor = time.monotonic()
        self.on_first_caller_audio: Callable[[float], None] | None = None
        """Called once, with its arrival time, when the first packet from the caller arrives."""
        self.assistant_packets = 0
        """Assistant packets that went out toward WhatsApp."""
        self._sender: RtpSender | None = None
        self._source = Source.SILENCE
        self._caller: RtpReceiver | None = None
        self._agent: RtpReceiver | None = None
        self._caller_fan: RtpFanOut | None = None
        self._agent_fan: RtpFanOut | None = None
        self._caller_forks: dict[RawFork, RtpSender | None] = {}
        self._agent_forks: dict[RawFork, RtpSender | None] = {}
        self._opus_frames: dict[RtpSender, int] = {}
        self._assistant: RtpReceiver | None = None
        self._current: Hashable = SILENCE
        self._silence: asyncio.Task[None] | None = None
        self._silence_sent = 0
        self._greeting: asyncio.Task[None] | None = None
        self._greeting_done = asyncio.Event()
        self._greeting_done.set()
        self.hold_music: Path | None = None
        """What the caller hears on hold (silence when ``None`` or unplayable)."""
        self._hold: asyncio.Task[None] | None = None

    @property
    def source(self) -> Source:
        """The current source toward WhatsApp."""
        return self._source

    # Nothing here runs per packet: the receivers keep their last packet, and the levels and
    # the time of the caller's last audio are read from it when asked.

    @property
    def last_caller_audio(self) -> float:
        """When (monotonic) the caller's last packet arrived, or the time it was last set
        (the router sets it when it starts waiting for media), whichever is later."""
        arrival = None if self._caller is None else self._caller.last_arrival
        floor = self._caller_audio_floor
        return floor if arrival is None or arrival < floor else arrival

    @last_caller_audio.setter
    def last_caller_audio(self, value: float) -> None:
        self._caller_audio_floor = value

    @property
    def caller_level(self) -> float:
        """The level of the caller's last packet (RFC 6464), on the 16-bit scale ``rms()``
        gives; 0 before one carried a level."""
        level = None if self._caller is None else self._caller.audio_level
        return 0.0 if level is None else 32767 * level

    @property
    def agent_level(self) -> float | None:
        """The agent's level (RFC 6464, as :attr:`caller_level`); ``None`` while no agent is
        connected or the browser sends none."""
        level = None if self._agent is None else self._agent.audio_level
        return None if level is None else 32767 * level

    # -- the caller -------------------------------------------------------------------------

    def set_caller_track(
        self, track: MediaStreamTrack, receiver: RTCRtpReceiver | None = None
    ) -> None:
        """The WhatsApp leg's receiver: its packets go raw to every consumer."""
        if not isinstance(receiver, RtpReceiver):
            logger.warning("the WhatsApp receiver has no raw RTP: the caller is not forwarded")
            return
        if self._caller_fan is not None:
            self._caller_fan.close()
        if self._caller is not None:
            self._caller.remove_rtp_callback(self._first_heard)
            self._caller_audio_floor = self.last_caller_audio  # the old receiver's last packet
        self._caller = receiver
        receiver.on_rtp(self._first_heard)
        self._caller_fan = RtpFanOut(receiver)
        self._add_consumers(self._caller_fan, self._caller_forks)

    def _add_consumers(self, fan: RtpFanOut, forks: dict[RawFork, RtpSender | None]) -> None:
        """Forward a new fan-out's stream to the consumers already fed (see :meth:`feed`)."""
        for sender in forks.values():
            if sender is not None:
                fan.add(sender, opus_frames=self._opus_frames.get(sender, 1))

    def _first_heard(self, packet: RawRtpPacket) -> None:
        """Tell :attr:`on_first_caller_audio`, then stop listening (once it was told)."""
        if self.on_first_caller_audio is not None:
            first, self.on_first_caller_audio = self.on_first_caller_audio, None
            if self._caller is not None:
                self._caller.remove_rtp_callback(self._first_heard)
            first(packet.arrival_time)

    def caller_audio(self) -> MediaStreamTrack:
        """A placeholder for one consumer of the caller's audio; wire it with :meth:`feed`."""
        fork = RawFork()
        self._caller_forks[fork] = None
        return fork

    def agent_audio(self) -> MediaStreamTrack:
        """A placeholder for the consumer of the agent's audio; wire it with :meth:`feed`."""
        fork = RawFork()
        self._agent_forks[fork] = None
        return fork

    def feed(
        self, track: MediaStreamTrack, sender: RTCRtpSender | None, *, opus_frames: int = 1
    ) -> None:
        """``sender`` plays ``track`` (from :meth:`caller_audio` / :meth:`agent_audio`): send it
        the packets raw, ``opus_frames`` Opus frames to a packet (see ``RtpFanOut.add``)."""
        if not isinstance(sender, RtpSender) or not isinstance(track, RawFork):
            logger.warning("a consumer without a raw RTP sender gets no audio")
            return
        self._opus_frames[sender] = opus_frames
        for forks, fan in (
            (self._caller_forks, self._caller_fan),
            (self._agent_forks, self._agent_fan),
        ):
            if track in forks:
                forks[track] = sender
                if fan is not None:
                    fan.add(sender, opus_frames=opus_frames)

    def release(self, track: MediaStreamTrack) -> None:
        """Stop forwarding to a consumer and end its placeholder."""
        for forks, fan in (
            (self._caller_forks, self._caller_fan),
            (self._agent_forks, self._agent_fan),
        ):
            if isinstance(track, RawFork) and track in forks:
                sender = forks.pop(track)
                if sender is not None:
                    self._opus_frames.pop(sender, None)
                    if fan is not None:
                        fan.remove(sender)
        track.stop()

    # -- toward WhatsApp --------------------------------------------------------------------

    def attach_whatsapp_sender(self, sender: RTCRtpSender) -> None:
        """The WhatsApp leg's sender: the one munger every source goes through."""
        if not isinstance(sender, RtpSender):
            logger.warning("the WhatsApp sender has no raw RTP: the caller hears nothing")
            return
        self._sender = sender
        if self._agent_fan is not None:
            self._agent_fan.add(sender, switch=False)
        self._switch(self._current)

    def _silence_while_silent(self) -> None:
        """The silence task runs only while silence is the source: no timer per call otherwise."""
        silent = self._current == SILENCE and self._sender is not None
        running = self._silence is not None and not self._silence.done()
        if silent and not running:
            assert self._sender is not None
            self._silence = asyncio.ensure_future(self._send_silence(self._sender))
        elif running and not silent:
            assert self._silence is not None
            self._silence.cancel()  # it ends at its next step; a new one may start before
            self._silence = None

    async def _send_silence(self, sender: RtpSender) -> None:
        loop = asyncio.get_running_loop()
        start, ticks = loop.time(), 0
        while True:
            # Numbers go on across pauses: the munger drops a source's numbers it has seen.
            count = self._silence_sent
            packet = RawRtpPacket.create(
                SILENCE_FRAME,
                payload_type=111,
                sequence_number=count % 65536,
                timestamp=(count * 960) % 2**32,
            )
            sender.send_rtp(packet, source=SILENCE)
            self._silence_sent = count + 1
            ticks += 1
            await asyncio.sleep(max(0.0, start + ticks * FRAME_SECONDS - loop.time()))

    def play_greeting(self, path: Path) -> None:
        """Play ``path`` toward the caller (Ogg/Opus as stored); silence follows when it ends."""
        if self._sender is None:
            logger.warning("no WhatsApp sender: greeting %s not played", path)
            return
        try:
            packets = open_source(path).packets()
        except (OSError, ValueError) as exc:
            logger.warning("greeting file %s cannot be played: %s", path, exc)
            return
        self._stop_greeting()
        self._greeting_done.clear()
        self._source = Source.GREETING
        name = (GREETING, object())  # a new name per playback: its numbers start again
        self._switch(name)
        self._greeting = asyncio.ensure_future(self._play(packets, self._sender, name))

    async def _play(
        self, packets: Iterator[RawRtpPacket], sender: RtpSender, name: Hashable
    ) -> None:
        try:
            async with asyncio.timeout(CONNECT_WAIT):  # packets sent before it are lost
                while sender.munger is None:
                    await asyncio.sleep(FRAME_SECONDS)
            await play(packets, sender, source=name, switch=False)
        except TimeoutError:
            logger.warning("the WhatsApp leg did not connect: greeting not played")
        except Exception:
            logger.exception("the greeting failed")
        finally:
            self._greeting_done.set()
            if self._current == name:
                self._switch(SILENCE)

    async def greeting_finished(self) -> None:
        """Return once no greeting is playing (at once if none was)."""
        await self._greeting_done.wait()

    def _stop_greeting(self) -> None:
        if self._greeting is not None:
            self._greeting.cancel()
            self._greeting = None
        self._greeting_done.set()

    def connect_assistant(
        self, track: MediaStreamTrack, receiver: RTCRtpReceiver | None = None
    ) -> None:
        """The assistant's packets go to WhatsApp raw when it is the source."""
        if not isinstance(receiver, RtpReceiver):
            logger.warning("the assistant's receiver has no raw RTP: it is not heard")
            return
        if self._assistant is not None:
            self._assistant.remove_rtp_callback(self._forward)
        self._assistant = receiver
        receiver.on_rtp(self._forward)
        if self._source is Source.ASSISTANT:
            self.use(Source.ASSISTANT)

    def _forward(self, packet: RawRtpPacket) -> None:
        sender = self._sender
        if sender is not None and sender.send_rtp(packet, source=ASSISTANT):
            self.assistant_packets += 1

    def connect_agent(
        self, track: MediaStreamTrack, receiver: RTCRtpReceiver | None = None
    ) -> None:
        """The agent's packets go to WhatsApp and to its transcription; the source is the agent."""
        if not isinstance(receiver, RtpReceiver):
            logger.warning("the agent's receiver has no raw RTP: the agent is not heard")
            return
        if self._agent_fan is not None:
            self._agent_fan.close()
        self._agent = receiver
        self._agent_fan = RtpFanOut(receiver)
        if self._sender is not None:
            self._agent_fan.add(self._sender, switch=False)
        self._add_consumers(self._agent_fan, self._agent_forks)
        self.use(Source.AGENT)

    def disconnect_agent(self) -> None:
        """Forget the agent's packets (silence toward the caller if it was the source)."""
        if self._agent_fan is not None:
            self._agent_fan.close()
            self._agent_fan = None
        self._agent = None
        if self._source is Source.AGENT:
            self.use(Source.SILENCE)

    def use(self, source: Source) -> None:
        """Switch what the caller hears; an input not connected (yet) is silence."""
        if source is not Source.GREETING:
            self._stop_greeting()
        if source is not Source.HOLD:
            self._stop_hold()
        self._source = source
        target: Hashable = SILENCE
        if source is Source.HOLD:
            self._start_hold()
            return
        if source is Source.ASSISTANT and self._assistant is not None:
            target = ASSISTANT
        elif source is Source.AGENT and self._agent_fan is not None:
            target = self._agent_fan.source
        elif source is Source.GREETING and self._greeting is not None:
            target = self._current  # play_greeting switched to it
        self._switch(target)

    def _start_hold(self) -> None:
        if self._hold is not None and not self._hold.done():
            return  # already playing
        if self._sender is None or self.hold_music is None:
            self._switch(SILENCE)
            return
        self._hold = asyncio.ensure_future(self._loop_hold(self._sender, self.hold_music))

    async def _loop_hold(self, sender: RtpSender, path: Path) -> None:
        try:
            while True:
                packets = open_source(path).packets()
                name = (HOLD, object())  # each round's numbers start again: a new source
                self._switch(name)
                await play(packets, sender, source=name, switch=False)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("hold music %s failed: the caller hears silence", path)
            self._switch(SILENCE)

    def _stop_hold(self) -> None:
        if self._hold is not None:
            self._hold.cancel()
            self._hold = None

    def _switch(self, target: Hashable) -> None:
        self._current = target
        if self._sender is not None:
            self._sender.switch_source(target)
        self._silence_while_silent()

    async def close(self) -> None:
        """Stop forwarding, the greeting, the hold music and the silence."""
        self._stop_greeting()
        self._stop_hold()
        for fan in (self._caller_fan, self._agent_fan):
            if fan is not None:
                fan.close()
        self._caller_fan = self._agent_fan = None
        self._agent = None
        if self._caller is not None:
            self._caller.remove_rtp_callback(self._first_heard)
            self._caller_audio_floor = self.last_caller_audio
            self._caller = None
        if self._assistant is not None:
            self._assistant.remove_rtp_callback(self._forward)
            self._assistant = None
        for fork in [*self._caller_forks, *self._agent_forks]:
            self.release(fork)
        self.to_whatsapp.stop()
        silence, self._silence, self._sender = self._silence, None, None
        if silence is not None:
            silence.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await silence
