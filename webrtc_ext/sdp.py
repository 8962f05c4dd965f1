"""SDP helpers that keep bad input from reaching aiortc's parser."""

from __future__ import annotations

import logging

from aioice import Candidate
from aiortc import sdp as aiortc_sdp
from aiortc.exceptions import OperationError

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


def check_parses(sdp: str) -> None:
    """Raise :class:`OperationError` naming the problem if aiortc's parser rejects ``sdp``."""
    try:
        aiortc_sdp.SessionDescription.parse(sdp)
    except StopIteration:
        # aiortc looks up the codec of each a=fmtp / a=rtcp-fb line with next(): a line
        # whose payload type has no a=rtpmap and is not static escapes as StopIteration.
        raise OperationError(
            "malformed SDP: an a=fmtp or a=rtcp-fb line names a payload type that has no "
            "a=rtpmap line (RFC 8866 §6.6)"
        ) from None
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise OperationError(f"malformed SDP: {exc}") from exc
