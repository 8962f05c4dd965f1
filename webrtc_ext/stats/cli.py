"""``webrtc-diag``: summarise a diagnostic file and draw its time series as PNG charts."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .dump import DiagnosticFileError, chromium_document, load_diagnostic_file
from .summary import format_summary


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line tool; returns the exit status."""
    try:
        return _run(argv)
    except BrokenPipeError:
        # ``webrtc-diag call.json.gz | head``: the reader left; no traceback, and none again
        # when Python flushes stdout on exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _run(argv: Sequence[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="webrtc-diag",
        description="Summarise a webrtc_ext diagnostic file (or a webrtc-internals dump).",
    )
    parser.add_argument("file", help="the diagnostic file (.json.gz or .json)")
    parser.add_argument(
        "--charts", metavar="DIR", help="also draw one PNG chart per connection into DIR"
    )
    parser.add_argument(
        "--chromium",
        metavar="OUT",
        help="also write the file in Chromium's webrtc-internals layout (plain JSON) to OUT, "
        "for the public dump viewers",
    )
    args = parser.parse_args(argv)
    try:
        diagnostic = load_diagnostic_file(args.file)
    except DiagnosticFileError as exc:
        print(f"webrtc-diag: error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(diagnostic))
    if args.chromium:
        document = json.dumps(chromium_document(diagnostic), separators=(",", ":"))
        try:
            Path(args.chromium).write_text(document, encoding="utf8")
        except OSError as exc:
            print(
                f"webrtc-diag: error: cannot write {args.chromium}: {exc.strerror}", file=sys.stderr
            )
            return 2
        print(f"chromium layout: {args.chromium}")
    if args.charts:
        from .charts import ChartsUnavailable, draw_charts

        try:
            paths = draw_charts(diagnostic, args.charts)
        except ChartsUnavailable as exc:
            print(f"webrtc-diag: error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(
                f"webrtc-diag: error: cannot write charts into {args.charts}: {exc.strerror}",
                file=sys.stderr,
            )
            return 2
        for path in paths:
            print(f"chart: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
