"""The Observer on real lvm2 (loop devices, activation disabled) and on the tools this machine lacks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.host.capture import CapturingHost
from reconciler.host.replay import ReplayHost
from reconciler.model.observed import ToolState
from reconciler.observe.observer import MAX_COMMANDS_PER_PASS, Observer
from tests.lvm_real.loopvg import GIB, MIB, LoopLab, _backing_file, loop_vgs, plain_loop, unavailable_reason

pytestmark = pytest.mark.root


def _expected_states() -> dict[str, ToolState]:
    """What each tool should be on this machine, from facts independent of the observer."""
    misc = Path("/proc/misc").read_text() if Path("/proc/misc").exists() else ""
    has_dm_driver = re.search(r"\bdevice-mapper\b", misc) is not None
    dmsetup: ToolState = "missing" if shutil.which("dmsetup") is None else (
        "available" if has_dm_driver else "failed")
    drbd: ToolState = "missing" if not Path("/proc/drbd").exists() else (
        "available" if shutil.which("drbdsetup") else "missing")
    xl: ToolState = "missing" if shutil.which("xl") is None else (
        "available" if Path("/proc/xen/capabilities").exists() else "failed")
    drbdadm: ToolState = "missing" if shutil.which("drbdadm") is None else "available"
    return {"lvm": "available", "dmsetup": dmsetup, "drbd": drbd, "drbdadm": drbdadm, "xl": xl}


def test_names_and_sizes_match_what_was_created(lab: LoopLab) -> None:
    lab.lvcreate("vg-sda", "root100", 256 * MIB)
    lab.lvcreate("vg-sda", "swap100", 128 * MIB)
    lab.lvcreate("vg-sdb", "root100", 256 * MIB)
    lab.lvcreate("vg-sdb", "odd", 5 * MIB)  # lvm2 rounds up to whole 4 MiB extents

    observed = Observer(lab.host()).observe()

    sda, sdb = lab.vg("vg-sda"), lab.vg("vg-sdb")
    assert sorted(vg.name for vg in observed.volume_groups) == sorted([sda, sdb])
    assert {(lv.vg, lv.name, lv.size_bytes) for lv in observed.logical_volumes} == {
        (sda, "root100", 256 * MIB), (sda, "swap100", 128 * MIB), (sdb, "root100", 256 * MIB),
        (sdb, "odd", 8 * MIB)}
    for vg, used in ((sda, 384 * MIB), (sdb, 264 * MIB)):
        group = observed.vg(vg)
        assert group is not None
        assert group.extent_size_bytes == 4 * MIB
        assert group.pv_count == 1
        assert 2 * GIB - 8 * MIB <= group.size_bytes <= 2 * GIB
        assert group.free_bytes == group.size_bytes - used
    root = observed.lv(sda, "root100")
    assert root is not None
    assert root.segtype == "linear"
    assert root.devices == (f"{lab.loops['vg-sda']}(0)",)
    assert root.attributes.startswith("-wi"), "a writable, non-activated linear volume"


def test_tools_this_machine_lacks_are_missing_or_failed_not_errors(lab: LoopLab) -> None:
    observed = Observer(lab.host()).observe()
    states = {t.name: t.state for t in observed.tools if t.name != "files"}
    assert states == _expected_states()
    lvm_version = subprocess.run(["lvm", "version"], capture_output=True, text=True, check=False, timeout=60,
                                 stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C", **lab.env}).stdout
    assert observed.tool("lvm").version in lvm_version  # type: ignore[union-attr,operator]
    for tool in observed.tools:
        if tool.state != "available":
            assert tool.detail, f"{tool.name} is {tool.state} without saying why"
    if states["dmsetup"] == "failed":
        assert observed.dm_devices == ()
        assert "dmsetup" in (observed.tool("dmsetup").detail or "")  # type: ignore[union-attr]
    if states["drbd"] == "missing":
        assert observed.drbd.kernel_version is None
        assert observed.drbd.resources == ()


def test_changes_show_in_the_next_pass_with_the_same_commands(lab: LoopLab) -> None:
    observer = Observer(lab.host())
    lab.lvcreate("vg-sda", "root100", 64 * MIB)
    first = observer.observe()
    lab.lvm("lvextend", "-L", f"{128 * MIB}b", f"{lab.vg('vg-sda')}/root100")
    lab.lvcreate("vg-sdb", "swap100", 32 * MIB)
    second = observer.observe()
    assert first.lv(lab.vg("vg-sda"), "root100").size_bytes == 64 * MIB  # type: ignore[union-attr]
    assert second.lv(lab.vg("vg-sda"), "root100").size_bytes == 128 * MIB  # type: ignore[union-attr]
    assert second.lv(lab.vg("vg-sdb"), "swap100") is not None
    lab.lvm("lvremove", "--yes", f"{lab.vg('vg-sdb')}/swap100")
    third = observer.observe()
    assert third.lv(lab.vg("vg-sdb"), "swap100") is None
    assert first.commands_run == second.commands_run == third.commands_run <= MAX_COMMANDS_PER_PASS


@pytest.mark.slow
def test_commands_per_pass_stay_fixed_from_1_to_500_lvs(lab: LoopLab) -> None:
    observer = Observer(lab.host())
    lab.lvcreate("vg-sdb", "lv0", 4 * MIB)
    small = observer.observe()
    lab.bulk_create_lvs("vg-sda", [f"lv{i}" for i in range(499)], 4 * MIB)
    large = observer.observe()
    assert len(small.logical_volumes) == 1
    assert len(large.logical_volumes) == 500
    assert small.commands_run == large.commands_run <= MAX_COMMANDS_PER_PASS
    assert {lv.size_bytes for lv in large.logical_volumes} == {4 * MIB}
    # The bulk-created LVs are real allocations: distinct extents, accounted in the VG's free space.
    sda = large.vg(lab.vg("vg-sda"))
    assert sda is not None
    assert sda.free_bytes == sda.size_bytes - 499 * 4 * MIB
    assert len({lv.devices for lv in large.logical_volumes if lv.vg == sda.name}) == 499


def test_capture_of_real_lvm_replays_identically(lab: LoopLab, tmp_path: Path) -> None:
    lab.lvcreate("vg-sda", "root100", 64 * MIB)
    captured = Observer(CapturingHost(lab.host(), tmp_path / "bundle")).observe()
    lab.lvm("lvremove", "--yes", f"{lab.vg('vg-sda')}/root100")  # the node changes; the bundle does not
    replayed = Observer(ReplayHost(tmp_path / "bundle")).observe()
    assert replayed == captured
    assert replayed.lv(lab.vg("vg-sda"), "root100") is not None
    index = json.loads((tmp_path / "bundle" / "index.json").read_text())
    assert [c["argv"][0] for c in index["commands"]][:5] == ["lvm", "dmsetup", "drbdadm", "vgs", "lvs"]


def test_probe_reads_real_signatures(lab: LoopLab) -> None:
    observer = Observer(lab.host())
    assert observer.probe(lab.loops["vg-sda"]).type == "LVM2_member"
    if shutil.which("mkfs.xfs") is None:
        pytest.skip("xfsprogs is not installed")
    with plain_loop(320 * MIB) as loop:
        assert observer.probe(loop).type is None
        subprocess.run(["mkfs.xfs", "-q", loop], check=True, capture_output=True, timeout=120)
        signature = observer.probe(loop)
        assert (signature.type, signature.usage) == ("xfs", "filesystem")
        assert signature.uuid


def test_lab_cleans_up_even_when_the_body_fails() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"real lvm2 on loop devices: {reason}")
    seen: dict[str, str] = {}
    workdirs: list[Path] = []

    def failing_body() -> None:
        with loop_vgs(["vg-x"], disk_bytes=64 * MIB) as lab:
            seen.update(lab.loops)
            workdirs.append(lab.workdir)
            lab.lvcreate("vg-x", "lv", 8 * MIB)
            raise RuntimeError("body failed")

    with pytest.raises(RuntimeError, match="body failed"):
        failing_body()
    workdir = workdirs[0]
    assert seen
    assert not workdir.exists()
    for loop in seen.values():
        assert _backing_file(loop) != str(workdir / "vg-x.img")


def test_a_vanished_disk_shows_as_partial_lvs_not_as_missing_lvs(lab: LoopLab) -> None:
    sda = lab.vg("vg-sda")
    lab.lvm("vgremove", "--yes", lab.vg("vg-sdb"))
    lab.lvm("vgextend", sda, lab.loops["vg-sdb"])
    lab.lvcreate("vg-sda", "small", 64 * MIB)
    lab.lvcreate("vg-sda", "spanning", 2400 * MIB)  # more than one disk holds
    lab.detach("vg-sdb")

    observed = Observer(lab.host()).observe()

    assert observed.tool("lvm").state == "available"  # type: ignore[union-attr]
    group = observed.vg(sda)
    assert group is not None
    assert group.pv_count == 2
    spanning = observed.lv(sda, "spanning")
    assert spanning is not None
    assert spanning.size_bytes == 2400 * MIB
    assert spanning.attributes[8] == "p", "lvm2 flags an LV with a missing PV as partial"
    assert any(d.startswith("[unknown]") for d in spanning.devices)
    small = observed.lv(sda, "small")
    assert small is not None
    assert small.attributes[8] == "-"
