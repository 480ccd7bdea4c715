"""What taking over a hand-built node needs from the simulator: `dmsetup rename --setuuid` (once, only on a device
without a uuid), `lvchange --addtag`, and `tee PATH` to write a config by hand."""

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


def _uuid(host: SimHost, name: str) -> str:
    return host.run(["dmsetup", "info", "-c", "--noheadings", "-o", "uuid", name]).stdout.strip()


def test_setuuid_works_once_on_a_device_made_without_uuid(host: SimHost) -> None:
    assert host.run(["dmsetup", "create", "root100"], stdin=STRIPE).ok
    assert _uuid(host, "root100") == ""
    assert host.run(["dmsetup", "rename", "root100", "--setuuid", "RECONCILER-root100"]).ok
    assert _uuid(host, "root100") == "RECONCILER-root100"
    again = host.run(["dmsetup", "rename", "root100", "--setuuid", "OTHER-root100"])
    assert again.returncode == 1
    assert "rename ioctl on root100" in again.stderr
    assert "Invalid argument" in again.stderr
    assert _uuid(host, "root100") == "RECONCILER-root100"


def test_setuuid_refuses_a_uuid_another_device_holds(host: SimHost) -> None:
    assert host.run(["dmsetup", "create", "other", "--uuid", "RECONCILER-root100"],
                    stdin="0 2048 linear /dev/vg-sda/root100 0\n").ok
    assert host.run(["dmsetup", "create", "root100"], stdin="0 2048 linear /dev/vg-sdb/root100 0\n").ok
    busy = host.run(["dmsetup", "rename", "root100", "--setuuid", "RECONCILER-root100"])
    assert busy.returncode == 1
    assert "Device or resource busy" in busy.stderr
    assert _uuid(host, "root100") == ""


def test_a_plain_rename_moves_the_name(host: SimHost) -> None:
    assert host.run(["dmsetup", "create", "root100"], stdin=STRIPE).ok
    assert host.run(["dmsetup", "rename", "root100", "data100"]).ok
    assert host.run(["dmsetup", "info", "root100"]).returncode == 1
    assert "striped" in host.run(["dmsetup", "table", "data100"]).stdout


def test_lvchange_adds_and_removes_a_tag(host: SimHost) -> None:
    done = host.run(["lvchange", "--addtag", "reconciler", "vg-sda/root100"])
    assert done.ok, done.stderr
    tags = host.run(["lvs", "--noheadings", "-o", "lv_tags", "vg-sda/root100"]).stdout.strip()
    assert tags == "reconciler"
    assert host.run(["lvchange", "--deltag", "reconciler", "vg-sda/root100"]).ok
    assert host.run(["lvs", "--noheadings", "-o", "lv_tags", "vg-sda/root100"]).stdout.strip() == ""
    missing = host.run(["lvchange", "--addtag", "reconciler", "vg-sda/nothing"])
    assert missing.returncode != 0
    assert "nothing" in missing.stderr


def test_tee_writes_a_file_from_stdin(host: SimHost) -> None:
    result = host.run(["tee", "/etc/drbd.d/vm100.res"], stdin="resource vm100 {}\n")
    assert result.ok
    assert result.stdout == "resource vm100 {}\n"
    assert host.read_file("/etc/drbd.d/vm100.res") == "resource vm100 {}\n"
    assert host.run(["tee", "-a", "/etc/drbd.d/vm100.res"], stdin="# more\n").ok
    assert host.read_file("/etc/drbd.d/vm100.res") == "resource vm100 {}\n# more\n"
    relative = host.run(["tee", "vm100.res"], stdin="x")
    assert relative.returncode == 1
    assert "No such file" in relative.stderr
