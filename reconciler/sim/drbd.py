"""The simulated ``drbdadm`` and ``drbdsetup`` and the ``/proc/drbd`` file.

Command lines are interpreted against :mod:`reconciler.sim.drbd_machine`; outputs come from
:mod:`reconciler.sim.drbd_output`. Each mutating command records the events2 lines it caused in the
node's event log (``state["nodes"][node]["drbd"]["events"]``), which :func:`events_since` serves to
readers that follow the stream.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.host.base import CommandResult
from reconciler.sim import drbd_machine as m
from reconciler.sim import drbd_output as out
from reconciler.sim import oracle
from reconciler.sim import state as simstate
from reconciler.sim.commands import CommandContext, command, virtual_file, virtual_file_pattern
from reconciler.sim.drbd_config import DrbdConfigError, ResourceConfig, load_files, node_config_files
from reconciler.sim.state import State

EXIT_USAGE = 1
EXIT_CONFIG = 10
EXIT_STATE_CHANGE = 17
EXIT_OTHER_STATE_CHANGE = 11
EXIT_NO_MODULE = 20
# drbdmeta's and drbdsetup's exit code for their own errors (usage, device busy, ...).
EXIT_TOOL = 20
EVENT_LOG_LIMIT = 1000
KERNEL_LOG_LIMIT = 500

# --- hooks into the rest of the simulator --------------------------------------------------------


def _tick(state: State, dt: float) -> None:
    before = _snapshot(state)
    m.settle(state)
    m.deliver_in_flight(state)
    oracle.write_tick(state, dt)
    m.resync_tick(state, dt)
    m.verify_tick(state, dt)
    m.settle(state)
    oracle.observe(state)
    _record_events(state, before)


def _on_reboot(state: State, node: str) -> None:
    before = _snapshot(state)
    m.drop_runtime(state, node)
    m.settle(state)
    _record_events(state, before)


def _on_disk_failure(state: State, node: str, key: str) -> None:
    before = _snapshot(state)
    m.settle(state)
    _record_events(state, before)


# ASCII digits only (str.isdigit and \d accept other scripts' digits and superscripts), no leading zero:
# the only names the device has.
_MINOR_PATH = re.compile(r"/dev/drbd(0|[1-9][0-9]*)")


def _resolve(state: State, node: str, path: str) -> str | None:
    """``/dev/drbdN`` shows the data area of the backing device (internal metadata stays hidden).

    A diskless node reads through a connected UpToDate peer. Before answering, what a Primary wrote is
    carried over to its replicating peers, so a filesystem made on one node is seen on the other.
    """
    named = _MINOR_PATH.fullmatch(path)
    if named is None:
        return None  # every other path reaches this resolver too: answer at once, not after a scan
    found = _device_of_minor(state, node, int(named.group(1)))
    if found is None:
        return None
    res, volume, dev = found
    m.replicate_signatures(state, res["name"])
    if dev.get("key") and m.is_diskful(dev):
        return str(dev["key"])
    for _, peer_res in m.connected_peers(state, node, res):
        peer_dev = peer_res["devices"].get(volume, {})
        if peer_dev.get("disk") == "UpToDate" and peer_dev.get("key"):
            return str(peer_dev["key"])
    return None


# minor -> (resource, volume) per node's resource map, so that resolving /dev/drbdN (for every holder when
# open counts are listed) is not a scan of every resource. A hit is checked against the state before it is
# used, and a miss scans and rebuilds, so a stale index costs time, never a wrong answer.
_MINORS: dict[tuple[int, str], dict[int, tuple[str, str]]] = {}


def _device_of_minor(state: State, node: str, minor: int) -> tuple[dict[str, Any], str, dict[str, Any]] | None:
    resources = m.resources(state, node)
    key = (id(resources), node)
    index = _MINORS.get(key)
    if index is not None and minor in index:
        name, volume = index[minor]
        res = resources.get(name)
        dev = res["devices"].get(volume) if res is not None else None
        if dev is not None and int(dev["minor"]) == minor:
            return res, volume, dev  # type: ignore[return-value]
    index = {}
    for name, res in resources.items():
        for volume, dev in res["devices"].items():
            index.setdefault(int(dev["minor"]), (name, volume))
    if len(_MINORS) > 64:
        _MINORS.clear()
    _MINORS[key] = index
    if minor not in index:
        return None
    name, volume = index[minor]
    return resources[name], volume, resources[name]["devices"][volume]


def _held(res: dict[str, Any]) -> list[str]:
    """Backing devices held open by the attached volumes of one DRBD resource."""
    return [str(dev["backing"]) for dev in res["devices"].values() if dev.get("key") and dev.get("backing")]


simstate.register_ticker(_tick)
simstate.register_reboot_hook(_on_reboot)
simstate.register_disk_failure_hook(_on_disk_failure)
simstate.register_device_resolver(_resolve)
simstate.register_holder_entries(("drbd", "resources"), _held)


def drbd_role_for_device(state: State, node: str, device: str) -> str | None:
    """Role of the DRBD resource owning ``device`` (``/dev/drbdN``) on ``node``; None when not up there."""
    return m.role_of_device(state, node, device)


def resource_for_device(state: State, node: str, device: str) -> str | None:
    return m.resource_of_device(state, node, device)


# --- the event log ----------------------------------------------------------------------------


def _snapshot(state: State, only: Collection[str] | None = None) -> dict[str, list[out.EventObject]]:
    """The event objects of every resource, or of the resources ``only`` (what one command may change)."""
    return {node: out.event_objects(state, node, only) for node in state["nodes"] if _loaded(state, node)}


def _record_events(state: State, before: dict[str, list[out.EventObject]],
                   only: Collection[str] | None = None) -> None:
    for node in state["nodes"]:
        if not _loaded(state, node):
            continue
        lines = out.event_changes(before.get(node, []), out.event_objects(state, node, only))
        lines += m.node_drbd(state, node).pop("helper_events", [])
        if lines:
            drbd = m.node_drbd(state, node)
            events: list[str] = drbd.setdefault("events", [])
            events.extend(lines)
            drbd["event_seq"] = int(drbd.get("event_seq", 0)) + len(lines)
            del events[:-EVENT_LOG_LIMIT]
        log = m.node_drbd(state, node).get("log")
        if log is not None:
            del log[:-KERNEL_LOG_LIMIT]


def events_since(state: State, node: str, seq: int) -> tuple[list[str], int]:
    """Change lines recorded on ``node`` after position ``seq`` and the position to ask from next time.

    Positions count every line ever recorded; the log keeps the last 1000, so a reader that fell
    further behind gets what is left (and should re-read the state with ``events2 --now``).
    """
    drbd = m.node_drbd(state, node)
    events: list[str] = drbd.get("events", [])
    total = int(drbd.get("event_seq", 0))
    first_kept = total - len(events)
    start = max(seq, first_kept) - first_kept
    return list(events[start:]), total


def kernel_log(state: State, node: str) -> list[str]:
    """What DRBD would have logged on ``node`` (fence-peer outcomes, split brain, detaches)."""
    return list(m.node_drbd(state, node).get("log", []))


def set_fence_peer(state: State, node: str, mode: str) -> None:
    """How the fence-peer handler of ``node`` answers: auto, outdate, fail, unreachable, stonith or stonith-always."""
    if mode not in ("auto", "outdate", "fail", "unreachable", "stonith", "stonith-always"):
        raise ValueError(f"unknown fence-peer behaviour {mode!r}")
    m.settings(state, node)["fence_peer"] = mode


def set_resync_rate(state: State, node: str, kib_per_second: int) -> None:
    m.settings(state, node)["resync_rate_kib"] = int(kib_per_second)


def _loaded(state: State, node: str) -> bool:
    ns = state["nodes"][node]
    return bool(ns.get("up")) and ns.get("drbd_version") in ("9", "8.4")


# --- argument handling --------------------------------------------------------------------------


@dataclass
class _Args:
    program: str
    dry_run: bool = False
    config_file: str | None = None
    force: bool = False
    discard_my_data: bool = False
    command: str = ""
    targets: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)


def _parse(argv: list[str]) -> _Args:
    args = _Args(program=argv[0])
    rest = argv[1:]
    index = 0
    while index < len(rest):
        word = rest[index]
        index += 1
        if word == "--":
            continue
        if word in ("-d", "--dry-run"):
            args.dry_run = True
        elif word in ("-c", "--config-file") and index < len(rest):
            args.config_file = rest[index]
            index += 1
        elif word.startswith("--config-file="):
            args.config_file = word.split("=", 1)[1]
        elif word in ("--force", "-f", "--overwrite-data-of-peer"):
            args.force = True
        elif word == "--discard-my-data":
            args.discard_my_data = True
        elif word.startswith("--") and "=" in word:
            key, value = word[2:].split("=", 1)
            args.options[key] = value
        elif word.startswith("-"):
            args.flags.append(word)
        elif not args.command:
            args.command = word
        else:
            args.targets.append(word)
    return args


def _setup_name(ctx: CommandContext) -> str:
    return "/lib/drbd/drbdsetup-84" if out.version(ctx.state, ctx.node) == "8.4" else "drbdsetup"


def _role_object(ctx: CommandContext, config: ResourceConfig) -> str:
    """drbdsetup 9 changes roles per resource; drbdsetup-84 takes the minor."""
    if out.version(ctx.state, ctx.node) != "8.4":
        return config.name
    host = config.host(ctx.node)
    return str(host.volumes[0].minor) if host is not None and host.volumes else config.name


def _configs(ctx: CommandContext, args: _Args) -> dict[str, ResourceConfig]:
    files = node_config_files(ctx.node_state["files"])
    if args.config_file is not None:
        path = args.config_file if args.config_file.startswith("/") else "/etc/drbd.d/" + args.config_file
        entry = ctx.node_state["files"].get(path)
        if entry is None:
            raise _Failure(EXIT_CONFIG, f"Can not open '{args.config_file}'.\n: No such file or directory\n")
        files = {path if path.endswith(".res") else path + ".res": str(entry["content"])}
    return load_files(files)


class _Failure(Exception):
    def __init__(self, code: int, stderr: str, stdout: str = "") -> None:
        super().__init__(stderr)
        self.code = code
        self.stderr = stderr
        self.stdout = stdout


def _targets(ctx: CommandContext, args: _Args, configs: dict[str, ResourceConfig]) -> list[ResourceConfig]:
    if not args.targets:
        raise _Failure(EXIT_USAGE, f"USAGE: {args.command} resource\n")
    names: list[str] = []
    for target in args.targets:
        name = target.split("/", 1)[0]
        if name == "all":
            names.extend(n for n, c in sorted(configs.items()) if c.host(ctx.node) is not None)
            continue
        config = configs.get(name)
        if config is None:
            raise _Failure(EXIT_USAGE, f"'{name}' not defined in your config.\n")
        if config.host(ctx.node) is None:
            raise _Failure(EXIT_USAGE, f"'{name}' not defined in your config (for this host).\n")
        names.append(name)
    return [configs[n] for n in names]


def _state_failure(ctx: CommandContext, res_name: str, exc: m.StateChangeFailed, setup_cmd: str,
                   extra: str = "") -> _Failure:
    prefix = res_name
    if out.version(ctx.state, ctx.node) == "8.4":
        res = m.runtime(ctx.state, ctx.node, res_name)
        minors = [d["minor"] for d in res["devices"].values()] if res else []
        prefix = str(minors[0]) if minors else res_name
    code = state_change_exit(exc.code)
    text = f"{prefix}: {exc}\n{extra}Command '{setup_cmd}' terminated with exit code {code}\n"
    return _Failure(code, text)


def state_change_exit(code: int) -> int:
    """drbdsetup's exit code for a refused state change (print_config_error)."""
    return {-2: EXIT_STATE_CHANGE, -16: 5, -4: 16}.get(code, EXIT_OTHER_STATE_CHANGE)


