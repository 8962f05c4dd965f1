"""Show how webrtc_ext's forked upstream code differs from the installed upstream release.

Usage: ``python tools/fork_diff.py [--stat]``. For each forked module (or copied method) it
prints a unified diff from the installed upstream source (aiortc/aioice are pinned exactly, so
that is the release the fork came from) to the fork, and whether upstream still is the version
recorded in ``webrtc_ext/_internals.py``. To merge a new upstream release: install it, run this,
and port the upstream change into the fork (docs/fork.md lists every intended difference).
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _forks() -> list[tuple[str, Any, Callable[[], str], str]]:
    """``(name, upstream object, fork source, recorded upstream SHA-256)`` of every fork."""
    import aiortc.rtcrtpsender

    from webrtc_ext import _internals, rtcsctptransport

    return [
        (
            "aiortc/rtcrtpsender.py -> webrtc_ext/rtcrtpsender.py",
            aiortc.rtcrtpsender,
            lambda: (ROOT / "webrtc_ext" / "rtcrtpsender.py").read_text(),
            _internals.RTP_SENDER_UPSTREAM_SHA256,
        ),
        (
            "aiortc RTCSctpTransport._send -> webrtc_ext.RTCSctpTransport._send",
            aiortc.RTCSctpTransport._send,
            lambda: inspect.getsource(rtcsctptransport.RTCSctpTransport._send),
            _internals.SCTP_SEND_UPSTREAM_SHA256,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stat", action="store_true", help="only count changed lines")
    args = parser.parse_args()
    from webrtc_ext._internals import upstream_source_sha256

    changed_upstream = 0
    for name, upstream, fork_source, recorded in _forks():
        same = upstream_source_sha256(upstream) == recorded
        changed_upstream += not same
        print(f"== {name}: upstream {'as recorded' if same else 'CHANGED since the fork'}")
        diff = list(
            difflib.unified_diff(
                inspect.getsource(upstream).splitlines(keepends=True),
                fork_source().splitlines(keepends=True),
                "upstream",
                "fork",
            )
        )
        if args.stat:
            added = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
            removed = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
            print(f"   +{added} -{removed} lines")
        else:
            sys.stdout.writelines(diff)
    return 1 if changed_upstream else 0


if __name__ == "__main__":
    raise SystemExit(main())
