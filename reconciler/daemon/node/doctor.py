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
from reconciler.backends.drbd.render import DEFAULT_FENCE_PEER
from reconciler.backends.registry import node_backends
from reconciler.backends.xen import migrate
from reconciler.core.doctor import (
    NO_DESIRED,
    TIMEOUT,
    BackendDoctor,
    Check,
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
from reconciler.names import check_name
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


def _slot(host: Host, desired: DesiredNode | None, doctors: Sequence[BackendDoctor], slot: DoctorSlot) -> list[Check]:
    return [check for d in doctors for run in d.checks.get(slot, ()) for check in run(host, desired)]


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


def check_migration_transport(host: Host, desired: DesiredNode | None, transport: str | None) -> Check:
    """What ``xl migrate -s`` travels over, when a VM allows live migration: configured (the daemon's
    RECONCILER_MIGRATE_TRANSPORT), acceptable to xl's shell, its command installed, and reaching each peer that
    shares such a VM with this node (``TRANSPORT PEER true``, as xl would open it, without a migration)."""
    if desired is None:
        return Check("migration transport", "skip", "no desired state known")
    migrating = sorted(vm.name for vm in desired.vms if vm.domain is not None and vm.domain.live_migration)
    if not migrating:
        return Check("migration transport", "ok", "no VM allows live migration; no transport is needed")
    names = ", ".join(migrating)
    if not transport:
        return Check("migration transport", "fail",
                     f"{names} allow live migration, but no transport is configured: set {migrate.TRANSPORT_ENV} "
                     f"(e.g. '{migrate.DEFAULT_TRANSPORT}') in the daemon's environment file, with key-based root "
                     "ssh to the peer; until then their moves wait")
    try:
        migrate.check_transport(transport)
    except migrate.TransportError as exc:
        return Check("migration transport", "fail", str(exc))
    words = tuple(transport.split(" "))
    peers = sorted({p for vm in desired.vms if vm.domain is not None and vm.domain.live_migration for p in vm.peers})
    for peer in peers:
        result = host.run((*words, check_name(peer, "node"), "true"), timeout=TIMEOUT)
        if result.not_found:
            return Check("migration transport", "fail", f"{words[0]} is not installed (the transport of {names})")
        if not result.ok:
            return Check("migration transport", "fail",
                         f"`{transport} {peer} true` failed, so `xl migrate` cannot reach {peer}: {result.describe()}")
    return Check("migration transport", "ok", f"`{transport}` reaches {', '.join(peers)} ({names})")


def check_foreign_holders(host: Host, desired: DesiredNode | None) -> Check:
    """Nothing made by hand or by another tool holds a name, minor or port the desired state uses (what could be
    taken over, a dm device without uuid and the desired table, is not in the way)."""
    if desired is None:
        return Check("names and minors", "skip", NO_DESIRED)
    observed = Observer(host).observe()
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
    replication: dict[str, str] = {}
    for vm in desired.vms:
        if vm.drbd is not None and DEFAULT_FENCE_PEER in vm.drbd.config_text:
            replication.update((h.name, h.address) for h in vm.drbd.hosts if h.name != desired.node)
    if not replication:
        return Check(name, "skip", f"no resource here uses `{DEFAULT_FENCE_PEER}`")
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


STONITH_POLICY = "fencing resource-and-stonith;"


def check_power_fences(host: Host, desired: DesiredNode | None,
                       power_fences: Mapping[str, PowerFenceSection]) -> list[Check]:
    """Under ``resource-and-stonith`` the fence-peer handler powers off a peer it cannot reach: each such peer
    needs a power fence whose status command works from here (it is only queried, never switched)."""
    if desired is None:
        return [Check("power fence", "skip", NO_DESIRED)]
    peers = sorted({h.name for vm in desired.vms if vm.drbd is not None and STONITH_POLICY in vm.drbd.config_text
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
               migrate_transport: str | None = None,
               doctors: Sequence[BackendDoctor] = DOCTORS) -> list[Check]:
    """The shared checks and, at their slots, the registered backends' (``doctors``, in order)."""
    checks: list[Check] = []

    def add(*found: Check) -> None:
        for check in found:
            checks.append(check)
            progress(check)

    add(check_hostname(host, node, desired))
    add(*check_tools(host, doctors))
    add(*_slot(host, desired, doctors, "module"))
    add(check_fence_path(desired, fence_peers or {}))
    add(*check_power_fences(host, desired, power_fences or {}))
    add(*_slot(host, desired, doctors, "helper"))
    add(*_slot(host, desired, doctors, "filter"))
    add(*_slot(host, desired, doctors, "services"))
    add(*_slot(host, desired, doctors, "settings"))
    add(check_migration_transport(host, desired, migrate_transport))
    add(check_addresses(host, desired))
    add(*_slot(host, desired, doctors, "storage"))
    add(check_foreign_holders(host, desired))
    add(*(Check(*found) for found in check_provisioning(host, desired)))
    return checks