def _no_such_resource(ctx: CommandContext, name: str, setup_cmd: str) -> _Failure:
    return _Failure(EXIT_CONFIG, f"{name}: No such resource\nCommand '{setup_cmd}' terminated with exit code 10\n")


def _settle_recording(state: State, only: Collection[str] | None) -> None:
    """Settle before a read, recording what changed as events (as the kernel would have when it happened)."""
    before = _snapshot(state, only)
    m.settle(state, only)
    _record_events(state, before, only)


def _mutating(ctx: CommandContext, body: Callable[[], str], only: Collection[str] | None) -> CommandResult:
    """Run ``body``, a command on the resources ``only`` (None: it may touch any), settling and recording the
    events of those resources: a command's cost does not grow with the resources it leaves alone."""
    before = _snapshot(ctx.state, only)
    m.settle(ctx.state, only)
    oracle.observe(ctx.state)
    try:
        stdout = body()
    except _Failure as failure:
        m.settle(ctx.state, only)
        _record_events(ctx.state, before, only)
        return ctx.fail(failure.code, failure.stderr, failure.stdout)
    m.settle(ctx.state, only)
    oracle.observe(ctx.state)
    _record_events(ctx.state, before, only)
    return ctx.ok(stdout)


# --- drbdadm ------------------------------------------------------------------------------------

