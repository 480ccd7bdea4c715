"""Injected faults: failing or hanging commands, crashed nodes, cut networks, failed disks.

Command faults live in ``state["faults"]`` as plain dicts and apply to the commands of one node (or
of every node when ``node`` is None) whose argv matches:

* ``prefix``: the argv starts with these words (the program compared by base name), or
* ``regex``: the pattern is found in the argv joined with single spaces.

Kinds:

* ``transient``: fails the next ``count`` matching calls, or each call with probability ``rate``
  (a seeded generator, reproducible across processes: the n-th call of a fault always draws the same
  number), with a message the real tool prints in that situation (lock contention, device busy).
* ``permanent``: fails every matching call.
* ``hang``: the command never answers; the caller's timeout is charged to simulated time and the
  result is a timeout (exit 124), as the real host reports it. Nothing sleeps for real.

Node and network faults act on the state directly: :func:`crash` (the node stops answering; device-
mapper tables, running domains, mounts and, through the reboot hooks, DRBD's runtime state vanish),
:func:`boot` (it comes back with nothing running; LVs, disk contents and files survived),
:func:`partition` / :func:`heal` (``state["network"]["cut"]``), :func:`disk_fail` (the content
behind one device is marked failed; the disk failure hooks let the DRBD simulator detach) and
:func:`zombie` (a domain that cannot die: ``(null)`` in ``xl list``, holding its memory and disks) and
:func:`migrate_undefined` (the next live migration from a node ends with the domain's state undefined).
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Sequence
from typing import Any

from reconciler.host.base import EXIT_TIMEOUT, CommandResult
from reconciler.sim import drbd_machine, xen
from reconciler.sim import state as simstate
from reconciler.sim.state import (
    State,
    advance_state,
    content,
    disk_failure_hooks,
    new_uuid,
    node_state,
    reboot_hooks,
    register_disk_failure_hook,
    register_reboot_hook,
    resolve_device,
)

__all__ = [
    "FaultError",
    "add_fault",
    "apply_command_faults",
    "boot",
    "clear",
    "crash",
    "disk_fail",
    "heal",
    "migrate_undefined",
    "partition",
    "reboot",
    "register_disk_failure_hook",
    "register_reboot_hook",
    "zombie",
]

KINDS = ("transient", "permanent", "hang")
LVM_PROGRAMS = frozenset({"lvs", "vgs", "pvs", "lvcreate", "lvextend", "lvreduce", "lvremove", "lvresize",
                          "lvchange", "vgchange", "lvm"})


class FaultError(ValueError):
    """A fault that cannot be injected (unknown node, bad pattern, nothing to fail)."""


def _default_failure(kind: str, argv: Sequence[str]) -> tuple[int, str]:
    program = os.path.basename(argv[0]) if argv else ""
    if program in LVM_PROGRAMS:
        if kind == "transient":
            return 5, ("  /run/lock/lvm/V_global:aux: flock failed: Resource temporarily unavailable\n"
                       "  Can't get lock for global\n")
        return 5, "  /dev/sda: read failed after 0 of 4096 at 0: Input/output error\n"
    if program == "dmsetup":
        if kind == "transient":
            return 1, "device-mapper: reload ioctl failed: Device or resource busy\nCommand failed.\n"
        return 1, "device-mapper: reload ioctl failed: Input/output error\nCommand failed.\n"
    if program in ("drbdadm", "drbdsetup"):
        if kind == "transient":
            return 11, "drbdsetup: Resource temporarily unavailable\n"
        return 20, "Could not connect to 'drbd' generic netlink family\n"
    if program == "xl":
        if kind == "transient":
            return 1, "libxl: error: libxl_device.c: unable to acquire lock: Resource temporarily unavailable\n"
        return 1, "libxl: error: libxl.c: Input/output error\n"
    if kind == "transient":
        return 1, f"{program}: Resource temporarily unavailable\n"
    return 1, f"{program}: Input/output error\n"


def _check_node(state: State, node: str | None) -> None:
    if node is not None:
        try:
            node_state(state, node)
        except simstate.SimStateError as exc:
            raise FaultError(str(exc)) from None


def add_fault(state: State, kind: str, *, node: str | None = None, prefix: Sequence[str] | None = None,
              regex: str | None = None, count: int | None = None, rate: float | None = None, seed: int = 0,
              exit_code: int | None = None, message: str | None = None) -> dict[str, Any]:
    """Add a command fault and return it (its ``id`` is how it is listed and removed)."""
    if kind not in KINDS:
        raise FaultError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
    _check_node(state, node)
    if not prefix and not regex:
        raise FaultError("a command fault needs a program prefix or a regex to match")
    if regex is not None:
        try:
            re.compile(regex)
        except re.error as exc:
            raise FaultError(f"invalid regex {regex!r}: {exc}") from None
    if kind == "transient":
        if count is None and rate is None:
            raise FaultError("a transient fault needs --count N or --rate R")
        if rate is not None and not 0.0 < rate <= 1.0:
            raise FaultError(f"rate must be in (0, 1], got {rate}")
        if count is not None and count < 1:
            raise FaultError(f"count must be at least 1, got {count}")
    if exit_code is not None and not 1 <= exit_code <= 255:
        raise FaultError(f"exit code must be 1 to 255 (what a failing process can return), got {exit_code}")
    faults: list[dict[str, Any]] = state.setdefault("faults", [])
    fault_id = 1 + max((int(f["id"]) for f in faults), default=0)
    fault: dict[str, Any] = {
        "id": fault_id, "kind": kind, "node": node,
        "prefix": list(prefix) if prefix else None, "regex": regex,
        "count": count, "rate": rate, "seed": seed, "calls": 0, "fired": 0,
        "exit": exit_code, "message": message,
    }
    faults.append(fault)
    return fault


def remove_fault(state: State, fault_id: int) -> bool:
    faults: list[dict[str, Any]] = state.setdefault("faults", [])
    kept = [f for f in faults if int(f["id"]) != fault_id]
    state["faults"] = kept
    return len(kept) != len(faults)


def _matches(fault: dict[str, Any], node: str, argv: Sequence[str]) -> bool:
    if fault.get("node") not in (None, node):
        return False
    prefix = fault.get("prefix")
    if prefix:
        words = [os.path.basename(argv[0]), *argv[1:]] if argv else []
        wanted = [os.path.basename(prefix[0]), *prefix[1:]]
        if words[: len(wanted)] != wanted:
            return False
    regex = fault.get("regex")
    return not (regex and re.search(regex, " ".join(argv)) is None)


def _fires(fault: dict[str, Any]) -> bool:
    if fault["kind"] != "transient":
        return True
    count = fault.get("count")
    if count is not None:
        if count <= 0:
            return False
        fault["count"] = count - 1
        return True
    draw = random.Random(f"{fault['seed']}:{fault['id']}:{fault['calls']}").random()  # noqa: S311
    fault["calls"] = int(fault["calls"]) + 1
    return draw < float(fault["rate"])


def apply_command_faults(state: State, node: str, argv: Sequence[str], timeout: float) -> CommandResult | None:
    """The result an injected fault forces on this command, or None to run it normally."""
    args = tuple(argv)
    for fault in state.get("faults", []):
        if not _matches(fault, node, args) or not _fires(fault):
            continue
        fault["fired"] = int(fault.get("fired", 0)) + 1
        if fault["kind"] == "hang":
            advance_state(state, timeout)
            return CommandResult(args, EXIT_TIMEOUT, "", f"timed out after {timeout:g}s\n", timeout, timed_out=True)
        code, message = _default_failure(fault["kind"], args)
        if fault.get("exit") is not None:
            code = int(fault["exit"])
        if fault.get("message"):
            message = str(fault["message"]).rstrip("\n") + "\n"
        return CommandResult(args, code, "", message)
    return None


def crash(state: State, node: str) -> None:
    """The node stops: runtime state (dm tables, domains, mounts, DRBD) is lost; disks keep their data."""
    _check_node(state, node)
    ns = node_state(state, node)
    ns["up"] = False
    ns["dm"] = {}
    gone = list(ns.get("domains", {}))
    ns["domains"] = {}
    for name in gone:
        xen.notify(state, node, name, "stop")
    ns["mounts"] = []
    for hook in reboot_hooks():
        hook(state, node)


def boot(state: State, node: str) -> None:
    """The node comes back with nothing running (LVs are active again, as after the boot scripts;
    domain ids start at 1 and LVs get new device-mapper minors in activation order)."""
    _check_node(state, node)
    ns = node_state(state, node)
    if ns.get("up"):
        return
    ns["up"] = True
    ns["boot_id"] = new_uuid()
    ns["next_domid"] = 1
    # The boot scripts activate every LV again, in VG/LV order: device-mapper minors are handed out
    # anew (VG by VG, LVs in creation order), so a ``253:N`` seen before the crash may name another device now.
    minor = 0
    for vg_name in sorted(ns["vgs"]):
        lvs = ns["vgs"][vg_name]["lvs"]
        for lv_name in sorted(lvs, key=lambda name: (lvs[name].get("order", 0), name)):
            lvs[lv_name]["minor"] = minor
            minor += 1
    ns["next_minor"] = minor


def reboot(state: State, node: str) -> None:
    crash(state, node)
    boot(state, node)


def partition(state: State, a: str, b: str, *, management: bool = False) -> None:
    """Cut the replication link between ``a`` and ``b`` (DRBD's connection); with ``management`` the
    management link as well (peer status and the fence-peer handler's requests), a full partition."""
    _check_node(state, a)
    _check_node(state, b)
    if a == b:
        raise FaultError("a partition needs two different nodes")
    pair = sorted((a, b))
    network = state.setdefault("network", {})
    for key in ("cut", "management_cut") if management else ("cut",):
        cut: list[list[str]] = network.setdefault(key, [])
        if pair not in [sorted(p) for p in cut]:
            cut.append(pair)


def heal(state: State, a: str | None = None, b: str | None = None) -> None:
    """Reconnect ``a`` and ``b`` on both links, or every pair when no node is named."""
    network = state.setdefault("network", {})
    for key in ("cut", "management_cut"):
        if a is None or b is None:
            network[key] = []
            continue
        pair = sorted((a, b))
        network[key] = [p for p in network.get(key, []) if sorted(p) != pair]


def disk_fail(state: State, node: str, device: str) -> str:
    """Fail the storage under ``device`` (``/dev/VG/LV`` or ``VG/LV``); returns its content key."""
    _check_node(state, node)
    path = device if device.startswith("/dev/") else "/dev/" + device
    key = resolve_device(state, node, path)
    if key is None:
        raise FaultError(f"no device {path} on {node}")
    content(state, key)["failed"] = True
    for hook in disk_failure_hooks():
        hook(state, node, key)
    return key


def zombie(state: State, node: str, domain: str) -> None:
    """Leave a running domain dying: ``(null)`` in ``xl list``, its memory and disks held until a reboot."""
    _check_node(state, node)
    try:
        xen.make_dying(state, node, domain)
    except KeyError:
        raise FaultError(f"no domain {domain} runs on {node}") from None


def migrate_undefined(state: State, node: str) -> None:
    """The next ``xl migrate`` sent from ``node`` fails in its final handshake, leaving the domain's state undefined
    at both ends (``NAME--migratedaway`` here, ``NAME--incoming`` at the target, both paused), as xl does."""
    _check_node(state, node)
    xen.set_migrate_undefined(state, node)


def clear(state: State) -> None:
    """Remove every command fault and network cut (crashed nodes stay down until booted)."""
    state["faults"] = []
    heal(state)


drbd_machine.register_power_off(crash)  # a power fence in the simulator is the same loss of power
