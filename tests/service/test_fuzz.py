"""Fuzzing a running service: random signed webhooks and random console messages at once.

A seeded generator (reproducible: the seed is in the test id) posts correctly signed webhook
bodies, from well-formed calling events with wrong values to deep nesting and raw bytes, while
two signed-in agents send random console messages, over real loopback HTTP and WebSocket. Then
the agents leave and the service shuts down. Asserted: no 5xx; no unhandled exception (no
aiohttp "Error handling request", no failed background task, nothing reaching the event loop's
exception handler); every stored call ended; every internal store within its bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from relay_service.app import Service
from relay_service.media import ToneTrack
from relay_service.simulators.caller import CallerPeer
from relay_service.storage import Storage
from relay_service.whatsapp import payloads, signature
from webrtc_ext import PeerConnectionConfig, RTCPeerConnection

from .conftest import make_settings

pytestmark = pytest.mark.integration

OURS = "100000000000001"
FUZZ_SECONDS = 12.0
MAX_WEBHOOKS = 400
MAX_CONSOLE_MESSAGES = 300
UNHANDLED = (
    "Error handling request",
    "background task failed",
    "Task exception was never",
    "console message",  # "... failed": an exception the console could only call internal
)


class Problems(logging.Handler):
    """Every log record that means an exception nobody handled."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(marker in message for marker in UNHANDLED):
            self.records.append(f"{record.name}: {message}\n{self.format(record)}")


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value of any type, sometimes hostile (deep, long, huge)."""
    pick = rng.randrange(12 if depth < 3 else 8)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False])
    if pick == 2:
        return rng.choice([0, -1, 1, 2**31, 2**63, -(2**64), 10**30])
    if pick == 3:
        return rng.choice([0.5, -1e308, 1e308, 3.0])
    if pick == 4:
        return rng.choice(["", "x", "connect", "terminate", "RINGING", "wacid.F1", OURS])
    if pick == 5:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(40)))
    if pick == 6:
        return "y" * rng.choice([200, 5000, 70_000])
    if pick == 7:
        return rng.choice(["v=0\r\n", "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "\x00\xff"])
    if pick in (8, 9):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if pick == 10:
        return {rng.choice(KEYS): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    nest: Any = 1
    for _ in range(rng.choice([40, 500])):  # deeper ones are in the raw bodies
        nest = [nest]
    return nest


KEYS = ["id", "event", "from", "to", "session", "sdp", "sdp_type", "status", "direction",
        "errors", "code", "title", "timestamp", "metadata", "phone_number_id", "calls",
        "statuses", "contacts", "wa_id", "profile", "name", "value", "field", "x"]  # fmt: skip


def mutate(rng: random.Random, document: Any) -> None:
    """Replace or delete one random member somewhere in ``document``, in place."""
    node = document
    for _ in range(rng.randrange(1, 7)):
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        containers = [(k, v) for k, v in children if isinstance(v, dict | list) and v]
        if not containers or rng.random() < 0.3:
            break
        _, node = rng.choice(containers)
    if isinstance(node, dict) and node:
        key = rng.choice(list(node))
        if rng.random() < 0.2:
            del node[key]
        else:
            node[key] = random_value(rng)
    elif isinstance(node, list) and node:
        node[rng.randrange(len(node))] = random_value(rng)


def webhook_body(rng: random.Random, call_ids: list[str], offer: str) -> bytes:
    """One webhook body: mostly calling events (some mutated), sometimes raw junk."""
    roll = rng.random()
    if roll < 0.1:
        return rng.choice(
            [
                bytes(rng.randrange(256) for _ in range(rng.randrange(200))),
                b"[" * rng.choice([10, 1000, 100_000]),
                b'{"entry":' + b"[" * 3000 + b"]" * 3000 + b"}",
                b'{"n":' + b"7" * 6000 + b"}",
                b"[]",
                b"null",
                b'"text"',
                b'{"entry": [{"changes": [{"field": "calls", "value": []}]}]}',
            ]
        )
    phone = rng.choices([OURS, "999999999999999", ""], weights=[8, 1, 1])[0]
    call_id = rng.choice(call_ids)
    kind = rng.randrange(5)
    if kind == 0:
        sdp = offer if rng.random() < 0.15 else rng.choice(["v=0\r\n", "garbage", offer[:200]])
        document = payloads.connect(phone, call_id, "491", "1555", sdp)
    elif kind == 1:
        document = payloads.connect(
            phone, call_id, "1555", "491", "v=0\r\n", direction="BUSINESS_INITIATED"
        )
    elif kind == 2:
        errors = [{"code": 138021, "title": "No media for a long time."}]
        document = payloads.terminate(phone, call_id, "491", "1555", errors=errors)
    else:
        state = rng.choice(["RINGING", "ACCEPTED", "REJECTED", "ringing", "HELD"])
        # Statuses of calls nobody made, more of them than the early-event store keeps.
        target = call_id if rng.random() < 0.5 else f"wacid.STRAY{rng.randrange(10**6)}"
        document = payloads.status(phone, target, "491", state)
    if not phone:
        del document["entry"][0]["changes"][0]["value"]["metadata"]
    for _ in range(rng.choice([0, 0, 1, 2, 4])):
        mutate(rng, document)
    return json.dumps(document).encode()


TYPES = ["answer", "hangup", "handback", "dial", "hold", "resume", "keys", "transfer",
         "listen", "stop_listening", "bogus", 7, None]  # fmt: skip


def console_message(rng: random.Random, call_ids: list[str], offer: str) -> str:
    """One console message: the four real types with random fields, or junk."""
    roll = rng.random()
    if roll < 0.1:
        return rng.choice(
            ["", "not json", "[]", "null", "42", '{"type":' + "[" * 2000 + "]" * 2000 + "}"]
        )
    message: dict[str, Any] = {"type": rng.choice(TYPES)}
    if rng.random() < 0.9:
        message["call_id"] = rng.choice([*call_ids, random_value(rng)])
    if rng.random() < 0.7:
        message["sdp"] = offer if rng.random() < 0.5 else random_value(rng)
    if rng.random() < 0.5:
        message["to"] = rng.choice(["4915112345678", "alice", "bob", random_value(rng)])
    if rng.random() < 0.3:
        message["digits"] = rng.choice(["1", "12#", "*0", "x", "9" * 100, random_value(rng)])
    if rng.random() < 0.2:
        message[rng.choice(KEYS)] = random_value(rng)
    return json.dumps(message)


async def browser_offer() -> str:
    """A real browser-like offer (the agent side), made once."""
    pc = RTCPeerConnection(PeerConnectionConfig(host_addresses=["127.0.0.1"]))
    pc.addTrack(ToneTrack())
    await pc.setLocalDescription(await pc.createOffer())
    offer = str(pc.localDescription.sdp)
    await pc.close()
    return offer


async def caller_offer() -> str:
    """A real WhatsApp-like offer (Meta's side), made once; nobody answers on it."""
    peer = CallerPeer("silence", ("127.0.0.1",))
    offer = await peer.offer()
    await peer.close()
    return offer


def seeds() -> Iterator[int]:
    yield from (1, 2)


async def fuzz_webhooks(
    url: str, secret: str, rng: random.Random, call_ids: list[str], offer: str, until: float
) -> list[int]:
    statuses = []
    async with aiohttp.ClientSession() as session:
        for _ in range(MAX_WEBHOOKS):
            if time.monotonic() > until:
                break
            body = webhook_body(rng, call_ids, offer)
            headers = {signature.HEADER: signature.sign(secret, body)}
            async with session.post(url, data=body, headers=headers) as response:
                statuses.append(response.status)
    return statuses


async def fuzz_console(
    url: str, name: str, password: str, rng: random.Random, call_ids: list[str], offer: str,
    until: float,
) -> tuple[int, int]:  # fmt: skip
    """Send random messages as one agent; reconnect if the socket is closed. (sent, reconnects)"""
    sent = reconnects = 0
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.post(
            url + "/api/login", json={"name": name, "password": password}
        ) as response:
            assert response.status == 200
        ws = await session.ws_connect(url + "/api/ws")
        try:
            while sent < MAX_CONSOLE_MESSAGES and time.monotonic() < until:
                if ws.closed:
                    reconnects += 1
                    ws = await session.ws_connect(url + "/api/ws")
                try:
                    if rng.random() < 0.05:
                        await ws.send_bytes(bytes(rng.randrange(256) for _ in range(20)))
                    else:
                        await ws.send_str(console_message(rng, call_ids, offer))
                except ConnectionError:  # the server closed it: counted as a reconnect
                    await ws.close()
                    continue
                sent += 1
                # Drain replies now and then, so the server never blocks on a full socket.
                while True:
                    try:
                        await asyncio.wait_for(ws.receive(), 0.01)
                    except TimeoutError:
                        break
                    if ws.closed:
                        break
        finally:
            await ws.close()
    return sent, reconnects


@pytest.mark.parametrize("seed", list(seeds()))
async def test_fuzz_webhooks_and_console(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    problems = Problems()
    logging.getLogger().addHandler(problems)
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    settings = make_settings(
        tmp_path,
        RELAY_RING_TIMEOUT="5",
        RELAY_NO_MEDIA_TIMEOUT="5",
        RELAY_SUPERVISORS="bob:builder",  # one fuzzer may listen in too
    )
    service = Service(settings)
    runner = web.AppRunner(service.app())
    try:
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port).start()
        url = settings.base_url
        simulator = service.simulator
        assert simulator is not None
        real_calls = [await simulator.place_call(audio="tone") for _ in range(2)]
        call_ids = [*real_calls, "wacid.F1", "wacid.F2", "wacid.F3", ""]
        agent_offer, whatsapp_offer = await browser_offer(), await caller_offer()
        until = time.monotonic() + FUZZ_SECONDS
        webhook_statuses, *console = await asyncio.gather(
            fuzz_webhooks(
                url + "/webhook/whatsapp",
                settings.whatsapp_app_secret,
                random.Random(rng.random()),
                call_ids,
                whatsapp_offer,
                until,
            ),
            fuzz_console(url, "alice", "wonderland", random.Random(rng.random()), call_ids,
                         agent_offer, until),
            fuzz_console(url, "bob", "builder", random.Random(rng.random()), call_ids,
                         agent_offer, until),
        )  # fmt: skip
        assert webhook_statuses and all(status < 500 for status in webhook_statuses)
        assert {200, 400} <= set(webhook_statuses)
        assert all(sent > 20 for sent, _ in console)

        # Bounded memory: every store keyed by what the fuzzer chose stays within its bound.
        router, console_ = service.router, service.console
        assert len(router._early) <= router._early.max_calls
        assert router._early._sdp_bytes <= router._early.max_sdp_bytes
        assert len(service.webhook.deduplicator._seen) <= service.webhook.deduplicator.capacity
        assert len(console_.sessions) <= 2
        assert len(console_.sockets) <= 2
        assert len(router.calls) <= len(call_ids) + 2 * MAX_CONSOLE_MESSAGES
    finally:
        await runner.cleanup()  # ends every call still going
        logging.getLogger().removeHandler(problems)
        loop.set_exception_handler(None)

    assert problems.records == [], "\n".join(problems.records)
    storage = Storage(settings.database_url)
    await storage.start()
    try:
        calls = await storage.list_calls(limit=10_000)
    finally:
        await storage.close()
    assert calls, "the fuzzer's real calls were stored"
    assert [
        (c.wa_call_id, c.state) for c in calls if c.state != "ended" or c.ended_at is None
    ] == []
    assert loop_errors == [], "\n".join(describe(c) for c in loop_errors)


def describe(context: dict[str, Any]) -> str:
    exception = context.get("exception")
    trace = "".join(traceback.format_exception(exception)) if exception else ""
    return f"{context.get('message')}\n{trace}"