_DRBDADM_COMMANDS = ("create-md", "up", "down", "adjust", "primary", "secondary", "connect", "disconnect",
                     "outdate", "resize", "status", "net-options", "show-gi", "get-gi", "attach", "detach",
                     "dump", "sh-resources", "role", "cstate", "dstate", "resume-io", "invalidate", "verify")


@command("drbdadm")
def drbdadm(ctx: CommandContext, argv: list[str]) -> CommandResult:
    args = _parse(argv)
    if "--version" in args.flags or "-V" in args.flags:
        return ctx.ok(out.version_text(ctx.node_state.get("drbd_version")))
    if not _loaded(ctx.state, ctx.node):
        return ctx.fail(EXIT_NO_MODULE, "Failed to modprobe drbd (No such file or directory)\n")
    if args.command not in _DRBDADM_COMMANDS:
        return ctx.fail(EXIT_USAGE, f"{args.program}: Unknown command '{args.command}'\n")
    try:
        configs = _configs(ctx, args)
    except DrbdConfigError as exc:
        return ctx.fail(EXIT_CONFIG, f"{exc}\n")
    except _Failure as failure:
        return ctx.fail(failure.code, failure.stderr)
    if args.command == "status":
        return _adm_status(ctx, args)
    if args.command == "sh-resources":
        return ctx.ok(" ".join(n for n, c in sorted(configs.items()) if c.host(ctx.node)) + "\n")
    if args.command == "dump" and args.targets == ["all"]:
        ver = out.version(ctx.state, ctx.node)
        return ctx.ok("".join(out.dump_text(c, ctx.node, ver) for _, c in sorted(configs.items())))
    try:
        targets = _targets(ctx, args, configs)
    except _Failure as failure:
        return ctx.fail(failure.code, failure.stderr)
    if args.command in ("show-gi", "get-gi"):
        return _show_gi(ctx, args, targets)
    if args.command in ("role", "cstate", "dstate"):
        return _adm_query(ctx, args, targets)
    if args.command == "dump":
        ver = out.version(ctx.state, ctx.node)
        return ctx.ok("".join(out.dump_text(c, ctx.node, ver) for c in targets))
    if args.dry_run:
        lines: list[str] = []
        for config in targets:
            lines.extend(_dry_run(ctx, args, config))
        return ctx.ok("".join(line + "\n" for line in lines))
    handler = _ADM_HANDLERS[args.command]

    def body() -> str:
        stdout = ""
        for config in targets:
            stdout += handler(ctx, args, config)
        return stdout

    return _mutating(ctx, body, None if "all" in args.targets else {c.name for c in targets})


def _adm_status(ctx: CommandContext, args: _Args) -> CommandResult:
    names = [t.split("/", 1)[0] for t in args.targets if t != "all"]
    _settle_recording(ctx.state, names or None)
    for name in names:
        if m.runtime(ctx.state, ctx.node, name) is None:
            return ctx.fail(EXIT_CONFIG, f"{name}: No such resource\n"
                                         f"Command 'drbdsetup status {name}' terminated with exit code 10\n")
    if not names:
        return ctx.ok(out.status_text(ctx.state, ctx.node))
    return ctx.ok("".join(out.status_text(ctx.state, ctx.node, n) for n in names))


def _adm_query(ctx: CommandContext, args: _Args, targets: list[ResourceConfig]) -> CommandResult:
    lines = []
    for config in targets:
        res = m.runtime(ctx.state, ctx.node, config.name)
        if res is None:
            return ctx.fail(EXIT_CONFIG, f"{config.name}: No such resource\n")
        if args.command == "role":
            lines.append(str(res["role"]))
        elif args.command == "cstate":
            lines.extend(str(c["conn"]) for c in res["connections"].values())
        else:
            for volume, dev in res["devices"].items():
                peers = [out.peer_disk(ctx.state, res, p, volume) for p in sorted(res["connections"])]
                lines.append("/".join([str(dev["disk"]), *peers]))
    return ctx.ok("".join(line + "\n" for line in lines))


