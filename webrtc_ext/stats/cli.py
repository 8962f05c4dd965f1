"""``webrtc-diag``: summarise a diagnostic file and draw its time series as PNG charts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .dump import DiagnosticFileError, load_diagnostic_file
from .summary import format_summary


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line tool; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="webrtc-diag",
        description="Summarise a webrtc_ext diagnostic file (or a webrtc-internals dump).",
    )
    parser.add_argument("file", help="the diagnostic file (.json.gz or .json)")
    parser.add_argument(
        "--charts", metavar="DIR", help="also draw one PNG chart per connection into DIR"
    )
    args = parser.parse_args(argv)
    try:
        diagnostic = load_diagnostic_file(args.file)
    except DiagnosticFileError as exc:
        print(f"webrtc-diag: error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(diagnostic))
    if args.charts:
        from .charts import ChartsUnavailable, draw_charts

        try:
            paths = draw_charts(diagnostic, args.charts)
        except ChartsUnavailable as exc:
            print(f"webrtc-diag: error: {exc}", file=sys.stderr)
            return 2
        for path in paths:
            print(f"chart: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
