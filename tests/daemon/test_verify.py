"""Scheduled online verify on a simulated cluster: adding it is a safe adjust, a run starts only when due and
quiet, is followed to its end, survives a restart, reports what it found, and found blocks are resynced
only for a statement naming the run, once."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from reconciler.daemon.loop.verify import VerifyScheduler, _Record, run_id
from reconciler.daemon.schedule.clock import VirtualClock
from reconciler.desired.expand import expand_node
from reconciler.desired.load import load_cluster
from reconciler.model.desired import DesiredNode
from reconciler.model.status import VerifyStatus
from reconciler.observe.observer import Observer
from reconciler.sim import drbd
from tests.apply.simlab import SimLab, edit_vm, init_cluster
from tests.conftest import EXAMPLE_DIR

VERIFY = "  verify:\n    schedule: daily\n    rate: 1G\n"
DAY = 86400.0
FOUND_KIB = 4096


def add_verify(lab: SimLab, text: str = VERIFY) -> None:
    path = lab.desired_dir / "cluster.yaml"
    path.write_text(path.read_text().replace("guards:\n", text + "\nguards:\n", 1))


@pytest.fixture
def lab(tmp_path: Path) -> SimLab:
    desired = tmp_path / "desired"
    shutil.copytree(EXAMPLE_DIR, desired)
    found = SimLab(tmp_path / "sim", desired_dir=desired)
    init_cluster(found.directory)
    found.converge()
    return found


def desired_of(lab: SimLab, node: str = "erdbeere") -> DesiredNode:
    return expand_node(load_cluster(str(lab.desired_dir)), node)


class Runner:
    """One node's scheduler, stepped the way the daemon steps it at the end of a pass."""

    def __init__(self, lab: SimLab, state_dir: Path, clock: VirtualClock, node: str = "erdbeere") -> None:
        self.lab, self.node, self.clock, self.state_dir = lab, node, clock, state_dir
        self.scheduler = VerifyScheduler(lab.host(node), state_dir, clock.time)

    def step(self, **kwargs: Any) -> dict[str, VerifyStatus]:
        observed = Observer(self.lab.host(self.node)).observe()
        statuses = self.scheduler.step(desired_of(self.lab, self.node), observed, **kwargs)
        return {s.resource: s for s in statuses}

    def commands(self, *prefix: str) -> list[list[str]]:
        return [
            e["argv"] for e in self.lab.log() if e.get("node") == self.node and e["argv"][: len(prefix)] == list(prefix)
        ]


def test_adding_verify_to_existing_resources_is_a_safe_adjust(lab: SimLab) -> None:
    add_verify(lab)
    step = lab.apply("erdbeere")
    kinds = sorted({(a.kind, a.key) for a in step.plan.actions})
    assert kinds == [
        ("drbd-adjust", "drbd:vm100"),
        ("drbd-adjust", "drbd:vm101"),
        ("write-drbd-config", "drbd:vm100"),
        ("write-drbd-config", "drbd:vm101"),
    ]
    assert not any(a.refused or a.destructive for a in step.plan.actions)
    assert step.result is not None
    assert {a.result for a in step.result.actions} == {"ok"}
    assert "verify-alg sha256;" in (lab.host("erdbeere").read_file("/etc/drbd.d/vm100.res") or "")
    again = lab.apply("erdbeere")
    assert not again.plan.actions
    assert again.result is not None
    assert again.result.converged