def _backing_key(ctx: CommandContext, config: ResourceConfig, volume_disk: str) -> str:
    key = ctx.resolve_device(volume_disk)
    if key is None:
        host = config.host(ctx.node)
        volume = next((v for v in host.volumes if v.disk == volume_disk), None) if host else None
        minor = volume.minor if volume is not None else 0
        meta = "v08" if out.version(ctx.state, ctx.node) == "8.4" else "v09"
        raise _Failure(EXIT_USAGE, f"open({volume_disk}) failed: No such file or directory\n"
                                   f"Command 'drbdmeta {minor} {meta} {volume_disk} internal apply-al' "
                                   "terminated with exit code 20\n")
    return key


def _md_missing(ctx: CommandContext, config: ResourceConfig, minor: int, disk: str) -> _Failure:
    meta = "v08" if out.version(ctx.state, ctx.node) == "8.4" else "v09"
    command_line = f"drbdmeta {minor} {meta} {disk} internal apply-al"
    return _Failure(EXIT_USAGE, f"No valid meta data found\nCommand '{command_line}' terminated with exit code 255\n")


def _adm_up(ctx: CommandContext, args: _Args, config: ResourceConfig) -> str:
    if m.runtime(ctx.state, ctx.node, config.name) is not None:
        host = config.host(ctx.node)
        node_id = f" {host.node_id}" if host and out.version(ctx.state, ctx.node) != "8.4" else ""
        raise _Failure(EXIT_CONFIG, f"{config.name}: Failure: (162) Invalid configuration request\n"
                                    "additional info from kernel:\nResource already exists\n"
                                    f"Command '{_setup_name(ctx)} new-resource {config.name}{node_id}' "
                                    "terminated with exit code 10\n")
    _bring_up(ctx, config)
    return ""


def _bring_up(ctx: CommandContext, config: ResourceConfig) -> dict[str, Any]:
    host = config.require_host(ctx.node)
    keys: dict[str, str] = {}
    for volume in host.volumes:
        if volume.disk is None:
            continue
        key = _backing_key(ctx, config, volume.disk)
        md = m.metadata(ctx.state, key)
        if md is None or md.get("resource") != config.name:
            raise _md_missing(ctx, config, volume.minor, volume.disk)
        keys[str(volume.number)] = key
    res = m.new_runtime(config, ctx.node)
    m.resources(ctx.state, ctx.node)[config.name] = res
    for volume_number, key in keys.items():
        m.attach(ctx.state, ctx.node, res, volume_number, key)
        if m.key_failed(ctx.state, key):
            m.detach(ctx.state, ctx.node, res, volume_number, failed=True)
    return res


def _adm_down(ctx: CommandContext, args: _Args, config: ResourceConfig) -> str:
    try:
        m.down(ctx.state, ctx.node, config.name)
    except m.StateChangeFailed as exc:
        raise _state_failure(ctx, config.name, exc, f"{_setup_name(ctx)} down {config.name}") from None
    return ""


def _runtime_or_fail(ctx: CommandContext, config: ResourceConfig, setup_cmd: str) -> dict[str, Any]:
    res = m.runtime(ctx.state, ctx.node, config.name)
    if res is None:
        raise _no_such_resource(ctx, config.name, setup_cmd)
    return res


def _adm_primary(ctx: CommandContext, args: _Args, config: ResourceConfig) -> str:
    cmd = f"{_setup_name(ctx)} primary {_role_object(ctx, config)}" + (" --force" if args.force else "")
    _runtime_or_fail(ctx, config, cmd)
    try:
        log = m.primary(ctx.state, ctx.node, config.name, force=args.force)
    except m.StateChangeFailed as exc:
        raise _state_failure(ctx, config.name, exc, cmd) from None
    m.node_drbd(ctx.state, ctx.node).setdefault("log", []).extend(log)
    return ""


def _adm_secondary(ctx: CommandContext, args: _Args, config: ResourceConfig) -> str:
    cmd = f"{_setup_name(ctx)} secondary {_role_object(ctx, config)}"
    _runtime_or_fail(ctx, config, cmd)
    if args.force and out.version(ctx.state, ctx.node) != "9":
        raise _Failure(EXIT_USAGE, f"{_setup_name(ctx)} secondary: unrecognized option '--force'\n")
    try:
        m.secondary(ctx.state, ctx.node, config.name, force=args.force)
    except m.StateChangeFailed as exc:
        raise _state_failure(ctx, config.name, exc, cmd) from None
    return ""


def _peer_ids(config: ResourceConfig, node: str) -> list[tuple[str, int]]:
    return [(h.name, h.node_id) for h in config.hosts if h.name != node]


def _adm_connect(ctx: CommandContext, args: _Args, config: ResourceConfig) -> str:
    res = _runtime_or_fail(ctx, config, f"{_setup_name(ctx)} connect {config.name}")
    busy = [p for p, c in res["connections"].items() if c["conn"] != "StandAlone"]
    first_id = next(iter(res["connections"].values()))["node_id"] if res["connections"] else 0
    command_line = f"{_setup_name(ctx)} connect {config.name} {first_id}"
    if args.discard_my_data and res["role"] == m.PRIMARY:
        raise _Failure(EXIT_CONFIG, f"{config.name}: Failure: (123) --discard-my-data not allowed when primary.\n"
                                    f"Command '{command_line} --discard-my-data' terminated with exit code 10\n")
    if busy and len(busy) == len(res["connections"]):
        raise _Failure(EXIT_CONFIG, f"{config.name}: Failure: (125) Device has a net-config (use disconnect first)\n"
                                    f"Command '{command_line}' terminated with exit code 10\n")
    m.connect(ctx.state, ctx.node, config.name, discard_my_data=args.discard_my_data)
    return ""


