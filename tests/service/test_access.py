"""Who may do what: simulator routes, the demo sign-in, hashed passwords, rate limits,
session expiry, cookie flags, Origin checks and JSON-only sign-in, over real loopback HTTP."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from relay_service.passwords import hash_password, is_hash
from relay_service.settings import Settings

from .conftest import ROOT_DIR, Running, running_service

PRODUCTION = {
    "SIMULATORS": "off",
    "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
    # Nothing calls out in these tests; an address that refuses at once, never Meta.
    "WHATSAPP_GRAPH_BASE_URL": "http://127.0.0.1:9",
}


async def status_of(session: aiohttp.ClientSession, method: str, url: str, **kwargs: object) -> int:
    async with session.request(method, url, **kwargs) as response:  # type: ignore[arg-type]
        return response.status


async def test_simulators_off_expose_no_simulator_route(tmp_path: Path) -> None:
    async with running_service(tmp_path, **PRODUCTION) as running:
        await running.login()
        for method, path in [
            ("POST", "/api/simulator/calls"),
            ("GET", "/whatsapp-sim/simulator/calls"),
            ("POST", "/whatsapp-sim/simulator/calls"),
            ("POST", "/whatsapp-sim/v23.0/100000000000001/calls"),
            ("POST", "/openai-sim/v1/realtime/client_secrets"),
            ("POST", "/openai-sim/v1/realtime/calls"),
        ]:
            assert await status_of(running.session, method, running.url + path) == 404, path


async def test_whatsapp_simulator_control_routes_need_a_signed_in_agent(running: Running) -> None:
    url = running.url + "/whatsapp-sim/simulator/calls"
    async with aiohttp.ClientSession() as stranger:
        assert await status_of(stranger, "GET", url) == 401
        assert await status_of(stranger, "POST", url, json={}) == 401
        assert await status_of(stranger, "POST", url + "/wacid.X/hangup") == 401
        assert await status_of(stranger, "POST", running.url + "/api/simulator/calls") == 401
    assert running.service.simulator is not None
    assert running.service.simulator.calls == {}
    await running.login()
    assert await status_of(running.session, "GET", url) == 200
    assert await status_of(running.session, "POST", url + "/wacid.X/hangup") == 404


async def test_realtime_simulator_accepts_only_its_configured_key(tmp_path: Path) -> None:
    # Assistant and transcription off: before, no key was configured and any key was taken.
    async with running_service(tmp_path) as running:
        settings = running.service.settings
        url = settings.realtime_base_url + "/realtime/client_secrets"
        body = {"expires_after": {"anchor": "created_at", "seconds": 60}}
        async with aiohttp.ClientSession() as session:
            for key in ("sk-anything", "", "ek_made_up"):
                headers = {"Authorization": f"Bearer {key}"}
                assert await status_of(session, "POST", url, json=body, headers=headers) == 401
            assert await status_of(session, "POST", url, json=body) == 401
            headers = {"Authorization": f"Bearer {settings.openai_api_key}"}
            assert await status_of(session, "POST", url, json=body, headers=headers) == 200


def run_serve(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT_DIR)}
    env.update(environ)
    return subprocess.run(
        [sys.executable, "-m", "relay_service.cli", "serve"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )


@pytest.mark.parametrize(
    "agents",
    [None, "agent:agent", "alice:x,agent:agent", f"agent:{hash_password('agent')}"],
    ids=["default", "explicit", "among-others", "pre-hashed"],
)
def test_serve_refuses_the_demo_sign_in(tmp_path: Path, agents: str | None) -> None:
    environ = {"SIMULATORS": "on", "RELAY_PORT": "0"}
    if agents is not None:
        environ["RELAY_AGENTS"] = agents
    result = run_serve(tmp_path, **environ)
    assert result.returncode == 2
    assert "demo sign-in agent/agent is refused by serve" in result.stderr
    assert "hash-password" in result.stderr


def test_hash_password_prints_a_hash_that_signs_in(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "relay_service.cli", "hash-password", "--name", "carol"],
        input="s3cret pass\n",
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT_DIR)},
        timeout=60,
        check=True,
    )
    entry = result.stdout.strip()
    name, _, hashed = entry.partition(":")
    assert name == "carol" and is_hash(hashed) and "s3cret" not in entry
    # Argon2 hashes contain commas: the list still splits into the right agents.
    settings = Settings.from_env({"RELAY_AGENTS": f"{entry},dave:plain"}, dotenv=None, serve=True)
    assert sorted(settings.agents) == ["carol", "dave"]
    assert settings.agents["carol"] == hashed
    assert is_hash(settings.agents["dave"]) and "plain" not in settings.agents["dave"]

    async def sign_in() -> None:
        async with running_service(tmp_path, RELAY_AGENTS=f"{entry},dave:plain") as running:
            await running.login("carol", "s3cret pass")
            await running.login("dave", "plain")

    asyncio.run(sign_in())


def test_a_broken_pre_hashed_password_is_a_settings_error(tmp_path: Path) -> None:
    result = run_serve(tmp_path, SIMULATORS="on", RELAY_AGENTS="carol:$argon2id$v=19$garbage")
    assert result.returncode == 2
    assert "not a valid Argon2 hash" in result.stderr


def loopback_url(running: Running) -> str:
    """Where the test service listens, whatever public URL it was given."""
    return f"http://127.0.0.1:{running.service.settings.port}"


async def login(running: Running, name: str, password: str) -> aiohttp.ClientResponse:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            loopback_url(running) + "/api/login", json={"name": name, "password": password}
        ) as response,
    ):
        await response.read()
        return response


async def test_sign_in_is_rate_limited_per_name_without_a_lasting_lockout(tmp_path: Path) -> None:
    async with running_service(
        tmp_path, RELAY_LOGIN_FAILURES_PER_NAME="3", RELAY_LOGIN_WINDOW="2"
    ) as running:
        for _ in range(3):
            assert (await login(running, "alice", "guess")).status == 401
        refused = await login(running, "alice", "wonderland")  # even the right password
        assert refused.status == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 2
        assert (await login(running, "bob", "builder")).status == 200  # others still can
        await asyncio.sleep(int(refused.headers["Retry-After"]) + 0.2)
        assert (await login(running, "alice", "wonderland")).status == 200


async def test_sign_in_is_rate_limited_per_address(tmp_path: Path) -> None:
    async with running_service(tmp_path, RELAY_LOGIN_FAILURES_PER_ADDRESS="4") as running:
        for name in ("a", "b", "c", "d"):
            assert (await login(running, name, "guess")).status == 401
        refused = await login(running, "bob", "builder")
        assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
        assert len(running.service.console.failures_by_name) == 4


async def test_sessions_expire_when_unused(tmp_path: Path) -> None:
    async with running_service(tmp_path, RELAY_SESSION_TTL="1") as running:
        await running.login()
        for _ in range(3):  # used every 0.6 s: it lasts past its first second
            await asyncio.sleep(0.6)
            assert await status_of(running.session, "GET", running.url + "/api/calls") == 200
        await asyncio.sleep(1.3)
        assert await status_of(running.session, "GET", running.url + "/api/calls") == 401


@pytest.mark.parametrize(
    ("public_url", "secure"), [("https://relay.example.com", True), ("", False)]
)
async def test_session_cookie_flags(tmp_path: Path, public_url: str, secure: bool) -> None:
    async with running_service(tmp_path, RELAY_PUBLIC_URL=public_url) as running:
        response = await login(running, "alice", "wonderland")
        assert response.status == 200
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert ("Secure" in cookie) is secure


async def test_state_changing_requests_check_origin(running: Running) -> None:
    await running.login()
    evil = {"Origin": "http://evil.example"}
    url = running.url
    assert await status_of(running.session, "POST", url + "/api/logout", headers=evil) == 403
    assert await status_of(running.session, "GET", url + "/api/calls") == 200  # still signed in
    body = {"name": "alice", "password": "wonderland"}
    login_url = url + "/api/login"
    assert await status_of(running.session, "POST", login_url, json=body, headers=evil) == 403
    assert (
        await status_of(running.session, "POST", url + "/api/simulator/calls", headers=evil) == 403
    )
    assert (
        await status_of(
            running.session, "POST", url + "/whatsapp-sim/simulator/calls", json={}, headers=evil
        )
        == 403
    )
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await running.session.ws_connect(url + "/api/ws", headers=evil)
    assert refused.value.status == 403
    same = {"Origin": url}
    assert await status_of(running.session, "POST", url + "/api/logout", headers=same) == 200


async def test_with_a_public_url_only_its_origin_is_allowed(tmp_path: Path) -> None:
    async with running_service(tmp_path, RELAY_PUBLIC_URL="http://relay.example.com") as running:
        # The Host header matches this Origin (a rebinding attack looks so): not enough.
        local = loopback_url(running)
        headers = {"Origin": local, "Host": local.split("://", 1)[1]}
        body = {"name": "alice", "password": "wonderland"}
        url = local + "/api/login"
        assert await status_of(running.session, "POST", url, json=body, headers=headers) == 403
        headers = {"Origin": "http://relay.example.com"}
        assert await status_of(running.session, "POST", url, json=body, headers=headers) == 200


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_login_accepts_only_json(running: Running, content_type: str) -> None:
    body = b'{"name":"alice","password":"wonderland"}'
    headers = {"Content-Type": content_type}
    url = running.url + "/api/login"
    assert await status_of(running.session, "POST", url, data=body, headers=headers) == 415
    assert await status_of(running.session, "GET", running.url + "/api/calls") == 401
