"""xfs_db's read of sb_inprogress: did mkfs.xfs finish? Against outputs captured from xfsprogs 6.1.0."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.core.parse_error import ParseError
from reconciler.names import UnsafeNameError
from reconciler.observe import xfs_sb

FIXTURES = Path(__file__).parent / "fixtures"


def captured(name: str) -> tuple[str, str, int]:
    base = FIXTURES / f"xfs_db-{name}"
    return (base.with_suffix(".stdout").read_text(), base.with_suffix(".stderr").read_text(),
            int(base.with_suffix(".exit").read_text()))


def test_argv_is_read_only_and_validates_the_device() -> None:
    assert xfs_sb.inprogress_argv("/dev/drbd0") == ("xfs_db", "-r", "-c", "sb 0", "-c", "print inprogress",
                                                    "/dev/drbd0")
    for bad in ("/dev/../etc/passwd", "drbd0", "-x"):
        with pytest.raises(UnsafeNameError):
            xfs_sb.inprogress_argv(bad)


@pytest.mark.parametrize(("name", "unfinished"), [("finished", False), ("unfinished", True)])
def test_captured_answers(name: str, unfinished: bool) -> None:
    stdout, _, code = captured(name)
    assert xfs_sb.parse_inprogress(stdout, "/dev/drbd0", code) is unfinished


@pytest.mark.parametrize("name", ["blank", "swap"])
def test_no_xfs_is_no_answer(name: str) -> None:
    stdout, stderr, code = captured(name)
    assert code == 1
    assert "not a valid XFS filesystem" in stderr
    with pytest.raises(ParseError, match="exit 1"):
        xfs_sb.parse_inprogress(stdout, "/dev/drbd0", code)


@pytest.mark.parametrize("text", ["", "inprogress = \n", "inprogress = 0\ninprogress = 1\n", "inprogress: 0\n"])
def test_anything_but_one_clear_line_is_refused(text: str) -> None:
    with pytest.raises(ParseError):
        xfs_sb.parse_inprogress(text, "/dev/drbd0", 0)
