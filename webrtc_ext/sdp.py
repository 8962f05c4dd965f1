"""SDP helpers that keep bad input from reaching aiortc's parser."""

from __future__ import annotations

import logging

from aioice import Candidate

logger = logging.getLogger(__name__)


def drop_malformed_candidates(sdp: str) -> str:
    """Return ``sdp`` without the ``a=candidate`` lines that cannot be parsed, logging each."""
    lines = sdp.splitlines(keepends=True)
    kept = []
    for line in lines:
        text = line.rstrip("\r\n")
        if text.startswith("a=candidate:"):
            try:
                Candidate.from_sdp(text[len("a=candidate:") :])
            except (ValueError, IndexError) as exc:
                logger.warning("dropped malformed ICE candidate %r: %s", text, exc)
                continue
        kept.append(line)
    return "".join(kept)
