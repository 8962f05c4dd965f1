"""Diff every vendored upstream module against its upstream version.

Each package under ``webrtc_ext/_vendor/`` names, in its ``__init__.py``, the upstream
distribution (``UPSTREAM``), the version it was copied from (``UPSTREAM_VERSION``) and its
files (``VENDORED``: vendored file -> path in the upstream distribution). By default the
upstream files are read from the installed distribution; ``--upstream-dir`` reads them from
a directory holding the upstream tree instead (an unpacked wheel or sdist of a new release,
say), so that a new aiortc/aioice release can be merged deliberately.

    python scripts/fork_diff.py [--upstream-dir DIR] [--stat]

Prints a unified diff per vendored file, then one summary line per file. Exits 2 when an
upstream file cannot be found.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib.metadata
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO / "webrtc_ext" / "_vendor"


@dataclass(frozen=True)
class VendoredFile:
    """One vendored file and where it came from."""

    path: Path
    upstream: str
    version: str
    upstream_path: str


def vendored_files() -> list[VendoredFile]:
    """Every vendored file, read from the ``_vendor`` packages' metadata (never imported)."""
    files = []
    for init in sorted(VENDOR.glob("*/__init__.py")):
        values: dict[str, object] = {}
        for node in ast.parse(init.read_text()).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name) and target.id in (
                    "UPSTREAM",
                    "UPSTREAM_VERSION",
                    "VENDORED",
                ):
                    values[target.id] = ast.literal_eval(node.value)
        vendored = values.get("VENDORED")
        if not isinstance(vendored, dict):
            continue
        for local, upstream_path in sorted(vendored.items()):
            files.append(
                VendoredFile(
                    path=init.parent / local,
                    upstream=str(values["UPSTREAM"]),
                    version=str(values["UPSTREAM_VERSION"]),
                    upstream_path=upstream_path,
                )
            )
    return files


def upstream_file(vendored: VendoredFile, upstream_dir: Path | None) -> Path:
    """Where the upstream version of a vendored file is."""
    if upstream_dir is not None:
        return upstream_dir / vendored.upstream_path
    distribution = importlib.metadata.distribution(vendored.upstream)
    if distribution.version != vendored.version:
        print(
            f"note: {vendored.upstream} {distribution.version} is installed; "
            f"{vendored.path.name} was vendored from {vendored.version}",
            file=sys.stderr,
        )
    return Path(str(distribution.locate_file(vendored.upstream_path)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream-dir", type=Path, help="upstream tree to compare with")
    parser.add_argument("--stat", action="store_true", help="only the summary lines")
    args = parser.parse_args(argv)

    summary = []
    status = 0
    for vendored in vendored_files():
        local = vendored.path.relative_to(REPO)
        try:
            source = upstream_file(vendored, args.upstream_dir)
            upstream_lines = source.read_text().splitlines(keepends=True)
        except (OSError, importlib.metadata.PackageNotFoundError) as exc:
            print(f"{local}: upstream {vendored.upstream_path} not found: {exc}", file=sys.stderr)
            status = 2
            continue
        ours = vendored.path.read_text().splitlines(keepends=True)
        diff = list(
            difflib.unified_diff(
                upstream_lines,
                ours,
                f"{vendored.upstream}-{vendored.version}/{vendored.upstream_path}",
                str(local),
            )
        )
        if not args.stat:
            sys.stdout.writelines(diff)
        added = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
        removed = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
        what = "identical" if not diff else f"+{added} -{removed} lines"
        summary.append(
            f"{local} vs {vendored.upstream} {vendored.version} {vendored.upstream_path}: {what}"
        )
    print("\n".join(summary))
    return status


if __name__ == "__main__":
    sys.exit(main())
