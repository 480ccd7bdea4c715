"""Benchmark: load + validate a fleet of 10,000 VMs on 200 node pairs, expand one node, measure memory.

Run: .venv/bin/python benchmarks/bench_desired.py [--vms 10000] [--pairs 200]
The measurement runs in a fresh child process so that its peak RSS is the loader's own. A baseline in the
same run loads a sample of the files with ruamel.yaml's round-trip loader (the usual way to get line
numbers) and PyYAML's pure-Python composer, scaled to the fleet, and prints the ratios.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

CLUSTER_HEAD = """cluster: fleet
nodes:
"""
NODE = """  {name}:
    address: {address}
    volume_groups: [vg-sda, vg-sdb, vg-sdc]
    drbd_version: "9"
"""
CLUSTER_TAIL = """defaults:
  storage:
    layout: dm-striped
    volume_groups: [vg-sda, vg-sdb, vg-sdc]
    chunk_sectors: 64
  swap:
    size: 2G
  drbd:
    protocol: C
    degr_wfc_timeout: 120
    on_io_error: detach
    al_extents: 257
  safety:
    mechanism: fencing
    fencing_policy: resource-and-stonith
  domain:
    bootloader: pygrub
    bridge: xenbr0
guards:
  max_removals_per_revision: 1
"""
VM = """# VM {id}
id: {id}
nodes: [{a}, {b}]
primary: {primary}
storage:
  size: {size}G
{swap}drbd:
  minor: {minor}
  port: {port}
domain:
  memory: {memory}G
  maxmem: {maxmem}G
  vcpus: 2
  maxvcpus: 4
  vifs:
    - mac: "00:16:3e:{m1:02x}:{m2:02x}:{m3:02x}"
  live_migration: {migrate}
