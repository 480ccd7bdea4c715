"""`reconciler sim`: create, inspect and disturb a simulated cluster; run its tools from a shell."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import sys
from typing import TYPE_CHECKING, Any

from reconciler.names import UnsafeNameError, check_name
from reconciler.sizes import SizeError, format_size, parse_size

if TYPE_CHECKING:  # the simulator's state loads when an action runs, not for `reconciler sim --help`
    from reconciler.sim.state import SimCluster

DEFAULT_NODES = "erdbeere,himbeere"
DEFAULT_VGS = ("vg-sda:400G", "vg-sdb:400G", "vg-sdc:400G")
EXIT_USAGE = 2
# Simulated, but too common to shadow in a user's shell: reach them with `reconciler sim exec`.
GENERIC_PROGRAMS = frozenset({"true", "false", "git", "ssh", "ip", "uname", "systemctl", "tee"})


class SimCliError(Exception):
    """A usage problem: printed as ``reconciler sim: ...`` with exit 2."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sim", help="a simulated cluster (LVM, device-mapper, DRBD, Xen) for trying the reconciler",
        description="Create and drive a simulated cluster whose state lives in a directory. Other commands "
                    "act on one of its nodes with --sim DIR --node NAME.")
    sub = parser.add_subparsers(dest="sim_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: _usage(parser))

    init = sub.add_parser("init", help="create a cluster in DIR")
    init.add_argument("dir")
    init.add_argument("--nodes", default=DEFAULT_NODES, help=f"comma-separated node names (default {DEFAULT_NODES})")
    init.add_argument("--vg", action="append", metavar="NAME:SIZE[xCOUNT]",
                      help="a volume group on each node, of COUNT disks of SIZE (default 1; e.g. vg-data:100Gx3 for "
                           "lvm-striped VMs); repeatable; default: "
                           + ", ".join(DEFAULT_VGS) + ")")
    init.add_argument("--drbd", choices=("9", "8.4"), default="9", help="DRBD kernel module version (default 9)")
    init.add_argument("--memory", default="64G", help="host memory per node (default 64G)")
    init.add_argument("--address", action="append", metavar="NODE=IP",
                      help="a node's replication address (repeatable; default 192.168.2.N for the N-th node)")
    init.add_argument("--force", action="store_true", help="replace a cluster that already exists in DIR")
    init.set_defaults(func=_init)

    show = sub.add_parser("show", help="summarise the cluster")
    show.add_argument("dir")
    show.add_argument("--json", action="store_true", help="print the whole state as JSON")
    show.set_defaults(func=_show)

    fault = sub.add_parser("fault", help="inject a fault")
    fault.add_argument("dir")
    kinds = fault.add_subparsers(dest="fault_kind", metavar="KIND")
    fault.set_defaults(func=lambda args: _usage(fault))
    for kind, text in (("transient", "fail matching commands for a while (--count N or --rate R)"),
                       ("permanent", "fail every matching command"),
                       ("hang", "matching commands never answer (the caller's timeout passes)")):
        one = kinds.add_parser(kind, help=text)
        one.add_argument("--node", help="only on this node (default: every node)")
        one.add_argument("--match", metavar="WORDS", help='argv prefix, e.g. "drbdadm primary"')
        one.add_argument("--regex", help="pattern searched in the command line")
        if kind == "transient":
            one.add_argument("--count", type=int, help="fail the next N matching calls")
            one.add_argument("--rate", type=float, help="fail each matching call with this probability")
            one.add_argument("--seed", type=int, default=0, help="seed of the random draws (default 0)")
        if kind != "hang":
            one.add_argument("--exit", type=int, dest="exit_code", help="exit code (default: the tool's own)")
            one.add_argument("--message", help="stderr text (default: what the tool prints in that case)")
        one.set_defaults(func=_command_fault, kind=kind)
    for kind, text in (("crash", "the node stops (runtime state is lost; disks survive)"),
                       ("reboot", "crash and boot again with nothing running"),
                       ("boot", "boot a crashed node")):
        one = kinds.add_parser(kind, help=text)
        one.add_argument("node")
        one.set_defaults(func=_node_fault, kind=kind)
    part = kinds.add_parser("partition", help="cut the replication link between two nodes")
    part.add_argument("a")
    part.add_argument("b")
    part.add_argument("--management", action="store_true",
                      help="cut the management link too (peer status, fence-peer): a full partition")
    part.set_defaults(func=_partition)
    heal = kinds.add_parser("heal", help="reconnect two nodes (or every pair)")
    heal.add_argument("a", nargs="?")
    heal.add_argument("b", nargs="?")
    heal.set_defaults(func=_heal)
    disk = kinds.add_parser("disk-fail", help="fail the disk under a device (e.g. vg-sda/root100)")
    disk.add_argument("node")
    disk.add_argument("device")
    disk.set_defaults(func=_disk_fail)
    zombie = kinds.add_parser("zombie", help="a running domain dies but cannot be torn down ((null) in xl list)")
    zombie.add_argument("node")
    zombie.add_argument("domain")
    zombie.set_defaults(func=_zombie)
    undefined = kinds.add_parser("migrate-undefined", help="the next `xl migrate` from NODE fails in its final "
                                                          "handshake: the domain's state is undefined at both ends")
    undefined.add_argument("node")
    undefined.set_defaults(func=_migrate_undefined)
    finds = kinds.add_parser("verify-finds", help="the next online verify started on NODE finds SIZE out of sync "
                                                  "(the replicas differ there)")
    finds.add_argument("node")
    finds.add_argument("size", help="e.g. 4M")
    finds.set_defaults(func=_verify_finds)
    remove = kinds.add_parser("remove", help="remove one command fault by its id")
    remove.add_argument("id", type=int)
    remove.set_defaults(func=_remove_fault)

    clear = sub.add_parser("clear", help="remove every command fault and network cut")
    clear.add_argument("dir")
    clear.set_defaults(func=_clear)

    advance = sub.add_parser("advance", help="let simulated time pass (resyncs progress, domains write)")
    advance.add_argument("dir")
    advance.add_argument("seconds", type=float)
    advance.set_defaults(func=_advance)

    clock = sub.add_parser("clock", help="let simulated time follow wall time while daemons run (until Ctrl-C)",
                           description="Advance the cluster's simulated time by RATE simulated seconds per wall-clock "
                                       "second, so resyncs move in daemons started by hand. Run one per cluster.")
    clock.add_argument("dir")
    clock.add_argument("--rate", type=float, default=1.0, help="simulated seconds per wall second (default 1)")
    clock.add_argument("--for", dest="duration", type=float, metavar="S",
                       help="stop after S wall seconds (default: until interrupted)")
    clock.set_defaults(func=_clock)

    check = sub.add_parser("check", help="the data oracle's verdict (exit 1 on a violation)")
    check.add_argument("dir")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=_check)

    execute = sub.add_parser("exec", help="run one simulated tool on a node: exec DIR NODE -- PROGRAM ARGS...")
    execute.add_argument("dir")
    execute.add_argument("node")
    execute.add_argument("argv", nargs=argparse.REMAINDER)
    execute.add_argument("--timeout", type=float, default=60.0)
    execute.set_defaults(func=_exec)

    shims = sub.add_parser("shims", help="write wrappers (lvs, drbdadm, xl ...) for a node into OUTDIR")
    shims.add_argument("dir")
    shims.add_argument("node")
    shims.add_argument("outdir")
    shims.set_defaults(func=_shims)

    log = sub.add_parser("log", help="the commands run on the cluster")
    log.add_argument("dir")
    log.add_argument("--node")
    log.add_argument("--mutating", action="store_true", help="only commands that changed something")
    log.set_defaults(func=_log)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _cluster(args: argparse.Namespace) -> SimCluster:
    from reconciler.sim.state import SimCluster, load_modules  # noqa: PLC0415

    load_modules()
    cluster = SimCluster(os.path.abspath(args.dir))
    if not cluster.exists():
        raise SimCliError(f"no simulated cluster in {args.dir} (create one with `reconciler sim init {args.dir}`)")
    return cluster