def _adm_disconnect(ctx: CommandContext, args: _Args, config: ResourceConfig) -> str:
    res = _runtime_or_fail(ctx, config, f"{_setup_name(ctx)} disconnect {config.name}")
    standalone = all(c["conn"] == "StandAlone" for c in res["connections"].values())
    if standalone and out.version(ctx.state, ctx.node) == "8.4":
        # DRBD 8.4 keeps no connection object while StandAlone (real 8.4.11 in the lab, scenario 8).
        me = config.host(ctx.node)
        peer = next((h for h in config.hosts if h.name != ctx.node), None)
        ends = " ".join(f"{h.family}:{h.address}:{h.port}" for h in (me, peer) if h is not None)
        raise _Failure(EXIT_CONFIG, "??: Failure: (162) Invalid configuration request\nadditional info from kernel:\n"
                                    "unknown connection\n"
                                    f"Command 'drbdsetup-84 disconnect {ends}' terminated with exit code 10\n")
    m.disconnect(ctx.state, ctx.node, config.name)
    return ""


def _adm_outdate(ctx: CommandContext, args: _Args, config: ResourceConfig) -> str:
    res = m.runtime(ctx.state, ctx.node, config.name)
    if res is None:
        # Offline: drbdmeta marks the metadata itself.
        host = config.require_host(ctx.node)
        for volume in host.volumes:
            if volume.disk is None:
                continue
            md = m.metadata(ctx.state, _backing_key(ctx, config, volume.disk))
            if md is None:
                raise _md_missing(ctx, config, volume.minor, volume.disk)
            if md["flags"]["consistent"]:
                md["flags"]["was_uptodate"] = False
        return ""
    try:
        m.outdate(ctx.state, ctx.node, config.name)
    except m.StateChangeFailed as exc:
        minor = next(iter(res["devices"].values()))["minor"]
        raise _state_failure(ctx, config.name, exc, f"{_setup_name(ctx)} outdate {minor}") from None
    return ""


def _adm_invalidate(ctx: CommandContext, args: _Args, config: ResourceConfig) -> str:
    res = _runtime_or_fail(ctx, config, f"{_setup_name(ctx)} invalidate {config.name}")
    try:
        m.invalidate(ctx.state, ctx.node, config.name)
    except m.StateChangeFailed as exc:
        minor = next(iter(res["devices"].values()))["minor"]
        raise _state_failure(ctx, config.name, exc, f"{_setup_name(ctx)} invalidate {minor}") from None
    return ""


def _adm_verify(ctx: CommandContext, args: _Args, config: ResourceConfig) -> str:
    res = _runtime_or_fail(ctx, config, f"{_setup_name(ctx)} verify {config.name}")
    try:
        m.start_verify(ctx.state, ctx.node, config.name)
    except m.StateChangeFailed as exc:
        minor = next(iter(res["devices"].values()))["minor"]
        peer_id = next(iter(res["connections"].values()))["node_id"] if res["connections"] else 0
        command = f"{_setup_name(ctx)} verify {minor}" if out.version(ctx.state, ctx.node) == "8.4" else (
            f"{_setup_name(ctx)} verify {config.name} {peer_id} 0")
        raise _state_failure(ctx, config.name, exc, command) from None
    return ""


def set_verify_finds(state: State, node: str, kib: int) -> None:
    """The next verify started on ``node`` finds ``kib`` out of sync."""
    m.set_verify_finds(state, node, kib)


def _adm_resume_io(ctx: CommandContext, args: _Args, config: ResourceConfig) -> str:
    _runtime_or_fail(ctx, config, f"{_setup_name(ctx)} resume-io {config.name}")
    m.resume_io(ctx.state, ctx.node, config.name)
    return ""


def _adm_detach(ctx: CommandContext, args: _Args, config: ResourceConfig) -> str:
    res = _runtime_or_fail(ctx, config, f"{_setup_name(ctx)} detach {config.name}")
    for volume in res["devices"]:
        m.detach(ctx.state, ctx.node, res, volume)
    return ""


def _adm_attach(ctx: CommandContext, args: _Args, config: ResourceConfig) -> str:
    res = _runtime_or_fail(ctx, config, f"{_setup_name(ctx)} attach {config.name}")
    host = config.require_host(ctx.node)
    for volume in host.volumes:
        dev = res["devices"].get(str(volume.number))
        if dev is None or volume.disk is None or dev["disk"] != "Diskless":
            continue
        key = _backing_key(ctx, config, volume.disk)
        if m.metadata(ctx.state, key) is None:
            raise _md_missing(ctx, config, volume.minor, volume.disk)
        m.attach(ctx.state, ctx.node, res, str(volume.number), key)
    return ""


def _adm_net_options(ctx: CommandContext, args: _Args, config: ResourceConfig) -> str:
    res = _runtime_or_fail(ctx, config, f"{_setup_name(ctx)} net-options {config.name}")
    peers = list(m.connected_peers(ctx.state, ctx.node, res))
    if args.options.get("allow-two-primaries") == "no" and res["role"] == m.PRIMARY and any(
            p["role"] == m.PRIMARY for _, p in peers):
        # drbd_nl.c check_net_options: ERR_NEED_ALLOW_TWO_PRI (drbdsetup's text, code 164)
        raise _Failure(EXIT_CONFIG, f"{config.name}: Failure: (164) Can not clear allow_two_primaries as long as\n"
                       "there a primaries on both sides\nadditional info from kernel:\nfailed\n")
    current = dict(res["config"]["sections"].get("net", {}))
    for key, value in args.options.items():
        current[key] = value
    for flag in args.flags:
        if flag.startswith("--"):
            current[flag[2:]] = "yes"
    res["config"]["sections"]["net"] = current
    if "allow-two-primaries" in args.options:
        # Marked for the oracle: an allowance opened at run time is a live migration's window; one written in
        # the file is not (and is never the reconciler's).
        res["window"] = args.options["allow-two-primaries"] == "yes"
        # drbd_adm_net_opts sends the connection's protocol settings to the peer (P_PROTOCOL_UPDATE), whose
        # receive_protocol adopts two_primaries: the connected peer's allowance changes with this one.
        for _peer, peer_res in peers:
            net = dict(peer_res["config"]["sections"].get("net", {}))
            net["allow-two-primaries"] = args.options["allow-two-primaries"]
            peer_res["config"]["sections"]["net"] = net
            peer_res["window"] = res["window"]
    return ""


