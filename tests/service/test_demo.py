"""``relay-service demo`` starts, answers /healthz, prints the console URL, stops on Ctrl-C."""

from __future__ import annotations

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


def test_demo_starts_and_prints_the_console_url() -> None:
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
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert f"http://127.0.0.1:{port}/console/index.html" in output
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
