"""``scripts/lab``: set up, run scenarios, open a shell on a node, tear down."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from reconciler_lab import paths
from reconciler_lab.agent_client import AgentClient
from reconciler_lab.lab import down
from reconciler_lab.proc import LabError
from reconciler_lab.qemu import node_spec
from reconciler_lab.setup import setup

# Number -> test, in the order the tests run (the file's order). Every scenario starts from a converged
# cluster, which scenario 1 makes; the others find the roles from what DRBD shows, so any subset runs.
SCENARIOS = {
    "1": "test_1_bring_up",
    "2": "test_2_no_op_pass",
    "3": "test_3_growth_by_commit",
    "4": "test_4_planned_switchover",
    "6": "test_6_replication_link_cut",
    "7": "test_7_clean_reboot_of_the_primary",
    "9": "test_9_destructive_changes_are_refused",
    "5": "test_5_power_loss_of_the_primary",
    "11": "test_11_full_partition_with_power_fences",
    "8": "test_8_split_brain_made_by_hand",
    "10": "test_10_the_units_as_shipped",
    "12": "test_12_automatic_failover_on_power_loss",
    "15": "test_15_repeated_power_losses",
    "13": "test_13_takeover_of_a_hand_built_vm",
    "14": "test_14_the_runbook_on_the_lab_nodes",
    "16": "test_16_a_vm_installed_from_a_commit",
    "17": "test_17_live_migration",
}


def _known() -> str:
    return ", ".join(sorted(SCENARIOS, key=int))


def selector(chosen: list[str]) -> str:
    """pytest's ``-k`` expression for the chosen scenarios (all when none), with scenario 1 first."""
    wanted = set(chosen or SCENARIOS)
    unknown = sorted(wanted - set(SCENARIOS))
    if unknown:
        raise LabError(f"unknown scenario(s) {', '.join(unknown)}; known: {_known()}")
    return " or ".join(test for number, test in SCENARIOS.items() if number in wanted | {"1"})


def _run(args: argparse.Namespace) -> int:
    try:
        expression = selector(args.scenario)
    except LabError as exc:
        print(f"lab run: {exc}", file=sys.stderr)
        return 2
    env = {**os.environ, "RECONCILER_LAB": "1"}
    if args.out:
        env["RECONCILER_LAB_OUT"] = str(Path(args.out).resolve())
    if args.keep:
        env["RECONCILER_LAB_KEEP"] = "1"
    argv = [sys.executable, "-m", "pytest", "tests/lab", "-v", "-p", "no:cacheprovider", "-k", expression]
    print("lab run:", " ".join(argv), flush=True)
    return subprocess.run(argv, cwd=paths.PROJECT, env=env, check=False).returncode


def _shell(node: str) -> int:
    spec = node_spec(node)
    client = AgentClient(spec.name, paths.RUN / spec.name / "agent.sock")
    try:
        client.connect()
    except OSError as exc:
        raise LabError(f"{node} is not running (no agent at {paths.RUN / node / 'agent.sock'}): "
                       "start the lab with scripts/lab run --keep") from exc
    print(f"{node}: each line runs as `sh -c LINE` in the node's dom0 (Ctrl-D ends)", flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        result = client.run(["sh", "-c", line], timeout=600)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.rc:
            print(f"[exit {result.rc}]", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="install host tools, fetch and unpack the kernel and Xen, build the images")
    run = sub.add_parser("run", help="boot the two nodes and run scenarios (default: all implemented)")
    run.add_argument("scenario", nargs="*", help=f"scenario numbers: {_known()} (1 always runs first)")
    run.add_argument("--out", help="write consoles, QEMU command lines and node logs here")
    run.add_argument("--keep", action="store_true", help="leave the nodes running afterwards (scripts/lab down)")
    shell = sub.add_parser("shell", help="run commands in a running node's dom0")
    shell.add_argument("node")
    sub.add_parser("down", help="kill the lab's QEMU processes and remove its network namespace")
    args = parser.parse_args(argv)
    try:
        if args.command == "setup":
            stamp = setup()
            print(f"lab setup: ready in {paths.CACHE} (kernel {stamp['kernel_version']})")
            return 0
        if args.command == "run":
            return _run(args)
        if args.command == "shell":
            return _shell(args.node)
        down()
        return 0
    except LabError as exc:
        print(f"lab {args.command}: {exc}", file=sys.stderr)
        return 1
