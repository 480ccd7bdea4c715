"""The soak on a short budget: two daemons on the simulator through seeded random commits and faults, with the
oracle and the invariants checked after every step (reconciler.sim.soak, docs/soak.md). A failure prints the seed
and the command that replays it exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.sim import drbd_machine as machine
from reconciler.sim import faults
from reconciler.sim.host import SimHost
from reconciler.sim.soak import GIB, NODES, VGS, DaemonKilled, Figures, KillableHost, Soak, _log_to, report
from reconciler.sim.state import SimCluster

RUNS = ((1, "automatic"), (2, "manual"), (3, "automatic"))


@pytest.mark.timeout(150)
@pytest.mark.parametrize(("seed", "failover"), RUNS)
def test_a_short_soak_finds_no_violation(tmp_path: Path, seed: int, failover: str) -> None:
    soak = Soak(tmp_path, seed, failover=failover, fault_budget=5, converge_bound=1800.0)
    figures = soak.run()
    text = report(figures, seed, soak.failover, [f"--seed {seed}", "--faults 5", "--time 1800",
                                                 f"--failover {soak.failover}"])
    print(text)
    assert figures.violations == [], text
    assert figures.harness_errors == [], text
    assert sum(figures.faults.values()) >= 4, text


LIVE_SEED = 201  # a seed whose VMs allow live migration and whose switchovers migrate them, with faults around


@pytest.mark.timeout(240)
def test_a_short_soak_with_live_migration_moves_domains_live_and_finds_no_violation(tmp_path: Path) -> None:
    soak = Soak(tmp_path, LIVE_SEED, failover="manual", fault_budget=6, converge_bound=1800.0)
    figures = soak.run()
    text = report(figures, LIVE_SEED, soak.failover, [f"--seed {LIVE_SEED}", "--faults 6", "--time 1800",
                                                      "--failover manual"])
    print(text)
    assert figures.violations == [], text
    assert figures.harness_errors == [], text
    assert any(vm.live for vm in soak.vms.values()), text
    assert figures.commits["live-switchover"] >= 1, text
    assert figures.migrations["live"] >= 1, text
    assert f"live migrations {figures.migrations['live']}," in text


@pytest.mark.timeout(30)
def test_a_destructive_command_that_succeeds_twice_on_one_object_is_a_violation(tmp_path: Path) -> None:
    (tmp_path / "sim").mkdir()
    lines = [
        {"node": "erdbeere", "argv": ["mkfs.xfs", "-q", "/dev/drbd3"], "exit": 0, "mutating": True},
        {"node": "himbeere", "argv": ["mkfs.xfs", "-q", "/dev/drbd3"], "exit": 0, "mutating": True},  # other node
        {"node": "erdbeere", "argv": ["lvremove", "-f", "vg-sda/root103"], "exit": 5, "mutating": False},
        {"node": "erdbeere", "argv": ["lvremove", "-f", "vg-sda/root103"], "exit": 0, "mutating": True},  # retried
        {"node": "erdbeere", "argv": ["drbdadm", "primary", "--force", "vm103"], "exit": 0, "mutating": True},
    ]
    log = tmp_path / "sim" / "commands.log"
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    soak = Soak(tmp_path, 1)
    soak.check_destructive()
    assert soak.figures.violations == []
    soak.losses += 1  # the peer was lost again: a new forced promotion is a new decision
    with log.open("a") as handle:
        handle.write(json.dumps(lines[4]) + "\n")
    soak.check_destructive()
    assert soak.figures.violations == []
    with log.open("a") as handle:
        handle.write(json.dumps(lines[0]) + "\n")
    soak.check_destructive()
    assert len(soak.figures.violations) == 1
    assert "mkfs.xfs -q /dev/drbd3" in soak.figures.violations[0]
    assert soak.figures.destructive == {"mkfs": 3, "lvremove": 1, "forced-promotion": 2}


@pytest.mark.timeout(30)
def test_a_mkfs_cut_short_by_a_kill_may_be_redone_once(tmp_path: Path) -> None:
    (tmp_path / "sim").mkdir()
    mkfs = {"node": "erdbeere", "argv": ["mkfs.xfs", "/dev/drbd3"], "exit": 0, "mutating": True}
    log = tmp_path / "sim" / "commands.log"
    log.write_text(json.dumps(mkfs) + "\n")
    soak = Soak(tmp_path, 1)
    soak.check_destructive()
    soak.cut_short[("erdbeere", "mkfs.xfs", "/dev/drbd3")] += 1  # what leave_unfinished records
    with log.open("a") as handle:
        handle.write(json.dumps(mkfs) + "\n")
    soak.check_destructive()
    assert soak.figures.violations == []
    with log.open("a") as handle:
        handle.write(json.dumps(mkfs) + "\n")
    soak.check_destructive()
    assert len(soak.figures.violations) == 1


@pytest.mark.timeout(240)
def test_the_printed_replay_command_replays_a_random_failover_run(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    drawn = Soak(tmp_path / "a", 4, failover="random", fault_budget=3, converge_bound=1800.0)
    first = drawn.run()
    again = Soak(tmp_path / "b", 4, failover=drawn.failover, fault_budget=3, converge_bound=1800.0).run()
    def seen(f: Figures) -> tuple[object, ...]:
        return (f.steps, f.ticks, f.passes, f.episodes, f.faults, f.commits, f.destructive, f.converge, f.settled,
                f.reasons, f.migrations, f.simulated_s)

    assert seen(first) == seen(again)
    assert first.violations == again.violations == []


DEV = "/dev/vg-sda/root100"
MKFS = ["mkfs.xfs", DEV]


def _cut_mkfs(tmp_path: Path) -> tuple[Soak, SimHost]:
    """A soak's cluster where a kill cut the node's first mkfs.xfs short, through the daemon's killable host."""
    soak = Soak(tmp_path, 1)
    SimCluster.init(tmp_path / "sim", list(NODES), dict.fromkeys(VGS, 400 * GIB))
    plain = SimHost(tmp_path / "sim", "erdbeere")
    assert plain.run(["lvcreate", "-L", "1G", "-n", "root100", "vg-sda"]).ok
    host = KillableHost(plain, lambda argv: soak.leave_unfinished("erdbeere", argv))
    host.arm(1, after=True, cut_short=True)
    with pytest.raises(DaemonKilled, match=r"killed during mkfs\.xfs"):
        host.run(MKFS)
    probe = plain.run(["xfs_db", "-r", "-c", "sb 0", "-c", "print inprogress", DEV])
    assert probe.stdout == "inprogress = 1\n"
    return soak, plain


