"""Simulated dmsetup: the kernel's table rules, reload/resume, removal and the listings."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.sim.host import SimHost
from tests.sim.storage_helpers import cluster, ok

STRIPE = "0 4194304 striped 2 128 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0\n"


@pytest.fixture
def host(tmp_path: Path) -> SimHost:
    sim = SimHost(cluster(tmp_path, nodes=("erdbeere",)), "erdbeere")
    for vg in ("vg-sda", "vg-sdb"):
        ok(sim, "lvcreate", "-L", "1G", "-n", "root100", vg)
    return sim


def _invalid(host: SimHost, table: str) -> str:
    result = host.run(["dmsetup", "create", "root100"], stdin=table)
    assert result.returncode == 1
    assert host.run(["dmsetup", "info", "root100"]).returncode == 1, "a failed create leaves no device"
    return result.stderr


@pytest.mark.parametrize("table", [
    "0 4194303 striped 2 128 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0\n",  # not divisible by stripes
    "0 4194000 striped 2 128 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0\n",  # stripe not divisible by chunk
    "0 4194304 striped 2 96 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0\n",  # chunk not a power of two
    "0 4194304 striped 2 4 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0\n",  # chunk below 8 sectors
    "0 4194304 striped 2 128 /dev/vg-sda/root100 0\n",  # a leg missing
    "0 8388608 striped 2 128 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0\n",  # legs too small
    "0 2097152 linear /dev/vg-sda/root100 2048\n",  # beyond the end of the leg
    "0 2097152 mirror core 1 1024\n",  # a target this simulator does not have
])
def test_the_kernel_refuses_bad_tables_with_einval(host: SimHost, table: str) -> None:
    stderr = _invalid(host, table)
    assert stderr == "device-mapper: reload ioctl on root100  failed: Invalid argument\nCommand failed.\n"


def test_a_missing_leg_is_no_such_device(host: SimHost) -> None:
    stderr = _invalid(host, "0 2097152 linear /dev/vg-sdc/root100 0\n")
    assert "failed: No such device or address\n" in stderr


def test_a_failed_create_still_used_up_a_minor(host: SimHost) -> None:
    _invalid(host, "0 2097153 linear /dev/vg-sda/root100 0\n")
    ok(host, "dmsetup", "create", "root100", stdin="0 2097152 linear /dev/vg-sda/root100 0\n")
    assert "Major, minor:      253, 3\n" in ok(host, "dmsetup", "info", "root100").stdout


def test_create_shows_legs_as_major_minor_and_keeps_the_uuid(host: SimHost) -> None:
    ok(host, "dmsetup", "create", "root100", "--uuid", "RECONCILER-root100", stdin=STRIPE)
    assert ok(host, "dmsetup", "table", "root100").stdout == "0 4194304 striped 2 128 253:0 0 253:1 0\n"
    info = ok(host, "dmsetup", "info", "-c", "--noheadings", "--separator", "/", "-o",
              "name,major,minor,attr,open,uuid").stdout.splitlines()
    assert "root100/253/2/L--w/0/RECONCILER-root100" in info
    assert any(line.startswith("vg--sda-root100/253/0/L--w/1/LVM-") for line in info)


def test_table_given_inline_with_table_option(host: SimHost) -> None:
    ok(host, "dmsetup", "create", "lin", "--table", "0 2097152 linear /dev/vg-sda/root100 0")
    assert ok(host, "dmsetup", "table", "lin").stdout == "0 2097152 linear 253:0 0\n"


def test_duplicate_name_or_uuid_is_busy(host: SimHost) -> None:
    ok(host, "dmsetup", "create", "root100", "--uuid", "RECONCILER-root100", stdin=STRIPE)
    again = host.run(["dmsetup", "create", "root100", "--uuid", "RECONCILER-root100"], stdin=STRIPE)
    assert again.returncode == 1
    assert again.stderr == ("device-mapper: create ioctl on root100 RECONCILER-root100 failed: Device or resource "
                            "busy\nCommand failed.\n")
    lv_name = host.run(["dmsetup", "create", "vg--sda-root100"], stdin=STRIPE)
    assert "Device or resource busy" in lv_name.stderr
    lv_uuid = next(line.rsplit("/", 1)[1] for line in ok(
        host, "dmsetup", "info", "-c", "--noheadings", "--separator", "/", "-o", "name,uuid").stdout.splitlines()
        if line.startswith("vg--sdb-root100/"))
    taken = host.run(["dmsetup", "create", "other", "--uuid", lv_uuid], stdin=STRIPE)
    assert "Device or resource busy" in taken.stderr, "an LV's dm uuid is taken too"
    ok(host, "dmsetup", "create", "other", "--uuid", lv_uuid[:-1] + "x", stdin=STRIPE)


def test_reload_takes_effect_on_resume(host: SimHost) -> None:
    ok(host, "dmsetup", "create", "root100", stdin="0 2097152 linear /dev/vg-sda/root100 0\n")
    ok(host, "dmsetup", "suspend", "root100")
    ok(host, "dmsetup", "reload", "root100", stdin=STRIPE)
    info = ok(host, "dmsetup", "info", "root100").stdout
    assert "State:             SUSPENDED\n" in info
    assert "Tables present:    LIVE & INACTIVE\n" in info
    assert ok(host, "dmsetup", "table", "root100").stdout == "0 2097152 linear 253:0 0\n"
    assert ok(host, "dmsetup", "info", "-c", "--noheadings", "-o", "attr", "root100").stdout == "LIsw\n"
    ok(host, "dmsetup", "resume", "root100")
    assert ok(host, "dmsetup", "table", "root100").stdout == "0 4194304 striped 2 128 253:0 0 253:1 0\n"
    assert "State:             ACTIVE\n" in ok(host, "dmsetup", "info", "root100").stdout


def test_remove_refuses_an_open_device_and_unknown_names(host: SimHost) -> None:
    ok(host, "dmsetup", "create", "root100", stdin=STRIPE)
    ok(host, "dmsetup", "create", "upper", stdin="0 4194304 linear /dev/mapper/root100 0\n")
    busy = host.run(["dmsetup", "remove", "root100"])
    assert busy.returncode == 1
    assert busy.stderr == "device-mapper: remove ioctl on root100  failed: Device or resource busy\nCommand failed.\n"
    ok(host, "dmsetup", "remove", "upper")
    ok(host, "dmsetup", "remove", "root100")
    missing = host.run(["dmsetup", "remove", "root100"])
    assert (missing.returncode, missing.stderr) == (
        1, "device-mapper: remove ioctl on root100  failed: No such device or address\nCommand failed.\n")
    assert host.run(["dmsetup", "table", "nope"]).stderr == "Device does not exist.\nCommand failed.\n"


def test_ls_and_dev_mapper_list_lvs_and_own_devices(host: SimHost) -> None:
    ok(host, "dmsetup", "create", "root100", stdin=STRIPE)
    assert ok(host, "dmsetup", "ls").stdout == ("root100\t(253:2)\nvg--sda-root100\t(253:0)\n"
                                                "vg--sdb-root100\t(253:1)\n")
    assert host.list_dir("/dev/mapper") == ("control", "root100", "vg--sda-root100", "vg--sdb-root100")


def test_unknown_subcommand(host: SimHost) -> None:
    result = host.run(["dmsetup", "frob"])
    assert (result.returncode, result.stderr) == (1, "Unknown command: frob\nCommand failed.\n")
