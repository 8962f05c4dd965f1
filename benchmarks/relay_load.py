"""How many relayed calls one core carries: the whole service, measured end to end.

Three processes on loopback:

- the service: ``python -m relay_service.cli serve`` as an operator runs it (SQLite, statistics
  recorded for every leg, live transcription on: every call has a WhatsApp leg, an agent leg and
  two transcription legs). Only this process is measured, from ``/proc``.
- the OpenAI Realtime stand-in: the package's Realtime simulator, answering the transcription
  legs and draining their RTP without decoding it (its speech recogniser is not what is measured).
- this process, the load generator: Meta's side (a Graph API endpoint and signed webhooks) with
  one ICE-lite caller per call, and one signed-in agent per call answering through the console's
  WebSocket. Callers and agents play pre-encoded Opus through the library's raw RTP path at 50
  packets/s each way and timestamp every packet they send and receive.

It ramps N calls, holds them, hangs them up (the callers hang up, as Meta's ``terminate``), and
reports the service's CPU seconds per call-second during the hold, its memory per active call and
after the calls end, loss and delay variation of the packets the relay carried, and call setup
time (the ``connect`` webhook sent → media flowing both ways).

Usage: ``python benchmarks/relay_load.py [--quick] [--calls N] [--hold SECONDS]
[--profile FILE] [--tracemalloc DIR] [--heap DIR] [--without-media] [--peer-rtcp SECONDS]
[--pin] [--rounds N] [--allocator malloc|pymalloc] [--hang-up-per-s RATE]
[--packet-path native|python]``
(``--pin``: the service on one CPU, the generator and the simulator on the others; ``--profile``:
py-spy raw stacks of the service during the hold; ``--without-media``: the calls held silent;
``--peer-rtcp``: the callers' and agents' mean RTCP interval, 5 s as libwebrtc's audio by
default; ``--tracemalloc``:
the service's allocations, snapshots after the warm-up call, with the calls and after they
end, for ``tracemalloc.Snapshot.load``; ``--heap``: the same three moments as text, the
allocator's arenas and pools and the objects by type; ``--allocator``: the service's
``PYTHONMALLOC``, CPython's ``pymalloc`` by default, as deploy/Containerfile runs it;
``--packet-path``: the service's per-packet work in C, ``webrtc_ext.native``, by default, or
``python``, the same path in Python, ``WEBRTC_EXT_NATIVE=0``).
Method and figures: docs/performance.md.
Last line: JSON with ``calls``, ``calls_per_core``, ``rss_mb_per_call``, ``loss_pct``,
``jitter_p99_ms``, ``setup_p50_ms``, ``setup_p95_ms``, ``rss_growth_mb_after`` (5 s after the
calls end), ``rss_growth_mb_after_30s``, ``rss_growth_mb_after_rounds`` (after each round of
``--rounds``), ``user_cpu_share``, ``wakeups_per_s``, ``allocator`` and ``packet_path``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: The service's ``PYTHONMALLOC``: CPython's default, as deploy/Containerfile runs it
#: (``--allocator malloc`` measures the other; docs/performance.md, fifth round).
DEPLOYED_ALLOCATOR = "pymalloc"
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from relay_service.simulators.caller import meta_offer  # noqa: E402
from relay_service.whatsapp import payloads, signature  # noqa: E402
from webrtc_ext import (  # noqa: E402
    PeerConnectionConfig,
    RTCPeerConnection,
    RTCSessionDescription,
)
from webrtc_ext import RTCRtpReceiver as RtpReceiver  # noqa: E402
from webrtc_ext import RTCRtpSender as RtpSender  # noqa: E402
from webrtc_ext.native import AVAILABLE as NATIVE_AVAILABLE  # noqa: E402
from webrtc_ext.rtp import RawRtpPacket  # noqa: E402

APP_SECRET = "load-app-secret"
ACCESS_TOKEN = "load-access-token"
PHONE_NUMBER_ID = "100000000000001"
OPENAI_KEY = "sk-load"
PASSWORD = "load-password-0123"
TICK = 0.020
#: Mean seconds between the RTCP reports of the generator's callers and agents: libwebrtc's
#: audio interval (Chrome's; WhatsApp's clients are modelled the same way). ``--peer-rtcp``.
PEER_RTCP_INTERVAL = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def opus_payloads(count: int) -> list[bytes]:
    """``count`` distinct 20 ms Opus packets (a tone with noise), encoded by PyAV's libopus."""
    import av
    import numpy as np

    rng = np.random.default_rng(5)
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format = 48000, "mono", "s16"
    codec.bit_rate = 24000
    out: list[bytes] = []
    n = 0
    while len(out) < count:
        t = (np.arange(960) + n * 960) / 48000
        tone = 6000 * np.sin(2 * math.pi * 330 * t) + rng.normal(0, 1500, 960)
        frame = av.AudioFrame.from_ndarray(
            tone.astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = 48000, n * 960
        out += [bytes(p) for p in codec.encode(frame)]
        n += 1
    unique = list(dict.fromkeys(out))
    return unique[:count]


# -- process measurements ----------------------------------------------------------------------


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process (all its threads), apart."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def context_switches(pid: int) -> int:
    """Voluntary context switches of a process's main thread: how often it slept and woke."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# -- the OpenAI Realtime stand-in (its own process) --------------------------------------------


def realtime_main(port: int) -> None:
    """The Realtime simulator on ``port``, draining audio raw instead of recognising it."""
    from relay_service.simulators.openai_realtime import RealtimeSimulator, SimulatedCall

    class DrainingRealtime(RealtimeSimulator):
        async def _listen(self, call: SimulatedCall, track: Any) -> None:
            receiver = next(
                t.receiver for t in call.pc.getTransceivers() if t.receiver.track is track
            )
            assert isinstance(receiver, RtpReceiver)
            receiver.on_rtp(lambda packet: None)
            await call.closed.wait()

    simulator = DrainingRealtime(api_keys={OPENAI_KEY})
    web.run_app(simulator.app, host="127.0.0.1", port=port, print=None, handle_signals=True)


# -- the load generator (this process) ---------------------------------------------------------


@dataclass
class Stream:
    """One direction of one call as the generator sees it: what was sent, what arrived."""

    sender: RtpSender | None = None
    sequence: int = 0
    sent_at: dict[bytes, tuple[float, bool]] = field(default_factory=dict)
    """Payload → when it was sent, and whether inside the measured window."""
    sent_in_window: int = 0
    received_in_window: int = 0
    transits: list[float] = field(default_factory=list)
    first_arrival: float | None = None
    measuring: bool = False

    def arrived(self, packet: RawRtpPacket) -> None:
        sent = self.sent_at.pop(packet.payload, None)
        if self.first_arrival is None:
            self.first_arrival = packet.arrival_time
        if sent is not None and sent[1]:
            self.received_in_window += 1
            self.transits.append(packet.arrival_time - sent[0])


@dataclass
class LoadCall:
    index: int
    call_id: str
    caller: RTCPeerConnection
    to_agent: Stream = field(default_factory=Stream)
    to_caller: Stream = field(default_factory=Stream)
    agent_pc: RTCPeerConnection | None = None
    webhook_at: float = 0.0
    setup_s: float | None = None


class Generator:
    """Meta's side, the callers and the agents."""

    def __init__(self, service_url: str, payloads_: list[bytes], peer_rtcp_interval: float) -> None:
        self.service_url = service_url
        self.payloads = payloads_
        self.calls: dict[str, LoadCall] = {}
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.agent_sessions: list[aiohttp.ClientSession] = []
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.ringing: dict[str, asyncio.Event] = {}
        self.answers: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.tasks: list[asyncio.Task[Any]] = []
        self.payload_index = 0
        self.quiet = False
        """No packets sent (``--without-media``): what a call costs with no audio at all."""
        self.peer_rtcp_interval = peer_rtcp_interval
        self.placed = 0
        """Calls placed so far: each gets its own WhatsApp call id, round after round."""

    # Meta's Graph API, as the service calls it.
    async def graph(self, request: web.Request) -> web.Response:
        body = await request.json()
        call = self.calls.get(str(body.get("call_id")))
        accepting = body.get("action") in ("pre_accept", "accept")
        if accepting and call is not None and call.caller.remoteDescription is None:
            sdp = body["session"]["sdp"]
            await call.caller.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        return web.json_response({"messaging_product": "whatsapp", "success": True})

    async def webhook(self, document: dict[str, Any]) -> None:
        raw = json.dumps(document).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature.sign(APP_SECRET, raw),
        }
        async with self.session.post(
            self.service_url + "/webhook/whatsapp", data=raw, headers=headers
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"webhook refused: {response.status}")

    async def sign_in(self, count: int) -> None:
        for index in range(count):
            session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
            self.agent_sessions.append(session)
            async with session.post(
                self.service_url + "/api/login",
                json={"name": f"agent{index}", "password": PASSWORD},
                headers={"Origin": self.service_url},
            ) as response:
                if response.status != 200:
                    raise RuntimeError(f"sign-in refused: {response.status}")
            ws = await session.ws_connect(
                self.service_url + "/api/ws", headers={"Origin": self.service_url}
            )
            self.sockets.append(ws)
            self.tasks.append(asyncio.ensure_future(self._console(ws)))

    async def _console(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if data.get("type") == "calls":
                for call in data.get("calls", []):
                    event = self.ringing.get(str(call.get("id")))
                    if event is not None and call.get("state") == "ringing":
                        event.set()
            elif data.get("type") in ("answer", "error") and data.get("call_id") in self.answers:
                future = self.answers[data["call_id"]]
                if not future.done():
                    future.set_result(data)

    async def ramp(self, calls: int, per_s: float) -> list[LoadCall]:
        """Place ``calls`` calls, ``per_s`` a second; each once media flows both ways."""
        placing = []
        for index in range(calls):
            placing.append(asyncio.ensure_future(self.place(index)))
            await asyncio.sleep(1 / per_s)
        return list(await asyncio.gather(*placing))

    async def place(self, index: int) -> LoadCall:
        """One call: the caller rings, agent ``index`` answers, media flows both ways."""
        caller = RTCPeerConnection(
            PeerConnectionConfig(
                ice_lite=True, host_addresses=["127.0.0.1"], audio_codecs=("audio/opus",),
                rtcp_interval=self.peer_rtcp_interval,
            )
        )  # fmt: skip
        caller.addTransceiver("audio", direction="sendrecv")
        await caller.setLocalDescription(await caller.createOffer())
        call_id = f"wacid.LOAD{self.placed:05d}{os.getpid()}"
        self.placed += 1
        call = LoadCall(index, call_id, caller)
        self.calls[call_id] = call
        self.ringing[call_id] = asyncio.Event()
        self._receive(caller, call.to_caller)
        call.webhook_at = time.monotonic()
        await self.webhook(
            payloads.connect(
                PHONE_NUMBER_ID, call_id, f"1555{index:07d}", payloads.DISPLAY_NUMBER,
                meta_offer(caller.localDescription.sdp), name=f"Caller {index}",
            )
        )  # fmt: skip
        await asyncio.wait_for(self.ringing[call_id].wait(), 30)
        agent = RTCPeerConnection(
            PeerConnectionConfig(
                host_addresses=["127.0.0.1"], rtcp_interval=self.peer_rtcp_interval
            )
        )
        call.agent_pc = agent
        agent.addTransceiver("audio", direction="sendrecv")
        self._receive(agent, call.to_agent)
        await agent.setLocalDescription(await agent.createOffer())
        self.answers[call_id] = asyncio.get_running_loop().create_future()
        await self.sockets[index].send_json(
            {"type": "answer", "call_id": call_id, "sdp": agent.localDescription.sdp}
        )
        reply = await asyncio.wait_for(self.answers[call_id], 30)
        if reply["type"] != "answer":
            raise RuntimeError(f"answer refused: {reply}")
        await agent.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
        call.to_caller.sender = await self._sender(agent)
        call.to_agent.sender = await self._sender(caller)
        while call.to_agent.first_arrival is None or call.to_caller.first_arrival is None:
            if time.monotonic() - call.webhook_at > 30:
                raise RuntimeError(f"no media both ways on {call_id}")
            await asyncio.sleep(0.01)
        call.setup_s = max(call.to_agent.first_arrival, call.to_caller.first_arrival) - (
            call.webhook_at
        )
        return call

    def _receive(self, pc: RTCPeerConnection, stream: Stream) -> None:
        @pc.on("track")
        def on_track(track: Any) -> None:
            receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
            assert isinstance(receiver, RtpReceiver)
            receiver.on_rtp(stream.arrived)

    async def _sender(self, pc: RTCPeerConnection) -> RtpSender:
        sender = pc.getTransceivers()[0].sender
        assert isinstance(sender, RtpSender)
        deadline = time.monotonic() + 30
        while sender.codec is None or pc.connectionState != "connected":
            if time.monotonic() > deadline:
                raise RuntimeError("a leg did not connect")
            await asyncio.sleep(0.01)
        return sender

    async def pace(self, stop: asyncio.Event) -> None:
        """Every 20 ms, one Opus packet on every stream that has a sender."""
        start, tick = time.monotonic(), 0
        while not stop.is_set():
            for call in list(self.calls.values()):
                for stream in (call.to_agent, call.to_caller):
                    if stream.sender is None or self.quiet:
                        continue
                    payload = self.payloads[self.payload_index % len(self.payloads)]
                    self.payload_index += 1
                    stream.sequence += 1
                    now = time.monotonic()
                    packet = RawRtpPacket.create(
                        payload, payload_type=111, sequence_number=stream.sequence & 0xFFFF,
                        timestamp=(960 * stream.sequence) & 0xFFFFFFFF,
                    )  # fmt: skip
                    if stream.sender.send_rtp(packet):
                        stream.sent_at[payload] = (now, stream.measuring)
                        if stream.measuring:
                            stream.sent_in_window += 1
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * TICK - time.monotonic()))

    def measure(self, on: bool) -> None:
        for call in self.calls.values():
            for stream in (call.to_agent, call.to_caller):
                stream.measuring = on

    async def hang_up_all(self, per_s: float = 0.0) -> None:
        """The callers hang up: all at once, or ``per_s`` calls a second."""
        for call in list(self.calls.values()):
            if per_s:
                await asyncio.sleep(1 / per_s)
            call.to_agent.sender = call.to_caller.sender = None
            await self.webhook(
                payloads.terminate(
                    PHONE_NUMBER_ID, call.call_id, f"1555{call.index:07d}",
                    payloads.DISPLAY_NUMBER, status="COMPLETED", start_time=int(time.time()),
                )
            )  # fmt: skip
            await call.caller.close()

    async def forget_ended(self) -> None:
        """Close the agents' side of the calls hung up, and start the next round afresh."""
        for call in self.calls.values():
            if call.agent_pc is not None:
                await call.agent_pc.close()
        self.calls.clear()

    async def close(self) -> None:
        for call in self.calls.values():
            await call.caller.close()
            if call.agent_pc is not None:
                await call.agent_pc.close()
        for ws in self.sockets:
            await ws.close()
        for task in self.tasks:
            task.cancel()
        for session in (self.session, *self.agent_sessions):
            await session.close()


