"""Observation cost against node size, on real lvm2 (loop devices, activation disabled; needs root).

For each size it builds a lab of three volume groups holding that many LVs in total, then times
  observer  the Observer: the fixed command set of one pass (median of several passes, after a first
            pass that also probes tool versions)
  naive     a per-resource observation: one `vgs`, then one `lvs VG/LV` per logical volume
and prints commands per pass, wall time and the naive/observer ratio. Loop devices are removed at the end.

    sudo .venv/bin/python benchmarks/bench_observe.py [--sizes 10,100,1000] [--passes 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.backends.lvm import parse as lvm
from reconciler.host.base import Host
from reconciler.observe.observer import Observer
from tests.lvm_real.loopvg import GIB, MIB, LoopLab, loop_vgs, unavailable_reason

VGS = ("vg-sda", "vg-sdb", "vg-sdc")
LV_BYTES = 4 * MIB


def populate(lab: LoopLab, total: int) -> list[tuple[str, str]]:
    created: list[tuple[str, str]] = []
    for index, vg in enumerate(VGS):
        names = [f"lv{n}" for n in range(index, total, len(VGS))]
        lab.bulk_create_lvs(vg, names, LV_BYTES)
        created.extend((lab.vg(vg), name) for name in names)
    return created


def naive_pass(host: Host, volumes: list[tuple[str, str]]) -> tuple[int, int]:
    """The per-resource way: returns (commands, LVs seen)."""
    commands = 1
    result = host.run(lvm.VGS_ARGV, timeout=60)
    lvm.parse_vgs(result.stdout)
    seen = 0
    for vg, name in volumes:
        result = host.run((*lvm.LVS_ARGV, f"{vg}/{name}"), timeout=60)
        commands += 1
        seen += len(lvm.parse_lvs(result.stdout))
    return commands, seen


def measure(total: int, passes: int) -> dict[str, float]:
    per_vg = -(-total // len(VGS))
    metadata = max(1, per_vg // 50) * MIB  # about 1 KiB of text per LV, twice, with room to spare
    with loop_vgs(VGS, disk_bytes=max(GIB, per_vg * LV_BYTES + 64 * MIB), metadata_bytes=metadata) as lab:
        volumes = populate(lab, total)
        host = lab.host("bench")
        observer = Observer(host)
        started = time.perf_counter()
        first = observer.observe()
        first_s = time.perf_counter() - started
        assert len(first.logical_volumes) == total, (len(first.logical_volumes), total)
        times = []
        for _ in range(passes):
            started = time.perf_counter()
            observed = observer.observe()
            times.append(time.perf_counter() - started)
        started = time.perf_counter()
        naive_commands, seen = naive_pass(host, volumes)
        naive_s = time.perf_counter() - started
        assert seen == total, (seen, total)
    observer_s = statistics.median(times)
    return {
        "lvs": total,
        "observer_commands": observed.commands_run,
        "first_pass_commands": first.commands_run + observer.version_commands_run,
        "first_pass_s": first_s,
        "observer_s": observer_s,
        "naive_commands": naive_commands,
        "naive_s": naive_s,
        "ratio": naive_s / observer_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000", help="total LV counts (comma separated)")
    parser.add_argument("--passes", type=int, default=5, help="observer passes per size (median reported)")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason is not None:
        print(f"bench_observe: cannot run: {reason}", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(f"observation cost on real lvm2, {len(VGS)} VGs on loop devices, activation disabled; "
          f"observer = median of {args.passes} passes, naive = one `vgs` + one `lvs VG/LV` per LV")
    header = (f"{'LVs':>6}  {'cmds/pass':>9}  {'1st pass cmds':>13}  {'observer':>10}  "
              f"{'naive cmds':>10}  {'naive':>10}  {'naive/observer':>14}")
    print(header)
    for size in sizes:
        row = measure(size, args.passes)
        print(f"{row['lvs']:>6}  {row['observer_commands']:>9}  {row['first_pass_commands']:>13}  "
              f"{row['observer_s'] * 1000:>8.1f}ms  {row['naive_commands']:>10}  "
              f"{row['naive_s'] * 1000:>8.1f}ms  {row['ratio']:>13.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
