"""A VM that moves live has every disk on replicated storage: swap LVs (local to each node) are refused."""

from __future__ import annotations

from pathlib import Path

from reconciler.desired.expand import expand_node
from reconciler.desired.load import collect
from tests.desired.repo import CLUSTER, VM100, VM101, write_repo

VM100_SWAP = "swap:\n  size: 2G\n"
NO_SWAP_LVS = "swap:\n  volume_groups: []\n"
LIVE = "  live_migration: true\n"


def _line_of(text: str, needle: str) -> int:
    return text.splitlines().index(needle) + 1


def _issues(tmp_path: Path, vms: dict[str, str], cluster: str = CLUSTER) -> list[str]:
    _, issues = collect(str(write_repo(tmp_path / "repo", cluster, vms)))
    return [f"{i.path}:{i.line}:{i.col}: {i.message} | {i.hint}" for i in issues]


def test_swap_lvs_on_a_vm_that_moves_live_are_refused_at_live_migration(tmp_path: Path) -> None:
    text = VM100 + LIVE
    found = _issues(tmp_path, {"vm100.yaml": text})
    line = _line_of(text, LIVE.rstrip("\n"))
    assert found == [
        f"vms/vm100.yaml:{line}:19: live migration needs every disk on replicated storage, but the VM gets swap LVs "
        "on vg-sda, vg-sdb, vg-sdc: swap LVs are local to each node, so swapped-out memory would not move with "
        "the guest | set swap: {volume_groups: []} so the VM gets no swap LVs (a swap file on its replicated "
        "filesystem moves with it), or live_migration: false"]


def test_a_vm_that_moves_live_without_swap_lvs_is_accepted(tmp_path: Path) -> None:
    text = VM100.replace(VM100_SWAP, NO_SWAP_LVS) + LIVE
    cluster, issues = collect(str(write_repo(tmp_path / "repo", CLUSTER, {"vm100.yaml": text})))
    assert issues == []
    assert cluster is not None
    (vm,) = expand_node(cluster, "erdbeere").vms
    assert vm.domain is not None
    assert vm.domain.live_migration
    assert [lv.purpose for lv in vm.lvs] == ["data"] * 3
    assert vm.swaps == ()
    assert vm.domain.disks == ("/dev/drbd0",)


def test_swap_lvs_on_a_vm_that_does_not_move_live_are_accepted(tmp_path: Path) -> None:
    text = VM100 + "  live_migration: false\n"
    cluster, issues = collect(str(write_repo(tmp_path / "repo", CLUSTER, {"vm100.yaml": text})))
    assert issues == []
    assert cluster is not None
    (vm,) = expand_node(cluster, "erdbeere").vms
    assert [lv.name for lv in vm.lvs if lv.purpose == "swap"] == ["swap100"] * 3


def test_swap_lvs_from_the_cluster_defaults_are_refused_too(tmp_path: Path) -> None:
    defaults = CLUSTER.replace("defaults:\n", "defaults:\n  swap:\n    size: 1G\n", 1)
    text = VM101 + LIVE  # no swap section of its own: the defaults give it one swap LV on its data VG
    found = _issues(tmp_path, {"vm101.yaml": text}, defaults)
    assert len(found) == 1, found
    assert found[0].startswith(f"vms/vm101.yaml:{_line_of(text, LIVE.rstrip())}:19: live migration needs every "
                               "disk on replicated storage, but the VM gets swap LVs on vg-sdb: swap LVs are local")


def test_no_swap_lvs_under_swap_defaults_is_accepted(tmp_path: Path) -> None:
    defaults = CLUSTER.replace("defaults:\n", "defaults:\n  swap:\n    size: 1G\n", 1)
    text = VM101.replace("drbd:\n", NO_SWAP_LVS + "drbd:\n", 1) + LIVE
    assert _issues(tmp_path, {"vm101.yaml": text}, defaults) == []


def test_live_migration_from_the_cluster_defaults_is_refused_where_it_is_set(tmp_path: Path) -> None:
    live_default = CLUSTER.replace("  domain:\n", "  domain:\n    live_migration: true\n", 1)
    found = _issues(tmp_path, {"vm100.yaml": VM100}, live_default)
    line = _line_of(live_default, "    live_migration: true")
    assert len(found) == 1, found
    assert found[0].startswith(f"cluster.yaml:{line}:21: live migration needs every disk on replicated storage")
