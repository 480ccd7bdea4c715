"""Simulated odds and ends a node answers: ``uname``, ``lvmconfig``, ``systemctl``, ``git --version``,
``ip -j addr`` (the node's address from the state), ``tee [-a] PATH`` (writes a node's file from standard
input), ``ssh [user@]HOST COMMAND`` (runs COMMAND on the node that HOST names, when the network lets the two
talk), ``true`` and ``false``.

``lvmconfig`` reads ``devices { global_filter, filter, use_devicesfile }`` from the node's
``/etc/lvm/lvm.conf`` and prints lvm2's defaults for what the file does not set. A new simulated node
carries :data:`reconciler.sim.state.PREPARED_LVM_CONF`, whose filter keeps LVM away from DRBD and stripe
devices as a prepared real node does (and ``/etc/xen/xl.conf`` with ``autoballoon="off"``).
``systemctl is-enabled``/``is-active`` answer "disabled"/"inactive" for every unit: on a node the
reconciler manages, neither drbd.service nor xendomains.service starts resources at boot. ``systemctl reboot``
(with or without ``--force``) reboots the node at once: what ran is gone, and it comes back with nothing running.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from reconciler.host.base import CommandResult
from reconciler.sim import device_index, faults
from reconciler.sim.commands import CommandContext, SimAbort, command, dispatch
from reconciler.sim.state import LVM_CONF, can_talk, node_by_host

KERNEL_RELEASE = "6.1.0-28-amd64"
_DEFAULTS = {"devices/global_filter": '["a|.*|"]', "devices/filter": '["a|.*|"]', "devices/use_devicesfile": "0"}


@command("uname")
def uname(ctx: CommandContext, argv: list[str]) -> CommandResult:
    fields = {"-s": "Linux", "-n": ctx.node, "-r": KERNEL_RELEASE, "-m": "x86_64", "-o": "GNU/Linux"}
    flags = argv[1:] or ["-s"]
    if flags in (["-a"], ["--all"]):
        return ctx.ok(f"Linux {ctx.node} {KERNEL_RELEASE} #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22) "
                      "x86_64 GNU/Linux\n")
    unknown = [f for f in flags if f not in fields]
    if unknown:
        return ctx.fail(1, f"uname: invalid option -- '{unknown[0].lstrip('-')}'\n"
                           "Try 'uname --help' for more information.\n")
    return ctx.ok(" ".join(fields[f] for f in flags) + "\n")


def _setting(text: str, key: str) -> str | None:
    name = key.rsplit("/", 1)[-1]
    match = re.search(rf"^\s*{re.escape(name)}\s*=\s*(\[[^\]]*\]|\S+)", text, re.MULTILINE)
    if match is None:
        return None
    value = match.group(1)
    if value.startswith("["):
        items = re.findall(r'"((?:[^"\\]|\\.)*)"', value)
        return "[" + ",".join(f'"{item}"' for item in items) + "]"
    return value


@command("lvmconfig")
def lvmconfig(ctx: CommandContext, argv: list[str]) -> CommandResult:
    keys = [a for a in argv[1:] if "/" in a and not a.startswith("-")]
    text = ctx.read_file(LVM_CONF) or ""
    lines = []
    for key in keys:
        value = _setting(text, key)
        if value is None:
            value = _DEFAULTS.get(key)
        if value is None:
            return ctx.fail(5, f"  Configuration node {key} not found\n")
        lines.append(f"{key.rsplit('/', 1)[-1]}={value}")
    return ctx.ok("".join(line + "\n" for line in lines))


@command("systemctl")
def systemctl(ctx: CommandContext, argv: list[str]) -> CommandResult:
    verb = argv[1] if len(argv) > 1 else ""
    if verb == "is-enabled":
        return ctx.result(1, "disabled\n")
    if verb == "is-active":
        return ctx.result(3, "inactive\n")
    if verb == "reboot" and all(a in ("--force", "-f") for a in argv[2:]):
        faults.reboot(ctx.state, ctx.node)
        return ctx.ok()
    return ctx.fail(1, "System has not been booted with systemd as init system (PID 1). Can't operate.\n"
                       "Failed to connect to bus: Host is down\n")


@command("git")
def git(ctx: CommandContext, argv: list[str]) -> CommandResult:
    if argv[1:] == ["--version"]:
        return ctx.ok("git version 2.39.5\n")
    return ctx.fail(128, "fatal: not a git repository (or any of the parent directories): .git\n")


@command("tee")
def tee(ctx: CommandContext, argv: list[str]) -> CommandResult:
    """``tee [-a] PATH...``: write standard input to the node's files (how a config is written by hand through
    ``sim exec``) and echo it, as coreutils does."""
    text = ctx.stdin or ""
    append = any(a in ("-a", "--append") for a in argv[1:])
    paths = [a for a in argv[1:] if not a.startswith("-")]
    files = ctx.node_state["files"]
    for path in paths:
        if not path.startswith("/"):
            # A simulated node has no working directory to resolve a relative path against.
            raise ctx.abort(1, f"tee: {path}: No such file or directory\n", text)
        if path.endswith("/") or device_index.is_directory(files, path):
            raise ctx.abort(1, f"tee: {path}: Is a directory\n", text)
        before = str(files[path]["content"]) if append and path in files else ""
        files[path] = {"content": before + text, "mode": 0o644}
    return ctx.ok(text)


@command("true")
def true(ctx: CommandContext, argv: list[str]) -> CommandResult:
    return ctx.ok()


@command("false")
def false(ctx: CommandContext, argv: list[str]) -> CommandResult:
    return ctx.result(1)


@command("ip")
def ip(ctx: CommandContext, argv: list[str]) -> CommandResult:
    words = [a for a in argv[1:] if a not in ("-j", "-json", "--json", "-p", "-pretty")]
    if words[:1] not in (["addr"], ["a"], ["address"]):
        return ctx.fail(255, f'Object "{words[0] if words else ""}" is unknown, try "ip help".\n')
    address = str(ctx.node_state.get("address", ""))
    links: list[dict[str, Any]] = [
        {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP", "LOWER_UP"], "mtu": 65536, "operstate": "UNKNOWN",
         "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host", "label": "lo"}]},
        {"ifindex": 2, "ifname": "xenbr0", "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "mtu": 1500,
         "operstate": "UP", "addr_info": [{"family": "inet", "local": address, "prefixlen": 24,
                                           "scope": "global", "label": "xenbr0"}] if address else []},
    ]
    if "-j" in argv or "-json" in argv or "--json" in argv:
        return ctx.ok(json.dumps(links, separators=(",", ":")) + "\n")
    lines = []
    for link in links:
        lines.append(f"{link['ifindex']}: {link['ifname']}: <{','.join(link['flags'])}> mtu {link['mtu']} "
                     f"state {link['operstate']}")
        lines += [f"    inet {a['local']}/{a['prefixlen']} scope {a['scope']} {a['label']}" for a in link["addr_info"]]
    return ctx.ok("".join(line + "\n" for line in lines))


_SSH_WITH_VALUE = frozenset("bcDEeFIiJLlmOopQRSWw")


@command("ssh")
def ssh(ctx: CommandContext, argv: list[str]) -> CommandResult:
    """``ssh [options] [user@]host command...``: the command runs on that simulated node."""
    args = argv[1:]
    if args == ["-V"]:
        return ctx.ok("", "OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024\n")
    index = 0
    while index < len(args) and args[index].startswith("-"):
        flag = args[index]
        index += 2 if len(flag) == 2 and flag[1] in _SSH_WITH_VALUE else 1
    if index >= len(args):
        return ctx.fail(255, "usage: ssh [-46AaCfGgKkMNnqsTtVvXxYy] destination [command [argument ...]]\n")
    host = args[index].rsplit("@", 1)[-1]
    remote = shlex.split(" ".join(args[index + 1:]))
    target = node_by_host(ctx.state, host)
    if target is None:
        return ctx.fail(255, f"ssh: Could not resolve hostname {host}: Name or service not known\n")
    if target != ctx.node and not can_talk(ctx.state, ctx.node, target):
        return ctx.fail(255, f"ssh: connect to host {host} port 22: No route to host\n")
    if not remote:
        return ctx.fail(255, "Pseudo-terminal will not be allocated because stdin is not a terminal.\n")
    inner = CommandContext(state=ctx.state, node=target, argv=tuple(remote), stdin=ctx.stdin, timeout=ctx.timeout)
    try:
        result = dispatch(inner)
    except SimAbort as abort:
        raise ctx.abort(abort.result.returncode, abort.result.stderr, abort.result.stdout) from None
    return ctx.result(result.returncode, result.stdout, result.stderr)
