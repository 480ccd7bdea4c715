"""device-mapper: ``dmsetup table`` and ``dmsetup info -c``.

The kernel prints the devices of a table as ``major:minor`` while the tables this project renders use
paths such as ``/dev/vg-sda/root100``; :func:`normalise_table` maps one form onto the other so both
compare equal. Devices this project creates carry the uuid ``RECONCILER-<name>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from reconciler.backends.dm import argv as _argv
from reconciler.core.parse_error import ParseError
from reconciler.model.observed import DmDevice, DmTarget

TABLE_ARGV: tuple[str, ...] = ("dmsetup", "table")
VERSION_ARGV: tuple[str, ...] = ("dmsetup", "version")
# Lives in backends.dm.argv (importable on its own, for the prefetch); this name stays the parser's.
INFO_ARGV: tuple[str, ...] = _argv.DM_INFO_ARGV

_NO_DEVICES = "No devices found"
_TARGET_LINE = re.compile(r"([0-9]+) ([0-9]+) ([A-Za-z0-9_-]+)(?: (.*))?")
# Greedy name: a name containing ': ' still splits at the last ': <start> <length> <target>'.
_PREFIXED_LINE = re.compile(r"(.+): ([0-9]+ [0-9]+ [A-Za-z0-9_-]+(?: .*)?)")
_EMPTY_TABLE_LINE = re.compile(r"(.+):\s*")
_ATTR = re.compile(r"[L-][I-][s-][rw]")


def _target(text: str, tool: str, line_no: int, line: str) -> DmTarget:
    match = _TARGET_LINE.fullmatch(text.strip())
    if match is None:
        raise ParseError(tool, "expected '<start> <length> <target> [args]'", line_no, line)
    length = int(match.group(2))
    if length <= 0:
        raise ParseError(tool, "a target of length 0", line_no, line)
    return DmTarget(start=int(match.group(1)), length=length, target=match.group(3), args=match.group(4) or "")


def parse_table(text: str) -> dict[str, tuple[DmTarget, ...]]:
    """``dmsetup table`` for all devices (lines prefixed ``name:``); a device without a table maps to ()."""
    tool = "dmsetup table"
    tables: dict[str, list[DmTarget]] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped == _NO_DEVICES:
            continue
        match = _PREFIXED_LINE.fullmatch(stripped)
        if match is not None:
            tables.setdefault(match.group(1), []).append(_target(match.group(2), tool, line_no, line))
            continue
        empty = _EMPTY_TABLE_LINE.fullmatch(stripped)
        if empty is not None and " " not in empty.group(1):
            tables.setdefault(empty.group(1), [])
            continue
        raise ParseError(tool, "expected '<name>: <start> <length> <target> [args]'", line_no, line)
    return {name: tuple(targets) for name, targets in tables.items()}


def parse_single_table(text: str) -> tuple[DmTarget, ...]:
    """``dmsetup table NAME``: the same lines without the name prefix."""
    tool = "dmsetup table"
    targets = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        targets.append(_target(line, tool, line_no, line))
    return tuple(targets)


def _number(value: str, what: str, tool: str, line_no: int, line: str) -> int:
    if not re.fullmatch(r"[0-9]+", value):
        raise ParseError(tool, f"{what} {value!r} is not a number", line_no, line)
    return int(value)


def parse_info(text: str) -> tuple[DmDevice, ...]:
    """``dmsetup info -c --noheadings --separator / -o name,major,minor,attr,open,uuid``."""
    tool = "dmsetup info"
    devices = []
    seen: set[str] = set()
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped == _NO_DEVICES:
            continue
        fields = stripped.split("/", 5)
        if len(fields) != 6:
            raise ParseError(tool, "expected 6 fields name/major/minor/attr/open/uuid", line_no, line)
        name, major, minor, attr, open_count, uuid = fields
        if not name:
            raise ParseError(tool, "empty device name", line_no, line)
        if name in seen:
            raise ParseError(tool, f"device {name!r} listed twice", line_no, line)
        seen.add(name)
        if not _ATTR.fullmatch(attr):
            raise ParseError(tool, f"attr {attr!r} is not of the form [L-][I-][s-][rw]", line_no, line)
        devices.append(
            DmDevice(
                name=name,
                uuid=uuid,
                major=_number(major, "major", tool, line_no, line),
                minor=_number(minor, "minor", tool, line_no, line),
                open_count=_number(open_count, "open count", tool, line_no, line),
                suspended=attr[2] == "s",
                live_table=attr[0] == "L",
                inactive_table=attr[1] == "I",
                read_only=attr[3] == "r",
            )
        )
    return tuple(devices)


def merge(info: tuple[DmDevice, ...], tables: Mapping[str, tuple[DmTarget, ...]]) -> tuple[DmDevice, ...]:
    """Attach each device's table. A device only one of the two commands saw (created or removed between
    them) is kept rather than dropped: from ``info`` with an empty table, from ``table`` with no uuid."""
    merged = [device.model_copy(update={"targets": tables.get(device.name, ())}) for device in info]
    known = {device.name for device in info}
    merged.extend(DmDevice(name=name, targets=targets) for name, targets in tables.items() if name not in known)
    return tuple(merged)


def normalise_table(table_text: str, device_numbers: Mapping[str, str]) -> str:
    """Canonical text of a table: single spaces, no blank lines, and every token found in
    ``device_numbers`` replaced by its value (path -> 'major:minor', or the reverse mapping)."""
    lines = []
    for line in table_text.splitlines():
        tokens = line.split()
        if tokens:
            lines.append(" ".join(device_numbers.get(token, token) for token in tokens))
    return "\n".join(lines)


_LIBRARY_RE = re.compile(r"^Library version:\s*(\S+)", re.MULTILINE)
_DRIVER_RE = re.compile(r"^Driver version:\s*(\S+)", re.MULTILINE)


def parse_dmsetup_version(text: str) -> str | None:
    """``dmsetup version``: the library version, with the kernel driver's when the driver answered."""
    library = _LIBRARY_RE.search(text)
    if library is None:
        return None
    driver = _DRIVER_RE.search(text)
    return f"{library.group(1)} (driver {driver.group(1)})" if driver else library.group(1)