def _redo(plain: SimHost) -> None:
    """What the executor runs on a filesystem it finds unfinished."""
    assert plain.run(["wipefs", "-a", DEV]).ok
    assert plain.run(MKFS).ok


@pytest.mark.timeout(60)
def test_a_kill_that_cuts_mkfs_short_allows_one_redo_and_no_more(tmp_path: Path) -> None:
    soak, plain = _cut_mkfs(tmp_path)
    _redo(plain)
    soak.check_destructive()
    assert soak.figures.violations == []
    assert soak.figures.destructive == {"mkfs": 2, "wipefs": 1}
    _redo(plain)
    soak.check_destructive()
    assert len(soak.figures.violations) == 2, soak.figures.violations  # the mkfs a third time, the wipe a second


@pytest.mark.timeout(60)
def test_each_cut_allows_its_own_redo(tmp_path: Path) -> None:
    soak, plain = _cut_mkfs(tmp_path)
    _redo(plain)
    soak.leave_unfinished("erdbeere", MKFS)  # the redo cut short too
    _redo(plain)
    soak.check_destructive()
    assert soak.figures.violations == []
    assert soak.figures.destructive == {"mkfs": 3, "wipefs": 2}


def _held(tmp_path: Path) -> Soak:
    """vm100 migrating live from erdbeere to himbeere, held in xl's undefined state."""
    soak = Soak(tmp_path, 1, failover="manual")
    _log_to(tmp_path / "daemons.log")
    soak.setup()
    soak.vms["vm100"].live = True
    soak.publish("vm100 migrates live", "edit")
    soak.wait(120.0)
    # It was started with swap LVs, which this revision drops: restarted from its file it has only its DRBD
    # device, and only then may it move live.
    assert SimHost(soak.dir / "sim", "erdbeere").run(["xl", "shutdown", "-w", "vm100"]).ok
    soak.wait(120.0)
    assert "vm100" in soak.state()["nodes"]["erdbeere"]["domains"], soak.describe()
    with soak.cluster.transaction() as state:
        faults.migrate_undefined(state, "erdbeere")
    soak.vms["vm100"].primary = "himbeere"
    soak.publish("Move vm100 to himbeere (live)", "live-switchover")
    soak.wait(60.0)
    assert soak.figures.migrations["held"] == 1, soak.describe()
    return soak


