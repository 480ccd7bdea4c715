"""Automatic failover under DRBD 9 quorum with a diskless tiebreaker, on the simulator: three in-process daemons
(two data nodes and the tiebreaker, which only brings up its diskless side), a virtual clock, and the data oracle
after every step."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from reconciler.sim import drbd_machine as machine
from reconciler.sim import faults
from reconciler.sim.state import SimCluster
from tests.apply.simlab import GIB, SimLab
from tests.conftest import EXAMPLE_DIR
from tests.daemon.daemonpair import Pair

pytestmark = pytest.mark.timeout(300)

NODES = ("erdbeere", "himbeere", "kirsche")
TIEBREAKER = """  kirsche:
    hostname: kirsche
    address: 192.168.2.3
    volume_groups: [vg-sda]
    drbd_version: "9"
"""
QUORUM = """  safety:
    mechanism: quorum
    tiebreaker: kirsche
    on_no_quorum: io-error
"""


def _desired(tmp_path: Path) -> Path:
    desired = tmp_path / "desired"
    shutil.copytree(EXAMPLE_DIR, desired)
    cluster = desired / "cluster.yaml"
    text = cluster.read_text().replace("\ndefaults:", "\n" + TIEBREAKER + "\ndefaults:", 1)
    text, count = re.subn(r"  safety:\n(?:    .*\n)*?    fencing_policy: resource-only\n", QUORUM, text)
    assert count == 1
    text = text.replace("\nguards:", "\n  failover: automatic\n\nguards:", 1)
    cluster.write_text(text)
    return desired


@pytest.fixture(scope="module")
def converged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("quorum")
    SimCluster.init(base / "sim", list(NODES), dict.fromkeys(("vg-sda", "vg-sdb", "vg-sdc"), 400 * GIB))
    pair = Pair(SimLab(base / "sim", desired_dir=_desired(base)), base, nodes=NODES)
    for node in NODES:
        pair.start(node)
    for _ in range(30):
        pair.tick(600.0)
        if pair.running("erdbeere") == {"vm100"} and pair.disk("himbeere") == pair.disk("erdbeere") == "UpToDate":
            break
    assert pair.running("erdbeere") == {"vm100"}
    assert pair.running("himbeere") == {"vm101"}
    assert pair.disk("kirsche") == "Diskless"
    return base


def _copy(converged: Path, tmp_path: Path) -> Pair:
    for name in ("sim", "desired", "state"):
        shutil.copytree(converged / name, tmp_path / name)
    pair = Pair(SimLab(tmp_path / "sim", desired_dir=tmp_path / "desired"), tmp_path, nodes=NODES)
    for node in NODES:
        pair.start(node)
    pair.tick()
    return pair


def _quorum(pair: Pair, node: str) -> bool:
    res = machine.runtime(pair.state(), node, "vm100")
    assert res is not None
    return bool(res.get("quorum", True))


def test_the_standby_with_quorum_takes_over_a_lost_primary(converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    pair.crash("erdbeere")
    pair.run_for(20)
    assert pair.role("himbeere") == "Secondary"  # within the grace
    pair.run_for(30)
    assert _quorum(pair, "himbeere")  # the tiebreaker's vote
    assert pair.role("himbeere") == "Primary"
    assert pair.running("himbeere") == {"vm100", "vm101"}
    assert pair.record("himbeere") == "running"
    assert pair.record("kirsche") is None  # the tiebreaker never takes anything over
    assert pair.running("kirsche") == set()


def test_a_primary_cut_off_from_both_gives_the_vm_up_and_the_side_with_quorum_takes_it_over(
        converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    with pair.lab.cluster.transaction() as state:
        for other in ("himbeere", "kirsche"):
            faults.partition(state, "erdbeere", other, management=True)
    pair.tick()
    assert not _quorum(pair, "erdbeere")
    # At once (not after a grace): the domain is destroyed and the resource demoted on the node without quorum.
    assert pair.running("erdbeere") == set()
    assert pair.role("erdbeere") == "Secondary"
    status = pair.daemons["erdbeere"].rec.status
    assert status is not None
    drbd = next(r for r in status.resources if r.key == "drbd:vm100")
    assert "quorum-lost" in drbd.conditions
    pair.run_for(60)
    assert pair.running("himbeere") == {"vm100", "vm101"}
    assert pair.role("himbeere") == "Primary"
    # Nothing on erdbeere moves meanwhile, and it takes nothing over (it has no quorum).
    assert pair.running("erdbeere") == set()
    assert pair.record("erdbeere") is None

    # The partition heals: erdbeere rejoins as Secondary and resyncs; the VM stays on himbeere.
    with pair.lab.cluster.transaction() as state:
        faults.heal(state)
    pair.run_for(120)
    assert pair.role("erdbeere") == "Secondary"
    assert pair.disk("erdbeere") == "UpToDate"
    assert pair.running("erdbeere") == set()
    assert pair.running("himbeere") == {"vm100", "vm101"}


def test_losing_the_tiebreaker_moves_nothing(converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    pair.crash("kirsche")
    pair.run_for(120)
    assert _quorum(pair, "erdbeere")
    assert pair.running("erdbeere") == {"vm100"}
    assert pair.running("himbeere") == {"vm101"}
    assert pair.record("himbeere") is None
    assert pair.record("erdbeere") is None


def test_a_cut_between_the_data_nodes_moves_nothing_while_both_still_see_the_tiebreaker(
        converged: Path, tmp_path: Path) -> None:
    # Both data nodes keep quorum through the tiebreaker; each is Secondary for the other's VM and now only
    # weakly connected to its Primary, so DRBD marks that replica Outdated: neither takes the other's VM over.
    pair = _copy(converged, tmp_path)
    with pair.lab.cluster.transaction() as state:
        faults.partition(state, "erdbeere", "himbeere", management=True)
    pair.run_for(120)
    assert _quorum(pair, "erdbeere")
    assert _quorum(pair, "himbeere")
    assert pair.disk("himbeere", "vm100") == "Outdated"
    assert pair.disk("erdbeere", "vm101") == "Outdated"
    assert pair.running("erdbeere") == {"vm100"}
    assert pair.running("himbeere") == {"vm101"}
    assert pair.record("himbeere") is None
    assert pair.record("erdbeere", "vm101") is None
    with pair.lab.cluster.transaction() as state:
        faults.heal(state)
    pair.run_for(120)
    assert pair.disk("himbeere", "vm100") == pair.disk("erdbeere", "vm101") == "UpToDate"


def _cut_off(pair: Pair, node: str) -> None:
    with pair.lab.cluster.transaction() as state:
        for other in NODES:
            if other != node:
                faults.partition(state, node, other, management=True)


def test_a_primary_without_quorum_whose_domain_cannot_die_is_demoted_by_force(converged: Path,
                                                                              tmp_path: Path) -> None:
    # The domain dies but its backend keeps the disk open: the plain demotion fails, the forced one succeeds,
    # and nothing reboots.
    pair = _copy(converged, tmp_path)
    boot = pair.boot_id("erdbeere")
    with pair.lab.cluster.transaction() as state:
        faults.zombie(state, "erdbeere", "vm100")
    _cut_off(pair, "erdbeere")
    pair.tick()
    assert pair.role("erdbeere") == "Primary"  # "Device is held open by someone"
    pair.tick()
    assert pair.role("erdbeere") == "Secondary"
    assert pair.boot_id("erdbeere") == boot
    status = pair.daemons["erdbeere"].rec.status
    assert status is not None
    assert status.escalations == ()
    pair.run_for(60)
    assert pair.running("himbeere") == {"vm100", "vm101"}


def test_a_primary_without_quorum_that_cannot_be_demoted_reboots_once(converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    boot = pair.boot_id("erdbeere")
    with pair.lab.cluster.transaction() as state:
        for program in ("drbdadm", "drbdsetup"):
            faults.add_fault(state, "permanent", node="erdbeere", prefix=[program, "secondary"])
    _cut_off(pair, "erdbeere")
    cut_at = pair.clock.time()
    for _ in range(20):
        pair.tick()
        if pair.boot_id("erdbeere") != boot:
            break
        assert pair.role("erdbeere") == "Primary"
    # The plain demotion failed, then the forced one, and 30 s after the first failure the node rebooted
    # itself (`systemctl reboot --force`, the default) right after another forced demotion failed.
    assert pair.boot_id("erdbeere") != boot
    assert pair.clock.time() - cut_at >= 30
    steps = [e["argv"] for e in pair.lab.log() if e.get("node") == "erdbeere"
             and ("secondary" in e["argv"] or e["argv"][:2] == ["systemctl", "reboot"])]
    assert steps[0] == ["drbdadm", "secondary", "vm100"]
    assert steps[-2:] == [["drbdsetup", "secondary", "--force", "vm100"], ["systemctl", "reboot", "--force"]]
    assert sum(a[0] == "systemctl" for a in steps) == 1
    assert pair.running("erdbeere") == set()
    records = pair.daemons["erdbeere"].rec.escalations.statuses()
    # The simulator's `systemctl reboot` returns, as the plain one does; a forced one kills the daemon first,
    # and the record then stays "started".
    assert [(r.vm, r.action, r.state) for r in records] == [("vm100", "systemctl reboot --force", "requested")]
    after = pair.boot_id("erdbeere")
    pair.run_for(120)
    # The restarted daemon brings DRBD up without quorum as Secondary and never reboots again; the side with
    # quorum takes the VM over.
    assert pair.boot_id("erdbeere") == after
    assert pair.role("erdbeere") == "Secondary"
    assert pair.running("erdbeere") == set()
    assert pair.running("himbeere") == {"vm100", "vm101"}
    status = pair.daemons["erdbeere"].rec.status
    assert status is not None
    assert [r.state for r in status.escalations] == ["requested"]


def test_a_restarted_daemon_still_demotes_a_primary_without_quorum(converged: Path, tmp_path: Path) -> None:
    # The daemon restarts while its node is cut off: the boot gate holds promotions and starts until the peers
    # are seen, never the demotion of a Primary that lost quorum.
    pair = _copy(converged, tmp_path)
    with pair.lab.cluster.transaction() as state:
        faults.zombie(state, "erdbeere", "vm100")
    _cut_off(pair, "erdbeere")
    pair.start("erdbeere")
    for _ in range(4):
        pair.tick()
    assert pair.role("erdbeere") == "Secondary"
    pair.run_for(60)
    assert pair.running("himbeere") == {"vm100", "vm101"}


def test_a_flapping_primary_loses_its_domain_each_time_but_never_writes_beside_the_other(
        converged: Path, tmp_path: Path) -> None:
    # erdbeere is cut off from both others for 10 s every 40 s. There is no hold-down: each loss of quorum costs
    # the domain (destroyed, demoted), and erdbeere, still the designated primary with quorum back, starts it
    # again; himbeere's grace (30 s) never ends, so it never takes the VM over. The oracle checks every step.
    pair = _copy(converged, tmp_path)
    for _ in range(4):
        _cut_off(pair, "erdbeere")
        pair.run_for(10)
        assert "vm100" not in pair.running("erdbeere")
        with pair.lab.cluster.transaction() as state:
            faults.heal(state)
        pair.run_for(30)
    pair.run_for(300)
    assert pair.running("erdbeere") == {"vm100"}
    assert pair.running("himbeere") == {"vm101"}
    assert pair.record("himbeere") is None
    assert pair.disk("himbeere") == pair.disk("erdbeere") == "UpToDate"
