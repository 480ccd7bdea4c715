"""The cost of a no-op pass's observe and plan on one node, as the daemon runs them (one long-lived Observer,
so tool versions are asked once), timed apart: run inside a lab node against the real tools, and by
benchmarks/bench_lab.py against the simulator for the same desired state.

    python -m reconciler_lab.noop_probe --repo DIR --node NAME [--passes 7]     (prints one JSON line)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence

from reconciler.desired.expand import expand_node
from reconciler.desired.load import load_cluster
from reconciler.host.base import DEFAULT_TIMEOUT, CommandResult, Host, HostWrapper
from reconciler.host.real import RealHost
from reconciler.observe.observer import Observer
from reconciler.plan.diff import plan_node


class CountingHost(HostWrapper):
    """Counts the commands a pass runs (file reads such as /proc/drbd are not commands)."""

    def __init__(self, inner: Host) -> None:
        super().__init__(inner)
        self.commands = 0

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        self.commands += 1
        return super().run(argv, timeout=timeout, stdin=stdin)


def probe(host: Host, repo: str, node: str, passes: int) -> dict[str, float | int]:
    """Medians over ``passes`` observe + plan passes after a first one (which also probes tool versions)."""
    desired = expand_node(load_cluster(repo), node)
    counting = CountingHost(host)
    observer = Observer(counting)
    plan_node(desired, observer.observe())
    observe_s: list[float] = []
    plan_s: list[float] = []
    commands: list[int] = []
    actions: list[int] = []
    for _ in range(passes):
        counting.commands = 0
        t0 = time.perf_counter()
        observed = observer.observe()
        t1 = time.perf_counter()
        plan = plan_node(desired, observed)
        t2 = time.perf_counter()
        observe_s.append(t1 - t0)
        plan_s.append(t2 - t1)
        commands.append(counting.commands)
        actions.append(len(plan.actions))
    return {"vms": len(desired.vms), "passes": passes, "observe_ms": 1000 * statistics.median(observe_s),
            "plan_ms": 1000 * statistics.median(plan_s),
            "pass_ms": 1000 * statistics.median(o + p for o, p in zip(observe_s, plan_s, strict=True)),
            "commands": max(commands), "actions": max(actions)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True, help="the desired-state directory")
    parser.add_argument("--node", required=True)
    parser.add_argument("--passes", type=int, default=7)
    args = parser.parse_args(argv)
    print(json.dumps(probe(RealHost(args.node), args.repo, args.node, args.passes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
