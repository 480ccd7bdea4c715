"""Benchmark of the simulator itself, side by side with the single-file store it replaced (the baseline).

1. Commands per second on a seeded cluster of 10, 100 and 1,000 VMs (simseed.py: two template VMs brought
   up through apply, the others replicated), for a fixed mix of commands that each touch one VM or one new
   LV: ``lvcreate`` + ``blkid -p`` + ``dmsetup info`` + ``drbdadm dstate`` + ``lvremove`` of a scratch LV and
   a file write, repeated; the per-command cost is reported as the cluster grows.
2. A bring-up through apply (in-process ``converge_once`` on both nodes until nothing is left to do, as
   ``reconciler apply`` does) of 100 VMs and of 1,000 VMs from an empty cluster.

Every case runs in a fresh child process, with either this tree's ``reconciler`` or the baseline's on its
path: the baseline is a ``git worktree`` of BASELINE_COMMIT (the last commit with the single-file store), or
of ``--baseline COMMIT`` (e.g. the commit before a change), made on first use. A baseline may be slow, so
each of its cases has a time cap: a case that hits it is reported as "> cap", and the ratio is then a lower
bound.

Run: .venv/bin/python benchmarks/bench_sim.py [--sizes 10,100,1000] [--bringup 30,100,1000]
     [--baseline-bringup 30,100] [--cap 900] [--baseline-cap 300] [--baseline COMMIT | --no-baseline]
     [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE_COMMIT = "89e5a01148a5041346b0fd145397c614804f6df8"


# --- children (run with one tree's reconciler first on sys.path) ---------------------------------------


def _child_commands(tree: str, vms: int, rounds: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(tree) / "benchmarks"))
    import simseed

    from reconciler.sim.host import SimHost

    work = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    repo, sim = work / "repo", work / "sim"
    simseed.write_desired(repo, vms)
    simseed.init_cluster(sim)
    templates = min(2, vms)
    simseed.write_desired(work / "templates", templates)
    import bench_plan

    converged, _ = bench_plan._bring_up(sim, work / "templates")
    if not converged:
        raise SystemExit("the template VMs did not converge")
    started = time.perf_counter()
    simseed.seed(sim, repo, vms, templates)
    seed_s = time.perf_counter() - started
    host = SimHost(sim, simseed.NODES[0])
    commands = 0
    mutating = 0
    started = time.perf_counter()
    for index in range(rounds):
        ident = simseed.vm_id(index % vms)
        argvs = [
            ["lvcreate", "-y", "-L", "64M", "-n", f"scratch{index}", "vg-sda"],
            ["blkid", "-p", "-o", "export", f"/dev/vg-sda/swap{ident}"],
            ["dmsetup", "info", "-c", "--noheadings", "-o", "name,open", f"root{ident}"],
            ["drbdadm", "dstate", f"vm{ident}"],
            ["lvremove", "-f", f"vg-sda/scratch{index}"],
        ]
        for argv in argvs:
            result = host.run(argv)
            if result.returncode not in (0, 2):  # blkid exits 2 on a device without a signature
                raise SystemExit(f"{' '.join(argv)} failed: {result.describe()}")
            commands += 1
        host.write_file(f"/var/lib/bench/{index}", str(index))
        commands += 1
        mutating += 3
    elapsed = time.perf_counter() - started
    return {"vms": vms, "commands": commands, "mutating": mutating, "seconds": elapsed,
            "per_s": commands / elapsed, "ms_per_command": 1000 * elapsed / commands, "seed_s": seed_s}


def _child_bringup(tree: str, vms: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(tree) / "benchmarks"))
    import bench_plan
    import simseed

    from reconciler.sim.state import SimCluster

    work = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    simseed.write_desired(work / "repo", vms)
    simseed.init_cluster(work / "sim")
    started = time.perf_counter()
    converged, _ = bench_plan._bring_up(work / "sim", work / "repo")
    elapsed = time.perf_counter() - started
    commands = len(SimCluster(work / "sim").read_log())
    return {"vms": vms, "converged": converged, "seconds": elapsed, "commands": commands,
            "ms_per_command": 1000 * elapsed / max(commands, 1)}


# --- the parent ---------------------------------------------------------------------------------------


def _baseline_tree(commit: str) -> Path:
    worktree = Path(tempfile.gettempdir()) / f"reconciler-sim-baseline-{commit[:12]}"
    if not (worktree / "reconciler" / "sim" / "state.py").is_file():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), commit],
                       check=True, capture_output=True, timeout=120)
    return worktree


def _run(tree: Path, args: list[str], cap: float) -> dict[str, Any] | None:
    """One case in a child process whose ``reconciler`` is ``tree``'s; None when it ran past ``cap`` seconds."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", str(tree), *args], env=env, cwd=tree,
                              capture_output=True, text=True, check=False, timeout=cap)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        raise SystemExit(f"case {args} in {tree} failed:\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _ratio(new: dict[str, Any] | None, old: dict[str, Any] | None, key: str, cap: float) -> str:
    if new is None:
        return "n/a"
    if old is None:
        if new["seconds"] >= cap:
            return f"n/a (both past {cap:.0f} s)"
        return f"> {cap / new['seconds']:.1f}x (baseline past its {cap:.0f} s cap)"
    return f"{old[key] / new[key]:.1f}x"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="10,100,1000", help="VM counts for commands per second")
    parser.add_argument("--bringup", default="30,100,1000", help="VM counts brought up through apply")
    parser.add_argument("--baseline-bringup", default="30,100",
                        help="of those, the counts the baseline brings up too (1,000 takes it hours)")
    parser.add_argument("--rounds", type=int, default=40, help="rounds of the command mix (6 commands each)")
    parser.add_argument("--cap", type=float, default=900, help="time cap of a case of this tree, seconds")
    parser.add_argument("--baseline-cap", type=float, default=300, help="time cap of a baseline case, seconds")
    parser.add_argument("--baseline", default=BASELINE_COMMIT,
                        help="commit to compare with (default: the last one with the single-file store)")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    if args.child:
        tree, mode, *rest = args.child
        if mode == "commands":
            print(json.dumps(_child_commands(tree, int(rest[0]), int(rest[1]))))
        else:
            print(json.dumps(_child_bringup(tree, int(rest[0]))))
        return 0
    baseline = None if args.no_baseline else _baseline_tree(args.baseline)
    print(f"simulator benchmark: this tree ({ROOT}) against {args.baseline[:12]}"
          if baseline else f"simulator benchmark: this tree ({ROOT}) only")
    print(f"cores: {os.cpu_count()}, load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print()
    print(f"1. commands per second, seeded cluster, {args.rounds} rounds of lvcreate, blkid -p, dmsetup info, "
          "drbdadm dstate, lvremove, write_file")
    print(f"{'VMs':>6} {'new cmd/s':>10} {'new ms/cmd':>11} {'base cmd/s':>11} {'base ms/cmd':>12} {'speed-up':>10}")
    first_ms = None
    for size in [int(s) for s in args.sizes.split(",") if s]:
        new = _run(ROOT, ["commands", str(size), str(args.rounds)], args.cap)
        old = _run(baseline, ["commands", str(size), str(args.rounds)], args.baseline_cap) if baseline else None
        if new is not None and first_ms is None:
            first_ms = new["ms_per_command"]
        base_text = (f"{old['per_s']:>11.1f} {old['ms_per_command']:>12.2f}" if old else
                     f"{'> cap':>11} {'':>12}") if baseline else f"{'-':>11} {'-':>12}"
        new_text = f"{new['per_s']:>10.1f} {new['ms_per_command']:>11.2f}" if new else f"{'> cap':>10} {'':>11}"
        ratio = _ratio(new, old, "ms_per_command", args.baseline_cap) if baseline and old else (
            "n/a" if not baseline else f"baseline > {args.baseline_cap:.0f} s")
        print(f"{size:>6} {new_text} {base_text} {ratio:>10}")
        if new is not None and first_ms:
            print(f"{'':>6} new per-command cost relative to the smallest size: "
                  f"{new['ms_per_command'] / first_ms:.2f}")
    print()
    print("2. bring-up through apply from an empty cluster (both nodes, until nothing is left to do)")
    print(f"{'VMs':>6} {'new s':>9} {'commands':>9} {'new ms/cmd':>11} {'base s':>9} {'base ms/cmd':>12} "
          f"{'speed-up':>10}")
    for size in [int(s) for s in args.bringup.split(",") if s]:
        new = _run(ROOT, ["bringup", str(size)], args.cap)
        skipped = baseline is not None and str(size) not in args.baseline_bringup.split(",")
        old = _run(baseline, ["bringup", str(size)], args.baseline_cap) if baseline and not skipped else None
        new_text = (f"{new['seconds']:>9.1f} {new['commands']:>9} {new['ms_per_command']:>11.2f}"
                    + ("" if new["converged"] else " (not converged)")) if new else f"{'> cap':>9} {'':>9} {'':>11}"
        if not baseline or skipped:
            base_text, ratio = f"{'not run':>9} {'':>12}", "-"
        elif old is None:
            base_text, ratio = f"{'> ' + str(int(args.baseline_cap)):>9} {'':>12}", _ratio(
                new, None, "seconds", args.baseline_cap)
        else:
            base_text, ratio = f"{old['seconds']:>9.1f} {old['ms_per_command']:>12.2f}", _ratio(
                new, old, "seconds", args.baseline_cap)
        print(f"{size:>6} {new_text} {base_text} {ratio:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
