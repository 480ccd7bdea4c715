"""Revision-seen -> converged latency of the daemon, and its idle CPU.

Two real daemon processes on a simulated two-node cluster follow a local git repository. Each commit
changes only a comment (no actions), so the figures are the daemon's own pipeline: noticing the commit,
fetching, validating, observing, planning and publishing. Run twice in the same run:

- watch: the default for a local repository (inotify on its refs),
- poll:  the fetch-interval polling baseline (``--no-watch``, interval ``--poll-interval``).

Then the idle CPU of each daemon process over ``--idle-seconds`` (from /proc/PID/stat).

    .venv/bin/python benchmarks/bench_latency.py [--commits 20] [--poll-interval 5] [--idle-seconds 60]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from reconciler.sim.demo import DemoCluster, example_desired_state


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def start_cluster(root: Path, *, poll: float | None) -> DemoCluster:
    seed = example_desired_state()
    if seed is None:
        raise SystemExit("desired-state/ is missing")
    extra = ("--no-watch",) if poll is not None else ()
    cluster = DemoCluster(root, fetch_interval=poll or 3600.0, extra_args=extra)
    first = cluster.create(seed)
    cluster.start()
    if not cluster.wait_converged(first, 120):
        cluster.stop()
        raise SystemExit("bring-up did not converge")
    return cluster


def run_commits(cluster: DemoCluster, commits: int, *, spread: float = 0.0) -> tuple[list[float], list[float]]:
    """Per commit and node: seconds from the commit to the daemon seeing it, and to its converged pass.

    ``spread``: wait a random time up to this long before each commit, so commits do not land at a fixed
    phase of the fetch timer (which would bias the polling baseline).
    """
    rng = random.Random(42)  # noqa: S311  (timing spread, not security)
    seen: list[float] = []
    converged: list[float] = []
    for index in range(commits):
        time.sleep(rng.uniform(0, spread))
        text = (cluster.repo / "vms" / "vm101.yaml").read_text()
        committed = time.time()
        sha = cluster.commit(f"comment {index}", {"vms/vm101.yaml": text + f"# touch {index}\n"})
        if not cluster.wait_converged(sha, 60, since=committed, interval=0.02):
            raise SystemExit(f"commit {index} did not converge")
        for node in cluster.nodes:
            status = cluster.status(node)
            if status is None or status.last_applied is None or status.last_pass is None:
                raise SystemExit(f"{node} published no status")
            seen.append(status.last_applied.seen_at - committed)
            converged.append(status.last_pass.finished_at - committed)
    return seen, converged


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def report(values: list[float]) -> str:
    return (f"p50 {statistics.median(values) * 1000:7.0f} ms   p95 {percentile(values, 95) * 1000:7.0f} ms   "
            f"max {max(values) * 1000:7.0f} ms   (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--poll-interval", type=float, default=5.0)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        cluster = start_cluster(Path(tmp) / "watch", poll=None)
        try:
            seen, converged = run_commits(cluster, args.commits)
            print(f"commit -> converged, local repository watched (inotify), {args.commits} commits x 2 nodes")
            print(f"  seen       {report(seen)}")
            print(f"  converged  {report(converged)}")
            pids = {n: cluster.procs[n].process.pid for n in cluster.nodes}  # type: ignore[union-attr]
            before = {n: cpu_seconds(pid) for n, pid in pids.items()}
            time.sleep(args.idle_seconds)
            after = {n: cpu_seconds(pid) for n, pid in pids.items()}
            print(f"idle CPU over {args.idle_seconds:.0f}s (the simulator's clock advancing meanwhile):")
            for node in cluster.nodes:
                used = after[node] - before[node]
                print(f"  {node}: {used:.2f} CPU-s = {100 * used / args.idle_seconds:.2f}% of one core")
        finally:
            cluster.stop()
        baseline = start_cluster(Path(tmp) / "poll", poll=args.poll_interval)
        try:
            poll_seen, poll_converged = run_commits(baseline, args.commits, spread=args.poll_interval)
        finally:
            baseline.stop()
        print(f"commit -> converged, polling baseline (--no-watch, fetch every {args.poll_interval:g}s +-10%, "
              "commits at random times)")
        print(f"  seen       {report(poll_seen)}")
        print(f"  converged  {report(poll_converged)}")
        ratio = statistics.median(poll_converged) / statistics.median(converged)
        print(f"median commit -> converged: polling / watching = {ratio:.1f}x")


if __name__ == "__main__":
    main()
