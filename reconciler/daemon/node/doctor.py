"""Preflight checks of a node (``reconciler doctor``), each with a clear verdict and what to do.

The shared checks live here; each backend's (its tools, its kernel module and handlers, its config paths)
are its own, registered in :data:`reconciler.backends.doctors.DOCTORS` and run at their slots
(:mod:`reconciler.core.doctor`).

Every check runs through the host seam, so it works on a real node and, where the simulator knows the
command, on a simulated one. A check that cannot run here (the tool is missing, no desired state is
known) says so with "skip" rather than guessing.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable, Mapping, Sequence

from reconciler.backends.doctors import DOCTORS
from reconciler.backends.registry import node_backends
from reconciler.core.doctor import (
    NO_DESIRED,
    TIMEOUT,
    BackendDoctor,
    Check,
    DaemonSettings,
    DoctorSlot,
    ToolCheck,
    check_tool,
)
from reconciler.core.observed_index import ObservedIndex
from reconciler.daemon.node.doctor_provision import check_provisioning
from reconciler.daemon.peers.powerfence import power_state, said
from reconciler.desired.schema import PowerFenceSection
from reconciler.host.base import Host
from reconciler.model.desired import DesiredNode
from reconciler.observe.observer import Observer
from reconciler.plan.identity import Holders, identity_refusal

# The tools every node needs whatever its backends (the backends' own come first, from their registration).
SHARED_TOOLS: tuple[ToolCheck, ...] = (
    ToolCheck("blkid", ("blkid", "-V"), r"util-linux\s+(\S+)"),
    ToolCheck("mkfs.xfs", ("mkfs.xfs", "-V"), r"version\s+(\S+)"),
    ToolCheck("xfs_db", ("xfs_db", "-V"), r"version\s+(\S+)"),
    ToolCheck("mkswap", ("mkswap", "-V"), r"util-linux\s+(\S+)"),
    ToolCheck("git", ("git", "--version"), r"git version\s+(\S+)"),
)


def check_hostname(host: Host, node: str, desired: DesiredNode | None) -> Check:
    result = host.run(("uname", "-n"), timeout=TIMEOUT)
    if not result.ok:
        return Check("host name", "skip", f"cannot ask `uname -n`: {result.describe()}")
    uname = result.stdout.strip()
    if desired is not None and desired.hostname != uname:
        return Check("host name", "fail", f"the cluster file names node {node!r} with hostname {desired.hostname!r}, "
                                          f"but `uname -n` says {uname!r}; DRBD would not find its `on` section")
    if node != uname:
        return Check("host name", "fail", f"--node {node!r} differs from `uname -n` {uname!r}")
    return Check("host name", "ok", f"{uname} (matches the node name DRBD uses)")


def check_tools(host: Host, doctors: Sequence[BackendDoctor] = DOCTORS) -> list[Check]:
    return [check_tool(host, tool) for tool in (*(t for d in doctors for t in d.tools), *SHARED_TOOLS)]


def _slot(host: Host, desired: DesiredNode | None, doctors: Sequence[BackendDoctor], slot: DoctorSlot,
          settings: DaemonSettings) -> list[Check]:
    return [check for d in doctors for run in d.checks.get(slot, ()) for check in run(host, desired, settings)]


def local_addresses(host: Host) -> set[str] | None:
    result = host.run(("ip", "-j", "addr"), timeout=TIMEOUT)
    if not result.ok:
        return None
    try:
        data = json.loads(result.stdout)
    except ValueError:
        return None
    return {str(a.get("local")) for link in data for a in link.get("addr_info", []) if a.get("local")}


def check_addresses(host: Host, desired: DesiredNode | None) -> Check:
    if desired is None:
        return Check("replication addresses", "skip", NO_DESIRED)
    local = local_addresses(host)
    if local is None:
        return Check("replication addresses", "skip", "cannot list addresses with `ip -j addr`")
    wanted = {desired.address} | {h.address for vm in desired.vms if vm.drbd is not None
                                  for h in vm.drbd.hosts if h.name == desired.node}
    missing = sorted(wanted - local)
    if missing:
        return Check("replication addresses", "fail", f"{', '.join(missing)} not configured on this host "
                                                      "(DRBD cannot bind its ports)")
    return Check("replication addresses", "ok", ", ".join(sorted(wanted)))


def check_foreign_holders(host: Host, desired: DesiredNode | None) -> Check:
    """Nothing made by hand or by another tool holds a name, minor or port the desired state uses (what could be
    taken over, a dm device without uuid and the desired table, is not in the way)."""
    if desired is None:
        return Check("names and minors", "skip", NO_DESIRED)
    observed = Observer(host, backends=node_backends(desired)).observe()
    blind = [t.name for t in observed.tools if t.state != "available" and t.name in ("lvm", "dmsetup", "drbd")]
    index = ObservedIndex(observed)
    holders = Holders(index, node_backends(desired).replicator)
    refusals = [r for vm in desired.vms if (r := identity_refusal(vm, index, holders))]
    if refusals:
        return Check("names and minors", "fail", "; ".join(refusals))
    if blind:
        return Check("names and minors", "skip", f"{', '.join(blind)} could not be observed here")
    return Check("names and minors", "ok", "no name, minor or port of the desired state is held by anything else")


def resolve_host(name: str) -> frozenset[str] | None:
    """The addresses ``name`` stands for (itself when it is an address), or None when it does not resolve."""
    try:
        return frozenset({str(ipaddress.ip_address(name))})
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return None
    return frozenset(str(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])) for info in found)


def check_fence_path(desired: DesiredNode | None, fence_peers: Mapping[str, str], *,
                     resolve: Callable[[str], frozenset[str] | None] = resolve_host) -> Check:
    """The project's fence-peer handler asks each peer's daemon to outdate its replica; over the replication
    link, a cut of that link alone makes a living peer "unreachable" (exit 5), and DRBD then takes it as
    Outdated in its own view while the peer's disk still says UpToDate. ``fence_peers`` is the daemon's
    RECONCILER_PEERS (node -> host), which the handler uses too."""
    name = "fence-peer path"
    if desired is None:
        return Check(name, "skip", NO_DESIRED)
    replicator = node_backends(desired).replicator
    replication: dict[str, str] = {}
    for vm in desired.vms:
        if vm.drbd is not None and replicator.fencing(vm.drbd).handler:
            replication.update((h.name, h.address) for h in vm.drbd.hosts if h.name != desired.node)
    if not replication:
        return Check(name, "skip", f"no resource here uses `{replicator.fence_handler}`")
    unresolved = sorted(peer for peer in replication if peer in fence_peers and resolve(fence_peers[peer]) is None)
    if unresolved:
        named = ", ".join(f"{p} as {fence_peers[p]!r}" for p in unresolved)
        return Check(name, "warn", f"RECONCILER_PEERS names {named}, which does not resolve here: the fence-peer "
                                   "handler could not reach it")
    # Compared as addresses: a host name in RECONCILER_PEERS that resolves to the replication address is the
    # same link.
    shared = sorted(peer for peer, address in replication.items()
                    if str(ipaddress.ip_address(address)) in (resolve(fence_peers.get(peer, address)) or ()))
    if shared:
        return Check(name, "warn",
                     f"the fence-peer handler reaches {', '.join(shared)} over the replication link "
                     f"({', '.join(replication[p] for p in shared)}): if only that link fails, the living peer is "
                     "'unreachable' (exit 5) and DRBD takes it as Outdated; set RECONCILER_PEERS (and "
                     "RECONCILER_PEER_LISTEN on every node) to management addresses in /etc/reconciler/reconciler.env")
    return Check(name, "ok", ", ".join(f"{peer} at {fence_peers[peer]}" for peer in sorted(replication)))


def check_power_fences(host: Host, desired: DesiredNode | None,
                       power_fences: Mapping[str, PowerFenceSection]) -> list[Check]:
    """Under ``resource-and-stonith`` the fence-peer handler powers off a peer it cannot reach: each such peer
    needs a power fence whose status command works from here (it is only queried, never switched)."""
    if desired is None:
        return [Check("power fence", "skip", NO_DESIRED)]
    replicator = node_backends(desired).replicator
    peers = sorted({h.name for vm in desired.vms if vm.drbd is not None and replicator.fencing(vm.drbd).stonith
                    for h in vm.drbd.hosts if h.name != desired.node})
    if not peers:
        return [Check("power fence", "skip", "no resource here uses fencing_policy: resource-and-stonith")]
    checks = []
    for peer in peers:
        name = f"power fence {peer}"
        spec = power_fences.get(peer)
        if spec is None:
            checks.append(Check(name, "fail", f"resources here use resource-and-stonith but cluster.yaml has no "
                                              f"nodes.{peer}.power_fence: if {peer} cannot be reached, their I/O "
                                              "stays frozen (the handler cannot prove anything); add one, or use "
                                              "fencing_policy: resource-only"))
            continue
        result = host.run(spec.status, timeout=float(spec.timeout))
        state = power_state(result)
        detail = said(result)
        if state == "on":
            checks.append(Check(name, "ok", f"its status command answers on ({detail})"))
        elif state == "off":
            checks.append(Check(name, "warn", f"its status command answers off ({detail}): is {peer} powered off?"))
        else:
            checks.append(Check(name, "fail", f"its status command does not work from here, so a fence of {peer} "
                                              f"could never be verified: {result.describe()}"))
    return checks


def run_checks(host: Host, node: str, desired: DesiredNode | None, *,
               progress: Callable[[Check], None] = lambda c: None,
               fence_peers: Mapping[str, str] | None = None,
               power_fences: Mapping[str, PowerFenceSection] | None = None,
               settings: DaemonSettings | None = None,
               doctors: Sequence[BackendDoctor] = DOCTORS) -> list[Check]:
    """The shared checks and, at their slots, the registered backends' (``doctors``, in order). ``settings``: the
    daemon's RECONCILER_* settings as this node has them (the backends' checks of its configuration read them)."""
    checks: list[Check] = []
    given = settings or {}

    def add(*found: Check) -> None:
        for check in found:
            checks.append(check)
            progress(check)

    add(check_hostname(host, node, desired))
    add(*check_tools(host, doctors))
    add(*_slot(host, desired, doctors, "module", given))
    add(check_fence_path(desired, fence_peers or {}))
    add(*check_power_fences(host, desired, power_fences or {}))
    add(*_slot(host, desired, doctors, "helper", given))
    add(*_slot(host, desired, doctors, "filter", given))
    add(*_slot(host, desired, doctors, "services", given))
    add(*_slot(host, desired, doctors, "settings", given))
    add(*_slot(host, desired, doctors, "migration", given))
    add(check_addresses(host, desired))
    add(*_slot(host, desired, doctors, "storage", given))
    add(check_foreign_holders(host, desired))
    add(*(Check(*found) for found in check_provisioning(host, desired)))
    return checks
