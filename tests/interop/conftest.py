"""Session fixtures for the interop tests: the Pion peer, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.pion import build_pion_peer, missing_toolchain


@pytest.fixture(scope="session")
def pion_executable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Pion peer, compiled offline from Debian's Go packages (skips if they are missing)."""
    reason = missing_toolchain()
    if reason is not None:
        pytest.skip(f"Pion interop needs Go and Debian's Pion: {reason}")
    return build_pion_peer(tmp_path_factory.mktemp("pion"))
