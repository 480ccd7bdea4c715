"""``blkid -p -o export DEVICE``: what signature (filesystem, swap, DRBD metadata, partition table) a
device carries, read from the device itself rather than from blkid's cache.

Exit codes of ``blkid -p``: 0 something found, 2 nothing found (not an error: a blank device),
8 ambiguous (several signatures; reported as type 'ambiguous' so nothing writes over it).
"""

from __future__ import annotations

import re

from reconciler.core.parse_error import ParseError
from reconciler.model.observed import Signature
from reconciler.names import check_device_path

EXIT_FOUND = 0
EXIT_NOTHING_FOUND = 2
EXIT_AMBIGUOUS = 8
AMBIGUOUS = "ambiguous"

_LINE = re.compile(r"([A-Z][A-Z0-9_]*)=(.*)")
_ESCAPED = re.compile(r"\\(.)")


def blkid_argv(device: str) -> tuple[str, ...]:
    return ("blkid", "-p", "-o", "export", check_device_path(device))


def _unescape(value: str) -> str:
    # blkid escapes shell-unsafe characters with a backslash in export mode.
    return _ESCAPED.sub(r"\1", value)


def _key(raw: str) -> str:
    # The udev flavour (``-o udev``) prefixes the same keys with ID_FS_ / ID_PART_TABLE_.
    if raw.startswith("ID_FS_"):
        return raw[len("ID_FS_"):]
    if raw == "ID_PART_TABLE_TYPE":
        return "PTTYPE"
    if raw == "ID_PART_TABLE_UUID":
        return "PTUUID"
    return raw


def parse_blkid_export(text: str, device: str, exit_code: int) -> Signature:
    tool = "blkid"
    if exit_code == EXIT_NOTHING_FOUND:
        if text.strip():
            raise ParseError(tool, f"exit 2 (nothing found) but output was printed for {device}")
        return Signature(device=device)
    if exit_code == EXIT_AMBIGUOUS:
        return Signature(device=device, type=AMBIGUOUS, usage=AMBIGUOUS)
    if exit_code != EXIT_FOUND:
        raise ParseError(tool, f"unexpected exit code {exit_code} probing {device}")
    values: dict[str, str] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.fullmatch(line)  # not stripped: an escaped trailing space belongs to the value
        if match is None:
            raise ParseError(tool, "expected KEY=value", line_no, line)
        values[_key(match.group(1))] = _unescape(match.group(2))
    devname = values.get("DEVNAME")
    if devname is not None and devname != device:
        raise ParseError(tool, f"output is about {devname}, not {device}")
    fs_type = values.get("TYPE") or None
    usage = values.get("USAGE") or None
    if fs_type is None and values.get("PTTYPE"):
        fs_type = values["PTTYPE"]
        usage = usage or "partition_table"
    if fs_type is None and not values.get("PART_ENTRY_SCHEME"):
        # Exit 0 with no type would read as "blank": refuse rather than invite a write over unknown data.
        raise ParseError(tool, f"exit 0 but no TYPE or PTTYPE reported for {device}")
    if fs_type is None:
        fs_type = "partition"
        usage = usage or "partition"
    return Signature(
        device=device,
        type=fs_type,
        uuid=values.get("UUID") or values.get("PTUUID") or None,
        label=values.get("LABEL") or None,
        usage=usage,
    )