def _guard(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        from reconciler.sim.faults import FaultError  # noqa: PLC0415

        try:
            result: int = fn(args)
        except (SimCliError, UnsafeNameError, SizeError, FaultError, OSError, ValueError) as exc:
            print(f"reconciler sim: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return result

    return run


MAX_PVS_PER_VG = 32


def _parse_vgs(specs: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """NAME:SIZE or NAME:SIZExCOUNT -> (size of each PV, number of PVs) per volume group."""
    vgs: dict[str, int] = {}
    counts: dict[str, int] = {}
    for spec in specs:
        name, colon, size = spec.partition(":")
        if not colon:
            raise SimCliError(f"--vg {spec!r}: expected NAME:SIZE or NAME:SIZExCOUNT, e.g. vg-sda:400G or "
                              "vg-data:100Gx3")
        check_name(name, "volume group")
        if name in vgs:
            raise SimCliError(f"--vg {name} given twice")
        size, times, count = size.lower().partition("x")
        if times and not (count.isdigit() and 1 <= int(count) <= MAX_PVS_PER_VG):
            raise SimCliError(f"--vg {spec!r}: the number of physical volumes after 'x' must be 1 to "
                              f"{MAX_PVS_PER_VG}")
        vgs[name] = parse_size(size)
        counts[name] = int(count) if times else 1
    return vgs, counts


@_guard
def _init(args: argparse.Namespace) -> int:
    from reconciler.sim.state import DOM0_MEMORY_MIB, SimCluster, load_modules  # noqa: PLC0415

    load_modules()
    nodes = [check_name(n.strip(), "node") for n in args.nodes.split(",") if n.strip()]
    if len(set(nodes)) != len(nodes):
        raise SimCliError(f"--nodes {args.nodes}: a node is named twice")
    vgs, pv_counts = _parse_vgs(args.vg or list(DEFAULT_VGS))
    directory = os.path.abspath(args.dir)
    if SimCluster(directory).exists():
        if not args.force:
            raise SimCliError(f"{args.dir} already holds a simulated cluster (use --force to replace it)")
    elif os.path.isdir(directory) and os.listdir(directory):
        # A simulated cluster next to other files (a desired-state checkout, a home directory) would
        # mix the simulator's state and lock files into them.
        raise SimCliError(f"{args.dir} is not empty and holds no simulated cluster; give a new or empty directory")
    memory_mib = parse_size(args.memory) // 1024**2
    if memory_mib <= DOM0_MEMORY_MIB:
        raise SimCliError(f"--memory {args.memory}: a node needs more than dom0's {DOM0_MEMORY_MIB // 1024}GiB")
    addresses: dict[str, str] = {}
    for spec in args.address or []:
        node, equals, address = spec.partition("=")
        if not equals or node not in nodes or not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+", address):
            raise SimCliError(f"--address {spec!r}: expected NODE=IP for one of {', '.join(nodes)}")
        addresses[node] = address
    SimCluster.init(directory, nodes, vgs, args.drbd, memory_mib=memory_mib, addresses=addresses,
                    pv_counts=pv_counts)
    shown = ", ".join(f"{n} ({format_size(s)})" if pv_counts[n] == 1 else f"{n} ({pv_counts[n]} x {format_size(s)})"
                      for n, s in vgs.items())
    print(f"simulated cluster in {directory}: nodes {', '.join(nodes)}; DRBD {args.drbd}; volume groups {shown}")
    print(f"try: reconciler observe --sim {shlex.quote(args.dir)} --node {nodes[0]}")
    return 0


@_guard
def _show(args: argparse.Namespace) -> int:
    state = _cluster(args).read()
    if args.json:
        json.dump(state, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    print(_summary(state))
    return 0


def _summary(state: dict[str, Any]) -> str:
    from reconciler.sim.dm import lv_devices  # noqa: PLC0415
    from reconciler.sim.lvm import vg_extent_count, vg_free_extents  # noqa: PLC0415

    lines = [f"time {float(state.get('time', 0.0)):.1f}s"]
    for node in sorted(state["nodes"]):
        ns = state["nodes"][node]
        lines.append(f"node {node}: {'up' if ns.get('up') else 'DOWN'} (DRBD {ns.get('drbd_version')}, "
                     f"boot {str(ns.get('boot_id', ''))[:8]})")
        for vg_name in sorted(ns["vgs"]):
            vg = ns["vgs"][vg_name]
            extent = int(vg["extent_size"])
            lvs = ", ".join(sorted(vg["lvs"])) or "no LVs"
            lines.append(f"  {vg_name}: {format_size(vg_extent_count(vg) * extent)}, "
                         f"{format_size(vg_free_extents(vg) * extent) if vg_free_extents(vg) else '0B'} free; {lvs}")
        own = sorted(set(ns["dm"]) - set(lv_devices(ns)))
        if own:
            lines.append(f"  dm: {', '.join(own)}")
        resources = ns.get("drbd", {}).get("resources", {})
        for name in sorted(resources):
            res = resources[name]
            role = res.get("role", "?") if isinstance(res, dict) else "?"
            lines.append(f"  drbd {name}: {role}")
        for name, dom in sorted(ns.get("domains", {}).items()):
            lines.append(f"  domain {name} (id {dom['domid']}, {dom['memory']} MiB, {dom.get('state')})")
        for mount in ns.get("mounts", []):
            lines.append(f"  mounted {mount['device']} on {mount['mountpoint']}")
    for key, what in (("cut", "replication link cut"), ("management_cut", "management link cut")):
        cuts = state.get("network", {}).get(key, [])
        if cuts:
            lines.append(f"{what}: " + ", ".join(f"{a}<->{b}" for a, b in cuts))
    for fault in state.get("faults", []):
        lines.append("fault " + _describe_fault(fault))
    return "\n".join(lines)


def _describe_fault(fault: dict[str, Any]) -> str:
    what = " ".join(fault["prefix"]) if fault.get("prefix") else f"/{fault.get('regex')}/"
    where = fault.get("node") or "every node"
    extra = ""
    if fault["kind"] == "transient":
        extra = f", {fault['count']} left" if fault.get("count") is not None else f", rate {fault.get('rate')}"
    return f"#{fault['id']}: {fault['kind']} on {where}: {what}{extra} (fired {fault.get('fired', 0)})"


@_guard
def _command_fault(args: argparse.Namespace) -> int:
    from reconciler.sim import faults  # noqa: PLC0415

    node = check_name(args.node, "node") if args.node else None
    prefix = shlex.split(args.match) if args.match else None
    with _cluster(args).transaction() as state:
        fault = faults.add_fault(
            state, args.kind, node=node, prefix=prefix, regex=args.regex,
            count=getattr(args, "count", None), rate=getattr(args, "rate", None), seed=getattr(args, "seed", 0),
            exit_code=getattr(args, "exit_code", None), message=getattr(args, "message", None))
    print("added fault " + _describe_fault(fault))
    return 0


@_guard
def _node_fault(args: argparse.Namespace) -> int:
    from reconciler.sim import faults  # noqa: PLC0415

    node = check_name(args.node, "node")
    with _cluster(args).transaction() as state:
        {"crash": faults.crash, "reboot": faults.reboot, "boot": faults.boot}[args.kind](state, node)
    print(f"{node}: {args.kind}")
    return 0


@_guard
def _partition(args: argparse.Namespace) -> int:
    from reconciler.sim import faults  # noqa: PLC0415

    with _cluster(args).transaction() as state:
        faults.partition(state, check_name(args.a, "node"), check_name(args.b, "node"), management=args.management)
    print(f"{'both links' if args.management else 'replication link'} cut between {args.a} and {args.b}")
    return 0


@_guard
def _heal(args: argparse.Namespace) -> int:
    from reconciler.sim import faults  # noqa: PLC0415

    if (args.a is None) != (args.b is None):
        raise SimCliError("heal takes two nodes or none")
    with _cluster(args).transaction() as state:
        faults.heal(state, args.a, args.b)
    print("network healed" + (f" between {args.a} and {args.b}" if args.a else ""))
    return 0


@_guard
def _disk_fail(args: argparse.Namespace) -> int:
    from reconciler.sim import faults  # noqa: PLC0415

    with _cluster(args).transaction() as state:
        key = faults.disk_fail(state, check_name(args.node, "node"), args.device)
    print(f"{args.node}: disk under {args.device} failed ({key})")
    return 0


@_guard
def _migrate_undefined(args: argparse.Namespace) -> int:
    from reconciler.sim import faults  # noqa: PLC0415

    with _cluster(args).transaction() as state:
        faults.migrate_undefined(state, check_name(args.node, "node"))
    print(f"{args.node}: the next xl migrate leaves NAME--migratedaway here and NAME--incoming at its target")
    return 0


@_guard
def _zombie(args: argparse.Namespace) -> int:
    from reconciler.sim import faults  # noqa: PLC0415

    with _cluster(args).transaction() as state:
        faults.zombie(state, check_name(args.node, "node"), args.domain)
    print(f"{args.node}: domain {args.domain} is dying and stays (null) until the node reboots")
    return 0


@_guard
def _verify_finds(args: argparse.Namespace) -> int:
    from reconciler.sim import drbd  # noqa: PLC0415
    from reconciler.sizes import parse_size  # noqa: PLC0415

    kib = max(1, parse_size(args.size) // 1024)
    with _cluster(args).transaction() as state:
        drbd.set_verify_finds(state, check_name(args.node, "node"), kib)
    print(f"{args.node}: the next online verify started there finds {kib} KiB out of sync")
    return 0


@_guard
def _remove_fault(args: argparse.Namespace) -> int:
    from reconciler.sim import faults  # noqa: PLC0415

    with _cluster(args).transaction() as state:
        removed = faults.remove_fault(state, args.id)
    if not removed:
        raise SimCliError(f"no fault #{args.id}")
    print(f"removed fault #{args.id}")
    return 0


@_guard
def _clear(args: argparse.Namespace) -> int:
    from reconciler.sim import faults  # noqa: PLC0415

    with _cluster(args).transaction() as state:
        faults.clear(state)
    print("cleared every command fault and network cut")
    return 0


@_guard
def _advance(args: argparse.Namespace) -> int:
    if not math.isfinite(args.seconds):
        raise SimCliError(f"advance needs a finite number of seconds, not {args.seconds}")
    if args.seconds < 0:
        raise SimCliError("time cannot go backwards")
    now = _cluster(args).advance(args.seconds)
    print(f"time {now:.1f}s")
    return 0


@_guard
def _clock(args: argparse.Namespace) -> int:
    import time  # noqa: PLC0415

    if not (math.isfinite(args.rate) and args.rate > 0):
        raise SimCliError(f"--rate must be a positive number, not {args.rate}")
    cluster = _cluster(args)
    print(f"simulated time in {args.dir} follows wall time x{args.rate:g}; Ctrl-C stops", flush=True)
    started = last = time.monotonic()
    now = 0.0
    while args.duration is None or last - started < args.duration:
        time.sleep(0.25)  # pacing, not synchronisation: each step advances by the wall time really elapsed
        current = time.monotonic()
        now = cluster.advance((current - last) * args.rate)
        last = current
    print(f"time {now:.1f}s")
    return 0


@_guard
def _check(args: argparse.Namespace) -> int:
    import importlib.util  # noqa: PLC0415

    cluster = _cluster(args)
    if importlib.util.find_spec("reconciler.sim.oracle") is None:
        raise SimCliError("this build has no data oracle")
    from reconciler.sim import oracle  # noqa: PLC0415

    with cluster.transaction() as state:
        violations = oracle.check(state)
        summary = oracle.summary(state)
    if args.json:
        json.dump({"ok": not violations, "violations": [str(v) for v in violations], "summary": summary},
                  sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        for violation in violations:
            print(f"VIOLATION {violation}")
        acked = summary.get("acknowledged", {})
        print(f"{'violations: ' + str(len(violations)) if violations else 'ok: no violation'}; acknowledged "
              f"writes: {sum(acked.values()) if acked else 0} over {len(acked)} resource(s)")
    return 1 if violations else 0


@_guard
def _exec(args: argparse.Namespace) -> int:
    from reconciler.sim.host import SimHost  # noqa: PLC0415

    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise SimCliError("exec needs a program: reconciler sim exec DIR NODE -- PROGRAM ARGS...")
    _cluster(args)
    host = SimHost(os.path.abspath(args.dir), check_name(args.node, "node"))
    from reconciler.sim.__main__ import stdin_text  # noqa: PLC0415  (the shim entry point's reader)

    stdin = stdin_text()
    result = host.run(argv, timeout=args.timeout, stdin=stdin)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


@_guard
def _shims(args: argparse.Namespace) -> int:
    from reconciler.sim.commands import known_programs  # noqa: PLC0415

    cluster = _cluster(args)
    node = check_name(args.node, "node")
    from reconciler.sim.state import node_state  # noqa: PLC0415

    node_state(cluster.read(), node)
    outdir = os.path.abspath(args.outdir)
    os.makedirs(outdir, exist_ok=True)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    written = []
    for program in known_programs():
        if program in GENERIC_PROGRAMS:
            continue
        path = os.path.join(outdir, program)
        script = (
            "#!/bin/sh\n"
            f"# {program} on simulated node {node} (cluster {cluster.directory})\n"
            f"PYTHONPATH={shlex.quote(root)}${{PYTHONPATH:+:$PYTHONPATH}} exec {shlex.quote(sys.executable)} "
            f"-m reconciler.sim {shlex.quote(cluster.directory)} {shlex.quote(node)} {program} \"$@\"\n"
        )
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(script)
        os.chmod(path, 0o755)  # noqa: S103  (an executable wrapper for the user)
        written.append(program)
    print(f"wrote {len(written)} wrappers for {node} into {outdir}: {' '.join(written)}")
    print(f'use them with: export PATH={shlex.quote(outdir)}:"$PATH"')
    return 0


@_guard
def _log(args: argparse.Namespace) -> int:
    for entry in _cluster(args).read_log():
        if args.node and entry.get("node") != args.node:
            continue
        if args.mutating and not entry.get("mutating"):
            continue
        mark = "*" if entry.get("mutating") else " "
        print(f"{float(entry.get('time', 0)):8.1f} {mark} {entry.get('node')}: {shlex.join(entry.get('argv', []))} "
              f"-> {entry.get('exit')}")
    return 0
