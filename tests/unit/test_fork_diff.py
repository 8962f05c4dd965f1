"""scripts/fork_diff.py reports every vendored file against its upstream version."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "fork_diff.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60
    )


def test_reports_the_vendored_ice_module_against_installed_aioice() -> None:
    result = run()
    assert result.returncode == 0, result.stderr
    assert "--- aioice-0.13.0/aioice/ice.py" in result.stdout
    assert "+++ webrtc_ext/_vendor/aioice/ice.py" in result.stdout
    assert "-    async def check_start(self, pair: CandidatePair) -> None:" in result.stdout
    summaries = result.stdout.strip().splitlines()[-2:]
    assert summaries[0].startswith(
        "webrtc_ext/_vendor/aioice/ice.py vs aioice 0.13.0 aioice/ice.py: +"
    )
    assert summaries[1].startswith(
        "webrtc_ext/_vendor/aiortc/rtcrtpsender.py vs aiortc 1.16.0 aiortc/rtcrtpsender.py: +"
    )
    assert "+    def send_rtp(" in result.stdout  # the aiortc fork's own addition


def test_an_upstream_dir_holding_our_own_copy_shows_no_change(tmp_path: Path) -> None:
    for name, module in (("aioice", "ice.py"), ("aiortc", "rtcrtpsender.py")):
        (tmp_path / name).mkdir()
        shutil.copy(REPO / "webrtc_ext" / "_vendor" / name / module, tmp_path / name)
    result = run("--upstream-dir", str(tmp_path), "--stat")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].endswith("aioice/ice.py: identical")
    assert lines[1].endswith("aiortc/rtcrtpsender.py: identical")


def test_a_missing_upstream_file_is_an_error(tmp_path: Path) -> None:
    result = run("--upstream-dir", str(tmp_path))
    assert result.returncode == 2
    assert "upstream aioice/ice.py not found" in result.stderr


def test_the_vendored_module_keeps_the_license_and_names_its_upstream() -> None:
    vendor = REPO / "webrtc_ext" / "_vendor" / "aioice"
    assert "Copyright (c) 2018-2019 Jeremy Lainé" in (vendor / "LICENSE").read_text()
    first_line = (vendor / "ice.py").read_text().splitlines()[0]
    assert "aioice 0.13.0" in first_line
    assert "## aioice ice.py (vendored)" in (REPO / "docs" / "fork.md").read_text()
