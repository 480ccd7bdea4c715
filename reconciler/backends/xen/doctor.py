"""Xen's part of ``reconciler doctor``: xl, the service that must not manage the domains too, dom0's memory
settings and the transport ``xl migrate -s`` travels over (:class:`reconciler.core.doctor.BackendDoctor`)."""

from __future__ import annotations

import re

from reconciler.backends.xen import migrate
from reconciler.backends.xen import paths as xen_paths
from reconciler.core.doctor import TIMEOUT, BackendDoctor, Check, DaemonSettings, ToolCheck, check_service
from reconciler.host.base import Host
from reconciler.model.desired import DesiredNode
from reconciler.names import check_name


def check_ballooning(host: Host) -> Check:
    info = host.run(("xl", "info"), timeout=TIMEOUT)
    if info.not_found:
        return Check("Xen ballooning", "skip", "xl is not installed")
    conf = host.read_file(xen_paths.XL_CONF) or ""
    autoballoon = re.search(r'^\s*autoballoon\s*=\s*"?(\w+)"?', conf, re.MULTILINE)
    cmdline = re.search(r"^xen_commandline\s*:\s*(.*)$", info.stdout, re.MULTILINE)
    problems = []
    if cmdline is None or "dom0_mem=" not in cmdline.group(1):
        problems.append("Xen's command line has no dom0_mem=, so dom0 owns all memory and `xl info` free_memory "
                        "is misleading")
    if autoballoon is None or autoballoon.group(1).lower() not in ("off", "0"):
        problems.append(f'{xen_paths.XL_CONF} lacks autoballoon="off": starting a domain would shrink dom0')
    if problems:
        return Check("Xen ballooning", "fail", "; ".join(problems))
    return Check("Xen ballooning", "ok", "dom0_mem is fixed and autoballoon is off")


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


def _services(host: Host, desired: DesiredNode | None, settings: DaemonSettings) -> list[Check]:
    return [check_service(host, "xendomains.service")]


def _settings(host: Host, desired: DesiredNode | None, settings: DaemonSettings) -> list[Check]:
    return [check_ballooning(host)]


def _migration(host: Host, desired: DesiredNode | None, settings: DaemonSettings) -> list[Check]:
    return [check_migration_transport(host, desired, settings.get(migrate.TRANSPORT_ENV, ""))]


DOCTOR = BackendDoctor(
    tools=(ToolCheck("xl", ("xl", "info"), r"xen_version\s*:\s*(\S+)"),),
    checks={"services": (_services,), "settings": (_settings,), "migration": (_migration,)},
)
