"""``relay-service demo`` starts, answers /healthz, prints the console URL, stops on Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_demo_starts_and_prints_the_console_url(stop_signal: signal.Signals) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "relay_service.cli", "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status != 200:
            time.sleep(0.3)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    status = r.status
            except OSError:
                continue
        assert status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/console/index.html", timeout=5) as r:
            assert b"Relay agent console" in r.read()
        # A call in progress is ended cleanly on the way out.
        login = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/login",
            data=json.dumps({"name": "agent", "password": "agent"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(login, timeout=5) as r:
            cookie = r.headers["Set-Cookie"].split(";")[0]
        place = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/simulator/calls",
            data=b"{}",
            headers={"Content-Type": "application/json", "Cookie": cookie},
        )
        with urllib.request.urlopen(place, timeout=30) as r:
            assert json.loads(r.read())["id"].startswith("wacid.")
        time.sleep(1)
    finally:
        process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=60)
    assert f"http://127.0.0.1:{port}/console/index.html" in output
    assert "service shutting down" in output
    # The calls end while the embedded WhatsApp simulator still answers the Graph API.
    assert "graph terminate -> ok" in output
    assert "at WhatsApp failed" not in output
    assert process.returncode == 0


def test_bad_configuration_exits_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "relay_service.cli", "serve"],
        capture_output=True,
        text=True,
        env={"SIMULATORS": "off", "PYTHONPATH": str(ROOT)},
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    assert "WHATSAPP_APP_SECRET is required" in result.stderr
