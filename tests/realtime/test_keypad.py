from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relay_service.assistant.keypad import KeypadCollector, KeypadEntry


def test_hash_ends_an_entry_and_star_restarts_it() -> None:
    keypad = KeypadCollector(pause=3)
    assert [keypad.press(k, t) for t, k in enumerate("12*45#")] == [None] * 5 + [
        KeypadEntry("45", "#")
    ]
    assert keypad.press("#", 10) is None, "an empty entry is no entry"


def test_a_pause_ends_an_entry() -> None:
    keypad = KeypadCollector(pause=3)
    keypad.press("7", 0.0)
    keypad.press("8", 1.0)
    assert keypad.tick(3.9) is None
    assert keypad.deadline() == 4.0
    assert keypad.tick(4.0) == KeypadEntry("78", "pause")
    assert keypad.tick(9.0) is None
    # A press after a long pause first closes the previous entry.
    keypad.press("1", 10.0)
    assert keypad.press("2", 20.0) == KeypadEntry("1", "pause")
    assert keypad.pending == "2"


@given(
    st.lists(
        st.lists(st.sampled_from("0123456789"), min_size=1, max_size=10).map("".join),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
)
def test_entries_come_back_exactly_as_typed(entries: list[str], use_hash: bool) -> None:
    keypad = KeypadCollector(pause=3)
    now, got = 0.0, []
    for entry in entries:
        for key in entry:
            now += 0.6
            if (done := keypad.press(key, now)) is not None:
                got.append(done.digits)
        if use_hash:
            now += 0.6
            if (done := keypad.press("#", now)) is not None:
                got.append(done.digits)
        else:
            now += 3.5
            if (done := keypad.tick(now)) is not None:
                got.append(done.digits)
    assert got == entries
