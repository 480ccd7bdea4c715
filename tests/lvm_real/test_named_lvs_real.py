"""The last look's targeted ``lvs VG/LV ...`` on real lvm2 (loop devices, activation disabled), side by side
with the simulator given the same LVs: same exit code, same "Failed to find" lines, same observation."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.apply.identity import resolve_identity
from reconciler.backends.lvm import parse as lvm
from reconciler.backends.lvm.facts import observe_named_lvs
from reconciler.core.facts import CommandRunner
from reconciler.host.base import Host
from reconciler.sim.host import SimHost
from reconciler.sim.state import SimCluster
from tests.lvm_real.loopvg import GIB, MIB, LoopLab

pytestmark = pytest.mark.root


def _twin(lab: LoopLab, tmp_path: Path) -> SimHost:
    """A simulated node with the lab's VG and the same LVs (root1 tagged, root2 not)."""
    vg = lab.vg("vg-sda")
    SimCluster.init(tmp_path, ["testnode"], {vg: 2 * GIB})
    host = SimHost(tmp_path, "testnode")
    for argv in (["lvcreate", "--yes", "-n", "root1", "-L", f"{64 * MIB}b", "--addtag", "reconciler", vg],
                 ["lvcreate", "--yes", "-n", "root2", "-L", f"{64 * MIB}b", vg]):
        result = host.run(argv)
        assert result.ok, result.describe()
    lab.lvcreate("vg-sda", "root1", 64 * MIB, "--addtag", "reconciler")
    lab.lvcreate("vg-sda", "root2", 64 * MIB)
    return host


def _observe(host: Host, names: tuple[tuple[str, str], ...]) -> tuple[str, set[tuple[str, str, int, tuple[str, ...]]]]:
    status, lvs = observe_named_lvs(CommandRunner(host, 60.0), None, names)
    return status.state, {(v.vg, v.name, v.size_bytes, v.tags) for v in lvs}


def _not_found_lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if "Failed to find" in line]


@pytest.mark.parametrize("wanted", [("root1",), ("root1", "root2"), ("missing",), ("root1", "missing"),
                                    ("missing", "root2", "other")])
def test_named_lvs_agree_with_real_lvm2(lab: LoopLab, tmp_path: Path, wanted: tuple[str, ...]) -> None:
    sim = _twin(lab, tmp_path)
    vg = lab.vg("vg-sda")
    names = tuple((vg, name) for name in wanted)
    real_run = lab.host().run(lvm.lvs_named_argv(names), timeout=60.0)
    sim_run = sim.run(lvm.lvs_named_argv(names))
    assert (sim_run.returncode, _not_found_lines(sim_run.stderr)) == (
        real_run.returncode, _not_found_lines(real_run.stderr))
    real = _observe(lab.host(), names)
    assert real == _observe(sim, names)
    present = {n for n in wanted if n in ("root1", "root2")}
    assert real[0] == "available"
    assert {name for _, name, _, _ in real[1]} == present
    assert all(size == 64 * MIB for _, _, size, _ in real[1])


def test_identity_names_the_uuids_of_exactly_the_lvs_asked_for(lab: LoopLab, tmp_path: Path) -> None:
    _twin(lab, tmp_path)
    vg = lab.vg("vg-sda")
    full = lvm.parse_lvs(lab.lvm(*lvm.LVS_ARGV).stdout)
    uuid = {lv.name: lv.uuid for lv in full}
    assert resolve_identity(lab.host(), f"/dev/{vg}/root2,/dev/{vg}/root1") == f"{uuid['root2']},{uuid['root1']}"
    assert resolve_identity(lab.host(), f"/dev/{vg}/root1,/dev/{vg}/gone") == ""
    assert resolve_identity(lab.host(), f"/dev/no-such-vg/root1,/dev/{vg}/root1") == ""