def _adm_resize(ctx: CommandContext, args: _Args, config: ResourceConfig) -> str:
    res = _runtime_or_fail(ctx, config, f"{_setup_name(ctx)} resize {config.name}")
    for volume, dev in res["devices"].items():
        md = m.device_md(ctx.state, dev)
        if md is None or not dev.get("backing"):
            continue
        size = simstate.device_size(ctx.state, ctx.node, str(dev["backing"]))
        if size is None:
            continue
        new_kib = m.usable_kib(size, int(md["max_peers"]))
        for peer, peer_res in m.connected_peers(ctx.state, ctx.node, res):
            peer_dev = peer_res["devices"].get(volume)
            peer_md = m.device_md(ctx.state, peer_dev) if peer_dev else None
            if peer_dev is not None and peer_md is not None and peer_dev.get("backing"):
                peer_size = simstate.device_size(ctx.state, peer, str(peer_dev["backing"]))
                if peer_size is not None:
                    new_kib = min(new_kib, m.usable_kib(peer_size, int(peer_md["max_peers"])))
        if new_kib > int(dev["size_kib"]):
            for _node, holder in [(ctx.node, res), *m.connected_peers(ctx.state, ctx.node, res)]:
                holder_dev = holder["devices"].get(volume)
                holder_md = m.device_md(ctx.state, holder_dev) if holder_dev else None
                if holder_dev is not None and holder_md is not None:
                    holder_dev["size_kib"] = new_kib
                    holder_md["size_kib"] = new_kib
    return ""


