"""Stream an audio file to a browser or to any WebRTC peer, without re-encoding Ogg/Opus.

An Ogg/Opus file is sent packet by packet as it is stored; any other file (WAV, MP3, ...) is
encoded to Opus once. Packets are paced in real time through a raw RTP sender.

    python examples/send_from_file.py FILE                 # serve a page on http://127.0.0.1:8080
    python examples/send_from_file.py FILE --loopback out.ogg   # send to a local peer, record it

With ``--loopback`` a second local connection receives the stream and writes it to an Ogg file
without decoding it, so the example runs with no browser at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from aiortc import RTCSessionDescription

from webrtc_ext import PeerConnectionConfig, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from webrtc_ext.media import OggOpusRecorder, open_source, play

CONFIG = PeerConnectionConfig(host_addresses=["127.0.0.1"], audio_codecs=("audio/opus",))

PAGE = """<!doctype html><meta charset="utf-8"><title>send_from_file</title>
<button id="start">Play</button> <audio id="audio" autoplay controls></audio>
<script>
document.getElementById("start").onclick = async () => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("audio", {direction: "recvonly"});
  pc.ontrack = (event) => { document.getElementById("audio").srcObject = event.streams[0]
    || new MediaStream([event.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => { if (pc.iceGatheringState === "complete") done();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done(); });
  const reply = await fetch("/offer", {method: "POST", body: JSON.stringify(pc.localDescription)});
  await pc.setRemoteDescription(await reply.json());
};
</script>"""


async def stream_to(pc: RTCPeerConnection, path: str) -> int:
    """Wait until ``pc`` is connected, then play the file through its first sender."""
    sender = pc.getTransceivers()[0].sender
    assert isinstance(sender, RTCRtpSender)
    while sender.codec is None:
        if pc.connectionState in ("failed", "closed"):
            return 0
        await asyncio.sleep(0.05)
    return await play(open_source(path).packets(), sender)


async def loopback(path: str, output: str) -> None:
    """Send the file to a second local connection that records it to ``output``."""
    sender_pc, receiver_pc = RTCPeerConnection(CONFIG), RTCPeerConnection(CONFIG)
    sender_pc.addTransceiver("audio", direction="sendonly")
    with open(output, "wb") as file:
        try:
            await sender_pc.setLocalDescription(await sender_pc.createOffer())
            await receiver_pc.setRemoteDescription(sender_pc.localDescription)
            receiver = receiver_pc.getTransceivers()[0].receiver
            assert isinstance(receiver, RTCRtpReceiver)
            recorder = OggOpusRecorder(receiver, file)
            await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
            await sender_pc.setRemoteDescription(receiver_pc.localDescription)
            sent = await stream_to(sender_pc, path)
            await asyncio.sleep(0.3)
            recorder.close()
            print(f"sent {sent} packets; recorded {recorder.packets_written} to {output}")
        finally:
            await sender_pc.close()
            await receiver_pc.close()


async def serve(path: str, port: int) -> None:
    """Serve the page; every browser that presses Play gets the file."""
    from aiohttp import web

    connections: set[RTCPeerConnection] = set()
    streams: set[asyncio.Future[None]] = set()

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def offer(request: web.Request) -> web.Response:
        description = json.loads(await request.text())
        pc = RTCPeerConnection(CONFIG)
        connections.add(pc)
        await pc.setRemoteDescription(RTCSessionDescription(**description))
        pc.getTransceivers()[0].direction = "sendonly"
        await pc.setLocalDescription(await pc.createAnswer())

        async def run() -> None:
            try:
                await stream_to(pc, path)
            finally:
                await pc.close()
                connections.discard(pc)

        stream = asyncio.ensure_future(run())
        streams.add(stream)
        stream.add_done_callback(streams.discard)
        answer = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}
        return web.json_response(answer)

    app = web.Application()
    app.add_routes([web.get("/", index), web.post("/offer", offer)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"open http://127.0.0.1:{port}/ and press Play (Ctrl-C to stop)")
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="Ogg/Opus (sent as is) or any audio file (encoded)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--loopback", metavar="OUT_OGG", help="send to a local peer instead")
    args = parser.parse_args()
    if args.loopback:
        asyncio.run(loopback(args.file, args.loopback))
    else:
        asyncio.run(serve(args.file, args.port))


if __name__ == "__main__":
    main()
