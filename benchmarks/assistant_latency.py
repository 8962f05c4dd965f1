"""Time from a call's answer to the assistant's first audio at the caller, aggressive versus
regular ICE nomination on the service's legs toward the OpenAI Realtime simulator.

Two relay services run in this process (``RELAY_ICE_NOMINATION=aggressive`` and ``regular``),
each with its WhatsApp simulator and embedded Realtime simulator, the AI assistant on. For each
run a simulated caller (silent) calls each service in turn; the figure is the time from the
service's ``accept`` reaching the WhatsApp simulator to the first loud audio frame (the
assistant's greeting) decoded at the caller. The Realtime simulator's answers carry one extra
host candidate of the highest priority that never answers, as an address of another network
would: regular nomination waits for that check before nominating (``regular_nomination_timeout``),
aggressive nominates with the first pair that works.

    python benchmarks/assistant_latency.py [--runs 10] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ice_nomination import with_unreachable_candidate
from relay_service.app import Service
from relay_service.settings import Settings
from relay_service.simulators.openai_realtime import RealtimeSimulator

FIRST_AUDIO_TIMEOUT = 30.0
LOUD = 300.0


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable_answers(simulator: RealtimeSimulator, port: int) -> None:
    """Make ``simulator`` add a never-answering highest-priority candidate to its answers."""

    @web.middleware
    async def add_candidate(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if request.path.endswith("/realtime/calls") and response.status == 201:
            assert isinstance(response, web.Response) and isinstance(response.body, bytes)
            response.body = with_unreachable_candidate(response.body.decode(), port).encode()
        return response

    simulator.app.middlewares.append(add_candidate)


@contextlib.asynccontextmanager
async def service(nomination: str, data_dir: Path, silent_port: int) -> AsyncIterator[Service]:
    """A started relay service with the assistant on and the given nomination."""
    settings = Settings.from_env(
        {
            "RELAY_PORT": str(free_port()),
            "RELAY_DATA_DIR": str(data_dir / nomination),
            "ASSISTANT_ENABLED": "on",
            "RELAY_ICE_NOMINATION": nomination,
        },
        dotenv=None,
    )
    relay = Service(settings)
    assert relay.realtime_simulator is not None
    unreachable_answers(relay.realtime_simulator, silent_port)
    runner = web.AppRunner(relay.app())
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    try:
        yield relay
    finally:
        await runner.cleanup()


async def one_call(relay: Service) -> float:
    """Milliseconds from accept to the assistant's first loud frame at the caller."""
    simulator = relay.simulator
    assert simulator is not None
    call_id = await simulator.place_call(audio="silence")
    call = simulator.calls[call_id]
    deadline = time.monotonic() + FIRST_AUDIO_TIMEOUT
    try:
        while call.peer.max_level < LOUD:
            if time.monotonic() > deadline:
                raise TimeoutError("the assistant never spoke")
            await asyncio.sleep(0.002)
        heard = time.time()
        assert call.accepted_at is not None
        return 1000 * (heard - call.accepted_at)
    finally:
        await simulator.hangup(call_id)
        await asyncio.sleep(0.3)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="3 runs per mode")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    logging.basicConfig(level=logging.ERROR)
    modes = ("aggressive", "regular")
    times: dict[str, list[float]] = {m: [] for m in modes}
    with (
        tempfile.TemporaryDirectory() as scratch,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent,
    ):
        silent.bind(("127.0.0.1", 0))  # takes the checks of the unreachable candidate
        port = silent.getsockname()[1]
        async with (
            service("aggressive", Path(scratch), port) as aggressive,
            service("regular", Path(scratch), port) as regular,
        ):
            services = {"aggressive": aggressive, "regular": regular}
            await one_call(aggressive)  # warm-up: loads the recogniser, espeak-ng, codecs
            for _ in range(runs):
                for mode in modes:
                    times[mode].append(await one_call(services[mode]))
    medians = {m: statistics.median(t) for m, t in times.items()}
    print(f"answer → assistant's first audio at the caller ({runs} runs per mode):")
    for mode in modes:
        values = times[mode]
        print(
            f"  {mode:10s} median {medians[mode]:7.1f} ms"
            f"   min {min(values):7.1f}   max {max(values):7.1f}"
        )
    result = {
        "runs": runs,
        "aggressive_ms": round(medians["aggressive"], 1),
        "regular_ms": round(medians["regular"], 1),
        "ratio": round(medians["regular"] / medians["aggressive"], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
