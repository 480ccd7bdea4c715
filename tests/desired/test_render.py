"""What `render` writes for a node: the files, and that they are exactly the expanded config texts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.backends.drbd.paths import config_path as drbd_path
from reconciler.backends.xen.paths import config_path as xen_path
from reconciler.desired.expand import expand_node
from reconciler.desired.load import load_cluster
from reconciler.desired.render import render_node
from reconciler.names import UnsafeNameError
from tests.desired.repo import CLUSTER, VM100, VM101, with_drbd84, write_repo


def rendered(tmp_path: Path, node: str = "erdbeere", cluster: str = CLUSTER,
             vms: dict[str, str] | None = None) -> dict[str, str]:
    repo = write_repo(tmp_path / "repo", cluster, vms if vms is not None else {"vm100.yaml": VM100,
                                                                               "vm101.yaml": VM101})
    return render_node(expand_node(load_cluster(str(repo)), node))


def test_render_writes_the_reviewable_files(tmp_path: Path) -> None:
    files = rendered(tmp_path)
    assert sorted(files) == ["dm/root100.table", "etc/drbd.d/vm100.res", "etc/drbd.d/vm101.res",
                             "etc/xen/vm100.cfg", "etc/xen/vm101.cfg", "lvs.txt"]
    assert files["dm/root100.table"] == (
        "0 629145600 striped 3 64 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0 /dev/vg-sdc/root100 0\n"
    )


def test_config_texts_are_what_render_writes(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "repo", CLUSTER, {"vm100.yaml": VM100})
    node = expand_node(load_cluster(str(repo)), "erdbeere")
    files = render_node(node)
    vm = node.vms[0]
    assert vm.drbd is not None
    assert vm.domain is not None
    assert vm.drbd.config_path == "/etc/drbd.d/vm100.res"
    assert vm.domain.config_path == "/etc/xen/vm100.cfg"
    assert files["etc/drbd.d/vm100.res"] == vm.drbd.config_text
    assert files["etc/xen/vm100.cfg"] == vm.domain.config_text


def test_xen_config_names_the_drbd_device_and_the_three_swap_lvs(tmp_path: Path) -> None:
    cfg = rendered(tmp_path)["etc/xen/vm100.cfg"]
    assert "disk = ['phy:/dev/drbd0,xvda,w', 'phy:/dev/vg-sda/swap100,xvdb,w', 'phy:/dev/vg-sdb/swap100,xvdc,w', " \
           "'phy:/dev/vg-sdc/swap100,xvdd,w']" in cfg
    assert 'name = "vm100"' in cfg
    assert "memory = 4096" in cfg
    assert "maxmem = 4096" in cfg
    assert "vcpus = 2" in cfg
    assert "maxvcpus = 2" in cfg
    assert 'bootloader = "pygrub"' in cfg
    assert "vif = ['mac=00:16:3e:00:01:00,bridge=xenbr0']" in cfg


def test_kernel_boot_is_rendered_instead_of_a_bootloader(tmp_path: Path) -> None:
    vm = VM100.replace("  memory: 4G\n", "  memory: 4G\n  kernel: /boot/vmlinuz-xen\n  ramdisk: /boot/initrd-xen\n"
                       "  extra: root=/dev/xvda ro console=hvc0\n")
    cluster = CLUSTER.replace("  domain:\n    bootloader: pygrub\n", "")
    cfg = rendered(tmp_path, cluster=cluster, vms={"vm100.yaml": vm})["etc/xen/vm100.cfg"]
    assert 'kernel = "/boot/vmlinuz-xen"' in cfg
    assert 'ramdisk = "/boot/initrd-xen"' in cfg
    assert 'extra = "root=/dev/xvda ro console=hvc0"' in cfg
    assert "bootloader" not in cfg


def test_lv_listing_has_every_lv_with_its_size(tmp_path: Path) -> None:
    listing = rendered(tmp_path)["lvs.txt"]
    rows = [line.split() for line in listing.splitlines()[2:]]
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("vg-sda/root100", "100GiB", "data"), ("vg-sdb/root100", "100GiB", "data"),
        ("vg-sdc/root100", "100GiB", "data"), ("vg-sda/swap100", "2GiB", "swap"),
        ("vg-sdb/swap100", "2GiB", "swap"), ("vg-sdc/swap100", "2GiB", "swap"),
        ("vg-sdb/root101", "20GiB", "data"),
    ]
    assert rows[0][2] == str(100 * 1024**3)


def test_drbd_files_follow_the_node_version(tmp_path: Path) -> None:
    nine = rendered(tmp_path / "9")["etc/drbd.d/vm100.res"]
    old = rendered(tmp_path / "84", cluster=with_drbd84())["etc/drbd.d/vm100.res"]
    assert "auto-promote no;" in nine
    assert "node-id 0;" in nine
    assert "auto-promote" not in old
    assert "node-id" not in old
    assert re.search(r"net \{[^}]*fencing resource-and-stonith;", nine)
    assert re.search(r"disk \{[^}]*fencing resource-and-stonith;", old)


def test_deleted_vm_gets_no_configuration_only_its_lv_rows(tmp_path: Path) -> None:
    vm = VM100.replace("id: 100\n", "id: 100\nlifecycle: deleted\nconfirm_delete: vm100\n")
    files = rendered(tmp_path, vms={"vm100.yaml": vm})
    assert sorted(files) == ["lvs.txt"]
    assert "deleted" in files["lvs.txt"]


def test_rendering_is_identical_on_both_nodes_for_the_drbd_file(tmp_path: Path) -> None:
    a = rendered(tmp_path / "a", "erdbeere")
    b = rendered(tmp_path / "b", "himbeere")
    assert a["etc/drbd.d/vm100.res"] == b["etc/drbd.d/vm100.res"]
    assert a["lvs.txt"] != b["lvs.txt"]


def test_no_file_allows_two_primaries_not_even_for_live_migration(tmp_path: Path) -> None:
    """A dual-primary allowance belongs only inside a migration's window, never in a file."""
    migrating = VM101 + "  live_migration: true\n"
    repo = write_repo(tmp_path / "repo", CLUSTER, {"vm100.yaml": VM100, "vm101.yaml": migrating})
    node = expand_node(load_cluster(str(repo)), "erdbeere")
    flags = {vm.name: (vm.drbd.allow_two_primaries if vm.drbd else None) for vm in node.vms}
    assert flags == {"vm100": False, "vm101": False}
    assert {vm.name: vm.domain.live_migration for vm in node.vms if vm.domain} == {"vm100": False, "vm101": True}
    files = render_node(node)
    assert "allow-two-primaries no;" in files["etc/drbd.d/vm100.res"]
    assert "allow-two-primaries no;" in files["etc/drbd.d/vm101.res"]
    assert "allow-two-primaries yes" not in files["etc/drbd.d/vm101.res"]


def test_config_paths_refuse_unsafe_names() -> None:
    assert drbd_path("vm100") == "/etc/drbd.d/vm100.res"
    assert xen_path("vm100") == "/etc/xen/vm100.cfg"
    for bad in ("../../root/.ssh/authorized_keys", "vm100/x", "-rf"):
        with pytest.raises(UnsafeNameError):
            drbd_path(bad)
        with pytest.raises(UnsafeNameError):
            xen_path(bad)
