"""Binary sizes: ``2G``, ``2GiB`` and ``2g`` all mean 2 GiB; a plain integer means bytes."""

from __future__ import annotations

import re

SECTOR = 512
KIB = 1024
MIB = 1024**2
GIB = 1024**3
TIB = 1024**4
PIB = 1024**5
_UNITS = {
    "": 1,
    "b": 1,
    "k": KIB,
    "m": MIB,
    "g": GIB,
    "t": TIB,
    "p": PIB,
}
_SIZE_RE = re.compile(r"\s*(\d+)\s*([kmgtp]?)(?:i?b)?\s*", re.IGNORECASE)


class SizeError(ValueError):
    """A size that cannot be parsed or is not positive."""


def parse_size(value: object) -> int:
    """Parse a size into bytes. Units are binary; decimal fractions are refused to avoid rounding."""
    if isinstance(value, bool):
        raise SizeError(f"{value!r} is not a size; write e.g. 2G, 512MiB or a number of bytes")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        match = _SIZE_RE.fullmatch(value)
        if match is None:
            raise SizeError(
                f"{value!r} is not a size; write a whole number with an optional binary unit "
                "(K, M, G, T, P; KiB/KB/k mean the same), e.g. 2G or 100GiB"
            )
        number = int(match.group(1)) * _UNITS[match.group(2).lower()]
    else:
        raise SizeError(f"{value!r} is not a size; write e.g. 2G, 512MiB or a number of bytes")
    if number <= 0:
        raise SizeError(f"{value!r} is not positive; a size must be at least one byte")
    return number


def format_size(num_bytes: int) -> str:
    """The shortest exact binary rendering: 2147483648 -> '2GiB', 1536 -> '1536B'... '1.5KiB' is never used."""
    for suffix, factor in (("PiB", PIB), ("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if num_bytes >= factor and num_bytes % factor == 0:
            return f"{num_bytes // factor}{suffix}"
    return f"{num_bytes}B"
