"""Benchmarks of the planner and of a no-op pass.

1. Plan time and peak memory for one node of the 10,000-VM fleet repository (the fleet generator of
   bench_desired.py): load + validate the repository, expand the node, plan against an empty node (every
   action) and against a converged one (nothing to do). ``--stress N`` adds a node holding N VMs (all on
   one node pair). Each case runs in a fresh child process so its peak RSS is its own.
2. Commands per no-op pass on the simulator for 1, 10, 100 and 1,000 VMs, counted from the simulator's
   command log (total and mutating), with the pass's wall time split into observe, plan and apply. Sizes in
   --real (default 1 and 10) are brought up by apply itself; the others are seeded (simseed.py): two
   template VMs are brought up through apply and replicated, and the seed must give an empty plan on both
   nodes and a clean oracle before it is measured. 10 VMs run both ways as a cross-check of the seed.

Run: .venv/bin/python benchmarks/bench_plan.py [--vms 10000] [--pairs 200] [--stress N]
     [--noop 1,10,100,1000] [--real 1,10] [--cli-max 100] [--only-noop]
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import simseed  # noqa: E402
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
    result: dict[str, float | int] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _bring_up(sim: Path, repo: Path) -> tuple[bool, float]:
    """Converge both nodes through apply itself (as `reconciler apply` does), alternating until no action."""
    from reconciler.apply.oneshot import converge_once, observed_peer
    from reconciler.desired.expand import expand_node
    from reconciler.desired.load import load_cluster
    from reconciler.sim.host import SimHost
    from reconciler.sim.state import SimCluster

    cluster = load_cluster(str(repo))
    desired = {n: expand_node(cluster, n) for n in simseed.NODES}
    started = time.perf_counter()
    for _ in range(8):
        steps = []
        for node in simseed.NODES:
            other = next(n for n in simseed.NODES if n != node)

            def peer(other: str = other) -> Any:
                return observed_peer(SimHost(sim, other), desired[other])

            steps.append(converge_once(SimHost(sim, node), desired[node], peer=peer))
        SimCluster(sim).advance(3600)
        if all(not s.plan.actions and s.result is not None and s.result.converged for s in steps):
            return True, time.perf_counter() - started
    return False, time.perf_counter() - started


def _validate(sim: Path, repo: Path, *, cli: bool) -> str:
    """A seeded cluster must be a converged one: empty plan on both nodes, no oracle violation, and every
    domain's writes acknowledged by DRBD for a simulated minute. Raises when any of these fails."""
    from reconciler.sim.state import SimCluster

    verdicts = []
    if cli:
        for node in simseed.NODES:
            proc = subprocess.run([str(ROOT / ".venv/bin/reconciler"), "plan", "--sim", str(sim), "--node", node,
                                   str(repo)], capture_output=True, text=True, check=False, timeout=3600)
            if proc.returncode != 0:
                raise SystemExit(f"seed is wrong: `reconciler plan` on {node} exits {proc.returncode}:\n"
                                 f"{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
        verdicts.append("`reconciler plan` exit 0 on both nodes")
    else:
        for node in simseed.NODES:
            actions = _plan_actions(sim, repo, node)
            if actions:
                raise SystemExit(f"seed is wrong: the plan for {node} has {actions} action(s)")
        verdicts.append("empty plan on both nodes (in-process observe + plan)")
    before = SimCluster(sim).read()["oracle"]
    failed_before = int(before.get("failed_writes", 0))
    SimCluster(sim).advance(60)
    after = SimCluster(sim).read()["oracle"]
    if int(after.get("failed_writes", 0)) != failed_before:
        raise SystemExit("seed is wrong: domains' writes failed after seeding")
    grown = [r for r in after["acked"] if after["acked"][r] != before["acked"].get(r)]
    if len(grown) != len(after["acked"]):
        raise SystemExit(f"seed is wrong: only {len(grown)} of {len(after['acked'])} resources took writes")
    proc = subprocess.run([str(ROOT / ".venv/bin/reconciler"), "sim", "check", str(sim)], capture_output=True,
                          text=True, check=False, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"seed is wrong: the oracle reports {proc.stdout}{proc.stderr}")
    verdicts.append(f"`reconciler sim check` ok ({len(grown)} resources took writes for 60 simulated s)")
    return "; ".join(verdicts)


def _plan_actions(sim: Path, repo: Path, node: str) -> int:
    from reconciler.desired.expand import expand_node
    from reconciler.desired.load import load_cluster
    from reconciler.observe.observer import Observer
    from reconciler.plan.diff import plan_node

    desired = expand_node(load_cluster(str(repo)), node)
    return len(plan_node(desired, Observer(simseed.SnapshotReads(sim, node)).observe()).actions)


def noop_pass(sim: Path, repo: Path) -> dict[str, Any]:
    """One counted no-op pass on erdbeere: observe, plan, apply (converge_once's steps, timed apart)."""
    from reconciler.apply.executor import apply_plan
    from reconciler.apply.oneshot import converge_once
    from reconciler.desired.expand import expand_node
    from reconciler.desired.load import load_cluster
    from reconciler.observe.observer import Observer
    from reconciler.plan.diff import plan_node
    from reconciler.sim.state import SimCluster

    desired = expand_node(load_cluster(str(repo)), "erdbeere")
    host = simseed.SnapshotReads(sim, "erdbeere")
    # A long-lived process (the daemon) keeps its Observer: tool versions are asked once, not per pass.
    observer = Observer(host)
    converge_once(host, desired, observer=observer)
    mark = len(SimCluster(sim).read_log())
    host.file_reads = 0
    t0 = time.perf_counter()
    observed = observer.observe()
    t1 = time.perf_counter()
    plan = plan_node(desired, observed)
    t2 = time.perf_counter()
    result = apply_plan(host, plan, observer=observer)
    t3 = time.perf_counter()
    log = SimCluster(sim).read_log()[mark:]
    t4 = time.perf_counter()
    SimCluster(sim).read()
    state_load = time.perf_counter() - t4
    return {"commands": len(log), "mutating": sum(bool(e.get("mutating")) for e in log),
            "actions": len(plan.actions), "converged": int(result.converged), "pass_s": t3 - t0,
            "observe_s": t1 - t0, "plan_s": t2 - t1, "apply_s": t3 - t2, "file_reads": host.file_reads,
            "native_reads_s": host.file_reads * state_load, "state_mb": os.path.getsize(sim / "state.db") / 1e6,
            "argvs": [e["argv"] for e in log]}


def noop_benchmark(sizes: list[int], real: set[int], cli_max: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-noop-"))
    rows: list[tuple[int, str, dict[str, Any]]] = []
    try:
        templates = 2  # one converged VM per primary node; every seeded VM copies the one with its primary
        # A size brought up for real is seeded too (when it has VMs to seed): the cross-check of the seed.
        ways = {vms: (["real"] if vms in real else []) + (["seeded"] if vms not in real or vms > templates else [])
                for vms in sizes}
        if any("seeded" in w for w in ways.values()):
            simseed.write_desired(work / "repo-template", templates)
            simseed.init_cluster(work / "template")
            ok, took = _bring_up(work / "template", work / "repo-template")
            if not ok:
                raise SystemExit("the template VMs did not converge")
            print(f"   template: {templates} VMs (primary erdbeere, himbeere) brought up through apply in {took:.1f} s")
        for vms in sizes:
            for way in ways[vms]:
                repo, sim = work / f"repo-{vms}", work / f"sim-{vms}-{way}"
                if not repo.exists():
                    simseed.write_desired(repo, vms)
                if way == "real":
                    simseed.init_cluster(sim)
                    ok, took = _bring_up(sim, repo)
                    how = f"brought up for real through apply in {took:.1f} s" + ("" if ok else " (NOT converged)")
                else:
                    simseed.copy_cluster(work / "template", sim)
                    t0 = time.perf_counter()
                    simseed.seed(sim, repo, vms, templates)
                    took = time.perf_counter() - t0
                    how = (f"seeded from the template in {took:.1f} s; validated: "
                           f"{_validate(sim, repo, cli=vms <= cli_max)}")
                r = noop_pass(sim, repo)
                print(f"   {vms:>5} VMs {way}: {how}")
                rows.append((vms, way, r))
                shutil.rmtree(sim, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n     VMs  how     commands  mutating  actions   pass s  observe s  plan s  apply s   state MB  "
          "file reads (plain SimHost est. s)")
    for vms, way, r in rows:
        print(f"   {vms:>5}  {way:<7} {r['commands']:>8}  {r['mutating']:>8}  {r['actions']:>7}  "
              f"{float(r['pass_s']):>7.2f}  {float(r['observe_s']):>9.2f}  {float(r['plan_s']):>6.3f}  "
              f"{float(r['apply_s']):>7.3f}  {float(r['state_mb']):>9.2f}  {r['file_reads']:>6} "
              f"({float(r['native_reads_s']):.1f})")
    both = {vms for vms, way, _r in rows if way == "real"} & {vms for vms, way, _r in rows if way == "seeded"}
    for vms in sorted(both):
        real_r, seeded_r = (next(r for n, w, r in rows if n == vms and w == way) for way in ("real", "seeded"))
        same = "the same" if real_r["argvs"] == seeded_r["argvs"] else "DIFFERENT"
        print(f"   cross-check at {vms} VMs: real and seeded passes ran {same} {len(real_r['argvs'])} commands: "
              + ", ".join(" ".join(a[:3]) for a in real_r["argvs"]))
    by_size = {vms: r for vms, _way, r in rows}
    if len(by_size) > 1:
        low, high = min(by_size), max(by_size)
        a, b = by_size[low], by_size[high]
        print(f"   {high} VMs / {low} VM: commands {int(b['commands']) / max(1, int(a['commands'])):.1f}x, "
              f"mutating {b['mutating']} vs {a['mutating']}, pass time {float(b['pass_s']) / float(a['pass_s']):.1f}x "
              f"(observe {float(b['observe_s']) / float(a['observe_s']):.1f}x, "
              f"plan {float(b['plan_s']) / max(1e-9, float(a['plan_s'])):.1f}x)   (target: commands constant, <= 8)")
        for vms in sorted(by_size):
            if vms >= 10:
                r = by_size[vms]
                per_vm = {k: 1000 * float(r[k]) / vms for k in ("pass_s", "observe_s", "plan_s")}
                print(f"   per VM at {vms:>5}: pass {per_vm['pass_s']:.1f} ms (observe {per_vm['observe_s']:.1f} ms, "
                      f"plan {per_vm['plan_s']:.2f} ms)")


def plan_benchmark(vms: int, pairs: int, stress: int) -> None:
    work = tempfile.mkdtemp(prefix="bench-plan-")
    try:
        fleet = os.path.join(work, "fleet")
        generate(fleet, vms, pairs)
        print(f"1. plan for one node of a {vms}-VM fleet ({pairs} node pairs); fresh process per case")
        cases = [("fleet node000", fleet)]
        if stress:
            one_pair = os.path.join(work, "one-pair")
            generate(one_pair, stress, 1)
            cases.append((f"{stress} VMs on one pair", one_pair))
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


def main() -> int:
    parser = argparse.ArgumentParser(description="planner and no-op pass benchmarks")
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--noop", default="1,10,100,1000", help="VM counts for the no-op command count")
    parser.add_argument("--real", default="1,10",
                        help="of those, the counts brought up through apply (the others are seeded; see simseed.py)")
    parser.add_argument("--cli-max", type=int, default=100,
                        help="validate seeds up to this count with the `reconciler plan` CLI (above: in-process)")
    parser.add_argument("--only-noop", action="store_true", help="skip the planner benchmark (1.)")
    parser.add_argument("--stress", type=int, default=0, metavar="N",
                        help="also plan a node that holds N VMs (all of them on one node pair)")
    parser.add_argument("--plan-child", nargs=2, metavar=("DIR", "NODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plan_child:
        print(json.dumps(plan_child(*args.plan_child)))
        return 0

    if not args.only_noop:
        plan_benchmark(args.vms, args.pairs, args.stress)
    sizes = [int(x) for x in args.noop.split(",") if x.strip()]
    real = {int(x) for x in args.real.split(",") if x.strip()}
    print("2. commands per no-op pass on the simulator (observe + plan + apply of one node; target <= 8, constant)")
    noop_benchmark(sizes, real, args.cli_max)
    return 0


if __name__ == "__main__":
    sys.exit(main())
