"""Column encodings of schema-3 diagnostic files: every column decodes to what was encoded."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webrtc_ext.stats.columnar import ColumnError, decode_column, encode_column

numbers = st.integers(min_value=-(2**60), max_value=2**60) | st.floats(
    allow_nan=False, allow_infinity=False
)
json_scalars = st.none() | st.booleans() | numbers | st.text(max_size=4)


def same(decoded: list[Any], original: list[Any]) -> bool:
    return len(decoded) == len(original) and all(
        type(a) is type(b) and (a == b or (isinstance(a, float) and math.isnan(a)))
        for a, b in zip(decoded, original, strict=True)
    )


@settings(max_examples=400, deadline=None)
@given(st.lists(numbers | st.none(), max_size=40) | st.lists(json_scalars, max_size=40))
def test_every_column_decodes_to_exactly_its_values(values: list[Any]) -> None:
    assert same(decode_column(encode_column(values)), values)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**9), st.lists(st.integers(0, 3), min_size=1))
def test_a_counter_is_stored_as_small_differences(start: int, steps: list[int]) -> None:
    values, total = [], start
    for step in steps:
        total += 50 + step
        values.append(total)
    encoded = encode_column(values)
    if "d" in encoded:
        assert all(0 <= d <= 53 for d in encoded["d"][1:])
    assert decode_column(encoded) == values


def test_millisecond_times_with_microseconds_are_scaled_integers() -> None:
    times = [1_764_720_000_000.125 + 1000.5 * i for i in range(10)]
    encoded = encode_column(times)
    assert encoded["e"] == 3 and encoded["f"] == 1
    assert decode_column(encoded) == times


def test_rarely_changing_values_are_runs() -> None:
    values = ["new"] * 3 + ["checking"] * 5 + ["connected"] * 100
    assert encode_column(values) == {"r": [[0, "new"], [3, "checking"], [8, "connected"]], "n": 108}


@pytest.mark.parametrize(
    "encoded",
    [
        [],
        {},
        {"r": [[0, 1]], "n": -1},
        {"r": [[1, "x"]], "n": 2},
        {"r": [[0, "a"], [5, "b"]], "n": 3},
        {"r": [["0", "a"]], "n": 1},
        {"r": [[False, None], []], "n": 1},
        {"d": [1, "2"], "e": 0},
        {"d": [1, True], "e": 0},
        {"d": [1], "e": 9},
        {"v": "12"},
    ],
)
def test_malformed_columns_raise_the_dedicated_error(encoded: Any) -> None:
    with pytest.raises(ColumnError):
        decode_column(encoded)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.lists(st.integers(-2, 6) | st.booleans() | st.none(), max_size=3), max_size=4),
    st.integers(-1, 8) | st.booleans(),
)
def test_any_runs_decode_or_raise_the_dedicated_error(runs: list[Any], count: Any) -> None:
    # e.g. [[False, None], []] once raised IndexError instead of ColumnError.
    try:
        values = decode_column({"r": runs, "n": count})
    except ColumnError:
        return
    assert len(values) == count