def test_a_due_verify_runs_once_reports_and_survives_a_restart(lab: SimLab, tmp_path: Path) -> None:
    add_verify(lab)
    lab.converge()
    clock = VirtualClock(1_780_000_000.0)
    runner = Runner(lab, tmp_path / "state", clock)
    (tmp_path / "state").mkdir()
    with lab.cluster.transaction() as state:
        drbd.set_verify_finds(state, "erdbeere", FOUND_KIB)

    started = runner.step()
    assert set(started) == {"vm100"}  # vm101's primary is himbeere: its verify runs there
    assert started["vm100"].running
    assert started["vm100"].run_id == run_id(clock.time())
    assert runner.commands("drbdadm", "verify") == [["drbdadm", "verify", "vm100"]]

    lab.cluster.advance(100)  # 300 GiB at 1 GiB/s: a third
    clock.advance(100)
    going = runner.step()["vm100"]
    assert going.running
    assert going.progress_percent is not None
    assert 20.0 < going.progress_percent < 50.0
    assert len(runner.commands("drbdadm", "verify")) == 1

    lab.cluster.advance(400)
    clock.advance(400)
    done = runner.step()["vm100"]
    assert not done.running
    assert (done.last_run_id, done.last_run_at, done.found_out_of_sync_bytes) == (
        started["vm100"].run_id,
        clock.time(),
        FOUND_KIB * 1024,
    )
    assert done.unresolved_out_of_sync_bytes == FOUND_KIB * 1024
    assert done.next_due_at == clock.time() + DAY

    restarted = Runner(lab, tmp_path / "state", clock)
    clock.advance(DAY / 2)
    assert not restarted.step()["vm100"].running
    assert len(runner.commands("drbdadm", "verify")) == 1
    clock.advance(DAY / 2)
    assert restarted.step()["vm100"].running
    assert len(runner.commands("drbdadm", "verify")) == 2


def test_a_due_verify_waits_for_a_quiet_resource(lab: SimLab, tmp_path: Path) -> None:
    add_verify(lab)
    lab.converge()
    runner = Runner(lab, tmp_path / "state", VirtualClock())
    (tmp_path / "state").mkdir()
    busy = runner.step(busy=frozenset({"vm100"}))["vm100"]
    assert busy.waiting == "due, waiting: actions for the VM run in this pass"
    held = runner.step(held=frozenset({"vm100"}))["vm100"]
    assert held.waiting == "due, waiting: the VM is suspended"
    lab.host("erdbeere").run(("drbdadm", "disconnect", "vm100"), timeout=10)
    cut = runner.step()["vm100"]
    assert cut.waiting == "due, waiting: the connection to himbeere is StandAlone"
    assert runner.commands("drbdadm", "verify") == []


def test_found_blocks_are_resynced_once_for_a_statement_naming_the_run(lab: SimLab, tmp_path: Path) -> None:
    add_verify(lab)
    lab.converge()
    clock = VirtualClock(1_780_000_000.0)
    runner = Runner(lab, tmp_path / "state", clock)
    (tmp_path / "state").mkdir()
    with lab.cluster.transaction() as state:
        drbd.set_verify_finds(state, "erdbeere", FOUND_KIB)
    run = runner.step()["vm100"].run_id
    lab.cluster.advance(600)
    clock.advance(600)
    assert runner.step()["vm100"].found_out_of_sync_bytes == FOUND_KIB * 1024
    assert runner.commands("drbdadm", "disconnect") == []  # never by itself

    edit_vm(lab, "vm100", r"^primary: erdbeere$", 'primary: erdbeere\nverify: {resync_found: "20000101T000000Z"}')
    wrong = runner.step()["vm100"]
    assert "names run 20000101T000000Z, but the last complete run is " + run in wrong.waiting
    assert runner.commands("drbdadm", "disconnect") == []

    edit_vm(lab, "vm100", r"20000101T000000Z", run)
    answered = runner.step()["vm100"]
    assert answered.resynced_run_id == run
    assert answered.unresolved_out_of_sync_bytes == 0
    assert runner.commands("drbdadm", "disconnect") == [["drbdadm", "disconnect", "vm100"]]
    assert runner.commands("drbdadm", "connect") == [["drbdadm", "connect", "vm100"]]
    lab.cluster.advance(60)
    observed = Observer(lab.host("erdbeere")).observe().drbd.resource("vm100")
    assert observed is not None
    pd = observed.connections[0].peer_devices[0]
    assert (pd.replication_state, pd.out_of_sync_bytes) == ("Established", 0)
    runner.step()
    Runner(lab, tmp_path / "state", clock).step()
    assert len(runner.commands("drbdadm", "disconnect")) == 1


