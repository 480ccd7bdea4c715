"""Benchmark: this reconciler's LVM part versus Ansible's community.general.lvol, on real lvm2.

Both create the same N linear LVs on their own volume group (loop devices, activation disabled), then run
again with nothing to do. The reconciler's pass is: vgs + lvs (the observer's command lines and parsers),
the pure planner, and apply through the real host seam. It is timed in-process and, for a fair wall-clock
comparison with ``ansible-playbook`` (which starts a process), as a fresh ``python`` process too.

Run (root, loop devices):  .venv/bin/python benchmarks/bench_ansible.py [--lvs 100]
Needs ansible-core plus the community.general collection (the ``ansible`` package from PyPI bundles it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MIB = 1024**2
LV_BYTES = 8 * MIB


def desired_lvs(vg: str, count: int):  # type: ignore[no-untyped-def]
    from reconciler.model.desired import DesiredLV, DesiredNode, DesiredVm

    vms = tuple(
        DesiredVm(name=f"vm{i}", id=i, source_file=f"vms/vm{i}.yaml", lifecycle="present", layout="linear",
                  nodes=("bench",), primary_node="bench", this_node="bench",
                  lvs=(DesiredLV(vm=f"vm{i}", vg=vg, name=f"data{i}", size_bytes=LV_BYTES, purpose="data"),))
        for i in range(1000, 1000 + count))
    return DesiredNode(cluster="bench", node="bench", hostname="bench", address="127.0.0.1", drbd_version="9",
                       volume_groups=(vg,), vms=vms)


def reconciler_pass(vg: str, count: int, env: dict[str, str], journal: str) -> dict[str, object]:
    """One observe (LVM part) -> plan -> apply pass; returns what it did."""
    from reconciler.apply.executor import ApplyOptions, apply_plan
    from reconciler.backends.lvm import parse as lvm
    from reconciler.host.real import RealHost
    from reconciler.model.observed import ObservedNode
    from reconciler.plan.diff import plan_node

    host = RealHost("bench", env=env)
    started = time.perf_counter()
    vgs = host.run(lvm.VGS_ARGV, timeout=60)
    lvs = host.run(lvm.LVS_ARGV, timeout=60)
    if not (vgs.ok and lvs.ok):
        raise RuntimeError(f"observation failed: {vgs.describe()} / {lvs.describe()}")
    observed = ObservedNode(node="bench", volume_groups=lvm.parse_vgs(vgs.stdout),
                            logical_volumes=lvm.parse_lvs(lvs.stdout), commands_run=2)
    plan = plan_node(desired_lvs(vg, count), observed)
    result = apply_plan(host, plan, options=ApplyOptions(journal_path=journal))
    return {"seconds": time.perf_counter() - started, "actions": len(plan.actions), "outcome": result.outcome,
            "ok": result.count("ok")}


def fresh_process_pass(vg: str, count: int, env: dict[str, str], journal: str) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--one-pass", vg, str(count), json.dumps(env), journal],
                          capture_output=True, text=True, check=True, timeout=600)
    return time.perf_counter() - started, json.loads(proc.stdout)


PLAYBOOK = """- hosts: localhost
  connection: local
  gather_facts: false
  environment:
    LVM_SYSTEM_DIR: "{conf}"
  tasks:
    - name: logical volumes
      community.general.lvol:
        vg: "{vg}"
        lv: "{{{{ item }}}}"
        size: 8m
        active: false
      loop: {names}
