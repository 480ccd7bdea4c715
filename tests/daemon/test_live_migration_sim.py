"""Live migration on the simulator: two in-process daemons (the real engine on simulated nodes), a virtual clock
and the data oracle after every step (two Primaries only inside the window, never the domain on two nodes, no
acknowledged write lost, the allowance never left in force)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from reconciler.apply.lastlook import LastLook, Stop
from reconciler.core.actions import Action
from reconciler.daemon.loop.fence_records import peer_keeps
from reconciler.daemon.peers.fence import outdate_local
from reconciler.model.status import PeerStatus
from reconciler.observe.observer import Observer
from reconciler.sim import drbd, faults, oracle
from reconciler.sim import drbd_machine as machine
from reconciler.sim.state import SimCluster
from tests.apply.simlab import GIB, NODES, SimLab, edit_vm
from tests.conftest import EXAMPLE_DIR
from tests.daemon.daemonpair import Pair
from tests.daemon.fakes import SHA_B

pytestmark = pytest.mark.timeout(300)

TRANSPORT = "ssh -o BatchMode=yes"
NET_OPTIONS = ["drbdadm", "net-options"]


def _desired(tmp_path: Path, drbd_version: str) -> Path:
    desired = tmp_path / "desired"
    shutil.copytree(EXAMPLE_DIR, desired)
    cluster = desired / "cluster.yaml"
    cluster.write_text(cluster.read_text().replace('drbd_version: "9"', f'drbd_version: "{drbd_version}"'))
    for vm in ("vm100", "vm101"):
        path = desired / "vms" / f"{vm}.yaml"
        path.write_text(path.read_text().replace("size: 100G", "size: 2G"))
    vm100 = desired / "vms" / "vm100.yaml"
    # A VM that moves live has no swap LVs: they stay on their node (desired/validate.py refuses them).
    text, swaps = re.subn(r"^swap:\n(?:  .*\n)+", "swap:\n  volume_groups: []\n", vm100.read_text(), count=1,
                          flags=re.M)
    assert swaps == 1
    vm100.write_text(text.replace("live_migration: false", "live_migration: true"))
    vm101 = desired / "vms" / "vm101.yaml"
    vm101.write_text(vm101.read_text().replace("live_migration: true", "live_migration: false"))
    return desired


def _converged(base: Path, drbd_version: str) -> None:
    SimCluster.init(base / "sim", list(NODES), dict.fromkeys(("vg-sda", "vg-sdb", "vg-sdc"), 400 * GIB),
                    drbd_version=drbd_version)
    pair = Pair(SimLab(base / "sim", desired_dir=_desired(base, drbd_version)), base, transport=TRANSPORT)
    for node in NODES:
        pair.start(node)
    for _ in range(40):
        pair.tick(60.0)
        if pair.running("erdbeere") == {"vm100"} and pair.running("himbeere") == {"vm101"} \
                and pair.disk("himbeere") == pair.disk("erdbeere") == "UpToDate" and _converged_both(pair):
            break
    assert pair.running("erdbeere") == {"vm100"}
    assert pair.disk("himbeere") == pair.disk("erdbeere") == "UpToDate"


def _converged_both(pair: Pair) -> bool:
    for node in NODES:
        status = pair.daemons[node].rec.status
        if status is None or status.last_pass is None or status.last_pass.outcome != "converged":
            return False
    return True


@pytest.fixture(scope="module", params=["9", "8.4"])
def converged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp(f"live-{request.param}")
    _converged(base, str(request.param))
    return base


def _copy(converged: Path, tmp_path: Path, transport: str = TRANSPORT) -> Pair:
    for name in ("sim", "desired", "state"):
        shutil.copytree(converged / name, tmp_path / name)
    pair = Pair(SimLab(tmp_path / "sim", desired_dir=tmp_path / "desired"), tmp_path, transport=transport)
    for node in NODES:
        pair.start(node)
    pair.tick()
    return pair


def _switch(pair: Pair, to: str = "himbeere") -> int:
    """Commit the move of vm100 to ``to``; returns the command log's position before it."""
    mark = len(pair.lab.log())
    edit_vm(pair.lab, "vm100", r"^primary: \w+", f"primary: {to}")
    pair.reload()
    return mark


def _ran(pair: Pair, mark: int, node: str | None = None) -> list[list[str]]:
    return [e["argv"] for e in pair.lab.log()[mark:] if e.get("mutating") and (node is None or e["node"] == node)]