def test_a_pass_runs_the_scheduler_and_the_status_and_metrics_carry_it(lab: SimLab, tmp_path: Path) -> None:
    from reconciler.daemon.loop.gating import BootGate
    from reconciler.daemon.loop.real_engine import RealEngine
    from reconciler.daemon.loop.reconcile import PassContext, Reconciler
    from reconciler.daemon.node.control import ControlState
    from reconciler.daemon.schedule.liveness import Liveness
    from reconciler.metrics.collector import exposition
    from reconciler.metrics.state import MetricsState
    from reconciler.model.status import PeerStatus
    from tests.daemon.fakes import SHA_A, FakeSource

    add_verify(lab)
    lab.converge()
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    clock = VirtualClock(1_780_000_000.0)
    source = FakeSource(state_dir)
    source.set(SHA_A, load_cluster(str(lab.desired_dir)))
    host = lab.host("erdbeere")
    metrics = MetricsState("erdbeere", clock=clock.time)
    rec = Reconciler(
        node="erdbeere",
        state_dir=state_dir,
        source=source,
        engine=RealEngine(host),  # type: ignore[arg-type]
        clock=clock,
        liveness=Liveness(clock.monotonic),
        metrics=metrics,
        verifier=VerifyScheduler(host, state_dir, clock.time),
    )
    peers = (PeerStatus(node="himbeere", reachable=True, applied_revision=SHA_A, ready=True),)
    ctx = PassContext(
        peers=peers, gate=BootGate(fetched=True, fetch_deadline_passed=False, peers_seen=frozenset({"himbeere"}))
    )
    result = rec.run_pass(ControlState(), ctx)
    published = rec.publish(ControlState(), peers, None, None, result)
    assert result.outcome == "converged"
    (entry,) = published.verify
    assert (entry.vm, entry.running) == ("vm100", True)
    assert ["drbdadm", "verify", "vm100"] in [e["argv"] for e in lab.log() if e.get("node") == "erdbeere"]
    text = exposition(metrics).decode()
    assert 'reconciler_drbd_verify_running{resource="vm100",vm="vm100"} 1.0' in text
    assert 'reconciler_metrics_section_failed{section="verify"} 0.0' in text


def test_one_scheduled_verify_at_a_time_per_node(lab: SimLab, tmp_path: Path) -> None:
    add_verify(lab)
    edit_vm(lab, "vm101", r"^primary: himbeere$", "primary: erdbeere")
    lab.converge()
    runner = Runner(lab, tmp_path / "state", VirtualClock())
    (tmp_path / "state").mkdir()
    first = runner.step()
    assert first["vm100"].running
    assert first["vm101"].waiting == "due, waiting: the verify of vm100 runs on this node"
    lab.cluster.advance(600)
    assert runner.step()["vm101"].running  # vm100 ended in this pass, before vm101's turn
    assert runner.commands("drbdadm", "verify") == [["drbdadm", "verify", "vm100"], ["drbdadm", "verify", "vm101"]]


def test_a_remembered_record_of_the_wrong_types_is_forgotten() -> None:
    record = _Record(first_seen_at=5.0, run_id="r1", started_at=7, running=True, found_bytes=4096)
    assert _Record.from_json(record.to_json()) == record
    assert _Record.from_json({**record.to_json(), "first_seen_at": "5"}) is None
    assert _Record.from_json({**record.to_json(), "running": 1}) is None
    assert _Record.from_json({**record.to_json(), "found_bytes": 4096.0}) is None
    assert _Record.from_json({"run_id": "r1"}) is None   # first_seen_at is required
    assert _Record.from_json(["r1"]) is None
