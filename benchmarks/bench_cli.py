"""Start-up cost of the command line: fresh processes side by side with the floor they cannot beat.

Every figure is the median wall time of --runs fresh processes, measured in the same run as its floor:
  python -c pass        a bare start of the same interpreter (the floor of any Python command)
  reconciler --help     target: within 3x of a bare start
  reconciler validate   the example desired state (needs the schema, nothing else)
  vgs + lvs             the two lvm2 reports a plan needs, run one after the other (the floor of a plan)
  reconciler plan       one observation and plan over 102 LVs; target: within 2x of vgs + lvs (with the
                        tool versions and the validated desired state an earlier command kept, then without
                        each: the desired state validated afresh, the tool versions probed)

The package's byte-code is compiled first, as in the installed package: with PYTHONDONTWRITEBYTECODE set,
a module edited since its last compilation would otherwise be compiled again in every fresh process.

The lvm2 part needs root and loop devices: three volume groups on this run's own loop devices, activation
disabled (lvm2 reads and writes only metadata), holding 17 dm-striped VMs of this host (3 data LVs and
3 swap LVs each: 102 LVs). Without root it prints why and measures the Python part only. The loop devices
are detached at the end, also on failure.

    sudo .venv/bin/python benchmarks/bench_cli.py [--runs 15]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reconciler.backends.lvm import parse as lvm  # noqa: E402
from reconciler.desired import cache  # noqa: E402
from reconciler.observe import version_cache  # noqa: E402
from tests.lvm_real.loopvg import MIB, LoopLab, loop_vgs, unavailable_reason  # noqa: E402

VGS = ("vg-sda", "vg-sdb", "vg-sdc")
FIRST_ID = 1000
VM_COUNT = 17
LV_MIB = 4
BIN = Path(sys.executable).parent
RECONCILER = str(BIN / "reconciler")


def timed(argv: Sequence[str], runs: int, env: Mapping[str, str] | None = None,
          ok: Sequence[int] = (0,), before: Callable[[], None] | None = None) -> float:
    """Median seconds of ``runs`` fresh processes (after one unmeasured warm-up for the page cache);
    ``before`` runs ahead of each, untimed."""
    full_env = {**os.environ, **(env or {})}
    times = []
    for index in range(runs + 1):
        if before is not None:
            before()
        started = time.perf_counter()
        proc = subprocess.run(list(argv), env=full_env, capture_output=True, timeout=120, check=False)
        elapsed = time.perf_counter() - started
        if proc.returncode not in ok:
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
        if index:
            times.append(elapsed)
    return statistics.median(times)


def timed_pair(first: Sequence[str], second: Sequence[str], runs: int, env: Mapping[str, str]) -> float:
    full_env = {**os.environ, **env}
    times = []
    for index in range(runs + 1):
        started = time.perf_counter()
        for argv in (first, second):
            subprocess.run(list(argv), env=full_env, capture_output=True, timeout=120, check=True)
        if index:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def write_desired(directory: Path, lab: LoopLab, hostname: str) -> None:
    vgs = ", ".join(lab.vg(vg) for vg in VGS)
    (directory / "vms").mkdir(parents=True)
    (directory / "cluster.yaml").write_text(f"""cluster: bench
nodes:
  {hostname}:
    hostname: {hostname}
    address: 127.0.0.1
    volume_groups: [{vgs}]
    drbd_version: "9"
  peer:
    hostname: peer
    address: 127.0.0.2
    volume_groups: [{vgs}]
    drbd_version: "9"
defaults:
  storage: {{layout: dm-striped, volume_groups: [{vgs}], chunk_sectors: 64}}
  safety: {{mechanism: none}}
  domain: {{type: pv, bootloader: pygrub, bridge: xenbr0}}
""")
    for index in range(VM_COUNT):
        vm_id = FIRST_ID + index
        (directory / "vms" / f"vm{vm_id}.yaml").write_text(f"""id: {vm_id}
