"""Failure classification at the host seam, from what the tools really print."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.apply.classify import classify
from reconciler.host.base import CommandResult
from tests.conftest import read_capture


def result(code: int, stderr: str = "", **kw: bool) -> CommandResult:
    return CommandResult(("tool",), code, "", stderr, **kw)


@pytest.mark.parametrize(("code", "stderr", "kind"), [
    (0, "", "ok"),
    (5, '  Volume group "vg-sda" has insufficient free space (1279 extents): 25600 required.', "permanent"),
    (5, '  Logical Volume "root100" already exists in volume group "vg-sda"', "permanent"),
    (1, "device-mapper: reload ioctl on root100 failed: Device or resource busy", "transient"),
    (5, "  Resource temporarily unavailable", "transient"),
    (11, "vm100: State change failed: (-1) Multiple primaries not allowed by config", "precondition"),
    (17, "vm100: State change failed: (-2) Need access to UpToDate data", "precondition"),
    (1, "mkfs.xfs: /dev/drbd0 appears to contain an existing filesystem (xfs).", "permanent"),
    (3, "something nobody has seen before", "permanent"),
    # drbdadm killed a slow drbdsetup (DRBD 8.4 on a loaded lab node).
    (20, "Command 'drbdsetup-84 new-resource vm100' did not terminate within 5 seconds after 2 attempts",
     "transient"),
    (20, "Command 'drbdmeta 0 v08 /dev/mapper/root100 internal apply-al' terminated with exit code 20", "permanent"),
])
def test_messages_decide(code: int, stderr: str, kind: str) -> None:
    assert classify(result(code, stderr)).kind == kind


def test_timeout_is_transient_and_missing_tool_permanent() -> None:
    assert classify(result(124, "timed out", timed_out=True)).kind == "transient"
    missing = classify(result(127, "drbdadm: not found", not_found=True))
    assert missing.kind == "permanent"
    assert "installed" in missing.reason


@pytest.mark.parametrize(("name", "kind"), [
    ("lvcreate-no-space.txt", "permanent"),
    ("lvcreate-exists.txt", "permanent"),
    ("lvremove-missing.txt", "permanent"),
    ("mkfs-xfs-again.txt", "permanent"),
    ("lvcreate-ok.txt", "ok"),
])
def test_real_outputs_classify(real_outputs: Path, name: str, kind: str) -> None:
    command, code, out, err = read_capture(real_outputs / "captured-here" / name)
    assert classify(CommandResult(tuple(command.split()), code, out, err)).kind == kind
