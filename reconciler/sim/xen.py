"""Simulated Xen toolstack (``xl`` of Xen 4.17): list, info, create, shutdown, destroy, migrate, mem-set,
vcpu-set, pause, unpause, rename.

Running domains live in ``state["nodes"][node]["domains"]`` (name -> record with ``domid``, ``uuid``,
``memory``/``maxmem`` (MiB), ``vcpus``/``maxvcpus``, ``disks`` [{target, vdev, mode}], ``vifs``,
``state`` ("running", "paused", "shutdown") and ``started``). ``xl create`` reads the config file from
the node's files (``/etc/xen/NAME.cfg``), refuses a domain that already runs, a disk that does not
exist, a DRBD device that is not Primary on this node (asked through :mod:`reconciler.sim.roles`) and
a domain that does not fit in free memory. ``xl migrate`` moves a domain to a reachable node where its
disks exist and its DRBD devices are Primary too (dual-primary during the migration window).

``xl shutdown`` without ``-w`` leaves the domain shutting down (state ``---s--``) for
``SHUTDOWN_SECONDS`` of simulated time; with ``-w`` it returns once the domain is gone.
Listeners registered with :func:`register_domain_listener` hear ``fn(state, node, name, event)`` with
event ``start``, ``stop``, ``migrate-out`` or ``migrate-in`` (the data oracle follows writers this way).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from reconciler.host.base import CommandResult
from reconciler.sim.commands import CommandContext, command
from reconciler.sim.roles import drbd_role, is_drbd_path
from reconciler.sim.state import DOM0_MEMORY_MIB, State, can_talk, device_exists, new_uuid, register_ticker

SHUTDOWN_SECONDS = 3.0
XEN_VERSION = ("4", "17", ".3")
NR_CPUS = 16
LIST_HEADER = "Name                                        ID   Mem VCPUs\tState\tTime(s)\n"

DomainListener = Callable[[State, str, str, str], None]
_listeners: list[DomainListener] = []


def register_domain_listener(fn: DomainListener) -> DomainListener:
    if fn not in _listeners:
        _listeners.append(fn)
    return fn


def notify(state: State, node: str, name: str, event: str) -> None:
    for listener in tuple(_listeners):
        listener(state, node, name, event)


class XlError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --- the xl config file format ----------------------------------------------------------------

_TOKEN_RE = re.compile(r"""[ \t\r]*(?:(#[^\n]*)|("(?:[^"\\\n]|\\.)*")|('(?:[^'\\\n]|\\.)*')|"""
                       r"""([A-Za-z_][A-Za-z0-9_.]*)|(-?0x[0-9a-fA-F]+|-?\d+(?:\.\d+)?)|([=\[\],;])|(\n))""")


def parse_config(text: str, source: str) -> dict[str, Any]:
    """Parse an xl domain config (``key = value`` with strings, numbers and lists)."""
    tokens: list[tuple[str, Any, int]] = []
    position = 0
    line = 1
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip() == "":
                break
            near = text[position:].strip().split()[0]
            raise XlError(f"{source}:{line}: config parsing error near `{near}': syntax error, unexpected "
                          f"IDENT\nFailed to parse config: Invalid argument\n", 3)
        position = match.end()
        comment, dq, sq, ident, number, punct, newline = match.groups()
        if newline is not None:
            line += 1
            tokens.append(("nl", None, line - 1))
        elif comment is not None:
            continue
        elif dq is not None or sq is not None:
            raw = (dq or sq)[1:-1]
            tokens.append(("str", raw.encode().decode("unicode_escape"), line))
        elif ident is not None:
            tokens.append(("ident", ident, line))
        elif number is not None:
            value: Any = int(number, 0) if "." not in number else float(number)
            tokens.append(("num", value, line))
        elif punct is not None:
            tokens.append(("punct", punct, line))
    return _assignments(tokens, source)


def _assignments(tokens: list[tuple[str, Any, int]], source: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    index = 0

    def fail(at: int) -> XlError:
        kind, value, line = tokens[at] if at < len(tokens) else ("eof", "", tokens[-1][2] if tokens else 1)
        near = value if value not in (None, "") else "end of file" if kind == "eof" else "newline"
        return XlError(f"{source}:{line}: config parsing error near `{near}': syntax error\n"
                       "Failed to parse config: Invalid argument\n", 3)

    def value_at(at: int) -> tuple[Any, int]:
        if at >= len(tokens):
            raise fail(at)
        kind, value, _ = tokens[at]
        if kind in ("str", "num"):
            return value, at + 1
        if kind == "punct" and value == "[":
            items: list[Any] = []
            at += 1
            while True:
                while at < len(tokens) and tokens[at][0] == "nl":
                    at += 1
                if at < len(tokens) and tokens[at][1] == "]":
                    return items, at + 1
                item, at = value_at(at)
                items.append(item)
                while at < len(tokens) and tokens[at][0] == "nl":
                    at += 1
                if at < len(tokens) and tokens[at][1] == ",":
                    at += 1
                    continue
                if at < len(tokens) and tokens[at][1] == "]":
                    return items, at + 1
                raise fail(at)
        raise fail(at)

    while index < len(tokens):
        kind, value, _ = tokens[index]
        if kind == "nl" or (kind == "punct" and value == ";"):
            index += 1
            continue
        if kind != "ident" or index + 1 >= len(tokens) or tokens[index + 1][1] != "=":
            raise fail(index)
        config[value], index = value_at(index + 2)
        if index < len(tokens) and tokens[index][0] not in ("nl",) and tokens[index][1] != ";":
            raise fail(index)
    return config


def parse_disk(spec: str) -> dict[str, str]:
    """``phy:/dev/drbd0,xvda1,w``, ``/dev/x,raw,xvda,rw`` or ``target=/dev/x, vdev=xvda, access=rw``."""
    parts = [p.strip() for p in spec.split(",")]
    if any("=" in p for p in parts):
        fields = dict(p.split("=", 1) for p in parts if "=" in p)
        target = fields.get("target", "")
        vdev = fields.get("vdev", "")
        access = fields.get("access", "rw")
    elif len(parts) == 4:
        target, _, vdev, access = parts
    elif len(parts) == 3:
        target, vdev, access = parts
    else:
        raise XlError(f"Failed to parse disk spec `{spec}'\n", 3)
    for prefix in ("phy:", "file:", "tap:aio:", "aio:"):
        target = target.removeprefix(prefix)
    mode = "w" if access in ("w", "rw", "") else "r"
    return {"target": target, "vdev": vdev, "mode": mode}


# --- helpers ----------------------------------------------------------------------------------


def _domains(ctx: CommandContext, node: str | None = None) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = ctx.state["nodes"][node or ctx.node].setdefault("domains", {})
    return found


def _find(ctx: CommandContext, ident: str) -> tuple[str, dict[str, Any]]:
    domains = _domains(ctx)
    if ident in domains and domains[ident].get("state") != "dying":
        return ident, domains[ident]
    if ident.isdigit():
        for name, dom in domains.items():
            if int(dom["domid"]) == int(ident):
                return name, dom
    raise XlError(f"{ident} is an invalid domain identifier (rc=-6)\n")


def _next_domid(ctx: CommandContext, node: str | None = None) -> int:
    ns = ctx.state["nodes"][node or ctx.node]
    domid = int(ns.get("next_domid", 1))
    ns["next_domid"] = domid + 1
    return domid


def used_memory(state: State, node: str) -> int:
    return sum(int(d["memory"]) for d in state["nodes"][node].get("domains", {}).values())


def free_memory(state: State, node: str) -> int:
    ns = state["nodes"][node]
    return int(ns.get("memory", 0)) - DOM0_MEMORY_MIB - used_memory(state, node)


def _flags(dom: dict[str, Any]) -> str:
    status = dom.get("state", "running")
    if status == "dying":
        return "--ps-d"
    if status == "paused":
        return "--p---"
    if status == "shutdown":
        return "---s--"
    return "-b----"


def _cpu_time(ctx: CommandContext, dom: dict[str, Any]) -> float:
    """A paused domain's vCPUs do not run: its time stands still (at 0.0 when it was created paused)."""
    if dom.get("state") == "paused":
        return float(dom.get("cpu_s", 0.0))
    ran = max(ctx.now - float(dom.get("started", ctx.now)), 0.0)
    return float(dom.get("cpu_s", 0.0)) + ran * 0.02 * int(dom["vcpus"])


def _disk_problem(state: State, node: str, disk: dict[str, str], others: dict[str, dict[str, Any]],
                  domid: int) -> str | None:
    target = disk["target"]
    if not device_exists(state, node, target):
        return (f"libxl: error: libxl_device.c:397:libxl__device_disk_set_backend: Disk vdev={disk['vdev']} "
                f"failed to stat: {target}: No such file or directory\n")
    for other in others.values():
        if any(d["target"] == target and "w" in (d["mode"], disk["mode"]) for d in other.get("disks", [])):
            return (f"libxl: error: libxl_exec.c:117:libxl_report_child_exitstatus: /etc/xen/scripts/block add "
                    f"[{domid}] exited with error status 1\n"
                    f"libxl: error: libxl_device.c:1265:device_hotplug_child_death_cb: script: Device {target} is "
                    "mounted in a guest domain,\nand so cannot be mounted now.\n")
    role = drbd_role(state, node, target) if is_drbd_path(target) else None
    if is_drbd_path(target) and role is not None and role != "Primary":
        return (f"libxl: error: libxl_exec.c:117:libxl_report_child_exitstatus: /etc/xen/scripts/block add "
                f"[{domid}] exited with error status 1\n"
                f"libxl: error: libxl_device.c:1265:device_hotplug_child_death_cb: script: {target}: "
                f"Wrong medium type (DRBD device is {role}, not Primary)\n")
    return None


def _attach_failure(domid: int, problem: str) -> XlError:
    return XlError(problem + f"libxl: error: libxl_create.c:1862:domcreate_attach_devices: Domain {domid}:unable "
                             "to add disk devices\n"
                             f"libxl: error: libxl_domain.c:1183:libxl__destroy_domid: Domain {domid}:Non-existant "
                             "domain\n", 3)


def domain_from_config(config: dict[str, Any]) -> dict[str, Any]:
    name = config.get("name")
    if not isinstance(name, str) or not name:
        raise XlError("Domain name must be specified.\n", 3)
    memory = int(config.get("memory", 128))
    maxmem = int(config.get("maxmem", memory))
    vcpus = int(config.get("vcpus", 1))
    maxvcpus = int(config.get("maxvcpus", vcpus))
    disks = [parse_disk(str(spec)) for spec in config.get("disk", [])]
    vifs = [str(v) for v in config.get("vif", [])]
    return {"name": name, "memory": memory, "maxmem": max(maxmem, memory), "vcpus": vcpus,
            "maxvcpus": max(maxvcpus, vcpus), "disks": disks, "vifs": vifs,
            "kernel": str(config.get("kernel", "")), "bootloader": str(config.get("bootloader", "")),
            "extra": str(config.get("extra", "")), "type": str(config.get("type", "pv"))}


# --- subcommands ------------------------------------------------------------------------------


def _list(ctx: CommandContext, args: list[str]) -> CommandResult:
    long = any(a in ("-l", "--long") for a in args)
    names = [a for a in args if not a.startswith("-")]
    domains = sorted(_domains(ctx).items(), key=lambda item: int(item[1]["domid"]))
    if names:
        chosen = []
        for ident in names:
            name, dom = _find(ctx, ident)
            chosen.append((name, dom))
        domains = chosen
    if long:
        entries = [] if names else [_dom0_long(ctx)]
        entries += [_long_entry(name, dom) for name, dom in domains if dom.get("state") != "dying"]
        return ctx.ok(json.dumps(entries, indent=4) + "\n")
    dom0_mem = DOM0_MEMORY_MIB
    lines = [LIST_HEADER]
    if not names:
        lines.append(f"{'Domain-0':<40} {0:5d} {dom0_mem:5d} {4:5d}     r-----  {ctx.now * 0.1 + 12.0:8.1f}\n")
    for name, dom in domains:
        shown = "(null)" if dom.get("state") == "dying" else name
        # xl 4.17's format: "%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f" (two blanks before the time;
        # older releases had one).
        lines.append(f"{shown:<40} {int(dom['domid']):5d} {int(dom['memory']):5d} {int(dom['vcpus']):5d}     "
                     f"{_flags(dom)}  {_cpu_time(ctx, dom):8.1f}\n")
    return ctx.ok("".join(lines))


def _dom0_long(ctx: CommandContext) -> dict[str, Any]:
    return {"domid": 0, "config": {
        "c_info": {"type": "pv", "name": "Domain-0", "uuid": "00000000-0000-0000-0000-000000000000"},
        "b_info": {"max_vcpus": 4, "avail_vcpus": [0, 1, 2, 3], "max_memkb": DOM0_MEMORY_MIB * 1024,
                   "target_memkb": DOM0_MEMORY_MIB * 1024},
    }}


def _long_entry(name: str, dom: dict[str, Any]) -> dict[str, Any]:
    b_info: dict[str, Any] = {
        "max_vcpus": int(dom["maxvcpus"]), "avail_vcpus": list(range(int(dom["vcpus"]))),
        "max_memkb": int(dom["maxmem"]) * 1024, "target_memkb": int(dom["memory"]) * 1024,
    }
    pv: dict[str, Any] = {}
    if dom.get("kernel"):
        pv["kernel"] = dom["kernel"]
    if dom.get("extra"):
        pv["cmdline"] = dom["extra"]
    if dom.get("bootloader"):
        pv["bootloader"] = dom["bootloader"]
    if pv:
        b_info["type.pv"] = pv
    disks = [{"pdev_path": d["target"], "vdev": d["vdev"], "backend": "phy", "format": "raw", "removable": 1,
              "readwrite": 1 if d["mode"] == "w" else 0} for d in dom.get("disks", [])]
    nics = [{"devid": index, "mac": _mac(name, index), "bridge": _vif_field(spec, "bridge") or "xenbr0",
             "nictype": "vif"} for index, spec in enumerate(dom.get("vifs", []))]
    config: dict[str, Any] = {"c_info": {"type": dom.get("type", "pv"), "name": name, "uuid": dom["uuid"]},
                              "b_info": b_info}
    # libxl leaves out what is empty or default.
    if disks:
        config["disks"] = disks
    if nics:
        config["nics"] = nics
    config["on_reboot"] = "restart"
    return {"domid": int(dom["domid"]), "config": config}


def _vif_field(spec: str, key: str) -> str | None:
    for part in spec.split(","):
        k, eq, v = part.strip().partition("=")
        if eq and k == key:
            return v
    return None


def _mac(name: str, index: int) -> str:
    digest = hashlib.sha256(f"{name}:{index}".encode()).digest()
    return "00:16:3e:" + ":".join(f"{b & 0x7f if i == 0 else b:02x}" for i, b in enumerate(digest[:3]))


def _info(ctx: CommandContext, args: list[str]) -> CommandResult:
    total = int(ctx.node_state.get("memory", 0))
    free = free_memory(ctx.state, ctx.node)
    major, minor, extra = XEN_VERSION
    rows = [
        ("host", ctx.node), ("release", "6.1.0-28-amd64"), ("version", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1"),
        ("machine", "x86_64"), ("nr_cpus", str(NR_CPUS)), ("max_cpu_id", str(NR_CPUS - 1)), ("nr_nodes", "1"),
        ("cores_per_socket", str(NR_CPUS // 2)), ("threads_per_core", "2"), ("cpu_mhz", "2399.998"),
        ("hw_caps", "bfebfbff:77fefbff:2c100800:00000121:0000000f:009c6fbb:00000000:00000100"),
        ("virt_caps", "pv hvm hvm_directio pv_directio hap shadow"), ("total_memory", str(total)),
        ("free_memory", str(free)), ("sharing_freed_memory", "0"), ("sharing_used_memory", "0"),
        ("outstanding_claims", "0"), ("free_cpus", "0"), ("xen_major", major), ("xen_minor", minor),
        ("xen_extra", extra), ("xen_version", f"{major}.{minor}{extra}"),
        ("xen_caps", "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64"), ("xen_scheduler", "credit2"),
        ("xen_pagesize", "4096"), ("platform_params", "virt_start=0xffff800000000000"),
        ("xen_changeset", ""), ("xen_commandline", f"placeholder dom0_mem={DOM0_MEMORY_MIB}M,max:{DOM0_MEMORY_MIB}M"),
        ("cc_compiler", "x86_64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0"), ("cc_compile_by", "pkg-xen-devel"),
        ("cc_compile_domain", "lists.alioth.debian.org"), ("cc_compile_date", "Thu Jul  4 00:00:00 UTC 2024"),
        ("build_id", "1b2bb6b4b9d3ad8ad0b1b9a56a83d18a3c4c36e1"), ("xend_config_format", "4"),
    ]
    return ctx.ok("".join(f"{key:<23}: {value}\n" for key, value in rows))


def _create(ctx: CommandContext, args: list[str]) -> CommandResult:
    paused = any(a in ("-p",) for a in args)
    files = [a for a in args if not a.startswith("-") and "=" not in a]
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    if not files:
        raise XlError("Usage: xl [-vfN] create <ConfigFile> [options] [vars]\n", 2)
    path = files[0]
    stderr = f"Parsing config from {path}\n"
    text = ctx.read_file(path)
    if text is None:
        raise XlError(stderr + f"Failed to read config file: {path}: No such file or directory\n", 3)
    try:
        config = parse_config(text + "\n" + "\n".join(overrides), path)
        spec = domain_from_config(config)
    except XlError as exc:
        raise XlError(stderr + exc.message, exc.code) from None
    name = spec["name"]
    domains = _domains(ctx)
    if name in domains:
        domid = _next_domid(ctx)
        raise XlError(stderr + f'libxl: error: libxl_domain.c:81:libxl__domain_rename: Domain with name "{name}" '
                               "already exists.\n"
                               f"libxl: error: libxl_create.c:689:libxl__domain_make: Domain {domid}:cannot make "
                               "domain: -6\n", 3)
    domid = _next_domid(ctx)
    for disk in spec["disks"]:
        problem = _disk_problem(ctx.state, ctx.node, disk, domains, domid)
        if problem is not None:
            raise XlError(stderr + _attach_failure(domid, problem).message, 3)
    if int(spec["memory"]) > free_memory(ctx.state, ctx.node):
        raise XlError(stderr + "xc: error: panic: xc_dom_boot.c:141: xc_dom_boot_mem_init: can't allocate low "
                               "memory for domain: Out of memory\n"
                               f"libxl: error: libxl_dom.c:593:libxl__build_dom: xc_dom_boot_mem_init failed: "
                               "Cannot allocate memory\n"
                               f"libxl: error: libxl_create.c:1655:domcreate_rebuild_done: Domain {domid}:cannot "
                               "(re-)build domain: -3\n", 3)
    record = dict(spec, domid=domid, uuid=new_uuid(), started=ctx.now, state="paused" if paused else "running",
                  config_path=path)
    record.pop("name")
    domains[name] = record
    notify(ctx.state, ctx.node, name, "start")
    return ctx.ok("", stderr)


def _shutdown(ctx: CommandContext, args: list[str]) -> CommandResult:
    wait = any(a in ("-w", "--wait") or a.startswith("-w") for a in args if a.startswith("-") and a != "-F")
    names = [a for a in args if not a.startswith("-")]
    if not names:
        raise XlError("Usage: xl [-vf] shutdown [options] <-a|Domain>\n", 2)
    name, dom = _find(ctx, names[0])
    domid = int(dom["domid"])
    stderr = f"Shutting down domain {domid}\n"
    if wait:
        del _domains(ctx)[name]
        notify(ctx.state, ctx.node, name, "stop")
        return ctx.ok("", stderr + f"Waiting for 1 domains\nDomain {domid} has been shut down, reason code 0\n")
    if dom.get("state") != "shutdown":
        dom["state"] = "shutdown"
        dom["gone_at"] = ctx.now + SHUTDOWN_SECONDS
    return ctx.ok("", stderr)


def _destroy(ctx: CommandContext, args: list[str]) -> CommandResult:
    names = [a for a in args if not a.startswith("-")]
    if not names:
        raise XlError("Usage: xl [-vf] destroy <Domain>\n", 2)
    if names[0] in ("0", "Domain-0"):
        raise XlError("Not destroying domain 0; use -f to force.\n")
    name, dom = _find(ctx, names[0])
    if dom.get("state") == "dying":
        raise XlError(f"libxl: error: libxl_domain.c:1133:devices_destroy_cb: Domain {dom['domid']}:libxl__devices_"
                      "destroy failed\ndestroy failed (rc=-3)\n")
    del _domains(ctx)[name]
    notify(ctx.state, ctx.node, name, "stop")
    return ctx.ok()


def interrupted_create(argv: tuple[str, ...]) -> tuple[str, ...] | None:
    """What a killed ``xl create`` leaves, as the command that makes it: the domain created, paused, never
    unpaused (``xl`` destroys a domain itself only when it fails on its own)."""
    if len(argv) >= 3 and argv[0] == "xl" and argv[1] == "create" and "-p" not in argv:
        return ("xl", "create", "-p", *argv[2:])
    return None


def _pause_or_unpause(ctx: CommandContext, args: list[str], *, pause: bool) -> CommandResult:
    names = [a for a in args if not a.startswith("-")]
    if not names:
        raise XlError(f"Usage: xl [-vf] {'pause' if pause else 'unpause'} <Domain>\n", 2)
    _, dom = _find(ctx, names[0])
    if pause and dom.get("state") == "running":
        dom["cpu_s"] = _cpu_time(ctx, dom)
        dom["state"] = "paused"
    elif not pause and dom.get("state") == "paused":
        dom["state"] = "running"
        dom["started"] = ctx.now
    return ctx.ok()


def _pause(ctx: CommandContext, args: list[str]) -> CommandResult:
    return _pause_or_unpause(ctx, args, pause=True)


def _unpause(ctx: CommandContext, args: list[str]) -> CommandResult:
    return _pause_or_unpause(ctx, args, pause=False)


# xl's own words for a subcommand's usage (help() in xl.c, the table in xl_cmdtable.c), printed to stdout.
RENAME_HELP = "Usage: xl [-vtTf] rename <Domain> <NewDomainName>\n\nRename a domain.\n\n"


def _rename(ctx: CommandContext, args: list[str]) -> CommandResult:
    """``xl rename <Domain> <NewDomainName>`` as xl_misc.c's main_rename and libxl__domain_rename do it: the
    domain keeps its domid and everything else; a name another domain has is refused (its own is fine)."""
    positional: list[str] = []
    options_end = False
    for arg in args:
        if not options_end and arg == "--":
            options_end = True
        elif not options_end and arg in ("-h", "--help"):
            return ctx.ok(RENAME_HELP)
        elif not options_end and arg.startswith("-") and arg != "-":
            raise XlError(f"option `{arg.lstrip('-')[:1]}' not supported.\n", 2)
        else:
            positional.append(arg)
    if len(positional) < 2:
        raise ctx.abort(2, "'xl rename' requires at least 2 arguments.\n\n", RENAME_HELP)
    ident, new_name = positional[0], positional[1]
    name, dom = _find(ctx, ident)
    domains = _domains(ctx)
    taken = new_name == "Domain-0" or (new_name in domains and new_name != name)
    if new_name and taken:
        raise XlError(f"libxl: error: libxl_domain.c:81:libxl__domain_rename: Domain {dom['domid']}:Domain with "
                      f'name "{new_name}" already exists.\n'
                      f"Can't rename domain '{ident}'.\n")
    if new_name != name:
        # Renamed in place: the same record (domid, uuid, state, devices), under its new name, where it was.
        renamed = {(new_name if key == name else key): value for key, value in domains.items()}
        domains.clear()
        domains.update(renamed)
    return ctx.ok()


INCOMING_SUFFIX = "--incoming"
MIGRATED_AWAY_SUFFIX = "--migratedaway"
UNDEFINED_TEXT = ("** Migration failed during final handshake **\n"
                  "Domain state is now undefined !\n"
                  "Please CHECK AT BOTH ENDS for running instances, before renaming and\n"
                  " resuming at most one instance.  Two simultaneous instances of the domain\n"
                  " would probably result in SEVERE DATA LOSS and it is now your\n"
                  " responsibility to avoid that.  Sorry.\n")


def set_migrate_undefined(state: State, node: str) -> None:
    """The next ``xl migrate`` sent from ``node`` fails in its final handshake: xl's "Domain state is now
    undefined" with the domain paused at both ends as ``NAME--migratedaway`` (sender) and ``NAME--incoming``
    (receiver), as xl leaves them."""
    state.setdefault("xen", {}).setdefault("migrate_undefined", [])
    if node not in state["xen"]["migrate_undefined"]:
        state["xen"]["migrate_undefined"].append(node)


def _migrate_args(args: list[str]) -> tuple[list[str], str | None]:
    positional: list[str] = []
    transport: str | None = None
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in ("-s", "-C"):
            if index + 1 >= len(args):
                raise XlError(f"option requires an argument -- '{arg[1]}'\n", 2)
            if arg == "-s":
                transport = args[index + 1]
            skip = True
            continue
        if not arg.startswith("-"):
            positional.append(arg)
    return positional, transport


def _migrate(ctx: CommandContext, args: list[str]) -> CommandResult:
    """``xl migrate [-s SSHCOMMAND] DOMAIN HOST``. The transport is not run: the receiver is reached when the
    simulated network lets the nodes talk (an empty ``-s`` would mean a raw pipe; only ssh-like ones are
    accepted). xl renames the domain at the sender to ``NAME--migratedaway`` once the memory is sent, and the
    receiver creates it as ``NAME--incoming`` until the sender gives it permission to start."""
    positional, transport = _migrate_args(args)
    if len(positional) != 2:
        raise XlError("Usage: xl [-vf] migrate [options] <Domain> <host>\n", 2)
    name, dom = _find(ctx, positional[0])
    target = positional[1]
    if transport is not None and not transport.strip():
        raise XlError("xl migrate: an empty -s (a raw pipe) is not simulated\n", 2)
    if target not in ctx.state["nodes"] or not can_talk(ctx.state, ctx.node, target):
        raise XlError(f"ssh: connect to host {target} port 22: No route to host\n"
                      "xl migrate: failed to read the migration receiver's banner\n"
                      "Migration failed, resuming at sender.\n")
    domid = int(dom["domid"])
    sender = ("migration target: Ready to receive domain.\n"
              "Saving to migration stream new xl format (info 0x3/0x0/1444)\n"
              "Loading new save file <incoming migration stream> (new xl fmt info 0x3/0x0/1444)\n"
              " Savefile contains xl domain config in JSON format\n"
              "Parsing config from <saved>\n"
              f"xc: info: Saving domain {domid}, type x86 PV\n")
    target_domains = _domains(ctx, target)
    new_domid = int(ctx.state["nodes"][target].get("next_domid", 1))
    if name in target_domains or name + INCOMING_SUFFIX in target_domains:
        raise XlError(sender + f'libxl: error: libxl_domain.c:81:libxl__domain_rename: Domain with name "{name}" '
                               "already exists.\nmigration target: Domain creation failed (code -3).\n"
                               "Migration failed, resuming at sender.\n")
    for disk in dom.get("disks", []):
        problem = _disk_problem(ctx.state, target, disk, target_domains, new_domid)
        if problem is not None:
            raise XlError(sender + problem + "migration target: Domain creation failed (code -3).\n"
                                             "Migration failed, resuming at sender.\n")
    if int(dom["memory"]) > free_memory(ctx.state, target):
        raise XlError(sender + "xc: error: panic: xc_dom_boot.c:141: xc_dom_boot_mem_init: can't allocate low "
                               "memory for domain: Out of memory\n"
                               "migration target: Domain creation failed (code -3).\n"
                               "Migration failed, resuming at sender.\n")
    _next_domid(ctx, target)
    # The receiver keeps the domain's config as the sender sent it, at the path the target's own start uses.
    moved = dict(dom, domid=new_domid, config_path=str(dom.get("config_path") or f"/etc/xen/{name}.cfg"))
    undefined = ctx.state.get("xen", {}).get("migrate_undefined", [])
    if ctx.node in undefined:
        undefined.remove(ctx.node)
        away = _domains(ctx).pop(name)
        away["cpu_s"] = _cpu_time(ctx, away)
        away["state"] = "paused"
        _domains(ctx)[name + MIGRATED_AWAY_SUFFIX] = away
        target_domains[name + INCOMING_SUFFIX] = dict(moved, state="paused", cpu_s=0.0)
        notify(ctx.state, ctx.node, name, "migrate-out")
        # A failure that keeps what it changed (ctx.fail, not an abort): xl leaves both instances behind.
        return ctx.fail(3, sender + "xc: info: Restoring domain\nxc: info: Restore successful\n"
                                    "migration target: Transfer complete, requesting permission to start domain.\n"
                                    "migration sender: Target has acknowledged transfer.\n"
                                    "migration sender: Giving target permission to start.\n"
                        + UNDEFINED_TEXT)
    del _domains(ctx)[name]
    notify(ctx.state, ctx.node, name, "migrate-out")
    target_domains[name] = moved
    notify(ctx.state, target, name, "migrate-in")
    return ctx.ok("", sender + "xc: info: Restoring domain\nxc: info: Restore successful\n"
                              "migration target: Transfer complete, requesting permission to start domain.\n"
                              "migration sender: Target has acknowledged transfer.\n"
                              "migration sender: Giving target permission to start.\n"
                              "migration target: Got permission, starting domain.\n"
                              "migration target: Domain started successsfully.\n"
                              "migration sender: Target reports successful startup.\n"
                              "Migration successful.\n")


def _mem_set(ctx: CommandContext, args: list[str]) -> CommandResult:
    names = [a for a in args if not a.startswith("-")]
    if len(names) != 2:
        raise XlError("Usage: xl [-vf] mem-set <Domain> <Mem>\n", 2)
    _, dom = _find(ctx, names[0])
    kib = _mem_kib(names[1])
    if kib is None:
        raise XlError(f"invalid memory size: {names[1]}\n")
    mib = kib // 1024
    if mib > int(dom["maxmem"]):
        raise XlError(f"libxl: error: libxl_mem.c:286:libxl_set_memory_target: Domain {dom['domid']}:memory_dynamic_"
                      "max must be less than or equal to memory_static_max\n"
                      f"cannot set domid {dom['domid']} static max memory to : {kib}\n")
    if mib - int(dom["memory"]) > free_memory(ctx.state, ctx.node):
        raise XlError(f"libxl: error: libxl_mem.c:286:libxl_set_memory_target: Domain {dom['domid']}:not enough "
                      "free memory\n")
    dom["memory"] = mib
    return ctx.ok()


def _mem_kib(text: str) -> int | None:
    match = re.fullmatch(r"(\d+)([tgmkbTGMKB]?)", text)
    if match is None:
        return None
    number, unit = int(match.group(1)), match.group(2).lower()
    factor = {"t": 1024**3, "g": 1024**2, "": 1024, "m": 1024, "k": 1}.get(unit)
    return number // 1024 if unit == "b" else number * int(factor or 1)


def _vcpu_set(ctx: CommandContext, args: list[str]) -> CommandResult:
    names = [a for a in args if not a.startswith("-")]
    if len(names) != 2 or not names[1].isdigit():
        raise XlError("Usage: xl [-vf] vcpu-set <Domain> <vCPUs>\n", 2)
    _, dom = _find(ctx, names[0])
    wanted = int(names[1])
    if wanted < 1:
        raise XlError(f"Invalid vcpus: {wanted}\n")
    if wanted > int(dom["maxvcpus"]):
        raise XlError(f"libxl: error: libxl_domain.c:2233:libxl_set_vcpuonline: Domain {dom['domid']}:Requested "
                      f"{wanted} VCPUs, however maxcpus is {dom['maxvcpus']}!: Function not implemented\n"
                      f"libxl_set_vcpuonline failed domid={dom['domid']} max_vcpus={wanted}, rc: -3\n")
    dom["vcpus"] = wanted
    return ctx.ok()


_SUBCOMMANDS: dict[str, Callable[[CommandContext, list[str]], CommandResult]] = {
    "list": _list, "li": _list, "info": _info, "create": _create, "shutdown": _shutdown, "destroy": _destroy,
    "migrate": _migrate, "mem-set": _mem_set, "vcpu-set": _vcpu_set, "pause": _pause, "unpause": _unpause,
    "rename": _rename,
}


@command("xl")
def xl(ctx: CommandContext, argv: list[str]) -> CommandResult:
    args = argv[1:]
    while args and args[0] in ("-v", "-f", "-N", "-t"):
        args = args[1:]
    if not args:
        return ctx.fail(2, "Usage xl [-vfNtT] <subcommand> [args]\n")
    handler = _SUBCOMMANDS.get(args[0])
    if handler is None:
        return ctx.fail(2, f'command "{args[0]}" not implemented\n')
    try:
        return handler(ctx, args[1:])
    except XlError as exc:
        raise ctx.abort(exc.code, exc.message) from None


def make_dying(state: State, node: str, name: str) -> None:
    """The domain dies but cannot be torn down (a backend holds its devices): ``(null)`` in ``xl list``
    with its memory and disks still taken, until the node reboots."""
    domains = state["nodes"][node].get("domains", {})
    dom = domains.pop(name, None)
    if dom is None:
        raise KeyError(name)
    dom["state"] = "dying"
    domains[f"(null):{dom['domid']}"] = dom
    notify(state, node, name, "stop")


def finish_shutdowns(state: State, dt: float) -> None:
    """Domains shutting down without ``-w`` disappear once their shutdown time has passed."""
    now = float(state.get("time", 0.0))
    for node, ns in state["nodes"].items():
        for name, dom in list(ns.get("domains", {}).items()):
            if dom.get("state") == "shutdown" and float(dom.get("gone_at", now)) <= now:
                del ns["domains"][name]
                notify(state, node, name, "stop")


register_ticker(finish_shutdowns)
