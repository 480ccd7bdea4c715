"""Benchmarks of the planner and of a no-op pass.

1. Plan time and peak memory for one node of the 10,000-VM fleet repository (the fleet generator of
   bench_desired.py): load + validate the repository, expand the node, plan against an empty node (every
   action) and against a converged one (nothing to do). ``--stress N`` adds a node holding N VMs (all on
   one node pair). Each case runs in a fresh child process so its peak RSS is its own.
2. Commands per no-op pass on the simulator for 1, 10, 100 (and, with --big, 1,000) VMs: the cluster is
   brought up by apply itself, then one more observe + plan + apply pass is counted from the command log.

Run: .venv/bin/python benchmarks/bench_plan.py [--vms 10000] [--pairs 200] [--stress N] [--noop 1,10,100] [--big]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_desired import generate  # noqa: E402  (the one fleet generator of the project)

GIB = 1024**3


def plan_child(directory: str, node: str) -> dict[str, float | int]:
    from reconciler.desired.expand import expand_node
    from reconciler.desired.load import load_cluster
    from reconciler.plan.diff import plan_node
    from tests.plan.factories import converged, empty_observed

    t0 = time.perf_counter()
    cluster = load_cluster(directory)
    t1 = time.perf_counter()
    desired = expand_node(cluster, node)
    t2 = time.perf_counter()
    empty = empty_observed(node)
    full = plan_node(desired, empty)
    t3 = time.perf_counter()
    plan_node(desired, empty)  # again, warm: without the one-time costs of a fresh process
    warm = time.perf_counter() - t3
    t3 = time.perf_counter()
    done = converged(desired)
    t4 = time.perf_counter()
    noop = plan_node(desired, done)
    t5 = time.perf_counter()
    return {"vms": len(desired.vms), "load_s": t1 - t0, "expand_s": t2 - t1, "plan_full_s": t3 - t2 - warm,
            "plan_warm_s": warm,
            "actions": len(full.actions), "plan_noop_s": t5 - t4, "noop_actions": len(noop.actions),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_plan_case(directory: str, node: str) -> dict[str, float | int]:
    proc = subprocess.run([sys.executable, __file__, "--plan-child", directory, node], capture_output=True,
                          text=True, check=True, timeout=1800)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def noop_commands(vms: int) -> dict[str, object]:
    from reconciler.apply.oneshot import converge_once
    from reconciler.desired.expand import expand_node
    from reconciler.desired.load import load_cluster
    from reconciler.observe.observer import Observer
    from reconciler.sim.host import SimHost
    from reconciler.sim.state import SimCluster

    work = Path(tempfile.mkdtemp(prefix="bench-noop-"))
    try:
        repo = work / "repo"
        generate(str(repo), vms, 1)
        sim = work / "sim"
        # Room for every VM: the fleet's VMs need more memory than a default simulated host has.
        SimCluster.init(sim, ["node000", "node001"], dict.fromkeys(("vg-sda", "vg-sdb", "vg-sdc"), 1024**5),
                        memory_mib=64 * 1024 * 1024)
        cluster = load_cluster(str(repo))
        desired = {n: expand_node(cluster, n) for n in ("node000", "node001")}
        started = time.perf_counter()
        converged = False
        for _ in range(8):
            steps = [converge_once(SimHost(sim, n), desired[n]) for n in ("node000", "node001")]
            SimCluster(sim).advance(24 * 3600)
            if all(not s.plan.actions for s in steps):
                converged = True
                break
        bring_up = time.perf_counter() - started
        # A long-lived process (the daemon) keeps its Observer: tool versions are asked once, not per pass.
        host = SimHost(sim, "node000")
        observer = Observer(host)
        converge_once(host, desired["node000"], observer=observer)
        mark = len(SimCluster(sim).read_log())
        t0 = time.perf_counter()
        step = converge_once(host, desired["node000"], observer=observer)
        elapsed = time.perf_counter() - t0
        log = SimCluster(sim).read_log()[mark:]
        return {"vms": vms, "converged": converged, "commands": len(log),
                "mutating": sum(bool(e.get("mutating")) for e in log),
                "actions": len(step.plan.actions), "pass_s": elapsed, "bring_up_s": bring_up}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="planner and no-op pass benchmarks")
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--noop", default="1,10,100", help="VM counts for the no-op command count")
    parser.add_argument("--stress", type=int, default=0, metavar="N",
                        help="also plan a node that holds N VMs (all of them on one node pair)")
    parser.add_argument("--big", action="store_true", help="also 1,000 VMs in the no-op benchmark (slow bring-up)")
    parser.add_argument("--plan-child", nargs=2, metavar=("DIR", "NODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plan_child:
        print(json.dumps(plan_child(*args.plan_child)))
        return 0

    work = tempfile.mkdtemp(prefix="bench-plan-")
    try:
        fleet = os.path.join(work, "fleet")
        generate(fleet, args.vms, args.pairs)
        print(f"1. plan for one node of a {args.vms}-VM fleet ({args.pairs} node pairs); fresh process per case")
        cases = [("fleet node000", fleet)]
        if args.stress:
            one_pair = os.path.join(work, "one-pair")
            generate(one_pair, args.stress, 1)
            cases.append((f"{args.stress} VMs on one pair", one_pair))
        for label, directory in cases:
            r = run_plan_case(directory, "node000")
            total = float(r["load_s"]) + float(r["expand_s"]) + float(r["plan_full_s"])
            print(f"   {label:<20} {r['vms']:>6} VMs on the node: load+validate {r['load_s']:.2f} s, "
                  f"expand {r['expand_s']:.3f} s, plan (empty node, {r['actions']} actions) {r['plan_full_s']:.3f} s "
                  f"cold / {r['plan_warm_s']:.3f} s warm, "
                  f"plan (converged, {r['noop_actions']} actions) {r['plan_noop_s']:.3f} s; "
                  f"total {total:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB   (target < 2 s, < 300 MB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    counts = [int(x) for x in args.noop.split(",") if x.strip()] + ([1000] if args.big else [])
    print("2. commands per no-op pass on the simulator (observe + plan + apply of one node; target <= 8, constant)")
    for vms in counts:
        r = noop_commands(vms)
        state = "" if r["converged"] else " (NOT converged: not a no-op pass)"
        print(f"   {r['vms']:>5} VMs{state}: {r['commands']} commands ({r['mutating']} mutating), "
              f"{r['actions']} actions, "
              f"pass {float(r['pass_s']):.2f} s (bring-up took {float(r['bring_up_s']):.1f} s)")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
