"""`reconciler demo`: a simulated two-node cluster, one daemon per node, a git repository; watch it work."""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.model.status import NodeStatus

if TYPE_CHECKING:  # the cluster harness loads when the demo runs, not for `reconciler demo --help`
    from reconciler.sim.demo import DemoCluster


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="see it work: a simulated two-node cluster, one daemon per node, following a git repository",
        description="Create a simulated cluster and a local git repository seeded from desired-state/, start "
                    "`reconciler run` for each node, show them converge, commit a new VM, show that converge, "
                    "and stop.")
    parser.add_argument("--dir", metavar="DIR", help="where to create everything (default: a new temporary directory)")
    parser.add_argument("--keep-running", action="store_true", help="stay up until Ctrl-C after the demo")
    parser.add_argument("--timeout", type=float, default=90.0, metavar="S",
                        help="give up when a step takes longer (default: 90)")
    parser.set_defaults(func=_run)


NEW_VM = """# VM 102: added by the demo: a linear LV on one disk, primary on erdbeere.
id: 102
nodes: [erdbeere, himbeere]
primary: erdbeere

storage:
  layout: linear
  volume_groups: [vg-sdc]
  size: 10G

swap:
  size: 1G
  volume_groups: [vg-sdc]

drbd:
  minor: 2
  port: 7790

domain:
  memory: 1G
  maxmem: 1G
  vcpus: 1
  maxvcpus: 1
  vifs:
    - mac: "00:16:3e:00:01:02"
"""


class Reporter:
    """Prints one line per change of a node's state, so progress is visible without flooding."""

    def __init__(self, cluster: DemoCluster, started: float) -> None:
        self.cluster = cluster
        self.started = started
        self.last: dict[str, str] = {}

    def tick(self) -> None:
        for node in self.cluster.nodes:
            line = summary(self.cluster.status(node))
            if self.last.get(node) != line:
                self.last[node] = line
                print(f"  [{time.monotonic() - self.started:5.1f}s] {node:<9} {line}", flush=True)


