"""The library installs alone: a fresh virtual environment with ``pip install`` of the
distribution and no extra has webrtc_ext and its five dependencies, runs
examples/loopback_call.py, and ``relay-service`` names the extra it lacks.

pip may fetch packages from the configured index (or its cache); nothing else leaves loopback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.packaging, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=240, env=env
    )
    if check:
        assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def library_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the distribution installed without extras; its python."""
    base = tmp_path_factory.mktemp("library-alone")
    source = base / "source"  # a copy: building in place would leave build/ in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("webrtc_ext", "relay_service"):
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    venv = base / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=base)
    python = venv / "bin" / "python"
    # Without build isolation: one resolver run instead of two (setuptools for the build).
    run(python, "-m", "pip", "install", "--quiet", "setuptools>=68", "wheel", cwd=base)
    run(python, "-m", "pip", "install", "--quiet", "--no-build-isolation", source, cwd=base)
    return python


def test_only_the_library_dependencies_are_installed(library_venv: Path) -> None:
    script = (
        "import importlib.util, webrtc_ext\n"
        "print(webrtc_ext.__file__)\n"
        "for name in ('aiohttp', 'sqlalchemy', 'aiosqlite', 'openai', 'pocketsphinx',"
        " 'matplotlib', 'pipecat'):\n"
        "    print(name, importlib.util.find_spec(name) is not None)\n"
    )
    out = run(library_venv, "-c", script, cwd=library_venv.parent).stdout
    assert out.splitlines()[0].startswith(str(library_venv.parents[1]))  # not the checkout
    assert [line for line in out.splitlines()[1:] if line.endswith("True")] == []


def test_loopback_call_example_runs_on_the_installed_library(library_venv: Path) -> None:
    example = ROOT / "examples" / "loopback_call.py"
    out = run(library_venv, example, "--seconds", "1", cwd=library_venv.parents[1]).stdout
    assert "first audio frame" in out
    frames = int(out.rsplit(" audio frames received", 1)[0].rsplit("\n", 1)[-1])
    assert frames > 20


def test_relay_service_without_the_extra_names_it(library_venv: Path) -> None:
    result = run(
        library_venv.parent / "relay-service", "demo", cwd=library_venv.parent, check=False
    )
    assert result.returncode == 2
    assert "pip install 'webrtc-relay[service]'" in result.stderr
    assert "Traceback" not in result.stderr
