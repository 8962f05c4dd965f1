"""The raw RTP examples run end to end (loopback only) and say what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import pytest

from tests.unit.test_media import write_wav

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def run_example(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=90, check=True
    )
    return result.stdout


def test_send_from_file_loopback_records_the_whole_file(tmp_path: Path) -> None:
    wav, out = tmp_path / "tone.wav", tmp_path / "out.ogg"
    write_wav(wav, 1.0)
    stdout = run_example("examples/send_from_file.py", str(wav), "--loopback", str(out))
    assert "recorded" in stdout
    with av.open(str(out)) as container:
        seconds = sum(f.samples for f in container.decode(audio=0)) / 48000
    assert 0.9 < seconds < 1.2


def test_switch_sources_reports_one_continuous_stream(tmp_path: Path) -> None:
    stdout = run_example(
        "examples/switch_sources.py", "--every", "0.3", "--out", str(tmp_path / "s.ogg")
    )
    assert "SSRCs 1, sequence gaps 0, timestamps going back 0" in stdout
