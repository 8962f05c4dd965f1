"""Fails loudly when an aiortc/aioice upgrade moves an internal that webrtc_ext relies on."""

import importlib.metadata

from webrtc_ext._internals import missing_internals


def test_pinned_versions_are_installed() -> None:
    assert importlib.metadata.version("aiortc") == "1.16.0"
    assert importlib.metadata.version("aioice") == "0.13.0"


def test_every_private_member_still_exists() -> None:
    assert missing_internals() == []
