"""In-process daemons on a simulated cluster: the real engine on each simulated node, one virtual clock, peer
status as the simulated management network allows it (reachability, revision, and the VMs the peer runs after an
automatic failover, as its peer server reports them), and the data oracle checked after every step."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reconciler.daemon.loop.gating import BootGate
from reconciler.daemon.loop.real_engine import RealEngine
from reconciler.daemon.loop.reconcile import PassContext, Reconciler
from reconciler.daemon.node.control import ControlState
from reconciler.daemon.peers.failover import read_records
from reconciler.daemon.schedule.clock import VirtualClock
from reconciler.daemon.schedule.liveness import Liveness
from reconciler.desired.load import load_cluster
from reconciler.metrics.state import MetricsState
from reconciler.model.status import PassResult, PeerStatus
from reconciler.sim import drbd_machine as machine
from reconciler.sim import faults, oracle
from reconciler.sim.state import State, can_talk
from tests.apply.simlab import NODES, SimLab
from tests.daemon.fakes import SHA_A, FakeSource

PASS_EVERY = 5.0  # the daemon's progress interval: a degraded node looks again this often


@dataclass
class Daemon:
    """One node's daemon, in process: its reconciler, its metrics and whether it has seen its peers."""

    rec: Reconciler
    metrics: MetricsState
    boot_id: str
    seen: set[str] = field(default_factory=set)


@dataclass
class Pair:
    lab: SimLab
    tmp: Path
    nodes: tuple[str, ...] = NODES
    clock: VirtualClock = field(default_factory=lambda: VirtualClock(1_780_000_000.0))
    daemons: dict[str, Daemon] = field(default_factory=dict)
    transport: str = ""  # each daemon's live migration transport (RECONCILER_MIGRATE_TRANSPORT)
    revision: str = SHA_A  # the commit every daemon has (a new one reaches both at once, with reload())

    def start(self, node: str) -> Daemon:
        """A daemon (re)starting on ``node``: memory empty, its state directory kept."""
        state_dir = self.tmp / "state" / node
        state_dir.mkdir(parents=True, exist_ok=True)
        source = FakeSource(state_dir)
        source.set(self.revision, load_cluster(str(self.lab.desired_dir)))
        metrics = MetricsState(node, clock=self.clock.time)
        rec = Reconciler(node=node, state_dir=state_dir, source=source,  # type: ignore[arg-type]
                         engine=RealEngine(self.lab.host(node)), clock=self.clock,  # type: ignore[arg-type]
                         liveness=Liveness(self.clock.monotonic), metrics=metrics,
                         migrate_transport=self.transport)
        self.daemons[node] = Daemon(rec, metrics, self.boot_id(node))
        return self.daemons[node]

    def boot_id(self, node: str) -> str:
        return str(self.state()["nodes"][node].get("boot_id", ""))

    def reload(self, revision: str | None = None) -> None:
        """A new commit of the desired directory reaches every daemon (as ``revision``, else under the same one)."""
        self.revision = revision or self.revision
        for daemon in self.daemons.values():
            daemon.rec.source.set(self.revision, load_cluster(str(self.lab.desired_dir)))  # type: ignore[attr-defined]

    def up(self, node: str) -> bool:
        return bool(self.state()["nodes"][node].get("up"))

    def state(self) -> State:
        return self.lab.cluster.read()

    def step(self, node: str, control: ControlState | None = None) -> PassResult:
        daemon = self.daemons[node]
        state = self.state()
        peers = []
        for peer in (n for n in self.nodes if n != node):
            reachable = can_talk(state, node, peer, link="management_cut")
            if reachable:
                daemon.seen.add(peer)
            answering = self.daemons.get(peer) if reachable else None
            applied = self.revision if reachable else None
            peers.append(PeerStatus(node=peer, reachable=reachable, applied_revision=applied,
                                    ready=reachable, error="" if reachable else "connection refused",
                                    checked_at=self.clock.time(),
                                    takeovers=answering.rec.taken_over() if answering is not None else (),
                                    migrations=answering.rec.migrations.peer_report()
                                    if answering is not None else ()))
        gate = BootGate(fetched=True, fetch_deadline_passed=True, peers_seen=frozenset(daemon.seen))
        control = control or ControlState()
        split_brain = {p.node: dict(self.daemons[p.node].rec.split_brain_records) for p in peers
                       if p.reachable and p.node in self.daemons}
        backing = {node: dict(self.daemons[node].rec.backing_sizes) for node in split_brain}
        result = daemon.rec.run_pass(control, PassContext(peers=tuple(peers), gate=gate, peer_split_brain=split_brain,
                                                          peer_backing=backing))
        daemon.rec.publish(control, tuple(peers), None, None, result)
        return result

    def tick(self, seconds: float = PASS_EVERY, control: ControlState | None = None) -> None:
        """Time passes (guests write), then every daemon whose node is up runs a pass; the oracle stays clean."""
        self.clock.advance(seconds)
        self.lab.cluster.advance(seconds)
        for node in self.nodes:
            if self.up(node) and node in self.daemons:
                if self.daemons[node].boot_id != self.boot_id(node):
                    self.start(node)  # the node rebooted itself: its daemon starts anew, memory empty
                self.step(node, control)
        assert oracle.check(self.state()) == []

    def run_for(self, seconds: float, control: ControlState | None = None) -> None:
        for _ in range(int(seconds / PASS_EVERY)):
            self.tick(control=control)

    def running(self, node: str) -> set[str]:
        return set(self.state()["nodes"][node].get("domains") or {})

    def role(self, node: str, resource: str = "vm100") -> str:
        res = machine.runtime(self.state(), node, resource) if self.up(node) else None
        return str(res["role"]) if res is not None else "down"

    def disk(self, node: str, resource: str = "vm100") -> str:
        res = machine.runtime(self.state(), node, resource)
        assert res is not None
        return "/".join(str(d["disk"]) for d in res["devices"].values())

    def watching(self, node: str, vm: str = "vm100") -> str:
        """What the node's last status says about a VM whose other node looks lost ("" when nothing)."""
        status = self.daemons[node].rec.status
        assert status is not None
        return next((f.watching for f in status.failovers if f.vm == vm), "")

    def record(self, node: str, vm: str = "vm100") -> str | None:
        found = read_records(self.tmp / "state" / node).get(vm)
        return found.state if found is not None else None

    def crash(self, node: str) -> None:
        with self.lab.cluster.transaction() as state:
            faults.crash(state, node)
        self.daemons.pop(node, None)

    def boot(self, node: str) -> None:
        with self.lab.cluster.transaction() as state:
            faults.boot(state, node)
        self.start(node)
