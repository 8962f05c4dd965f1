"""Column encodings of diagnostic files (schema 3): lossless, and small once compressed.

A call's stats are mostly counters that grow by about the same amount every second, times one
second apart, and identifiers that never change. Written as they are, an hour of one connection
is tens of megabytes of JSON; encoded per column they become runs of near-identical small numbers
that a general-purpose compressor shrinks to almost nothing:

- ``{"e": k, "d": [...]}`` — numbers that are exact multiples of ``10**-k`` (``k`` ≤ 6), stored as
  the first scaled integer then the difference to the previous one (``null`` for a missing value,
  the next difference taken from the last present one); ``"f": 1`` when they were floats.
- ``{"v": [...]}`` — any other numbers (or ints mixed with floats), as they are.
- ``{"r": [[index, value], ...], "n": count}`` — any JSON values as runs: a value and the index at
  which it starts, for columns that rarely change (identifiers, states, certificates).

Every encoding decodes to exactly the values it was given (floats compare equal, ints stay ints).
Sans-I/O: plain functions over lists.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

#: Largest decimal scale tried: microseconds of a millisecond time, 1e-6 of a ratio.
MAX_SCALE = 6


class ColumnError(ValueError):
    """An encoded column is malformed."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scale_of(values: Sequence[float]) -> int | None:
    """The smallest ``k`` for which every value is an exact multiple of ``10**-k``."""
    for scale in range(MAX_SCALE + 1):
        factor = 10**scale
        if all(
            math.isfinite(v) and abs(v * factor) < 2**53 and round(v * factor) / factor == v
            for v in values
        ):
            return scale
    return None


def _runs(values: Sequence[Any]) -> list[list[Any]]:
    runs: list[list[Any]] = []
    for index, value in enumerate(values):
        if not runs or runs[-1][1] != value or type(runs[-1][1]) is not type(value):
            runs.append([index, value])
    return runs


def encode_column(values: Sequence[Any]) -> dict[str, Any]:
    """The smallest of the encodings above that holds ``values`` exactly."""
    runs = _runs(values)
    present = [v for v in values if v is not None]
    if not all(_is_number(v) for v in present) or len(runs) * 4 <= len(values):
        return {"r": runs, "n": len(values)}
    floats = sum(isinstance(v, float) for v in present)
    scale = _scale_of(present) if floats in (0, len(present)) else None
    if scale is None:
        return {"v": list(values)}
    factor = 10**scale
    deltas: list[int | None] = []
    previous = 0
    for value in values:
        if value is None:
            deltas.append(None)
            continue
        scaled = round(value * factor)
        deltas.append(scaled - previous)
        previous = scaled
    encoded: dict[str, Any] = {"e": scale, "d": deltas}
    if floats:
        encoded["f"] = 1
    return encoded


def decode_column(encoded: Any) -> list[Any]:
    """The values of one encoded column; :class:`ColumnError` when it is malformed."""
    if not isinstance(encoded, dict):
        raise ColumnError("a column is not an object")
    if "r" in encoded:
        return _decode_runs(encoded["r"], encoded.get("n"))
    if "v" in encoded:
        if not isinstance(encoded["v"], list):
            raise ColumnError("'v' is not a list")
        return list(encoded["v"])
    if "d" in encoded:
        return _decode_deltas(encoded["d"], encoded.get("e", 0), bool(encoded.get("f")))
    raise ColumnError("a column has none of 'r', 'v' or 'd'")


def _decode_runs(runs: Any, count: Any) -> list[Any]:
    if not isinstance(runs, list) or not _is_index(count):
        raise ColumnError("runs need a list 'r' and a count 'n'")
    for run in runs:
        if not (isinstance(run, list) and len(run) == 2 and _is_index(run[0])):
            raise ColumnError("a run is not [index, value]")
    values: list[Any] = []
    ends = [run[0] for run in runs[1:]] + [count]
    for (start, value), end in zip(runs, ends, strict=False):  # no runs: nothing to decode
        if start != len(values) or end < start:
            raise ColumnError("runs are not in order")
        values.extend([value] * (end - start))
    if len(values) != count:
        raise ColumnError("runs do not add up to the count")
    return values


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _decode_deltas(deltas: Any, scale: Any, floats: bool) -> list[Any]:
    if not isinstance(deltas, list) or not isinstance(scale, int) or not 0 <= scale <= MAX_SCALE:
        raise ColumnError("deltas need a list 'd' and a scale 'e' from 0 to 6")
    factor = 10**scale
    values: list[Any] = []
    current = 0
    for delta in deltas:
        if delta is None:
            values.append(None)
            continue
        if not isinstance(delta, int) or isinstance(delta, bool):
            raise ColumnError("a delta is not an integer")
        current += delta
        values.append(current / factor if floats or scale else current)
    return values