async def active_calls(session: aiohttp.ClientSession, url: str) -> float:
    async with session.get(url + "/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith("relay_calls_active") and not line.startswith("relay_calls_active_"):
            return float(line.split()[-1])
    return 0.0


def service_environment(
    port: int,
    graph_url: str,
    realtime_url: str,
    data: str,
    calls: int,
    no_media_s: float = 20,
    allocator: str = DEPLOYED_ALLOCATOR,
    native: bool = True,
) -> dict[str, str]:
    environ = dict(os.environ)
    environ.update(
        {
            # Python's allocator (``--allocator``).
            "PYTHONMALLOC": allocator,
            # The per-packet work in C or in Python (``--packet-path``).
            "WEBRTC_EXT_NATIVE": "1" if native else "0",
            "RELAY_HOST": "127.0.0.1",
            "RELAY_PORT": str(port),
            "RELAY_DATA_DIR": data,
            "SIMULATORS": "off",
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": "load-verify",
            "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
            "WHATSAPP_GRAPH_BASE_URL": graph_url,
            "OPENAI_BASE_URL": realtime_url,
            "OPENAI_API_KEY": OPENAI_KEY,
            "TRANSCRIPTION_ENABLED": "on",
            "ASSISTANT_ENABLED": "off",
            "RELAY_MEDIA_ADDRESSES": "127.0.0.1",
            "RELAY_NO_MEDIA_TIMEOUT": str(no_media_s),
            "RELAY_AGENTS": ",".join(f"agent{i}:{PASSWORD}" for i in range(calls + 1)),
            # A PYTHONPATH given to the benchmark comes first: the service of another checkout
            # can be measured with this generator (``PYTHONPATH=../old python relay_load.py``).
            "PYTHONPATH": os.pathsep.join(
                p for p in (os.environ.get("PYTHONPATH", ""), str(ROOT)) if p
            ),
        }
    )
    return environ


async def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


TRACING_SERVICE = """
import collections, gc, os, signal, sys, tracemalloc
folder, mode, taken = sys.argv[1], sys.argv[2], [0]
def heap(path):
    with open(path, "w") as out:
        stderr = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(stderr, 2)
            os.close(stderr)
        info = mallinfo()
        if info:
            out.write("\\n# glibc malloc (mallinfo2): bytes in use by native code and free\\n")
            out.writelines(f"{name} = {value}\\n" for name, value in info.items())
        types = collections.Counter(
            f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects()
        )
        out.write("\\n# objects tracked by the garbage collector, by type\\n")
        out.writelines(f"{n} {name}\\n" for name, n in types.most_common())
def mallinfo():
    import ctypes
    fields = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
              "uordblks", "fordblks", "keepcost")
    class Info(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in fields]
    try:
        call = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return {}
    call.restype = Info
    info = call()
    figures = {name: getattr(info, name) for name in ("arena", "hblkhd", "uordblks", "fordblks")}
    try:  # SQLite's own allocations (page caches, statements): a part of uordblks
        import _sqlite3
        used = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
        used.restype = ctypes.c_int64
        figures["sqlite3_memory_used"] = used()
    except (ImportError, OSError, AttributeError):
        pass
    return figures
def snapshot(*_):
    taken[0] += 1
    target = os.path.join(folder, f"snapshot-{taken[0]}")
    if mode == "heap":
        heap(target + ".part")
        os.rename(target + ".part", target)
        return
    if not tracemalloc.is_tracing():
        tracemalloc.start(int(os.environ.get("LOAD_TRACE_FRAMES", "12")))
    tracemalloc.take_snapshot().dump(target)
signal.signal(signal.SIGUSR1, snapshot)
sys.argv = ["relay-service", *sys.argv[3:]]
from relay_service.cli import main
main()
"""
"""The service with a snapshot on ``SIGUSR1``, written as ``snapshot-<n>`` into a folder.

``tracemalloc`` mode: the first starts tracing (imports and start-up are not traced).
``heap`` mode: a text file, ``sys._debugmallocstats()`` (the allocator's arenas, pools and
blocks: what RSS holds that live objects do not), glibc's ``mallinfo2`` (native code's heap:
``uordblks`` in use, ``fordblks`` free) with SQLite's share of it, then the garbage
collector's objects by type.
"""


async def take_snapshot(pid: int, folder: str | None, number: int) -> None:
    """Snapshot ``number`` of a traced service (nothing without ``--tracemalloc``/``--heap``)."""
    if folder is None:
        return
    target = Path(folder) / f"snapshot-{number}"
    os.kill(pid, signal.SIGUSR1)
    for _ in range(600):
        if target.exists():
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)  # the dump is written


