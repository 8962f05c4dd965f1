"""Service processes (``python -m relay_service.cli serve``) and a WhatsApp simulator beside them.

The simulator runs in the test's own event loop as the Graph API of every process, so that it
outlives a process killed with ``kill -9`` and sees what each one tells WhatsApp.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from relay_service.simulators.whatsapp import WhatsAppSimulator
from relay_service.storage import CallRecord, Storage

from .agent import Agent
from .conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
APP_SECRET = "test-app-secret"
ACCESS_TOKEN = "test-access-token"
PHONE_NUMBER_ID = "100000000000001"


class ServiceProcess:
    """One ``relay-service serve`` process on a loopback port."""

    def __init__(self, directory: Path, name: str, environ: dict[str, str]) -> None:
        self.directory = directory
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.environ = environ
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / f"{name}.log"

    def start(self) -> None:
        """Start the process (with a fresh port if it ran before)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "HOME": os.environ.get("HOME", str(self.directory)),
            "RELAY_HOST": "127.0.0.1",
            "RELAY_PORT": str(self.port),
            "RELAY_REPLICA_ID": self.name,
            "RELAY_DATA_DIR": str(self.directory / "data"),
            **self.environ,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "relay_service.cli", "serve"],
            cwd=self.directory,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait for ``/readyz`` to answer 200."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited:\n{self.log()[-3000:]}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(self.url + "/readyz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready:\n{self.log()[-3000:]}")

    async def status(self, path: str) -> int:
        """The HTTP status of a ``GET`` (0 when nothing answers)."""
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(self.url + path, timeout=aiohttp.ClientTimeout(total=5)) as response,
            ):
                return response.status
        except (aiohttp.ClientError, OSError, TimeoutError):
            return 0

    def kill(self) -> None:
        """``kill -9``: no goodbye to anyone."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> None:
        """SIGTERM, as Kubernetes sends before removing a pod."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    async def wait_exit(self, timeout: float = 60.0) -> int:
        """The exit code, once the process has ended."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not exit:\n{self.log()[-3000:]}")
            await asyncio.sleep(0.1)
        return int(self.process.returncode)

    def stop_quietly(self) -> None:
        """End the process if it still runs (test clean-up)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def log(self) -> str:
        """What the process printed."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def replica_environ(graph_url: str, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a production-like process: no embedded simulators."""
    return {
        "SIMULATORS": "off",
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "test-verify-token",
        "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "WHATSAPP_GRAPH_BASE_URL": graph_url,
        "RELAY_DATABASE_URL": database_url,
        "RELAY_AGENTS": "alice:wonderland,bob:builder",
        "RELAY_MEDIA_ADDRESSES": "127.0.0.1",
        **extra,
    }


@contextlib.asynccontextmanager
async def hosted_simulator(**options: Any) -> AsyncIterator[tuple[WhatsAppSimulator, str]]:
    """A WhatsApp simulator served on a loopback port; yields it and its Graph base URL."""
    simulator = WhatsAppSimulator(
        webhook_url="http://127.0.0.1:9/unset",
        app_secret=APP_SECRET,
        access_token=ACCESS_TOKEN,
        phone_number_id=PHONE_NUMBER_ID,
        **options,
    )
    runner = web.AppRunner(simulator.app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield simulator, f"http://127.0.0.1:{port}"
    finally:
        simulator.release()
        await simulator.close()
        await runner.cleanup()


async def place_call(simulator: WhatsAppSimulator, replica: ServiceProcess, **options: Any) -> str:
    """The simulated user calls; the ``connect`` webhook goes to ``replica``."""
    simulator.webhook_url = replica.url + "/webhook/whatsapp"
    return await simulator.place_call(**options)


@contextlib.asynccontextmanager
async def signed_in_agent(
    replica: ServiceProcess, name: str = "alice", password: str = "wonderland"
) -> AsyncIterator[Agent]:
    """An agent signed in on ``replica`` with its console WebSocket open."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.post(
            replica.url + "/api/login", json={"name": name, "password": password}
        ) as response:
            assert response.status == 200
        agent = Agent(session, replica.url)
        await agent.connect()
        try:
            yield agent
        finally:
            await agent.close()


async def wait_until(
    check: Callable[[], Any], timeout: float = 60.0, what: str = "condition"
) -> Any:
    """Poll an async or plain ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen in {timeout:g} s")
        await asyncio.sleep(0.2)


async def stored_call(database_url: str, wa_call_id: str) -> CallRecord | None:
    """The call's row as the shared database has it now."""
    storage = Storage(database_url)
    try:
        return await storage.find_call(wa_call_id)
    finally:
        await storage.close()


def sim_state(simulator: WhatsAppSimulator, call_id: str) -> str:
    """The call's state at (simulated) WhatsApp."""
    return simulator.calls[call_id].state


async def start_all(replicas: list[ServiceProcess]) -> None:
    """Start processes together and wait until each is ready."""
    for replica in replicas:
        replica.start()
    await asyncio.gather(*(replica.wait_ready() for replica in replicas))


async def owners(redis_url: str) -> dict[str, str]:
    """Call id → owning replica, as the replicas record it in Redis."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        raw = await client.hgetall("relay:owners")
        return {str(k): str(v) for k, v in raw.items()}
    finally:
        await client.aclose()


async def ended_reason(database_url: str, wa_call_id: str) -> str | None:
    """The stored end reason once the call's row is ended, else ``None``."""
    row = await stored_call(database_url, wa_call_id)
    return row.end_reason if row is not None and row.ended_at is not None else None
