"""JSON from untrusted peers, parsed within fixed bounds of size and nesting depth.

``json.loads`` recurses once per nesting level, so a small body of ``[[[[...`` raises
``RecursionError`` (a ``RuntimeError``, which handlers that catch ``ValueError`` let through),
and a huge integer literal raises a plain ``ValueError``. :func:`loads` turns every way a
document can be unacceptable into one :class:`JsonRejected`.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32
"""Nesting levels any document this service accepts needs, with room to spare."""
MAX_BYTES = 1024 * 1024

# A string runs to its closing quote or, unterminated, to the end: a match never fails once
# started, so the scan stays linear whatever the input.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_INNERMOST = re.compile(rb"\[\]|\{\}")


class JsonRejected(ValueError):
    """The text is not JSON, or is JSON beyond the size or depth allowed."""


def loads(data: bytes | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``data`` as JSON, refusing more than ``max_bytes`` or ``max_depth`` levels."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise JsonRejected(f"JSON text of {len(raw)} bytes is over the limit of {max_bytes}")
    if nesting_depth(raw, stop_above=max_depth) > max_depth:
        raise JsonRejected(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, int limit
        raise JsonRejected(f"not JSON: {exc}") from None


def nesting_depth(raw: bytes, *, stop_above: int = MAX_DEPTH) -> int:
    """The bracket nesting depth of a JSON text outside strings, counted up to ``stop_above + 1``.

    Each pass removes every innermost ``[]``/``{}`` pair (in C), so the cost is one linear scan
    per level. Unbalanced brackets count as one level more; ``json.loads`` then refuses them.
    """
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw))
    depth = 0
    while brackets:
        shorter = _INNERMOST.sub(b"", brackets)
        if len(shorter) == len(brackets):
            return depth + 1  # unbalanced: json.loads will say so
        depth += 1
        brackets = shorter
        if depth > stop_above:
            return depth
    return depth