async def run(
    calls: int,
    hold: float,
    ramp_per_s: float,
    profile: str | None,
    trace: str | None = None,
    trace_mode: str = "tracemalloc",
    without_media: bool = False,
    peer_rtcp: float = PEER_RTCP_INTERVAL,
    pin: tuple[set[int], set[int]] | None = None,
    rounds: int = 1,
    allocator: str = DEPLOYED_ALLOCATOR,
    hang_up_per_s: float = 0.0,
    native: bool = True,
) -> dict[str, Any]:
    payload_set = opus_payloads(600)
    graph_port, service_port, realtime_port = free_port(), free_port(), free_port()
    service_url = f"http://127.0.0.1:{service_port}"
    if pin is not None:
        # This process, and the simulator started from it (a child keeps its parent's CPUs).
        os.sched_setaffinity(0, pin[1])
    realtime = multiprocessing.get_context("spawn").Process(
        target=realtime_main, args=(realtime_port,), daemon=True
    )
    realtime.start()
    generator = Generator(service_url, payload_set, peer_rtcp)
    graph_app = web.Application()
    graph_app.router.add_post("/{version}/{phone}/calls", generator.graph)
    graph_runner = web.AppRunner(graph_app)
    await graph_runner.setup()
    await web.TCPSite(graph_runner, "127.0.0.1", graph_port).start()
    with contextlib.ExitStack() as stack:
        data = stack.enter_context(tempfile.TemporaryDirectory(prefix="relay-load-"))
        environ = service_environment(
            service_port, f"http://127.0.0.1:{graph_port}",
            f"http://127.0.0.1:{realtime_port}/v1", data, calls,
            no_media_s=hold + 60 if without_media else 20, allocator=allocator, native=native,
        )  # fmt: skip
        command = [sys.executable, "-m", "relay_service.cli", "--log-level", "WARNING", "serve"]
        if trace is not None:
            Path(trace).mkdir(parents=True, exist_ok=True)
            command[1:3] = ["-c", TRACING_SERVICE, trace, trace_mode]
        log = stack.enter_context(open(Path(data) / "log", "w"))
        service = subprocess.Popen(
            command, env=environ, cwd=data, stdout=subprocess.DEVNULL, stderr=log
        )
        if pin is not None:
            os.sched_setaffinity(service.pid, pin[0])
        stop = asyncio.Event()
        try:
            await wait_http(service_url + "/healthz")
            await wait_http(f"http://127.0.0.1:{realtime_port}/v1/realtime/calls")
            await generator.sign_in(calls + 1)
            pacer = asyncio.ensure_future(generator.pace(stop))
            # One warm-up call, so what is loaded once (codecs, first-use caches) is in the base.
            await generator.place(calls)
            await asyncio.sleep(2)
            await generator.hang_up_all()
            await generator.forget_ended()
            await until_idle(generator.session, service_url)
            await asyncio.sleep(3)
            await take_snapshot(service.pid, trace, 1)  # after a warm-up call
            rss_start = rss_mb(service.pid)
            print(f"service RSS after a warm-up call: {rss_start:.1f} MB")

            ramp_started = time.monotonic()
            placed = await generator.ramp(calls, ramp_per_s)
            print(f"ramp: {calls} calls set up in {time.monotonic() - ramp_started:.1f} s")
            await asyncio.sleep(2)  # settle

            generator.measure(True)
            if profile:
                # py-spy samples the service during the hold (it reads the process, no overhead
                # inside it); the raw output feeds flame graph tools.
                spy = subprocess.Popen(
                    ["py-spy", "record", "--pid", str(service.pid), "--duration", str(int(hold)),
                     "--rate", "100", "--format", "raw", "--output", profile, "--nonblocking"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            if without_media:
                generator.quiet = True
                await asyncio.sleep(1)  # the last packets are handled before the window opens
            split_start = cpu_split(service.pid)
            switches_start = context_switches(service.pid)
            cpu_start, wall_start = sum(split_start), time.monotonic()
            rss_samples = []
            while time.monotonic() - wall_start < hold:
                await asyncio.sleep(1)
                rss_samples.append(rss_mb(service.pid))
            split_end = cpu_split(service.pid)
            cpu_hold = sum(split_end) - cpu_start
            user_hold = split_end[0] - split_start[0]
            switches = context_switches(service.pid) - switches_start
            wall_hold = time.monotonic() - wall_start
            generator.measure(False)
            if profile:
                spy.wait(30)
            await asyncio.sleep(0.5)  # the last packets of the window arrive
            rss_active = max(rss_samples)
            await take_snapshot(service.pid, trace, 2)  # with the calls

            ended = time.monotonic()
            await generator.hang_up_all(hang_up_per_s)
            await until_idle(generator.session, service_url)
            teardown = time.monotonic() - ended
            await asyncio.sleep(5)
            rss_after = rss_mb(service.pid)
            rss_after_rounds = [rss_after]
            await generator.forget_ended()
            for _ in range(rounds - 1):
                # The same calls again (new call ids): does what stays after a round grow?
                await generator.ramp(calls, ramp_per_s)
                await asyncio.sleep(hold)
                await generator.hang_up_all(hang_up_per_s)
                await generator.forget_ended()
                await until_idle(generator.session, service_url)
                await asyncio.sleep(5)
                rss_after_rounds.append(rss_mb(service.pid))
                await take_snapshot(service.pid, trace, 1 + len(rss_after_rounds))
                print(f"round {len(rss_after_rounds)}: RSS {rss_after_rounds[-1]:.1f} MB after")
            # And once the consoles' WebSocket heartbeats (every 20 s) have renewed the small
            # objects that pinned the calls' freed allocator blocks (docs/performance.md).
            await asyncio.sleep(25)
            rss_later = rss_mb(service.pid)
            await take_snapshot(service.pid, trace, 2 + rounds)  # after they ended
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await pacer
            service.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.wait(30)
            service.kill()
            await generator.close()
            await graph_runner.cleanup()
            realtime.terminate()
            realtime.join(10)
    streams = [s for c in placed for s in (c.to_agent, c.to_caller)]
    sent = sum(s.sent_in_window for s in streams)
    received = sum(s.received_in_window for s in streams)
    variation = []
    for stream in streams:
        if stream.transits:
            base = statistics.median(stream.transits)
            variation += [abs(t - base) * 1000 for t in stream.transits]
    setups = [1000 * c.setup_s for c in placed if c.setup_s is not None]
    cpu_per_call_second = cpu_hold / (calls * wall_hold)
    return {
        "calls": calls,
        "hold_s": round(wall_hold, 1),
        "cpu_fraction_per_call": cpu_per_call_second,
        "calls_per_core": 1 / cpu_per_call_second,
        "service_cpu_percent": 100 * cpu_hold / wall_hold,
        "user_cpu_share": user_hold / max(cpu_hold, 1e-9),
        "wakeups_per_s": switches / wall_hold,
        "rss_start_mb": rss_start,
        "rss_active_mb": rss_active,
        "rss_mb_per_call": (rss_active - rss_start) / calls,
        "rss_after_mb": rss_after,
        "rss_growth_mb_after": rss_after - rss_start,
        "rss_growth_mb_after_30s": rss_later - rss_start,
        "rss_growth_mb_after_rounds": [round(r - rss_start, 3) for r in rss_after_rounds],
        "packets_sent": sent,
        "packets_received": received,
        "loss_pct": 100 * (sent - received) / max(1, sent),
        "jitter_p50_ms": percentile(variation, 0.50),
        "jitter_p99_ms": percentile(variation, 0.99),
        "setup_p50_ms": percentile(setups, 0.50),
        "setup_p95_ms": percentile(setups, 0.95),
        "teardown_s": teardown,
    }


async def until_idle(session: aiohttp.ClientSession, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while await active_calls(session, url) > 0:
        if time.monotonic() > deadline:
            raise RuntimeError("calls did not end")
        await asyncio.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 calls held 15 s")
    parser.add_argument("--calls", type=int, help="concurrent calls (default 30; quick 8)")
    parser.add_argument("--hold", type=float, help="seconds the calls are held (default 30)")
    parser.add_argument(
        "--profile", metavar="FILE", help="py-spy the service during the hold (raw stacks)"
    )
    parser.add_argument(
        "--without-media",
        action="store_true",
        help="hold the calls silent (no packets): the per-call cost of timers, RTCP, "
        "statistics and consent alone",
    )
    parser.add_argument(
        "--tracemalloc",
        metavar="DIR",
        help="run the service under tracemalloc; snapshots after warm-up, during, after into DIR",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        metavar="N",
        help="ramp, hold and end the calls N times (the figures are the first round's; "
        "rss_growth_mb_after_rounds has the RSS after each)",
    )
    parser.add_argument(
        "--heap",
        metavar="DIR",
        help="the service's allocator statistics (CPython's and glibc's) and objects by type "
        "after warm-up, during and after the calls (and after each further round), as text "
        "into DIR (cheap: the calls run as usual)",
    )
    parser.add_argument(
        "--peer-rtcp",
        type=float,
        default=PEER_RTCP_INTERVAL,
        metavar="SECONDS",
        help="mean RTCP report interval of the callers and agents (default 5, libwebrtc's "
        "for audio; 1 is aiortc's)",
    )
    parser.add_argument(
        "--hang-up-per-s",
        type=float,
        default=0.0,
        metavar="RATE",
        help="the callers hang up RATE calls a second (default 0: all at once, the harder "
        "case for the memory after the calls; the ramp up is 4 a second)",
    )
    parser.add_argument(
        "--allocator",
        choices=("malloc", "pymalloc"),
        default=DEPLOYED_ALLOCATOR,
        help="the service's PYTHONMALLOC (default pymalloc, CPython's, as deploy/Containerfile "
        "runs it; malloc puts every object in glibc's heap, trimmed after the calls)",
    )
    parser.add_argument(
        "--packet-path",
        choices=("native", "python"),
        default="native",
        help="the service's per-packet work: in C (webrtc_ext.native, the default when it is "
        "built) or the same path in Python (WEBRTC_EXT_NATIVE=0), to compare",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the service on the first CPU, the generator and the simulator on the others, so "
        "that they do not share a core's caches (as the service alone on its cores would not)",
    )
    args = parser.parse_args()
    if args.tracemalloc and args.heap:
        parser.error("--tracemalloc and --heap take their snapshots the same way: one at a time")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    pin = None
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            parser.error("--pin needs at least two CPUs")
        pin = ({cpus[0]}, set(cpus[1:]))
        print(f"service pinned to CPU {cpus[0]}, generator and simulator to {cpus[1:]}")
    calls = args.calls or (8 if args.quick else 30)
    hold = args.hold or (15.0 if args.quick else 30.0)
    result = asyncio.run(
        run(
            calls,
            hold,
            ramp_per_s=4.0,
            profile=args.profile,
            trace=args.tracemalloc or args.heap,
            trace_mode="heap" if args.heap else "tracemalloc",
            without_media=args.without_media,
            peer_rtcp=args.peer_rtcp,
            pin=pin,
            rounds=args.rounds,
            allocator=args.allocator,
            hang_up_per_s=args.hang_up_per_s,
            native=args.packet_path == "native",
        )
    )
    print(
        f"{calls} calls (caller ↔ agent, two transcription legs each, statistics recorded), "
        f"held {result['hold_s']} s; the service's allocator: PYTHONMALLOC={args.allocator}; "
        f"per-packet work: {args.packet_path if NATIVE_AVAILABLE else 'python (C not built)'}"
    )
    print(
        f"service CPU: {result['service_cpu_percent']:.1f} % of a core, "
        f"{1000 * result['cpu_fraction_per_call']:.2f} ms per call-second "
        f"→ {result['calls_per_core']:.0f} calls per core "
        f"({100 * result['user_cpu_share']:.0f} % of it in Python and libraries, "
        f"{100 - 100 * result['user_cpu_share']:.0f} % in the kernel; "
        f"{result['wakeups_per_s']:.0f} wake-ups/s)"
    )
    print(
        f"service memory: {result['rss_start_mb']:.1f} MB → {result['rss_active_mb']:.1f} MB "
        f"with the calls ({result['rss_mb_per_call']:.2f} MB per call) → "
        f"{result['rss_after_mb']:.1f} MB after they ended "
        f"({result['rss_growth_mb_after']:+.1f} MB; "
        f"{result['rss_growth_mb_after_30s']:+.1f} MB 30 s after)"
    )
    print(
        f"media: {result['packets_received']}/{result['packets_sent']} packets arrived "
        f"(loss {result['loss_pct']:.3f} %), delay variation p50 {result['jitter_p50_ms']:.2f} ms"
        f", p99 {result['jitter_p99_ms']:.2f} ms"
    )
    print(
        f"setup (connect webhook → media both ways): p50 {result['setup_p50_ms']:.0f} ms, "
        f"p95 {result['setup_p95_ms']:.0f} ms; teardown of all calls {result['teardown_s']:.1f} s"
    )
    keys = ("calls", "calls_per_core", "rss_mb_per_call", "loss_pct", "jitter_p99_ms",
            "setup_p50_ms", "setup_p95_ms", "rss_growth_mb_after", "rss_growth_mb_after_30s",
            "user_cpu_share",
            "wakeups_per_s")  # fmt: skip
    figures: dict[str, Any] = {k: round(float(result[k]), 3) for k in keys}
    if args.rounds > 1:
        figures["rss_growth_mb_after_rounds"] = result["rss_growth_mb_after_rounds"]
        print(
            "RSS after each round, against the start: "
            + ", ".join(f"{g:+.1f} MB" for g in result["rss_growth_mb_after_rounds"])
        )
    figures["allocator"] = args.allocator
    figures["packet_path"] = args.packet_path if NATIVE_AVAILABLE else "python"
    if args.without_media:  # nothing was sent in the window: no loss or jitter to report
        figures.update(without_media=True, loss_pct=None, jitter_p99_ms=None)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
