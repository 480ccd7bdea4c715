"""Version probes: read once, never an error."""

from __future__ import annotations

from pathlib import Path

from reconciler.backends.dm.parse import VERSION_ARGV as DMSETUP_VERSION_ARGV
from reconciler.backends.dm.parse import parse_dmsetup_version
from reconciler.backends.drbd.utils_version import VERSION_ARGV as DRBDADM_VERSION_ARGV
from reconciler.backends.drbd.utils_version import parse_drbdadm_version
from reconciler.backends.lvm.parse import VERSION_ARGV as LVM_VERSION_ARGV
from reconciler.core.facts import ToolVersions
from reconciler.host.base import EXIT_NOT_FOUND, CommandResult
from reconciler.model.observed import ToolStatus
from reconciler.observe.versions import probe_versions
from tests.observe.scripted import DMSETUP_VERSION_OUT, DRBDADM_VERSION_OUT, LVM_VERSION_OUT

NO_DM_DRIVER = (
    "/dev/mapper/control: open failed: No such device\n"
    "Failure to communicate with kernel device-mapper driver.\n"
    "Check that device-mapper is available in the kernel.\n"
    "Incompatible libdevmapper 1.02.185 (2022-05-18) and kernel driver (unknown version).\n"
    "Library version:   1.02.185 (2022-05-18)\n"
)


def test_dmsetup_version_with_and_without_the_kernel_driver() -> None:
    assert parse_dmsetup_version(DMSETUP_VERSION_OUT) == "1.02.185 (driver 4.48.0)"
    assert parse_dmsetup_version(NO_DM_DRIVER) == "1.02.185"
    assert parse_dmsetup_version("garbage\n") is None


def test_drbdadm_version() -> None:
    assert parse_drbdadm_version(DRBDADM_VERSION_OUT) == "9.22.0"
    assert parse_drbdadm_version("DRBDADM_VERSION_CODE=0x080409\n") is None


def _drbd_utils(versions: ToolVersions) -> ToolStatus:
    status = versions.status("drbd_utils")
    assert status is not None
    return status


def _runner(answers: dict[tuple[str, ...], CommandResult]) -> object:
    def run(argv: object) -> CommandResult:
        return answers[tuple(argv)]  # type: ignore[arg-type]
    return run


def test_probe_reads_every_version() -> None:
    versions = probe_versions(_runner({  # type: ignore[arg-type]
        LVM_VERSION_ARGV: CommandResult(LVM_VERSION_ARGV, 0, LVM_VERSION_OUT, ""),
        DMSETUP_VERSION_ARGV: CommandResult(DMSETUP_VERSION_ARGV, 1, NO_DM_DRIVER, "Command failed.\n"),
        DRBDADM_VERSION_ARGV: CommandResult(DRBDADM_VERSION_ARGV, 0, DRBDADM_VERSION_OUT, ""),
    }))
    assert (versions.version("lvm"), versions.version("dmsetup")) == ("2.03.16", "1.02.185")
    assert (_drbd_utils(versions).state, _drbd_utils(versions).version) == ("available", "9.22.0")
    assert versions.answered
    assert versions.complete


def test_missing_and_broken_tools_give_no_version_and_no_exception() -> None:
    def absent(argv: tuple[str, ...]) -> CommandResult:
        return CommandResult(argv, EXIT_NOT_FOUND, "", "not found", not_found=True)

    versions = probe_versions(_runner({  # type: ignore[arg-type]
        LVM_VERSION_ARGV: CommandResult(LVM_VERSION_ARGV, 0, "something else\n", ""),
        DMSETUP_VERSION_ARGV: absent(DMSETUP_VERSION_ARGV),
        DRBDADM_VERSION_ARGV: absent(DRBDADM_VERSION_ARGV),
    }))
    assert (versions.version("lvm"), versions.version("dmsetup")) == (None, None)
    assert _drbd_utils(versions).state == "missing"
    assert versions.answered
    assert not versions.complete
    broken = probe_versions(_runner({  # type: ignore[arg-type]
        LVM_VERSION_ARGV: absent(LVM_VERSION_ARGV),
        DMSETUP_VERSION_ARGV: absent(DMSETUP_VERSION_ARGV),
        DRBDADM_VERSION_ARGV: CommandResult(DRBDADM_VERSION_ARGV, 1, "", "drbdadm: unknown option\n"),
    }))
    assert _drbd_utils(broken).state == "failed"
    assert "unknown option" in (_drbd_utils(broken).detail or "")
    assert not broken.answered


def test_real_lvm_version_output(real_outputs: Path) -> None:
    from reconciler.backends.lvm.parse import parse_lvm_version

    assert parse_lvm_version((real_outputs / "captured-here" / "lvm-version.txt").read_text()) == "2.03.16"
