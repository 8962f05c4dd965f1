"""Fixtures: a running relay service (with its WhatsApp simulator) on a loopback port."""

from __future__ import annotations

import contextlib
import functools
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from relay_service.app import Service
from relay_service.passwords import hash_password
from relay_service.settings import Settings

from .agent import Agent

ROOT_DIR = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@functools.cache
def agents_setting() -> str:
    """``RELAY_AGENTS`` of the test services, hashed once (Argon2 is slow on purpose)."""
    return ",".join(
        f"{name}:{hash_password(password)}"
        for name, password in (("alice", "wonderland"), ("bob", "builder"))
    )


def make_settings(tmp_path: Path, **environ: str) -> Settings:
    """Settings for a test service on a free loopback port with a scratch database."""
    base = {
        "RELAY_HOST": "127.0.0.1",
        "RELAY_PORT": str(free_port()),
        "RELAY_DATA_DIR": str(tmp_path),
        "SIMULATORS": "on",
        "WHATSAPP_APP_SECRET": "test-app-secret",
        "WHATSAPP_VERIFY_TOKEN": "test-verify-token",
        "WHATSAPP_ACCESS_TOKEN": "test-access-token",
        "RELAY_AGENTS": agents_setting(),
    }
    base.update(environ)
    return Settings.from_env(base, dotenv=None)


class Running:
    """A started service and an HTTP session toward it."""

    def __init__(self, service: Service, session: aiohttp.ClientSession) -> None:
        self.service = service
        self.session = session
        self.url = service.settings.base_url

    async def login(self, name: str = "alice", password: str = "wonderland") -> None:
        async with self.session.post(
            f"{self.url}/api/login", json={"name": name, "password": password}
        ) as response:
            assert response.status == 200

    async def agent(self, name: str = "alice", password: str = "wonderland") -> Agent:
        """Sign in as ``name`` and return an agent connected to the console's WebSocket."""
        await self.login(name, password)
        agent = Agent(self.session, self.url)
        await agent.connect()
        return agent


async def start(settings: Settings) -> tuple[Service, web.AppRunner]:
    service = Service(settings)
    runner = web.AppRunner(service.app())
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    return service, runner


@contextlib.asynccontextmanager
async def running_service(tmp_path: Path, **environ: str) -> AsyncIterator[Running]:
    """A started service configured by ``environ`` on top of the test defaults."""
    service, runner = await start(make_settings(tmp_path, **environ))
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            yield Running(service, session)
    finally:
        await runner.cleanup()


@pytest.fixture
async def running(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Running]:
    """The service with the WhatsApp simulator, a 20 s no-media rule.

    On SQLite; ``@pytest.mark.parametrize("running", ["sqlite", "postgresql"], indirect=True)``
    runs a test on a real PostgreSQL too.
    """
    environ: dict[str, str] = {}
    if getattr(request, "param", "sqlite") == "postgresql":
        environ["RELAY_DATABASE_URL"] = request.getfixturevalue("postgres_server").create_database()
    async with running_service(tmp_path, **environ) as running:
        yield running
