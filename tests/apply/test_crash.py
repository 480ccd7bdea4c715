"""Crash safety: SIGKILL a real apply process at every mutating step of a bring-up, then recover.

Each case copies a simulated cluster, runs one apply pass in a subprocess that kills itself (SIGKILL)
just before (or just after) its N-th mutating operation, then lets both nodes converge again and checks
the end state, the data oracle, and that no destructive step ran twice (except an mkfs the journal
says was interrupted on that very device and that ``xfs_db`` shows unfinished).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from reconciler.sim import oracle
from reconciler.sim.state import content, resolve_device
from tests.apply.crashrun import KillingHost
from tests.apply.simlab import SimLab, init_cluster
from tests.conftest import EXAMPLE_DIR, PROJECT_ROOT

pytestmark = pytest.mark.slow


def killed_run(sim: Path, node: str, n: int, mode: str, desired: Path = EXAMPLE_DIR) -> None:
    proc = subprocess.run([sys.executable, "-m", "tests.apply.crashrun", str(sim), node, str(n), mode, str(desired)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL, (n, mode, proc.returncode, proc.stderr[-2000:])


def ops_of_pass(sim: Path, node: str, desired: Path = EXAMPLE_DIR) -> list[tuple[str, ...]]:
    """The mutating operations one pass performs from this state (on a throw-away copy)."""
    probe = sim.parent / f"{sim.name}-count"
    shutil.copytree(sim, probe)
    counter: list[KillingHost] = []

    def wrap(host: object) -> KillingHost:
        counter.append(KillingHost(host, 0, "never"))  # type: ignore[arg-type]
        return counter[0]

    SimLab(probe, desired_dir=desired).apply(node, wrap=wrap)  # type: ignore[arg-type]
    shutil.rmtree(probe)
    return counter[0].ops


def successes(lab: SimLab, node: str) -> Counter[tuple[str, ...]]:
    return Counter(tuple(e["argv"]) for e in lab.log() if e["node"] == node and e["exit"] == 0 and e.get("mutating"))


def check_recovery(lab: SimLab, *, mkfs_redone: bool = False) -> None:
    steps = lab.converge(passes=6)
    assert all(s.plan.is_empty for s in steps.values()), {n: [a.id for a in s.plan.actions] for n, s in steps.items()}
    state = lab.cluster.read()
    assert set(state["nodes"]["erdbeere"]["domains"]) == {"vm100"}
    assert set(state["nodes"]["himbeere"]["domains"]) == {"vm101"}
    assert oracle.check(state) == []
    for node in ("erdbeere", "himbeere"):
        done = successes(lab, node)
        for argv, times in done.items():
            if argv[0] in ("lvcreate", "mkswap") or argv[:2] == ("drbdadm", "create-md") or "--force" in argv:
                assert times == 1, f"{node} repeated a destructive step: {argv} x{times}"
    mkfs = successes(lab, "erdbeere")[("mkfs.xfs", "/dev/drbd0")]
    wipes = successes(lab, "erdbeere")[("wipefs", "-a", "/dev/drbd0")]
    assert (mkfs, wipes) == (1, 1 if mkfs_redone else 0)


@pytest.fixture(scope="module")
def phases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("crash")
    fresh = root / "fresh"
    init_cluster(fresh)
    second = root / "second"
    shutil.copytree(fresh, second)
    lab = SimLab(second)
    lab.apply("erdbeere")
    lab.apply("himbeere")
    return {"fresh": fresh, "second": second}


def _case(src: Path, dest: Path) -> SimLab:
    shutil.copytree(src, dest)
    return SimLab(dest)


def test_kill_before_every_operation_of_the_first_pass(phases: dict[str, Path], tmp_path: Path) -> None:
    ops = ops_of_pass(phases["fresh"], "erdbeere")
    assert len(ops) >= 15
    for n in range(1, len(ops) + 1):
        lab = _case(phases["fresh"], tmp_path / f"k{n}")
        killed_run(lab.directory, "erdbeere", n, "before")
        check_recovery(lab)


def test_kill_after_create_md_took_effect(phases: dict[str, Path], tmp_path: Path) -> None:
    ops = ops_of_pass(phases["fresh"], "erdbeere")
    n = ops.index(("drbdadm", "create-md", "--force", "vm100")) + 1
    lab = _case(phases["fresh"], tmp_path / "md")
    killed_run(lab.directory, "erdbeere", n, "after")
    check_recovery(lab)


def test_kill_at_every_operation_of_the_promote_mkfs_start_pass(phases: dict[str, Path], tmp_path: Path) -> None:
    ops = ops_of_pass(phases["second"], "erdbeere")
    assert ("mkfs.xfs", "/dev/drbd0") in ops
    for n in range(1, len(ops) + 1):
        lab = _case(phases["second"], tmp_path / f"b{n}")
        killed_run(lab.directory, "erdbeere", n, "before")
        check_recovery(lab)


def test_kill_right_after_mkfs_finished_does_not_redo_it(phases: dict[str, Path], tmp_path: Path) -> None:
    # The journal still names /dev/drbd0, but xfs_db shows mkfs.xfs finished: the filesystem is kept.
    ops = ops_of_pass(phases["second"], "erdbeere")
    n = ops.index(("mkfs.xfs", "/dev/drbd0")) + 1
    lab = _case(phases["second"], tmp_path / "mkfs")
    killed_run(lab.directory, "erdbeere", n, "after")
    check_recovery(lab)


def test_an_interrupted_mkfs_is_redone_on_that_very_device(phases: dict[str, Path], tmp_path: Path) -> None:
    ops = ops_of_pass(phases["second"], "erdbeere")
    n = ops.index(("mkfs.xfs", "/dev/drbd0")) + 1
    lab = _case(phases["second"], tmp_path / "mkfs-cut")
    killed_run(lab.directory, "erdbeere", n, "before")  # the journal names the device; mkfs.xfs never ran
    with lab.cluster.transaction() as state:
        key = resolve_device(state, "erdbeere", "/dev/drbd0")
        assert key is not None
        # What mkfs.xfs leaves when it is cut short: its superblock, written first, with sb_inprogress set.
        content(state, key)["signature"] = {"type": "xfs", "uuid": "5f1c0a52-0000-4000-8000-000000000001",
                                            "inprogress": True}
    check_recovery(lab, mkfs_redone=True)


def test_kill_between_reload_and_resume_of_a_growing_stripe(converged_snapshot: Path, tmp_path: Path) -> None:
    desired = tmp_path / "desired"
    shutil.copytree(EXAMPLE_DIR, desired)
    vm = desired / "vms" / "vm100.yaml"
    vm.write_text(vm.read_text().replace("  size: 100G", "  size: 110G", 1))
    ops = ops_of_pass(converged_snapshot, "erdbeere", desired)
    resume = ops.index(("dmsetup", "resume", "root100")) + 1
    assert ops[resume - 2][:2] == ("dmsetup", "reload")
    for n, mode in ((resume, "before"), (resume - 1, "after")):
        sim = tmp_path / f"grow-{mode}"
        shutil.copytree(converged_snapshot, sim)
        killed_run(sim, "erdbeere", n, mode, desired)
        lab = SimLab(sim, desired_dir=desired)
        # Killed after reload: the grown table is loaded but inactive; the live one is still the old size.
        assert lab.cluster.read()["nodes"]["erdbeere"]["dm"]["root100"]["inactive"] is not None
        steps = lab.converge(passes=4)
        assert all(s.plan.is_empty for s in steps.values())
        dm = lab.cluster.read()["nodes"]["erdbeere"]["dm"]["root100"]
        assert not dm["suspended"]
        assert dm["inactive"] is None
        assert oracle.check(lab.cluster.read()) == []
        resizes = [e for e in lab.log() if e["argv"][:2] == ["drbdadm", "resize"] and e["exit"] == 0]
        assert len(resizes) == 1
