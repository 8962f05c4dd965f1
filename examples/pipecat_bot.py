"""A minimal Pipecat bot on webrtc_ext: it echoes what a caller says, over loopback, offline.

Pipecat's SmallWebRTC transport builds aiortc's ``RTCPeerConnection`` itself;
``webrtc_ext.installed(config)`` makes it build the library's, with the chosen options. The
caller here is a plain ``webrtc_ext.RTCPeerConnection`` sending a 440 Hz tone and a data channel
message; the bot greets it over the channel, answers its message, and echoes its audio back.
Needs the ``[pipecat]`` extra (``pip install '.[pipecat]'``). Run:

    python examples/pipecat_bot.py [--seconds 3] [--nomination aggressive|regular]
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import sys
import time
from typing import Any

import numpy as np
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from av import AudioFrame

import webrtc_ext
from webrtc_ext import PeerConnectionConfig, RTCPeerConnection, RTCSessionDescription

try:
    from loguru import logger as pipecat_logger
    from pipecat.frames.frames import (
        Frame,
        InputAudioRawFrame,
        OutputAudioRawFrame,
        OutputTransportMessageUrgentFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineWorker
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.transports.base_transport import TransportParams
    from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
    from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
    from pipecat.workers.runner import WorkerRunner
except ImportError as error:
    sys.exit(f"this example needs Pipecat: pip install '.[pipecat]' ({error})")


class Echo(FrameProcessor):  # type: ignore[misc]
    """Plays every audio frame the caller sent back to the caller."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            frame = OutputAudioRawFrame(frame.audio, frame.sample_rate, frame.num_channels)
        await self.push_frame(frame, direction)


class ToneTrack(AudioStreamTrack):
    """A 440 Hz sine at 48 kHz, paced like aiortc's silent AudioStreamTrack."""

    def __init__(self) -> None:
        super().__init__()
        self._sample = 0

    async def recv(self) -> AudioFrame:
        paced = await super().recv()
        t = (self._sample + np.arange(paced.samples)) / 48000
        self._sample += paced.samples
        samples = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        frame = AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, paced.pts
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


def start_bot(connection: SmallWebRTCConnection) -> tuple[PipelineWorker, WorkerRunner]:
    """The bot: transport in -> echo -> transport out, greeting the caller over the channel."""
    transport = SmallWebRTCTransport(
        webrtc_connection=connection,
        params=TransportParams(audio_in_enabled=True, audio_out_enabled=True),
    )
    worker = PipelineWorker(
        Pipeline([transport.input(), Echo(), transport.output()]),
        idle_timeout_secs=None,
        enable_rtvi=False,
    )

    @transport.event_handler("on_client_connected")  # type: ignore[untyped-decorator]
    async def greet(_: Any, __: Any) -> None:
        await worker.queue_frame(OutputTransportMessageUrgentFrame({"text": "hello, caller"}))

    @transport.event_handler("on_app_message")  # type: ignore[untyped-decorator]
    async def reply(_: Any, message: Any, __: Any) -> None:
        await worker.queue_frame(OutputTransportMessageUrgentFrame({"you said": message}))

    @transport.event_handler("on_client_disconnected")  # type: ignore[untyped-decorator]
    async def hang_up(_: Any, __: Any) -> None:
        await worker.cancel()

    return worker, WorkerRunner(handle_sigint=False)


async def count_echo(track: MediaStreamTrack, frames: list[float]) -> None:
    """Record the RMS of every frame the bot sends back."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        frames.append(float(np.sqrt(np.mean(frame.to_ndarray().astype(np.float64) ** 2))))


async def call(config: PeerConnectionConfig, seconds: float) -> int:
    caller = RTCPeerConnection(config)
    caller.addTrack(ToneTrack())
    channel = caller.createDataChannel("chat")
    messages: list[Any] = []
    levels: list[float] = []
    readers: list[asyncio.Task[None]] = []
    channel.on("message", lambda text: messages.append(json.loads(text)))
    channel.on("open", lambda: channel.send(json.dumps({"type": "chat", "text": "hi bot"})))
    caller.on("track", lambda track: readers.append(asyncio.create_task(count_echo(track, levels))))
    await caller.setLocalDescription(await caller.createOffer())

    # What a Pipecat server does with the offer it receives from a client.
    connection = SmallWebRTCConnection()
    await connection.initialize(sdp=caller.localDescription.sdp, type="offer")
    worker, runner = start_bot(connection)
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())
    answer = connection.get_answer()
    started = time.monotonic()
    await caller.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    while caller.connectionState != "connected" and time.monotonic() - started < 10:
        await asyncio.sleep(0.005)
    on_library = isinstance(connection.pc, webrtc_ext.RTCPeerConnection)
    print(f"the bot's peer connection is webrtc_ext's: {on_library}")
    print(f"connected {1000 * (time.monotonic() - started):.1f} ms after applying the answer")
    await asyncio.sleep(seconds)

    await caller.close()
    await asyncio.wait_for(running, 10)
    for reader in readers:
        reader.cancel()
    echoed = sum(1 for level in levels if level > 1000)
    print(f"messages from the bot: {messages}")
    print(f"{len(levels)} audio frames back from the bot, {echoed} of them carrying the tone")
    return 0 if echoed and len(messages) == 2 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--nomination", choices=["aggressive", "regular"], default="aggressive")
    parser.add_argument("--verbose", action="store_true", help="show Pipecat's debug log")
    args = parser.parse_args()
    if not args.verbose:
        pipecat_logger.remove()
        pipecat_logger.add(sys.stderr, level="WARNING")
    config = PeerConnectionConfig(host_addresses=["127.0.0.1"], nomination=args.nomination)
    with webrtc_ext.installed(config):
        sys.exit(asyncio.run(call(config, args.seconds)))


if __name__ == "__main__":
    main()