"""


def generate(directory: str, vms: int, pairs: int) -> None:
    os.makedirs(os.path.join(directory, "vms"))
    parts = [CLUSTER_HEAD]
    for pair in range(pairs):
        for side in (0, 1):
            n = 2 * pair + side
            parts.append(NODE.format(name=f"node{n:03d}", address=f"10.{n // 250}.{n % 250}.{1 + side}"))
    parts.append(CLUSTER_TAIL)
    with open(os.path.join(directory, "cluster.yaml"), "w", encoding="utf-8") as handle:
        handle.write("".join(parts))
    for i in range(vms):
        pair, slot = i % pairs, i // pairs
        a, b = f"node{2 * pair:03d}", f"node{2 * pair + 1:03d}"
        text = VM.format(id=1000 + i, a=a, b=b, primary=a if i % 2 else b, size=20 + i % 80, minor=slot,
                         port=7788 + slot, memory=1 + i % 4, maxmem=8, m1=(i >> 16) & 255, m2=(i >> 8) & 255,
                         m3=i & 255, migrate="true" if i % 3 == 0 else "false",
                         # Swap LVs stay on their node: a VM that moves live has none.
                         swap="swap:\n  volume_groups: []\n" if i % 3 == 0 else "")
        with open(os.path.join(directory, "vms", f"vm{1000 + i}.yaml"), "w", encoding="utf-8") as handle:
            handle.write(text)


def child(directory: str, sample: int) -> None:
    """Runs in a fresh interpreter: load, expand, and the baselines; prints one JSON line."""
    import yaml
    from ruamel.yaml import YAML

    from reconciler.desired.expand import expand_node
    from reconciler.desired.load import collect
    from reconciler.desired.render import render_node

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu = time.perf_counter(), time.process_time()
    cluster, issues = collect(directory)
    load_s, load_cpu_s = time.perf_counter() - start, time.process_time() - cpu
    if cluster is None:
        raise SystemExit(f"fleet is invalid: {issues[:3]}")
    # The loader pauses the cyclic garbage collector; its first pass over the new objects is deferred to
    # whatever runs next. Run it here, so that it is reported and does not land in the expansion figure.
    start = time.perf_counter()
    gc.collect()
    gc_s = time.perf_counter() - start
    expand_runs = []
    for _ in range(3):
        start = time.perf_counter()
        node = expand_node(cluster, "node000")
        expand_runs.append(time.perf_counter() - start)
    start = time.perf_counter()
    for name in cluster.nodes:
        expand_node(cluster, name)
    expand_all_s = time.perf_counter() - start
    start = time.perf_counter()
    files = render_node(node)
    render_s = time.perf_counter() - start
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Later loads in the same process (the daemon loads every new revision) and a less noisy figure.
    again = []
    for _ in range(2):
        start = time.perf_counter()
        collect(directory)
        again.append(time.perf_counter() - start)
        gc.collect()

    files_all = sorted(os.path.join("vms", name) for name in os.listdir(os.path.join(directory, "vms"))
                       if name.endswith((".yaml", ".yml")))[:sample]
    texts = []
    for rel in files_all:
        with open(os.path.join(directory, rel), encoding="utf-8") as handle:
            texts.append(handle.read())
    round_trip = YAML()
    start = time.perf_counter()
    for text in texts:
        round_trip.load(text)
    ruamel_s = (time.perf_counter() - start) * len(cluster.vms) / len(texts)
    start = time.perf_counter()
    for text in texts:
        yaml.compose(text, Loader=yaml.SafeLoader)
    pure_s = (time.perf_counter() - start) * len(cluster.vms) / len(texts)
    start = time.perf_counter()
    for text in texts:
        yaml.load(text, Loader=yaml.CSafeLoader)
    cload_s = (time.perf_counter() - start) * len(cluster.vms) / len(texts)
    print(json.dumps({
        "vms": len(cluster.vms), "nodes": len(cluster.nodes), "load_s": load_s, "load_cpu_s": load_cpu_s,
        "gc_s": gc_s, "reload_best_s": min(again),
        "expand_first_s": expand_runs[0], "expand_best_s": min(expand_runs), "expand_all_s": expand_all_s,
        "render_s": render_s, "node_vms": len(node.vms), "node_files": len(files),
        "rss_before_mib": rss_before / 1024, "rss_peak_mib": rss_peak / 1024,
        "ruamel_rt_parse_only_s": ruamel_s, "pyyaml_pure_compose_only_s": pure_s,
        "pyyaml_c_load_only_s": cload_s, "sample": len(texts),
    }))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--sample", type=int, default=300, help="files parsed by the baselines (then scaled)")
    parser.add_argument("--child", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.sample)
        return 0
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory(prefix="bench-desired-") as tmp:
        start = time.perf_counter()
        generate(tmp, args.vms, args.pairs)
        print(f"generated {args.vms} VMs on {args.pairs} node pairs in {time.perf_counter() - start:.1f} s")
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--child", tmp, "--sample", str(args.sample)],
            capture_output=True, text=True, check=True, timeout=600, cwd=project,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
    load_s = result["load_s"]
    print(f"validate (load) {result['vms']} VMs, {result['nodes']} nodes: {load_s:.2f} s wall, "
          f"{result['load_cpu_s']:.2f} s CPU  (target < 2 s)")
    print(f"validate again, files unchanged, same process (best of 2): {result['reload_best_s']:.2f} s wall")
    print(f"first garbage-collector pass after the load: {result['gc_s'] * 1000:.0f} ms (deferred by the loader)")
    print(f"expand one node ({result['node_vms']} VMs): first {result['expand_first_s'] * 1000:.1f} ms, "
          f"best of 3 {result['expand_best_s'] * 1000:.1f} ms; all {result['nodes']} nodes "
          f"{result['expand_all_s']:.2f} s")
    print(f"render one node ({result['node_files']} files): {result['render_s'] * 1000:.1f} ms")
    print(f"peak RSS of the loading process: {result['rss_peak_mib']:.0f} MiB "
          f"(after imports {result['rss_before_mib']:.0f} MiB; target < 300 MB)")
    print(f"machine load average while measuring: {os.getloadavg()[0]:.2f} (2 cores; other work inflates wall time)")
    print(f"baselines, parsing only, scaled from {result['sample']} files to the fleet:")
    for key, label in (("ruamel_rt_parse_only_s", "ruamel.yaml round-trip load"),
                       ("pyyaml_pure_compose_only_s", "PyYAML pure-Python compose"),
                       ("pyyaml_c_load_only_s", "PyYAML C load (no positions)")):
        print(f"  {label:32s} {result[key]:7.2f} s  = {result[key] / load_s:5.1f} x this loader's full validate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
