"""The project's example repository converged on a two-node simulated cluster, observed for metrics.

Built with the real pipeline: ``load_cluster`` + ``expand_node`` for the desired state, ``converge_once``
(observe, plan, apply through ``SimHost``) for each node, then the ``Observer`` for what the metrics show.
"""

from __future__ import annotations

import shutil
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconciler.apply.executor import ApplyOptions
from reconciler.apply.oneshot import converge_once, observed_peer
from reconciler.desired.expand import expand_node
from reconciler.desired.load import load_cluster
from reconciler.metrics.state import MetricsState
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode
from reconciler.model.status import NodeStatus, PassResult, PeerStatus, RevisionInfo
from reconciler.observe.observer import Observer
from reconciler.sim.host import SimHost
from reconciler.sim.state import SimCluster, State
from tests.conftest import EXAMPLE_DIR

NODES = ("erdbeere", "himbeere")
VGS = ("vg-sda", "vg-sdb", "vg-sdc")
REVISION = "c0ffee" + "0" * 34


@dataclass
class SimPair:
    directory: Path
    cluster: SimCluster
    hosts: dict[str, SimHost]
    desired: dict[str, DesiredNode]
    states: dict[str, MetricsState] = field(default_factory=dict)
    last_pass: dict[str, PassResult] = field(default_factory=dict)

    def advance(self, seconds: float) -> None:
        self.cluster.advance(seconds)

    def observe(self, node: str) -> ObservedNode:
        return Observer(self.hosts[node]).observe()

    def refresh(self) -> None:
        """What the daemon does on a DRBD event: re-observe and update the exported state."""
        for node in NODES:
            self.states[node].update_observed(self.observe(node))

    def transaction(self) -> AbstractContextManager[State]:
        return self.cluster.transaction()

    def feed(self) -> None:
        """Fresh metrics states, as each node's daemon has them after its last pass."""
        for node in NODES:
            peer = next(p for p in NODES if p != node)
            state = MetricsState(node)
            info = RevisionInfo(sha=REVISION, seen_at=0.0)
            status = NodeStatus(node=node, last_attempted=info, last_applied=info,
                                last_success_at=self.last_pass[node].finished_at,
                                peers=(PeerStatus(node=peer, reachable=True, applied_revision=REVISION, ready=True),))
            state.record_pass(self.last_pass[node], self.observe(node), self.desired[node], status)
            self.states[node] = state

    def clone(self, directory: Path) -> SimPair:
        """An independent copy (the simulated cluster lives in its directory), so tests can inject faults."""
        shutil.copytree(self.directory, directory)
        copy = SimPair(directory, SimCluster(directory), {n: SimHost(directory, n) for n in NODES}, self.desired,
                       last_pass=dict(self.last_pass))
        copy.feed()
        return copy


def converged_example(directory: Path, rounds: int = 8, *, wait_for_sync: bool = True) -> SimPair:
    """Converge ``desired-state/`` on both nodes: until a pass on each finds nothing to do and everything
    healthy. Not converging is a failure of the reconciler, not a reason to skip.

    ``wait_for_sync=False`` stops as soon as a pass on each node finds nothing left to do, while the initial
    full sync still runs (those passes are "degraded": the standby's data is not UpToDate yet)."""
    wanted = ("converged",) if wait_for_sync else ("converged", "degraded")
    cluster = SimCluster.init(directory, list(NODES), dict.fromkeys(VGS, 400 << 30), memory_mib=32768)
    spec = load_cluster(str(EXAMPLE_DIR))
    desired = {node: expand_node(spec, node) for node in NODES}
    hosts = {node: SimHost(directory, node) for node in NODES}
    pair = SimPair(directory, cluster, dict(hosts), desired)
    def sleep(seconds: float) -> None:  # retries wait in simulated time
        cluster.advance(seconds)

    options = ApplyOptions(sleep=sleep)
    summaries: list[str] = []
    for _ in range(rounds):
        for node in NODES:
            peer = next(p for p in NODES if p != node)
            step = converge_once(hosts[node], desired[node], options=options,
                                 peer=lambda p=peer: observed_peer(hosts[p], desired[p]))  # type: ignore[misc]
            assert step.result is not None
            pair.last_pass[node] = step.result.to_pass_result(REVISION)
            summaries.append(step.result.summary() + "".join(
                f"; {r.key} {r.phase}: {r.reason}" for r in step.result.resources if r.phase != "ready"))
        if all(p.outcome in wanted for p in pair.last_pass.values()):
            break
        # The initial full sync of the example's 300 GiB stripe takes simulated minutes.
        pair.advance(900 if wait_for_sync else 1)
    if not all(p.outcome in wanted for p in pair.last_pass.values()):
        pytest.fail("the example repository does not converge on the simulator: " + "; ".join(summaries[-2:]))
    pair.feed()
    return pair
