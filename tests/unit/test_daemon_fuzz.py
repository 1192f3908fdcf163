"""Property test of the one value the daemon reads back from the state file itself: the
events cursor (``meta`` table). Any text gives a cursor or None, never an exception.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthd.daemon import saved_cursor
from tests.unit.fuzzing import ints, texts


@given(st.one_of(st.none(), texts(), ints().filter(lambda n: abs(n) < 10**4000).map(str)))
def test_any_saved_cursor_gives_nanoseconds_or_none(text: str | None) -> None:
    got = saved_cursor(text)
    assert got is None or (type(got) is int and 0 < got < 2**63)


# --- inputs the property above found, kept as plain regression tests ------------------------


@pytest.mark.parametrize(("text", "expected"),
                         [("1795364685046098216", 1795364685046098216), ("", None),
                          ("soon", None), ("\u00b2", None), (str(2**63), None)],
                         ids=["real", "empty", "text", "superscript-two", "2**63"])
def test_a_saved_cursor_that_is_not_nanoseconds_is_ignored(text: str,
                                                           expected: int | None) -> None:
    assert saved_cursor(text) == expected
