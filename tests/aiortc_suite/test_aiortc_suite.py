"""aiortc's own test suite (from its 1.16.0 sdist, fetched at test time) against webrtc_ext.

The sdist is downloaded by pip into ``.aiortc-suite/`` (never committed), its ``tests/`` run in
a separate pytest process with the ``aiortc_substitute`` plugin, which puts webrtc_ext's
RTCPeerConnection, RTCIceGatherer and RTCIceTransport in place of aiortc's. Every failure must
be listed with its reason in ``expected_failures.txt``, and nothing else may fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.aiortc_suite

AIORTC_VERSION = "1.16.0"
HERE = Path(__file__).parent
REPO = HERE.parents[1]
CACHE = REPO / ".aiortc-suite"
SUITE_TIMEOUT = 900
#: Test modules that must see webrtc_ext's classes, and which ones.
MUST_BE_SUBSTITUTED = {
    "tests.test_rtcpeerconnection": ["RTCPeerConnection"],
    "tests.test_ortc": ["RTCIceGatherer", "RTCIceTransport"],
    "tests.test_rtcicetransport": ["RTCIceGatherer", "RTCIceTransport"],
}


def read_listed(path: Path) -> dict[str, str]:
    """``{node id: reason}`` from a file of ``node id  # reason`` lines."""
    listed: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        node_id, _, reason = line.partition("#")
        assert reason.strip(), f"{path.name}: {node_id.strip()} has no reason"
        listed[node_id.strip()] = reason.strip()
    return listed


def fetch_suite() -> Path:
    """The extracted sdist root (holding ``tests/``), downloading the sdist if needed."""
    root = CACHE / f"aiortc-{AIORTC_VERSION}"
    if (root / "tests" / "test_rtcpeerconnection.py").exists():
        return root
    CACHE.mkdir(exist_ok=True)
    sdist = CACHE / f"aiortc-{AIORTC_VERSION}.tar.gz"
    if not sdist.exists():
        download = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:"]
        result = subprocess.run(
            [*download, "--no-deps", f"aiortc=={AIORTC_VERSION}", "--dest", str(CACHE), "--quiet"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0 or not sdist.exists():
            pytest.skip(f"could not download the aiortc {AIORTC_VERSION} sdist: {result.stderr}")
    prefix = f"aiortc-{AIORTC_VERSION}/tests/"
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(prefix)]
        archive.extractall(CACHE, members=members, filter="data")
    return root


@pytest.mark.timeout(SUITE_TIMEOUT)
def test_aiortc_suite_passes_against_webrtc_ext(tmp_path: Path) -> None:
    root = fetch_suite()
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    report_path = tmp_path / "report.json"
    deselected = read_listed(HERE / "deselected.txt")
    expected = read_listed(HERE / "expected_failures.txt")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), str(REPO), *filter(None, [env.get("PYTHONPATH")])]
    )
    env["AIORTC_SUITE_REPORT"] = str(report_path)
    command = [sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(root)]
    command += ["-p", "aiortc_substitute", "-p", "no:cacheprovider", "-q", "-o", "timeout=300"]
    command += [f"--deselect={node_id}" for node_id in deselected]
    command.append("tests")
    result = subprocess.run(
        command,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT - 30,
        check=False,
    )
    assert report_path.exists(), f"aiortc's suite did not run:\n{result.stdout}\n{result.stderr}"
    report = json.loads(report_path.read_text())

    assert report["violations"] == [], "aiortc's suite tried to leave loopback"
    for module, names in MUST_BE_SUBSTITUTED.items():
        assert set(names) <= set(report["substituted"].get(module, [])), module
    assert report["passed"] > 400, result.stdout[-3000:]
    failed = set(report["failed"])
    unexpected = sorted(failed - set(expected))
    fixed = sorted(set(expected) - failed)
    assert not unexpected, f"unexpected failures: {unexpected}\n{result.stdout[-6000:]}"
    assert not fixed, f"listed in expected_failures.txt but passed: {fixed}"