def shorten(text: str, width: int) -> str:
    """Cut at a word boundary and say so, rather than mid-word."""
    if len(text) <= width:
        return text
    return text[: width - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def summary(status: NodeStatus | None) -> str:
    if status is None or status.last_pass is None:
        return "starting"
    resources = status.resources
    ready = sum(r.phase == "ready" for r in resources)
    text = f"{status.last_pass.outcome:<11} {ready}/{len(resources)} resources ready"
    waiting = next((r for r in resources if r.phase in ("waiting", "progressing", "failed")), None)
    if waiting is not None and status.last_pass.outcome != "converged":
        reason = shorten(re.sub(r"\s+", " ", waiting.reason), 70)
        text += f"  ({waiting.key}: {reason})" if reason else f"  ({waiting.key} {waiting.phase})"
    if status.boot_gate:
        text += "  [boot gate]"
    return text


def table(cluster: DemoCluster) -> str:
    statuses = {n: cluster.status(n) for n in cluster.nodes}
    keys: list[tuple[str, str]] = []
    for status in statuses.values():
        for listed in status.resources if status else ():
            if (listed.vm, listed.key) not in keys:
                keys.append((listed.vm, listed.key))
    # Each node lists only its own resources (the filesystem only on the primary): group by VM again.
    order = {vm: i for i, vm in enumerate(dict.fromkeys(vm for vm, _ in keys))}
    keys.sort(key=lambda item: order[item[0]])
    width = max([len(k) for _, k in keys] + [8])
    header = f"  {'VM':<6} {'RESOURCE':<{width}}" + "".join(f"  {n:<12}" for n in cluster.nodes)
    lines = [header]
    for vm, key in keys:
        cells = []
        for node in cluster.nodes:
            status = statuses[node]
            res = next((r for r in status.resources if r.key == key), None) if status else None
            cells.append(res.phase.capitalize() if res else "-")
        lines.append(f"  {vm:<6} {key:<{width}}" + "".join(f"  {c:<12}" for c in cells))
    for node, status in statuses.items():
        applied = status.last_applied.sha[:12] if status and status.last_applied else "none"
        peers = ", ".join(f"{p.node} at {(p.applied_revision or 'none')[:12]}" for p in status.peers) if status else ""
        lines.append(f"  {node}: applied {applied}; sees {peers or 'no peer'}")
    return "\n".join(lines)


def running_domains(cluster: DemoCluster) -> str:
    from reconciler.sim.state import SimCluster  # noqa: PLC0415

    state = SimCluster(cluster.sim).read()
    where = []
    for node, data in sorted(state.get("nodes", {}).items()):
        domains = sorted(data.get("domains") or {})
        where.append(f"{node}: {', '.join(domains) if domains else 'none'}")
    return "; ".join(where)


def _run(args: argparse.Namespace) -> int:
    from reconciler.sim.demo import DemoCluster, DemoError, environment_ok, example_desired_state  # noqa: PLC0415

    problem = environment_ok()
    seed = example_desired_state()
    if problem is None and seed is None:
        problem = "the example desired state (desired-state/) is not next to the package"
    if problem is not None:
        print(f"reconciler demo: {problem}", file=sys.stderr)
        return 1
    assert seed is not None  # noqa: S101  (checked above)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="reconciler-demo-"))
    if args.dir and root.exists() and any(root.iterdir()):
        print(f"reconciler demo: {root} is not empty; give a new or empty directory", file=sys.stderr)
        return 1
    cluster = DemoCluster(root)
    started = time.monotonic()
    print(f"== creating a simulated cluster ({', '.join(cluster.nodes)}) and a git repository in {root}")
    try:
        first = cluster.create(seed)
    except (OSError, DemoError) as exc:
        print(f"reconciler demo: cannot create the demo in {root}: {exc}", file=sys.stderr)
        return 1
    print(f"   repository {cluster.repo} at {first[:12]} (seeded from {seed})")
    reporter = Reporter(cluster, started)
    try:
        print("== starting one daemon per node (`reconciler run --sim ...`); DRBD resyncs run on simulated time")
        cluster.start()
        if not cluster.wait_converged(first, args.timeout, on_tick=reporter.tick):
            return _failed(cluster, "the initial bring-up did not converge")
        reporter.tick()
        _await_peers(cluster, first)
        print(f"== both nodes converged at {first[:12]} in {time.monotonic() - started:.1f}s")
        print(table(cluster))
        print(f"   domains running: {running_domains(cluster)}")
        print("== committing a change: a new VM vm102 (vms/vm102.yaml)")
        t0 = time.monotonic()
        second = cluster.commit("Add vm102", {"vms/vm102.yaml": NEW_VM})
        print(f"   committed {second[:12]}; the daemons notice the new commit by themselves")
        if not cluster.wait_converged(second, args.timeout, on_tick=reporter.tick):
            return _failed(cluster, "the change did not converge")
        reporter.tick()
        elapsed = time.monotonic() - t0
        _await_peers(cluster, second)
        print(f"== both nodes converged at {second[:12]} {elapsed:.1f}s after the commit")
        print(table(cluster))
        print(f"   domains running: {running_domains(cluster)}")
        print("== metrics are served at:")
        for node in cluster.nodes:
            print(f"   {node}: {cluster.metrics_url(node)}  ({_sample_metric(cluster.metrics_url(node))})")
        print(f"   status: reconciler status --state-dir {cluster.procs[cluster.nodes[0]].state_dir}")
        print(f"   logs:   {', '.join(str(cluster.procs[n].log) for n in cluster.nodes)}")
        if args.keep_running:
            print("== running until Ctrl-C (try: commit to the repository, `reconciler suspend --state-dir ...`)")
            try:
                while all(cluster.alive(n) for n in cluster.nodes):
                    reporter.tick()
                    time.sleep(0.5)
            except KeyboardInterrupt:
                print()
    except DemoError as exc:
        return _failed(cluster, str(exc))
    finally:
        print("== stopping the daemons")
        cluster.stop()
    print(f"== done in {time.monotonic() - started:.1f}s; everything is in {root}")
    return 0


def _await_peers(cluster: DemoCluster, sha: str) -> None:
    """Give each daemon a moment to hear that its peer is at ``sha`` too, so the table shows no stale skew."""
    def agreed() -> bool:
        statuses = [cluster.status(n) for n in cluster.nodes]
        return all(s is not None and s.peers and all(p.applied_revision == sha for p in s.peers) for s in statuses)

    cluster.wait_for(agreed, 10.0)


def _sample_metric(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310  (our own loopback endpoint)
            text = response.read().decode(errors="replace")
    except OSError as exc:
        return f"not reachable: {exc}"
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return f"{len(lines)} samples"


def _failed(cluster: DemoCluster, why: str) -> int:
    print(f"reconciler demo: {why}", file=sys.stderr)
    for node in cluster.nodes:
        print(f"--- last lines of {node}'s log:", file=sys.stderr)
        print(cluster.log_tail(node), file=sys.stderr)
    return 1