@pytest.mark.timeout(240)
def test_the_operator_s_answer_goes_on_from_the_step_that_failed(tmp_path: Path) -> None:
    soak = _held(tmp_path)
    with soak.cluster.transaction() as state:
        faults.add_fault(state, "transient", node="himbeere", regex=r"^xl unpause vm100$", count=1)
    soak.wait(240.0)  # the answer a minute after the hold, its unpause failing once, again 30 s later
    assert soak.figures.violations == []
    operator = [(e["node"], e["argv"][1:], e["exit"]) for e in soak.cluster.read_log()
                if e["argv"][:2] in (["xl", "destroy"], ["xl", "rename"], ["xl", "unpause"])]
    assert operator[:2] == [("erdbeere", ["destroy", "vm100--migratedaway"], 0),
                            ("himbeere", ["rename", "vm100--incoming", "vm100"], 0)], operator
    unpauses = operator[2:]
    assert [argv for _, argv, _ in unpauses] == [["unpause", "vm100"]] * 2, operator
    assert unpauses[0][2] != 0, operator
    assert unpauses[1][2] == 0, operator  # no second destroy or rename: it goes on from the unpause
    assert soak.state()["nodes"]["himbeere"]["domains"]["vm100"]["state"] == "running"
    assert soak.held_kept == {}
    roles = {n: machine.runtime(soak.state(), n, "vm100")["role"] for n in NODES}  # type: ignore[index]
    assert roles == {"himbeere": "Primary", "erdbeere": "Secondary"}


@pytest.mark.timeout(240)
def test_a_held_migration_is_answered_by_the_operator_inside_the_window_grace(tmp_path: Path) -> None:
    soak = _held(tmp_path)
    assert soak.figures.migrations["live"] == 0
    held = soak.settled()  # while held, every unready resource gives a reason: settled, should the faults stop now
    assert held is not None, soak.describe()
    assert any("xl shows vm100--" in line for line in held), held
    soak.wait(240.0)  # the operator answers a minute after the hold; the windows close; the oracle stays clean
    assert soak.figures.violations == []
    domains = {node: set(soak.state()["nodes"][node].get("domains", {})) for node in NODES}
    assert "vm100" in domains["himbeere"], domains
    assert not {d for names in domains.values() for d in names if d.startswith("vm100--")}, domains
    assert "vm100" not in domains["erdbeere"], domains
    # The operator's answer ran as commands on the nodes, the rename with xl's own command.
    operator = [(e["node"], e["argv"]) for e in soak.cluster.read_log()
                if e["argv"][:2] in (["xl", "destroy"], ["xl", "rename"], ["xl", "unpause"])]
    assert operator == [("erdbeere", ["xl", "destroy", "vm100--migratedaway"]),
                        ("himbeere", ["xl", "rename", "vm100--incoming", "vm100"]),
                        ("himbeere", ["xl", "unpause", "vm100"])], operator
    assert soak.held_kept == {}
    for node in NODES:
        status = soak.daemons[node].rec.status
        assert status is not None
        assert [m.phase for m in status.migrations if m.vm == "vm100"] in (["done"], ["aborted"], []), node