def _adm_create_md(ctx: CommandContext, args: _Args, config: ResourceConfig) -> str:
    host = config.require_host(ctx.node)
    ver = out.version(ctx.state, ctx.node)
    meta = "v08" if ver == "8.4" else "v09"
    running = m.runtime(ctx.state, ctx.node, config.name)
    if running is not None and any(d["disk"] != "Diskless" for d in running["devices"].values()):
        minor = host.volumes[0].minor
        raise _Failure(EXIT_TOOL, f"Device '{minor}' is configured!\n"
                                  f"Command '{out.create_md_command(config, ctx.node, 0, ver)}' "
                                  "terminated with exit code 20\n")
    stdout = ""
    for volume in host.volumes:
        if volume.disk is None:
            continue
        key = _backing_key(ctx, config, volume.disk)
        record = ctx.content(key)
        size = simstate.device_size(ctx.state, ctx.node, volume.disk) or 0
        cmd = out.create_md_command(config, ctx.node, volume.number, ver)
        existing = record.get("drbd_md")
        signature = record.get("signature") or {}
        if existing is not None:
            offset = size - 4096
            stdout += (f"You want me to create a {meta} style flexible-size internal meta data block.\n"
                       f"There appears to be a {existing.get('version', meta)} flexible-size internal meta data block\n"
                       f"already in place on {volume.disk} at byte offset {offset}\n\n")
            if not _confirmed(ctx, args, "Do you really want to overwrite the existing meta-data?"):
                stdout += "Do you really want to overwrite the existing meta-data?\n[need to type 'yes' to confirm] \n"
                raise _Failure(EXIT_USAGE, f"Command '{cmd}' terminated with exit code 20\n", stdout
                               + "Operation canceled.\n")
            stdout += _confirm_text(ctx, args, "Do you really want to overwrite the existing meta-data?")
        elif signature.get("type") and signature.get("type") != "drbd":
            used = size // 1024
            usable = m.usable_kib(size, max(1, len(config.hosts) - 1))
            bm_offset = usable * 1024
            text = (f"md_offset {size - 4096}\nal_offset {size - 4096 - 32768}\nbm_offset {bm_offset}\n\n"
                    f"Found {signature['type']} filesystem\n{used:12d} kB data area apparently used\n"
                    f"{usable:12d} kB left usable by current configuration\n\n"
                    "Device size would be truncated, which\nwould corrupt data and result in\n"
                    "'access beyond end of device' errors.\nYou need to either\n"
                    "   * use external meta data (recommended)\n   * shrink that filesystem first\n"
                    "   * zero out the device (destroy the filesystem)\nOperation refused.\n\n")
            # drbdmeta refuses to truncate a filesystem even with --force.
            raise _Failure(40, f"Command '{cmd}' terminated with exit code 40\n", text)
        md = m.new_metadata(config, ctx.node, size, meta)
        md["device_uuid"] = f"{m.new_uuid(ctx.state, ctx.node, key):016X}"
        record["drbd_md"] = md
        record["drbd_writes"] = []
        bitmap_kib = max(4, -(-(size // 1024) // (32 * 1024)))
        stdout += ("initializing activity log\n"
                   f"initializing bitmap ({bitmap_kib} KB) to all zero\n"
                   "Writing meta data...\nNew drbd meta data block successfully created.\n")
    return stdout


def _confirmed(ctx: CommandContext, args: _Args, question: str) -> bool:
    if args.force or "--yes" in args.flags:
        return True
    return (ctx.stdin or "").strip().splitlines()[:1] == ["yes"]


def _confirm_text(ctx: CommandContext, args: _Args, question: str) -> str:
    if args.force:
        return f"\n{question}\n*** confirmation forced via --force option ***\n"
    return f"\n{question}\n[need to type 'yes' to confirm] \n"


def _adm_adjust(ctx: CommandContext, args: _Args, config: ResourceConfig) -> str:
    res = m.runtime(ctx.state, ctx.node, config.name)
    if res is None:
        _bring_up(ctx, config)
        return ""
    for step in _adjust_steps(ctx, config, res):
        step.apply()
    res["config"] = config.to_json()
    return ""


# The kernel's values of options a file leaves out: writing them explicitly changes nothing, and drbdadm
# adjust (which compares with what the kernel reports) passes nothing for them.
_KERNEL_DEFAULTS = {"protocol": "C", "after-sb-0pri": "disconnect", "after-sb-1pri": "disconnect",
                    "after-sb-2pri": "disconnect", "allow-two-primaries": "no", "fencing": "dont-care",
                    "auto-promote": "yes"}


def _changed(wanted: Mapping[str, str], running: Mapping[str, str]) -> dict[str, str]:
    """Options whose value differs (drbdadm adjust passes only those to drbdsetup)."""
    return {k: v for k, v in wanted.items() if running.get(k, _KERNEL_DEFAULTS.get(k)) != v}


def _nothing() -> None:
    """Steps that change only kernel options the simulation does not model."""


@dataclass
class _Step:
    line: str
    apply: Callable[[], None]


def _adjust_steps(ctx: CommandContext, config: ResourceConfig, res: dict[str, Any]) -> list[_Step]:
    setup = _setup_name(ctx)
    ver = out.version(ctx.state, ctx.node)
    running = m.config_of(res)
    steps: list[_Step] = []
    host = config.require_host(ctx.node)
    resource_changes = _changed(config.sections.get("options", {}), running.sections.get("options", {}))
    if resource_changes:
        opts = " ".join(out.options_args(resource_changes))
        steps.append(_Step(f"{setup} resource-options {config.name} {opts}".rstrip(), _nothing))
    for volume in host.volumes:
        dev = res["devices"].get(str(volume.number))
        if dev is None:
            continue
        disk_changes = _changed(config.sections.get("disk", {}), running.sections.get("disk", {}))
        if disk_changes:
            opts = " ".join(out.options_args(disk_changes))
            steps.append(_Step(f"{setup} disk-options {volume.minor} {opts}".rstrip(), _nothing))
        if volume.disk is not None and dev["disk"] == "Diskless":
            meta = "v08" if ver == "8.4" else "v09"
            disk_opts = " ".join(out.options_args(config.sections.get("disk", {})))

            def attach(volume_number: str = str(volume.number), disk: str = volume.disk,
                       minor: int = volume.minor) -> None:
                key = _backing_key(ctx, config, disk)
                if m.metadata(ctx.state, key) is None:
                    raise _md_missing(ctx, config, minor, disk)
                if m.key_failed(ctx.state, key):
                    # The kernel reads the metadata first; a failed disk answers with I/O errors and stays detached.
                    raise _Failure(EXIT_CONFIG, f"{minor}: Failure: (118) IO error(s) occurred during initial access "
                                                f"to meta-data.\n\nCommand '{setup} attach {minor} {disk} {disk} "
                                                f"internal' terminated with exit code 10\n")
                res["devices"][volume_number]["backing"] = disk
                m.attach(ctx.state, ctx.node, res, volume_number, key)

            steps.append(_Step(f"drbdmeta {volume.minor} {meta} {volume.disk} {volume.meta_disk} apply-al",
                               _nothing))
            steps.append(_Step(f"{setup} attach {volume.minor} {volume.disk} {volume.disk} {volume.meta_disk} "
                               f"{disk_opts}".rstrip(), attach))
    for peer_name, peer_id in _peer_ids(config, ctx.node):
        conn = res["connections"].get(peer_name)
        if conn is None:
            steps.append(_Step(f"{setup} new-peer {config.name} {peer_id} --_name={peer_name} "
                               f"--protocol={config.protocol}", _nothing))
            continue
        net = _changed(config.sections.get("net", {}), running.sections.get("net", {}))
        if net:
            opts = " ".join(out.options_args(net))
            steps.append(_Step(f"{setup} net-options {config.name} {peer_id} {opts}".rstrip(), _nothing))
        if conn["conn"] == "StandAlone":
            def reconnect(p: str = peer_name) -> None:
                m.connect(ctx.state, ctx.node, config.name, p)

            steps.append(_Step(f"{setup} connect {config.name} {peer_id}", reconnect))
    new_peers = [(n, i) for n, i in _peer_ids(config, ctx.node) if n not in res["connections"]]
    if new_peers:
        def add_peers() -> None:
            fresh = m.new_runtime(config, ctx.node)
            for name, _ in new_peers:
                res["connections"][name] = fresh["connections"][name]
        steps.append(_Step(f"{setup} connect {config.name} {new_peers[0][1]}", add_peers))
    for peer_name in sorted(set(res["connections"]) - {n for n, _ in _peer_ids(config, ctx.node)}):
        peer_id = res["connections"][peer_name]["node_id"]

        def remove(p: str = peer_name) -> None:
            m.disconnect(ctx.state, ctx.node, config.name, p)
            del res["connections"][p]

        steps.append(_Step(f"{setup} del-peer {config.name} {peer_id}", remove))
    return steps


def _dry_run(ctx: CommandContext, args: _Args, config: ResourceConfig) -> list[str]:
    ver = out.version(ctx.state, ctx.node)
    setup = _setup_name(ctx)
    res = m.runtime(ctx.state, ctx.node, config.name)
    command_name = args.command
    if command_name == "up" or (command_name == "adjust" and res is None):
        return out.up_commands(config, ctx.node, ver)
    if command_name == "adjust" and res is not None:
        return [step.line for step in _adjust_steps(ctx, config, res)]
    if command_name == "create-md":
        host = config.require_host(ctx.node)
        return [out.create_md_command(config, ctx.node, v.number, ver) for v in host.volumes if v.disk]
    if command_name == "primary":
        return [f"{setup} primary {_role_object(ctx, config)}" + (" --force" if args.force else "")]
    if command_name in ("connect", "disconnect"):
        extra = " --discard-my-data" if args.discard_my_data else ""
        return [f"{setup} {command_name} {config.name} {pid}{extra}" for _, pid in _peer_ids(config, ctx.node)]
    if command_name == "net-options":
        opts = " ".join(f"--{k}={v}" for k, v in args.options.items())
        return [f"{setup} net-options {config.name} {pid} {opts}".rstrip() for _, pid in _peer_ids(config, ctx.node)]
    return [f"{setup} {command_name} {config.name}"]


def _show_gi(ctx: CommandContext, args: _Args, targets: list[ResourceConfig]) -> CommandResult:
    ver = out.version(ctx.state, ctx.node)
    text = ""
    for config in targets:
        host = config.require_host(ctx.node)
        for volume in host.volumes:
            if volume.disk is None:
                continue
            key = ctx.resolve_device(volume.disk)
            md = m.metadata(ctx.state, key)
            if md is None:
                failure = _md_missing(ctx, config, volume.minor, volume.disk)
                return ctx.fail(failure.code, failure.stderr)
            for _, peer_id in _peer_ids(config, ctx.node):
                if args.command == "get-gi":
                    text += out.gi_line(md, peer_id, ver) + "\n"
                else:
                    text += out.show_gi(md, peer_id, ver)
    return ctx.ok(text)


_ADM_HANDLERS: dict[str, Callable[[CommandContext, _Args, ResourceConfig], str]] = {
    "create-md": _adm_create_md,
    "up": _adm_up,
    "down": _adm_down,
    "adjust": _adm_adjust,
    "primary": _adm_primary,
    "secondary": _adm_secondary,
    "connect": _adm_connect,
    "disconnect": _adm_disconnect,
    "outdate": _adm_outdate,
    "resize": _adm_resize,
    "net-options": _adm_net_options,
    "attach": _adm_attach,
    "detach": _adm_detach,
    "resume-io": _adm_resume_io,
    "invalidate": _adm_invalidate,
    "verify": _adm_verify,
}


# --- drbdsetup and /proc/drbd -----------------------------------------------------------------


@command("drbdsetup", "drbdsetup-84")
def drbdsetup(ctx: CommandContext, argv: list[str]) -> CommandResult:
    args = _parse(argv)
    ver = ctx.node_state.get("drbd_version")
    if "--version" in args.flags or "-V" in args.flags:
        return ctx.ok(out.version_text(ver).replace("DRBDADM_", "DRBDSETUP_"))
    if ver not in ("9", "8.4"):
        return ctx.fail(EXIT_NO_MODULE, "Failed to modprobe drbd (No such file or directory)\n")
    if ver == "8.4" and args.command == "status" and "--json" in args.flags:
        # drbdsetup-84 knows "status" but not its --json option (getopt names the command).
        return ctx.fail(EXIT_NO_MODULE, "status: unrecognized option '--json'\n")
    name = args.targets[0] if args.targets and args.targets[0] != "all" else None
    if args.command == "status":
        _settle_recording(ctx.state, None if name is None else (name,))
        if name is not None and m.runtime(ctx.state, ctx.node, name) is None:
            return ctx.fail(EXIT_CONFIG, f"{name}: No such resource\n")
        if "--json" in args.flags or args.options.get("json") == "yes":
            return ctx.ok(out.status_json(ctx.state, ctx.node, name))
        return ctx.ok(out.status_text(ctx.state, ctx.node, name))
    if args.command == "show":
        if name is not None and m.runtime(ctx.state, ctx.node, name) is None:
            return ctx.fail(EXIT_CONFIG, f"{name}: No such resource\n")
        return ctx.ok(out.show_text(ctx.state, ctx.node, name))
    if args.command == "events2":
        before = _snapshot(ctx.state)
        m.settle(ctx.state)
        _record_events(ctx.state, before)
        statistics = "--statistics" in args.flags or "-s" in args.flags
        # Without --now a real drbdsetup keeps streaming; one call here returns the initial state and
        # ends, and followers poll events_since() for the changes.
        return ctx.ok(out.events_now(ctx.state, ctx.node, statistics))
    if args.command in ("primary", "secondary", "down", "connect", "disconnect") and name is not None:
        configs = {}
        res = m.runtime(ctx.state, ctx.node, name)
        if res is None:
            return ctx.fail(EXIT_CONFIG, f"{name}: No such resource\n")
        configs[name] = m.config_of(res)
        adm_args = _Args(program="drbdadm", force=args.force, discard_my_data=args.discard_my_data,
                         command=args.command, targets=[name])
        handler = _ADM_HANDLERS[args.command]
        return _mutating(ctx, lambda: handler(ctx, adm_args, configs[name]), (name,))
    return ctx.fail(EXIT_TOOL, f"{args.program}: Unknown command '{args.command}'\n")


@virtual_file_pattern(r"/sys/devices/virtual/block/drbd(\d+)/size")
def sysfs_size(ctx: CommandContext, found: re.Match[str]) -> str | None:
    """The device's size in 512-byte sectors, while its minor exists (as the kernel's sysfs shows it)."""
    if ctx.node_state.get("drbd_version") not in ("9", "8.4"):
        return None
    m.settle(ctx.state)
    minor = int(found.group(1))
    for res in m.resources(ctx.state, ctx.node).values():
        for dev in res["devices"].values():
            if int(dev["minor"]) == minor:
                return f"{int(dev['size_kib']) * 2}\n"
    return None


@virtual_file("/proc/drbd")
def proc_drbd(ctx: CommandContext) -> str | None:
    if ctx.node_state.get("drbd_version") not in ("9", "8.4"):
        return None
    if ctx.node_state.get("drbd_version") == "8.4":  # DRBD 9's /proc/drbd shows the version only
        m.settle(ctx.state)
    return out.proc_drbd(ctx.state, ctx.node)


@virtual_file("/sys/module/drbd/parameters/usermode_helper")
def usermode_helper(ctx: CommandContext) -> str | None:
    """The module parameter, as sysfs prints it; a fault may set it (``drbd_usermode_helper`` in the node state)."""
    if ctx.node_state.get("drbd_version") not in ("9", "8.4"):
        return None
    return f"{ctx.node_state.get('drbd_usermode_helper', '/sbin/drbdadm')}\n"