nodes: [{hostname}, peer]
primary: {hostname}
storage: {{layout: dm-striped, volume_groups: [{vgs}], stripes: 3, chunk_sectors: 64, size: {LV_MIB}M}}
swap: {{size: {LV_MIB}M, volume_groups: [{vgs}]}}
drbd: {{minor: {index}, port: {7788 + index}}}
domain: {{memory: 1G, vcpus: 1}}
""")


def python_rows(runs: int) -> list[tuple[str, float, float | None, float | None]]:
    bare = timed([sys.executable, "-c", "pass"], runs)
    helped = timed([RECONCILER, "--help"], runs)
    validate = timed([RECONCILER, "validate", str(ROOT / "desired-state")], runs)
    return [("python -c pass", bare, None, None),
            ("reconciler --help", helped, helped / bare, 3.0),
            ("reconciler validate (example)", validate, validate / bare, None)]


def lvm_rows(runs: int) -> list[tuple[str, float, float | None, float | None]]:
    hostname = os.uname().nodename
    with loop_vgs(VGS, disk_bytes=1024 * MIB) as lab, tempfile.TemporaryDirectory() as tmp:
        names = [f"{kind}{FIRST_ID + i}" for i in range(VM_COUNT) for kind in ("root", "swap")]
        for vg in VGS:
            lab.bulk_create_lvs(vg, names, LV_MIB * MIB)
        desired = Path(tmp) / "desired"
        write_desired(desired, lab, hostname)
        real_vgs = [lab.vg(vg) for vg in VGS]
        vgs_argv = [*lvm.VGS_ARGV, *real_vgs]
        lvs_argv = [*lvm.LVS_ARGV, *real_vgs]
        listed = subprocess.run(lvs_argv, env={**os.environ, **lab.env}, capture_output=True, text=True,
                                timeout=60, check=True)
        count = len(lvm.parse_lvs(listed.stdout))
        if count != 3 * len(names):
            raise RuntimeError(f"expected {3 * len(names)} LVs, lvs lists {count}")
        floor = timed_pair(vgs_argv, lvs_argv, runs, lab.env)
        # plan exits 2 when something would change (here the DRBD resources and domains are missing).
        state = Path(tmp) / "state"
        argv = [RECONCILER, "plan", "--node", hostname, "--state-dir", str(state), str(desired)]
        cold = timed(argv, runs, lab.env, ok=(0, 2), before=forget_versions)
        unkept = timed(argv, runs, lab.env, ok=(0, 2), before=lambda: forget_desired(state))
        plan = timed(argv, runs, lab.env, ok=(0, 2))
        return [(f"vgs + lvs ({count} LVs)", floor, None, None),
                (f"reconciler plan ({count} LVs)", plan, plan / floor, 2.0),
                ("  same, desired state validated", unkept, unkept / floor, None),
                ("  same, tool versions probed", cold, cold / floor, None)]


def forget_versions() -> None:
    """The first plan on a node (or after a reboot or an upgrade) probes lvm, dmsetup and drbdadm."""
    (version_cache.CACHE_DIR / version_cache.CACHE_FILE).unlink(missing_ok=True)


def forget_desired(state: Path) -> None:
    """The first plan after the desired state or the reconciler changed loads and validates it in full."""
    (state / cache.CACHE_FILE).unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per figure (median reported)")
    args = parser.parse_args()
    compileall.compile_dir(ROOT / "reconciler", quiet=1)
    rows = python_rows(args.runs)
    reason = unavailable_reason()
    if reason is None:
        rows += lvm_rows(args.runs)
    print(f"fresh processes, median of {args.runs} runs each")
    print(f"{'command':<34} {'median':>9}  {'x floor':>8}  {'target':>7}  verdict")
    for name, seconds, ratio, target in rows:
        ratio_text = f"{ratio:7.2f}x" if ratio is not None else f"{'(floor)':>8}"
        target_text = f"{target:5.1f}x" if target is not None else ""
        verdict = "" if ratio is None or target is None else ("met" if ratio <= target else "NOT met")
        print(f"{name:<34} {seconds * 1000:7.1f}ms  {ratio_text}  {target_text:>7}  {verdict}")
    if reason is not None:
        print(f"lvm2 part skipped: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
