"""Text from outside is printed escaped: what the operator reads is what is there, on one line."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reconciler.printable import escape
from tests.fuzz.budget import budget


def test_what_forges_lines_or_recolours_a_terminal_is_escaped() -> None:
    assert escape("vm100.yaml") == "vm100.yaml"
    assert escape("a\nb") == "a\\nb"
    assert escape("\x1b[31mred") == "\\x1b[31mred"
    assert escape("\u202etxt.yaml") == "\\u202etxt.yaml"
    assert escape("no\xa0break") == "no\\xa0break"
    assert escape("café ünïcode") == "café ünïcode"  # printable letters stay as they are


@given(st.text())
@budget(500, deadline_ms=200)
def test_the_result_is_always_one_printable_line(text: str) -> None:
    shown = escape(text)
    assert shown.isprintable()
    assert len(shown) >= len(text)