"""
# active: false because activation is disabled in the lab: every LV looks inactive there, and the default
# (active: true) would run `lvchange -ay` and report "changed" on every run, so no run would be a no-op.


def ansible_run(workdir: Path, vg: str, count: int, conf: str) -> tuple[float, str]:
    names = json.dumps([f"data{i}" for i in range(1000, 1000 + count)])
    book = workdir / "lvs.yml"
    book.write_text(PLAYBOOK.format(conf=conf, vg=vg, names=names))
    bindir = Path(sys.executable).parent
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0",
           "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
           "PATH": f"{bindir}:{os.environ.get('PATH', '')}"}
    started = time.perf_counter()
    proc = subprocess.run([str(bindir / "ansible-playbook"), "-i", "localhost,", "-e",
                           f"ansible_python_interpreter={sys.executable}", str(book)],
                          capture_output=True, text=True, env=env, timeout=1800, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        said = f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        raise RuntimeError(f"ansible-playbook failed ({proc.returncode}):\n{said}")
    items = proc.stdout.count("changed: [localhost] => (item=")
    recap = next((line for line in proc.stdout.splitlines() if line.startswith("localhost")), "")
    return elapsed, f"{items} items changed; " + " ".join(recap.split()[2:4])


def count_lvs(lab, vg: str) -> int:  # type: ignore[no-untyped-def]
    out = lab.lvm("lvs", "--noheadings", "-o", "lv_name", vg).stdout
    return len([line for line in out.splitlines() if line.strip()])


def ansible_available() -> str | None:
    bindir = Path(sys.executable).parent
    if not (bindir / "ansible-playbook").exists():
        return "ansible-playbook is not installed in this virtualenv (pip install ansible)"
    proc = subprocess.run([str(bindir / "ansible-doc"), "-t", "module", "community.general.lvol"],
                          capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        return "the community.general collection (lvol module) is not installed (pip install ansible bundles it)"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lvs", type=int, default=100)
    parser.add_argument("--one-pass", nargs=4, metavar=("VG", "N", "ENV", "JOURNAL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_pass:
        vg, count, env, journal = args.one_pass
        print(json.dumps(reconciler_pass(vg, int(count), json.loads(env), journal)))
        return 0

    from tests.lvm_real.loopvg import loop_vgs, unavailable_reason

    reason = unavailable_reason()
    if reason:
        print(f"cannot run: {reason}")
        return 1
    disk = max(LV_BYTES * args.lvs * 2, 512 * MIB)
    missing_ansible = ansible_available()
    with loop_vgs(["vg-rec", "vg-ans"], disk_bytes=disk) as lab:
        work = Path(tempfile.mkdtemp(prefix="bench-ansible-"))
        try:
            journal = str(work / "journal.json")
            vg_rec, vg_ans = lab.vg("vg-rec"), lab.vg("vg-ans")
            version = lab.lvm("lvm", "version").stdout.split()[2]
            print(f"{args.lvs} LVs of {LV_BYTES // MIB} MiB each, real lvm2 {version}, loop devices, "
                  "activation disabled")
            first = reconciler_pass(vg_rec, args.lvs, lab.env, journal)
            assert count_lvs(lab, vg_rec) == args.lvs, "reconciler did not create every LV"
            noop = reconciler_pass(vg_rec, args.lvs, lab.env, journal)
            noop_proc, noop_proc_result = fresh_process_pass(vg_rec, args.lvs, lab.env, journal)
            print(f"reconciler converge : {first['seconds']:8.2f} s  ({first['actions']} actions, {first['outcome']})")
            print(f"reconciler no-op    : {noop['seconds']:8.3f} s in-process ({noop['actions']} actions); "
                  f"{noop_proc:.3f} s as a fresh process ({noop_proc_result['actions']} actions)")
            if missing_ansible:
                print(f"ansible             : not measured: {missing_ansible}")
                return 0
            a_first, recap1 = ansible_run(work, vg_ans, args.lvs, lab.env["LVM_SYSTEM_DIR"])
            assert count_lvs(lab, vg_ans) == args.lvs, "ansible did not create every LV"
            a_noop, recap2 = ansible_run(work, vg_ans, args.lvs, lab.env["LVM_SYSTEM_DIR"])
            print(f"ansible converge    : {a_first:8.2f} s  ({recap1})")
            print(f"ansible no-op       : {a_noop:8.2f} s  ({recap2})")
            print(f"ratio converge      : ansible / reconciler = {a_first / float(first['seconds']):6.1f}x")  # type: ignore[arg-type]
            print(f"ratio no-op         : ansible / reconciler = {a_noop / float(noop['seconds']):6.1f}x in-process, "  # type: ignore[arg-type]
                  f"{a_noop / noop_proc:6.1f}x fresh process (target >= 30x)")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
