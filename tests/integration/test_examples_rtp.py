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


#: Runs a script as ``pip install .`` would: without the packages only extras or tests bring.
LIBRARY_ALONE = (
    "import runpy, sys; "
    "sys.modules.update(numpy=None, matplotlib=None); "
    "sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def run_example(*args: str) -> str:
    """Run ``examples/...`` with its arguments, as the library alone; its standard output."""
    result = subprocess.run(
        [sys.executable, "-c", LIBRARY_ALONE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
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
    with av.open(str(tmp_path / "s.ogg")) as container:
        loudest = max(abs(f.to_ndarray()).max() for f in container.decode(audio=0))
    assert loudest > 0.1, "the recording holds the tones, not silence"


def test_record_call_without_the_diag_extra_says_so_after_the_summary(tmp_path: Path) -> None:
    out, charts = tmp_path / "call.json.gz", tmp_path / "charts"
    result = subprocess.run(
        [sys.executable, "-c", LIBRARY_ALONE, "examples/record_call.py", "--seconds", "1",
         "--out", str(out), "--charts", str(charts)],
        cwd=ROOT, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert "connection callee (recorded" in result.stdout and out.exists()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "pip install 'webrtc-relay[diag]'" in result.stderr
