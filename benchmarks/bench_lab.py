"""The real-tool cost of a no-op pass (observe + plan) inside the lab, at 1 and 20 VMs, beside the
simulator's figure for the same desired state.

It boots a fresh lab (docs/lab.md; `scripts/lab setup` first, as root), lets the daemons converge the lab's
vm100, then 19 more small VMs (replicated 8 MiB LVs and 96 MiB domUs, all on erdbeere), and at each size
stops erdbeere's daemon and runs reconciler_lab/noop_probe.py in its dom0: a first pass (tool versions),
then the medians of --passes observe + plan passes against the real LVM, device-mapper, DRBD 8.4 and Xen.
The same probe then runs on this machine against the simulator, brought to the same state from the same
repository through apply. The nodes are emulated (QEMU TCG): the real figures are slower than on hardware
by the emulation's factor; the ratios between sizes are what carry over.

    .venv/bin/python benchmarks/bench_lab.py [--sizes 1,20] [--passes 7] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

# Nineteen domUs of 96 MiB beside dom0's 900 MiB and vm100's 160 MiB (set before the nodes are made).
os.environ.setdefault("RECONCILER_LAB_MEMORY_MIB", "4096")

from bench_plan import _bring_up  # noqa: E402  (the simulator bring-up through apply)

from reconciler.sim.host import SimHost  # noqa: E402
from reconciler.sim.state import SimCluster  # noqa: E402
from reconciler_lab import paths  # noqa: E402
from reconciler_lab.desired import VM_ID, cluster_yaml, small_vm_yaml, vm_yaml  # noqa: E402
from reconciler_lab.lab import Lab, Node, bring_up, down, start_daemon, wait_until  # noqa: E402
from reconciler_lab.noop_probe import probe  # noqa: E402
from reconciler_lab.proc import LabError  # noqa: E402

CONVERGE = 3600.0
LAB_VG_BYTES = 508 * 1024 * 1024   # a 512 MiB virtio disk less LVM's metadata area


def _names(vms: int) -> list[str]:
    return [f"vm{VM_ID + i}" for i in range(vms)]


def _write(lab: Lab, vms: int) -> str:
    lab.repo.write(cluster_yaml(), vm_yaml(primary="erdbeere"))
    for index in range(1, vms):
        lab.repo.write_vm(f"vm{VM_ID + index}", small_vm_yaml(index))
    return lab.repo.commit(f"bench: {vms} VMs")


def _settled(node: Node, head: str, running: list[str] | None) -> bool:
    if head[:12] not in node.check(["reconciler", "status"], timeout=120):
        return False
    ends = [line for line in node.daemon_log().splitlines() if "event=pass.end" in line]
    if not ends or "result=converged" not in ends[-1]:
        return False
    if running is None:
        return True
    listed = {line.split()[0] for line in node.check(["xl", "list"], timeout=120).splitlines()[1:] if line.split()}
    return set(running) <= listed


def _real(lab: Lab, vms: int, passes: int) -> dict[str, Any]:
    head = _write(lab, vms)
    started = time.monotonic()
    erdbeere, himbeere = lab.node("erdbeere"), lab.node("himbeere")
    wait_until(f"{vms} VMs to converge on both nodes", lambda: _settled(erdbeere, head, _names(vms))
               and _settled(himbeere, head, None), CONVERGE, poll=10.0)
    took = time.monotonic() - started
    erdbeere.stop_daemon()   # the probe measures alone; DRBD and the domains run on
    try:
        out = erdbeere.check([str(paths.PROJECT / ".venv/bin/python"), "-B", "-m", "reconciler_lab.noop_probe",
                              "--repo", f"/mnt/host{lab.repo.path}", "--node", "erdbeere", "--passes", str(passes)],
                             timeout=3600)
    finally:
        start_daemon(erdbeere)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["converge_s"] = took
    return result


def _simulated(repo: Path, passes: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-lab-sim-"))
    try:
        tree = work / "repo"
        shutil.copytree(repo, tree, ignore=shutil.ignore_patterns(".git"))
        SimCluster.init(work / "sim", ["erdbeere", "himbeere"],
                        dict.fromkeys(("vg-sda", "vg-sdb", "vg-sdc"), LAB_VG_BYTES), drbd_version="8.4")
        ok, took = _bring_up(work / "sim", tree)
        if not ok:
            raise SystemExit(f"the simulator did not converge the lab's desired state ({tree})")
        result = probe(SimHost(work / "sim", "erdbeere"), str(tree), "erdbeere", passes)
        result["converge_s"] = took
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _row(vms: int, where: str, r: dict[str, Any]) -> str:
    return (f"{vms:>4}  {where:<17} {r['commands']:>9}  {r['actions']:>7}  {r['observe_ms']:>10.1f}  "
            f"{r['plan_ms']:>7.1f}  {r['pass_ms']:>7.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description="no-op pass cost in the real-kernel lab and the simulator")
    parser.add_argument("--sizes", default="1,20", help="VM counts, ascending (default 1,20)")
    parser.add_argument("--passes", type=int, default=7)
    parser.add_argument("--out", type=Path, help="save the nodes' consoles and logs here")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    lab = Lab()
    rows: list[tuple[int, str, dict[str, Any]]] = []
    try:
        bring_up(lab)
        for vms in sizes:
            for where, measure in (("lab (real tools)", lambda n=vms: _real(lab, n, args.passes)),
                                   ("simulator", lambda n=vms: _simulated(lab.repo.path, args.passes))):
                rows.append((vms, where, measure()))
                # Each figure as soon as it is measured: a later size that fails must not take it along.
                print(f"   measured: {_row(*rows[-1])}", flush=True)
    except LabError as exc:
        print(f"bench_lab: {exc}\n{lab.consoles()[-6000:]}", file=sys.stderr)
        return 1
    finally:
        if args.out:
            lab.save(args.out)
        for node in lab.nodes.values():
            node.agent.close()
        down(quiet=True)
    print(f"\nno-op pass on erdbeere, medians of {args.passes} passes after the first "
          f"(lab: QEMU {lab.accel.upper()}, Xen 4.17 PV dom0, DRBD 8.4)")
    print("    VMs  where              commands  actions  observe ms  plan ms  pass ms")
    for row in rows:
        print(f"   {_row(*row)}")
    by = {(vms, where.split()[0]): r for vms, where, r in rows}
    for vms in sizes:
        real, sim = by[(vms, "lab")], by[(vms, "simulator")]
        print(f"   at {vms:>2} VMs: lab / simulator = {real['pass_ms'] / sim['pass_ms']:.1f}x "
              f"(observe {real['observe_ms'] / sim['observe_ms']:.1f}x)")
    if len(sizes) > 1:
        low, high = sizes[0], sizes[-1]
        for where in ("lab", "simulator"):
            a, b = by[(low, where)], by[(high, where)]
            print(f"   {where}: {high} VMs / {low} VM = {b['pass_ms'] / a['pass_ms']:.1f}x pass time, "
                  f"commands {a['commands']} -> {b['commands']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
