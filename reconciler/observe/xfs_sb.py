"""``xfs_db -r -c 'sb 0' -c 'print inprogress' DEVICE``: whether an XFS filesystem's creation finished.

``mkfs.xfs`` writes the primary superblock early with ``sb_inprogress`` set and clears it as its very last
write, and the kernel refuses to mount a filesystem with it set. ``blkid -p`` does not look at the flag, so a
filesystem cut short by a crash probes as plain ``xfs``; this read tells the two apart. ``-r`` opens the device
read-only. Outputs of xfsprogs 6.1.0: tests/parsers/fixtures/xfs_db-*.
"""

from __future__ import annotations

import re

from reconciler.core.parse_error import ParseError
from reconciler.names import check_device_path

_INPROGRESS = re.compile(r"inprogress = (\d+)")


def inprogress_argv(device: str) -> tuple[str, ...]:
    return ("xfs_db", "-r", "-c", "sb 0", "-c", "print inprogress", check_device_path(device))


def parse_inprogress(text: str, device: str, exit_code: int) -> bool:
    """True when ``mkfs.xfs`` never finished on ``device``; ParseError for anything but a clear answer."""
    tool = "xfs_db"
    if exit_code != 0:
        raise ParseError(tool, f"exit {exit_code} reading the superblock of {device}")
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise ParseError(tool, f"expected one line 'inprogress = N' for {device}, got {len(lines)}")
    match = _INPROGRESS.fullmatch(lines[0].strip())
    if match is None:
        raise ParseError(tool, "expected 'inprogress = N'", 1, lines[0])
    return int(match.group(1)) != 0