def _allowed(pair: Pair, node: str, resource: str = "vm100") -> bool:
    res = machine.runtime(pair.state(), node, resource)
    return res is not None and machine.config_of(res).allow_two_primaries


def _migration(pair: Pair, node: str, vm: str = "vm100") -> tuple[str, str]:
    status = pair.daemons[node].rec.status
    assert status is not None
    found = next((m for m in status.migrations if m.vm == vm), None)
    return (found.phase, found.reason) if found is not None else ("", "")


def _ticks(pair: Pair, count: int, until: object = None) -> None:
    for _ in range(count):
        pair.tick()
        if callable(until) and until():
            return


def test_a_switchover_of_a_vm_that_allows_it_moves_the_running_domain_live(converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    started = pair.state()["nodes"]["erdbeere"]["domains"]["vm100"]["started"]
    mark = _switch(pair)
    _ticks(pair, 12, lambda: _migration(pair, "himbeere")[0] == "done" and _migration(pair, "erdbeere")[0] == "done")
    assert pair.running("himbeere") == {"vm100", "vm101"}
    assert pair.running("erdbeere") == set()
    assert (pair.role("himbeere"), pair.role("erdbeere")) == ("Primary", "Secondary")
    assert not _allowed(pair, "himbeere")
    assert not _allowed(pair, "erdbeere")
    moved = pair.state()["nodes"]["himbeere"]["domains"]["vm100"]
    assert moved["started"] == started, "the domain was restarted, not migrated"
    assert moved["config_path"] == "/etc/xen/vm100.cfg"
    ran = _ran(pair, mark)
    assert not [a for a in ran if a[:2] in (["xl", "shutdown"], ["xl", "create"], ["xl", "destroy"])], ran
    migrate = [a for a in ran if a[:2] == ["xl", "migrate"]]
    assert migrate == [["xl", "migrate", "-s", TRANSPORT, "vm100", "himbeere"]]
    # The source opens the window, which DRBD gives the target too; one close, after the demotion, ends it on
    # both nodes.
    assert [a for a in _ran(pair, mark, "erdbeere") if a[:2] == NET_OPTIONS][:1] == [
        [*NET_OPTIONS, "--allow-two-primaries=yes", "vm100"]]
    windows = [a for a in ran if a[:2] == NET_OPTIONS]
    assert windows == [[*NET_OPTIONS, "--allow-two-primaries=yes", "vm100"],
                       [*NET_OPTIONS, "--allow-two-primaries=no", "vm100"]], windows
    for node in NODES:
        assert _migration(pair, node)[0] == "done"
    assert oracle.check(pair.state()) == []
    assert oracle.summary(pair.state())["acknowledged"]["vm100"] > 0
    # Nothing more to do: both converge and a further pass runs nothing.
    _ticks(pair, 3)
    after = len(pair.lab.log())
    pair.tick()
    assert _ran(pair, after) == []


def _fault(pair: Pair, node: str, regex: str, *, count: int | None = None, message: str | None = None) -> None:
    with pair.lab.cluster.transaction() as state:
        faults.add_fault(state, "transient" if count else "permanent", node=node, regex=regex, count=count,
                         message=message)


def _back_on_erdbeere(pair: Pair) -> None:
    """The end of an aborted migration: one Primary, where the domain runs, both windows closed."""
    assert pair.running("erdbeere") == {"vm100"}
    assert "vm100" not in pair.running("himbeere")
    assert (pair.role("erdbeere"), pair.role("himbeere")) == ("Primary", "Secondary")
    assert not _allowed(pair, "erdbeere")
    assert not _allowed(pair, "himbeere")
    assert oracle.check(pair.state()) == []


@pytest.mark.parametrize(("node", "regex", "step"), [
    ("erdbeere", r"^drbdadm net-options --allow-two-primaries=yes", "open-migration-window"),
    ("himbeere", r"^drbdadm primary vm100", "promote-for-migration"),
    ("erdbeere", r"^xl migrate", "migrate-domain"),
])
def test_a_failing_step_aborts_back_to_one_primary_where_the_domain_runs(
        converged: Path, tmp_path: Path, node: str, regex: str, step: str) -> None:
    pair = _copy(converged, tmp_path)
    message = "Migration failed, resuming at sender.\n" if step == "migrate-domain" else None
    _fault(pair, node, regex, message=message)
    _switch(pair)
    _ticks(pair, 12, lambda: _migration(pair, "erdbeere")[0] == "aborted"
           and _migration(pair, "himbeere")[0] in ("aborted", ""))
    _back_on_erdbeere(pair)
    phase, reason = _migration(pair, node)
    assert phase == "aborted"
    assert f"{step} failed" in reason
    if node == "himbeere":
        assert "himbeere reports" in _migration(pair, "erdbeere")[1]
    # Held where it runs: no shutdown-and-start instead, and no second attempt at this revision.
    mark = len(pair.lab.log())
    _ticks(pair, 4)
    ran = _ran(pair, mark)
    assert not [a for a in ran if a[:1] == ["xl"] or a[:2] == NET_OPTIONS], ran
    _back_on_erdbeere(pair)
    status = pair.daemons["erdbeere"].rec.status
    assert status is not None
    assert status.last_pass is not None
    assert status.last_pass.outcome == "degraded"  # the domain runs away from its designated node


def test_a_failing_demotion_of_the_source_is_retried_and_the_migration_ends(converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    _fault(pair, "erdbeere", r"^drbdadm secondary vm100", count=2)
    _fault(pair, "himbeere", r"^drbdadm net-options --allow-two-primaries=no", count=2)
    _switch(pair)
    _ticks(pair, 16, lambda: _migration(pair, "erdbeere")[0] == "done" and _migration(pair, "himbeere")[0] == "done")
    assert pair.running("himbeere") == {"vm100", "vm101"}
    assert (pair.role("himbeere"), pair.role("erdbeere")) == ("Primary", "Secondary")
    assert not _allowed(pair, "erdbeere")
    assert not _allowed(pair, "himbeere")
    assert oracle.check(pair.state()) == []


def _after_target_promoted(pair: Pair) -> None:
    _switch(pair)
    _ticks(pair, 4, lambda: pair.role("himbeere") == "Primary")
    assert (pair.role("erdbeere"), pair.role("himbeere")) == ("Primary", "Primary")
    assert _allowed(pair, "erdbeere")
    assert _allowed(pair, "himbeere")
    assert pair.running("erdbeere") == {"vm100"}


def test_a_crash_of_the_target_inside_the_window_aborts_and_the_returning_node_rejoins(
        converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    _after_target_promoted(pair)
    pair.crash("himbeere")
    _ticks(pair, 2)
    assert pair.running("erdbeere") == {"vm100"}
    assert pair.role("erdbeere") == "Primary"
    assert not _allowed(pair, "erdbeere")
    assert _migration(pair, "erdbeere")[0] == "aborted"
    assert "lost inside the window" in _migration(pair, "erdbeere")[1]
    pair.boot("himbeere")
    _ticks(pair, 8, lambda: pair.disk("himbeere") == "UpToDate" and "vm101" in pair.running("himbeere"))
    _back_on_erdbeere(pair)
    assert pair.disk("himbeere") == "UpToDate"  # the settings match again: the pair reconnected


def test_a_crash_of_the_source_inside_the_window_aborts_and_the_vm_restarts_on_its_designated_node(
        converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    _after_target_promoted(pair)
    pair.crash("erdbeere")
    _ticks(pair, 2)
    assert not _allowed(pair, "himbeere")
    assert _migration(pair, "himbeere")[0] == "aborted"
    pair.boot("erdbeere")
    _ticks(pair, 12, lambda: "vm100" in pair.running("himbeere") and pair.disk("erdbeere") == "UpToDate")
    assert "vm100" in pair.running("himbeere")
    assert "vm100" not in pair.running("erdbeere")
    assert (pair.role("himbeere"), pair.role("erdbeere")) == ("Primary", "Secondary")
    assert not _allowed(pair, "erdbeere")
    assert not _allowed(pair, "himbeere")
    assert oracle.check(pair.state()) == []


def test_an_undefined_state_reported_by_xl_is_held_for_the_operator(converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    with pair.lab.cluster.transaction() as state:
        faults.migrate_undefined(state, "erdbeere")
    _switch(pair)
    _ticks(pair, 6, lambda: _migration(pair, "erdbeere")[0] == "held")
    phase, reason = _migration(pair, "erdbeere")
    assert phase == "held"
    assert "Domain state is now undefined" in reason
    mark = len(pair.lab.log())
    _ticks(pair, 6)
    assert _ran(pair, mark) == [], "nothing is undone automatically"
    assert pair.running("erdbeere") == {"vm100--migratedaway"}
    assert pair.running("himbeere") == {"vm100--incoming", "vm101"}
    # The start's last look refuses on its own: the peer is Primary, and xl's migration names are here.
    stop = _start_look(pair, "himbeere", resource="")
    assert stop is not None
    assert stop.result == "refused", stop
    assert "xl shows vm100--incoming here" in stop.reason
    assert _migration(pair, "himbeere")[0] == "held"
    assert (pair.role("erdbeere"), pair.role("himbeere")) == ("Primary", "Primary")
    assert oracle.check(pair.state()) == []
    # Whatever a later commit says of the VM, xl's names are the VM: no second instance is started.
    edit_vm(pair.lab, "vm100", r"^  live_migration: true$", "  live_migration: false")
    pair.reload()
    mark = len(pair.lab.log())
    _ticks(pair, 3)
    assert _ran(pair, mark) == []
    assert pair.running("himbeere") == {"vm100--incoming", "vm101"}


def _by_hand(pair: Pair, node: str, *argv: str) -> None:
    """One of the operator's commands on ``node``, then a pass of both daemons (the operator is not instant)."""
    result = pair.lab.host(node).run(list(argv), timeout=30)
    assert result.ok, result.describe()
    pair.tick()


@pytest.mark.parametrize(("keep", "kept", "destroyed"), [("himbeere", "vm100--incoming", "vm100--migratedaway"),
                                                         ("erdbeere", "vm100--migratedaway", "vm100--incoming")])
def test_the_operator_s_documented_answer_ends_a_held_migration(
        converged: Path, tmp_path: Path, keep: str, kept: str, destroyed: str) -> None:
    pair = _copy(converged, tmp_path)
    with pair.lab.cluster.transaction() as state:
        faults.migrate_undefined(state, "erdbeere")
    _switch(pair)
    _ticks(pair, 8, lambda: _migration(pair, "erdbeere")[0] == _migration(pair, "himbeere")[0] == "held")
    assert [_migration(pair, node)[0] for node in NODES] == ["held", "held"]
    other = next(node for node in NODES if node != keep)
    # docs/operations.md, "Held", step by step, each a command on its node.
    _by_hand(pair, other, "xl", "destroy", destroyed)
    _by_hand(pair, keep, "xl", "rename", kept, "vm100")
    _by_hand(pair, keep, "xl", "unpause", "vm100")
    assert [_migration(pair, node)[0] for node in NODES] == ["held", "held"], "held while both are Primary"
    _by_hand(pair, other, "drbdadm", "secondary", "vm100")
    _ticks(pair, 4, lambda: not _allowed(pair, keep))
    for node in NODES:  # the hold has ended: no longer `held`, and the status says how
        phase, reason = _migration(pair, node)
        assert phase == ("done" if keep == "himbeere" else "aborted"), (node, phase, reason)
        assert reason.startswith("held, then resolved by the operator"), reason
        assert reason.endswith("runs here" if node == keep else "does not run here"), reason
    if keep != "himbeere":  # the target's `primary:` is the one committed already
        edit_vm(pair.lab, "vm100", r"^primary: \w+", f"primary: {keep}")
        pair.reload(SHA_B)
    _ticks(pair, 12, lambda: _converged_both(pair))
    assert _converged_both(pair), [pair.daemons[n].rec.status for n in NODES]
    assert pair.running(keep) == ({"vm100", "vm101"} if keep == "himbeere" else {"vm100"})
    assert "vm100" not in pair.running(other)
    assert pair.state()["nodes"][keep]["domains"]["vm100"]["state"] == "running"
    assert (pair.role(keep), pair.role(other)) == ("Primary", "Secondary")
    assert not _allowed(pair, keep)
    assert not _allowed(pair, other)
    for node in NODES:
        phase, reason = _migration(pair, node)
        assert phase in ("done", ""), (node, phase, reason)
    assert oracle.check(pair.state()) == []
    # Settled: further passes run nothing and the migration stays ended.
    mark = len(pair.lab.log())
    _ticks(pair, 3)
    assert _ran(pair, mark) == []
    assert [_migration(pair, node)[0] in ("done", "") for node in NODES] == [True, True]


def test_a_held_migration_resolved_on_its_source_is_not_tried_again_at_its_revision(
        converged: Path, tmp_path: Path) -> None:
    """Kept on the source, the resolved hold is an aborted migration, also for a node that cannot hear its peer
    then (it used to turn back into a new attempt, `waiting`, at the same revision)."""
    pair = _copy(converged, tmp_path)
    with pair.lab.cluster.transaction() as state:
        faults.migrate_undefined(state, "erdbeere")
    _switch(pair)
    _ticks(pair, 8, lambda: _migration(pair, "erdbeere")[0] == _migration(pair, "himbeere")[0] == "held")
    _by_hand(pair, "himbeere", "xl", "destroy", "vm100--incoming")
    _by_hand(pair, "erdbeere", "xl", "rename", "vm100--migratedaway", "vm100")
    _by_hand(pair, "erdbeere", "xl", "unpause", "vm100")
    with pair.lab.cluster.transaction() as state:
        state["network"].setdefault("management_cut", []).append(["erdbeere", "himbeere"])  # no peer reports
    mark = len(pair.lab.log())
    _by_hand(pair, "himbeere", "drbdadm", "secondary", "vm100")
    _ticks(pair, 6)
    with pair.lab.cluster.transaction() as state:
        state["network"]["management_cut"] = []
    _ticks(pair, 6)
    for node in NODES:
        assert _migration(pair, node)[0] == "aborted", (node, _migration(pair, node))
    ran = _ran(pair, mark)
    assert [a for a in ran if a[:2] == NET_OPTIONS] == [[*NET_OPTIONS, "--allow-two-primaries=no", "vm100"]], ran
    assert not [a for a in ran if a[:1] == ["xl"] or a[:2] == ["drbdadm", "primary"]], ran
    _back_on_erdbeere(pair)


def _writes(pair: Pair) -> tuple[int, int]:
    """(vm100's acknowledged writes, the writes refused anywhere) so far."""
    summary = oracle.summary(pair.state())
    return int(summary["acknowledged"].get("vm100", 0)), int(summary["failed_writes"])


def _split_brain_incident(pair: Pair, node: str) -> str:
    status = pair.daemons[node].rec.status
    assert status is not None
    split = [r for r in status.resources if r.key == "drbd:vm100" and "split-brain" in r.conditions]
    return next((w.strip(",;.:()") for r in split for w in r.reason.split() if w.startswith("sb-")), "")


def _recover_discarding(pair: Pair, discard: str) -> None:
    """The documented recovery of the split brain a link lost inside the window leaves: commit the discard of the
    node that gave way, which wrote nothing since."""
    with pair.lab.cluster.transaction() as state:
        faults.heal(state)
    _ticks(pair, 8, lambda: _split_brain_incident(pair, discard))
    named = _split_brain_incident(pair, discard)
    assert named, [r for r in pair.daemons[discard].rec.status.resources if r.key == "drbd:vm100"]  # type: ignore[union-attr]
    vm_file = pair.lab.desired_dir / "vms" / "vm100.yaml"
    vm_file.write_text(vm_file.read_text().replace(
        "\nlifecycle: present", f"\nsplit_brain_recovery: {{incident: {named}, discard: {discard}}}"
                                "\nlifecycle: present", 1))
    pair.reload()
    _ticks(pair, 12, lambda: pair.disk(discard) == "UpToDate")
    assert pair.disk(discard) == "UpToDate"
    assert oracle.summary(pair.state())["discarded"].get("vm100", 0) == 0, f"{discard} had written nothing"
    assert oracle.check(pair.state()) == []


def test_a_link_lost_inside_the_window_before_the_migration_keeps_the_source_writing_and_the_target_gives_way(
        converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    _after_target_promoted(pair)
    acknowledged, refused = _writes(pair)
    with pair.lab.cluster.transaction() as state:
        faults.partition(state, "erdbeere", "himbeere")
    _ticks(pair, 3)
    # fence-peer on erdbeere asked himbeere, which held no open device, demoted and outdated itself (exit 4);
    # himbeere's own handler found erdbeere's device held open by the domain (exit 6).
    assert pair.running("erdbeere") == {"vm100"}
    assert (pair.role("erdbeere"), pair.role("himbeere")) == ("Primary", "Secondary")
    assert (pair.disk("erdbeere"), pair.disk("himbeere")) == ("UpToDate", "Outdated")
    log = pair.state()["nodes"]["erdbeere"]["drbd"]["log"]
    assert "vm100: helper command: /sbin/drbdadm fence-peer vm100 exit code 4 (peer was fenced)" in log
    after, refused_after = _writes(pair)
    assert after > acknowledged, "the running domain's writes stopped"
    assert refused_after == refused, "writes were refused"
    assert not _allowed(pair, "erdbeere")
    assert not _allowed(pair, "himbeere")
    assert _migration(pair, "erdbeere") == ("aborted", "the replication link to himbeere was lost inside the window")
    assert _migration(pair, "himbeere")[0] == "aborted"
    assert "lost inside the window" in _migration(pair, "himbeere")[1]
    assert oracle.check(pair.state()) == []
    # The target was Primary when it lost the link, so DRBD started a new data generation there too: the
    # reconnection shows a split brain, and the documented recovery discards the target, which wrote nothing.
    _recover_discarding(pair, "himbeere")
    assert pair.running("erdbeere") == {"vm100"}
    assert (pair.role("erdbeere"), pair.role("himbeere")) == ("Primary", "Secondary")
    assert _writes(pair)[1] == refused


def test_a_link_lost_after_the_domain_moved_keeps_the_target_and_the_source_gives_way(
        converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    _switch(pair)
    _ticks(pair, 8, lambda: "vm100" in pair.running("himbeere"))
    # The source ran xl migrate in its pass; it demotes only in its next one.
    assert pair.running("erdbeere") == set()
    assert (pair.role("erdbeere"), pair.role("himbeere")) == ("Primary", "Primary")
    assert _allowed(pair, "erdbeere")
    acknowledged, refused = _writes(pair)
    with pair.lab.cluster.transaction() as state:
        faults.partition(state, "erdbeere", "himbeere")
    _ticks(pair, 3)
    assert pair.running("himbeere") == {"vm100", "vm101"}
    assert pair.running("erdbeere") == set()
    assert (pair.role("himbeere"), pair.role("erdbeere")) == ("Primary", "Secondary")
    assert (pair.disk("himbeere"), pair.disk("erdbeere")) == ("UpToDate", "Outdated")
    after, refused_after = _writes(pair)
    assert after > acknowledged, "the migrated domain's writes stopped"
    assert refused_after == refused, "writes were refused"
    assert not _allowed(pair, "erdbeere")
    assert not _allowed(pair, "himbeere")
    for node in NODES:
        phase, reason = _migration(pair, node)
        assert phase == "done", (node, phase, reason)
        assert "lost inside the window after vm100 had moved to himbeere" in reason
    assert oracle.check(pair.state()) == []
    _recover_discarding(pair, "erdbeere")
    assert pair.running("himbeere") == {"vm100", "vm101"}
    assert (pair.role("himbeere"), pair.role("erdbeere")) == ("Primary", "Secondary")
    assert _writes(pair)[1] == refused


def _unfenced_partition(pair: Pair) -> None:
    """Cut the replication link with fence-peer answering 1 on both nodes, so that the tests below ask the peers'
    outdate endpoint (the daemon's code) themselves."""
    with pair.lab.cluster.transaction() as state:
        for node in NODES:
            drbd.set_fence_peer(state, node, "fail")
        faults.partition(state, "erdbeere", "himbeere")
    with pair.lab.cluster.transaction() as state:
        machine.settle(state)  # both nodes notice the cut
    for node, peer in (("erdbeere", "himbeere"), ("himbeere", "erdbeere")):
        assert machine.require_runtime(pair.state(), node, "vm100")["connections"][peer]["conn"] != "Connected"


def _outdate(pair: Pair, node: str) -> tuple[str, str]:
    """The outdate endpoint as the daemon answers it: with this node's migration records and the peer's report."""
    peer = next(n for n in NODES if n != node)
    report = (PeerStatus(node=peer, reachable=True, migrations=pair.daemons[peer].rec.migrations.peer_report()),)
    state_dir = pair.daemons[node].rec.migrations.state_dir
    answer = outdate_local(pair.lab.host(node), "vm100", lambda: frozenset({"vm100"}),
                           peer_keeps=lambda r: peer_keeps(state_dir, node, r, {"vm100": ("vm100", peer)}, report))
    return answer.outcome, answer.detail


def test_the_outdate_endpoint_inside_the_window_demotes_only_the_side_without_the_domain(
        converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    _after_target_promoted(pair)
    _unfenced_partition(pair)
    outcome, detail = _outdate(pair, "erdbeere")
    assert outcome == "primary"
    # The source's records show the domain has not left it (and DRBD would refuse: the domain holds the device).
    assert "inside a live migration window and stays so" in detail
    assert (pair.role("erdbeere"), pair.disk("erdbeere")) == ("Primary", "UpToDate")
    assert _outdate(pair, "himbeere") == ("outdated", "vm100 outdated on himbeere")
    assert (pair.role("himbeere"), pair.disk("himbeere")) == ("Secondary", "Outdated")
    assert oracle.check(pair.state()) == []


def test_the_outdate_endpoint_leaves_both_sides_while_xl_migration_names_hold_the_devices(
        converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    with pair.lab.cluster.transaction() as state:
        faults.migrate_undefined(state, "erdbeere")
    _switch(pair)
    _ticks(pair, 6, lambda: _migration(pair, "erdbeere")[0] == "held")
    assert pair.running("erdbeere") == {"vm100--migratedaway"}
    assert pair.running("himbeere") == {"vm100--incoming", "vm101"}
    _unfenced_partition(pair)
    for node in NODES:
        outcome, detail = _outdate(pair, node)
        assert outcome == "primary", (node, detail)
        # Held here: the records already refuse (and DRBD would, xl's names hold the devices).
        assert "inside a live migration window and stays so" in detail
        assert (pair.role(node), pair.disk(node)) == ("Primary", "UpToDate")


def test_a_vm_that_does_not_allow_live_migration_still_moves_by_shutdown_and_start(
        converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    mark = len(pair.lab.log())
    edit_vm(pair.lab, "vm101", r"^primary: \w+", "primary: erdbeere")
    pair.reload()
    _ticks(pair, 10, lambda: "vm101" in pair.running("erdbeere"))
    assert pair.running("erdbeere") == {"vm100", "vm101"}
    assert "vm101" not in pair.running("himbeere")
    ran = _ran(pair, mark)
    assert ["xl", "shutdown", "-w", "vm101"] in ran
    assert ["xl", "create", "/etc/xen/vm101.cfg"] in ran
    assert not [a for a in ran if a[:2] in (NET_OPTIONS, ["xl", "migrate"])]
    assert oracle.check(pair.state()) == []


def test_without_a_transport_the_move_waits_and_says_why(converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path, transport="")
    mark = _switch(pair)
    _ticks(pair, 3)
    assert _ran(pair, mark) == []
    status = pair.daemons["erdbeere"].rec.status
    assert status is not None
    assert any("RECONCILER_MIGRATE_TRANSPORT" in r.reason for r in status.resources if r.vm == "vm100"), \
        status.resources
    assert pair.running("erdbeere") == {"vm100"}



def test_a_domain_running_with_a_disk_that_is_not_replicated_waits_and_says_why(converged: Path,
                                                                                  tmp_path: Path) -> None:
    """A domain started with a swap LV (before a commit dropped it and allowed live migration) still has it
    attached: its swapped-out memory is on this node only, so it must not move live until it restarts."""
    pair = _copy(converged, tmp_path)
    with pair.lab.cluster.transaction() as state:
        state["nodes"]["erdbeere"]["domains"]["vm100"]["disks"].append(
            {"target": "/dev/vg-sda/swap100", "vdev": "xvdb", "mode": "w"})
    mark = _switch(pair)
    _ticks(pair, 4)
    assert _ran(pair, mark) == [], "no window opened, nothing migrated"
    status = pair.daemons["erdbeere"].rec.status
    assert status is not None
    reasons = [r.reason for r in status.resources if r.vm == "vm100"]
    assert any("not replicated (/dev/vg-sda/swap100)" in r for r in reasons), reasons
    assert pair.running("erdbeere") == {"vm100"}
    assert (pair.role("erdbeere"), pair.role("himbeere")) == ("Primary", "Secondary")
    assert not _allowed(pair, "erdbeere")
    assert not _allowed(pair, "himbeere")
    assert oracle.check(pair.state()) == []

def test_a_step_that_takes_too_long_aborts_and_closes_the_window(converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    pair.daemons.pop("himbeere")  # the target's daemon is stopped: it never takes its step
    _switch(pair)
    _ticks(pair, 2)
    assert _allowed(pair, "erdbeere")
    assert _migration(pair, "erdbeere")[0] == "window-open"
    _ticks(pair, 60, lambda: _migration(pair, "erdbeere")[0] == "aborted")
    phase, reason = _migration(pair, "erdbeere")
    assert phase == "aborted"
    assert "window-open lasted longer than" in reason
    _back_on_erdbeere(pair)


def test_withdrawing_live_migration_inside_the_window_never_starts_a_second_instance(
        converged: Path, tmp_path: Path) -> None:
    # Both Primary, the domain still on the source; a revision withdraws the allowance of live migration. The
    # target is the designated primary, Primary, without the domain: the usual steps would start it there.
    pair = _copy(converged, tmp_path)
    _after_target_promoted(pair)
    mark = len(pair.lab.log())
    edit_vm(pair.lab, "vm100", r"live_migration: true", "live_migration: false")
    pair.reload()
    pair.step("himbeere")
    assert "vm100" not in pair.running("himbeere")
    assert not [a for a in _ran(pair, mark, "himbeere") if a[:2] == ["xl", "create"]]
    # The window closes back to one Primary where the domain runs; the move then goes by shutdown and start.
    _ticks(pair, 20, lambda: "vm100" in pair.running("himbeere"))
    assert pair.running("himbeere") == {"vm100", "vm101"}
    assert "vm100" not in pair.running("erdbeere")
    assert not _allowed(pair, "erdbeere")
    assert not _allowed(pair, "himbeere")
    assert ["xl", "shutdown", "-w", "vm100"] in _ran(pair, mark, "erdbeere")
    assert oracle.check(pair.state()) == []


def _start_look(pair: Pair, node: str, resource: str = "vm100") -> Stop | None:
    host = pair.lab.host(node)
    start = Action(id="start-domain@domain:vm100", kind="start-domain", key="domain:vm100", vm="vm100",
                   change="create", description="start domain vm100", resource=resource)
    return LastLook(host, Observer(host)).check(start)


def test_the_start_s_last_look_refuses_while_the_peer_is_primary(converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    _after_target_promoted(pair)
    stop = _start_look(pair, "himbeere")
    assert stop is not None
    assert stop.result == "refused", stop
    assert "peer erdbeere is Primary for vm100" in stop.reason
    assert _start_look(pair, "himbeere", resource="") is None  # no DRBD resource named: only xl's names count


def test_xl_migrate_s_last_look_waits_when_the_target_is_no_longer_primary(converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    _after_target_promoted(pair)
    host = pair.lab.host("erdbeere")
    migrate = Action(id="migrate-domain@domain:vm100", kind="migrate-domain", key="domain:vm100", vm="vm100",
                     change="change", description="live-migrate vm100 to himbeere", devices=("/dev/drbd0",))
    assert LastLook(host, Observer(host)).check(migrate) is None
    assert pair.lab.host("himbeere").run(["drbdadm", "secondary", "vm100"], timeout=60).ok
    stop = LastLook(host, Observer(host)).check(migrate)
    assert stop is not None
    assert stop.result == "waiting"
    assert "the peer is no longer Primary for vm100" in stop.reason


def test_a_switchover_completes_although_drbd_shares_the_allowance_with_the_peer(
        converged: Path, tmp_path: Path) -> None:
    # DRBD sends `net-options` of a connected resource to the peer, and refuses to clear allow-two-primaries
    # while both sides are Primary: the window is one for both nodes.
    pair = _copy(converged, tmp_path)
    mark = _switch(pair)
    _ticks(pair, 12, lambda: pair.running("himbeere") == {"vm100", "vm101"} and not _allowed(pair, "himbeere"))
    assert pair.running("himbeere") == {"vm100", "vm101"}, "the live migration never completed"
    assert pair.running("erdbeere") == set()
    assert (pair.role("erdbeere"), pair.role("himbeere")) == ("Secondary", "Primary")
    assert not _allowed(pair, "erdbeere")
    assert not _allowed(pair, "himbeere")
    assert [a for a in _ran(pair, mark) if a[:2] == ["xl", "migrate"]]
    assert not [a for a in _ran(pair, mark) if a[:2] == ["xl", "create"]]
    assert oracle.check(pair.state()) == []


# Found by the soak (seed 200): a transport that never answers holds `xl migrate` for its action's 900 s; the
# target's step timeout in its waiting phase gives its promotion up meanwhile, so the window ends in time.
def test_a_hanging_xl_migrate_keeps_the_window_open_no_longer_than_a_step_may_last(
        converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    with pair.lab.cluster.transaction() as state:
        faults.add_fault(state, "hang", node="erdbeere", regex=r"^xl migrate")
    _switch(pair)
    _ticks(pair, 12, lambda: _migration(pair, "erdbeere")[0] == "aborted")  # tick() asserts the oracle clean
    assert _migration(pair, "erdbeere")[0] == "aborted"
    _back_on_erdbeere(pair)
