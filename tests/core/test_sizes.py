from __future__ import annotations

import pytest

from reconciler.sizes import SizeError, format_size, parse_size

GIB = 1024**3


@pytest.mark.parametrize(
    "text", ["2G", "2GiB", "2g", "2 GiB", "2GB", "2gib", 2 * GIB, str(2 * GIB), "2048M", "2097152K"]
)
def test_two_gib_spellings(text: object) -> None:
    assert parse_size(text) == 2 * GIB


def test_units() -> None:
    assert parse_size("1") == 1
    assert parse_size("1b") == 1
    assert parse_size("1T") == 1024**4
    assert parse_size("100G") == 100 * GIB


@pytest.mark.parametrize("bad", ["0", "-1G", "1.5G", "G", "2X", "", "two", True, None, 0, -5, [1]])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(SizeError):
        parse_size(bad)


def test_format_is_exact() -> None:
    assert format_size(2 * GIB) == "2GiB"
    assert format_size(1536) == "1536B"
    assert format_size(100 * GIB) == "100GiB"
    assert format_size(3 * 1024**2) == "3MiB"
