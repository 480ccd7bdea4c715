"""The deep DRBD drift check: ask ``drbdadm -d adjust RES`` (a dry run) what adjust would change.

It catches every option the observation cannot see (protocol, timeouts, disk options), at the price of
one read-only command per resource that is up, so it is opt-in (``--deep``) rather than part of every pass.
"""

from __future__ import annotations

from reconciler.backends.registry import node_backends
from reconciler.core.seams import Replicator
from reconciler.host.base import Host
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode

DRY_RUN_TIMEOUT = 30.0


def drbd_dry_run(host: Host, desired: DesiredNode, observed: ObservedNode,
                 replicator: Replicator | None = None) -> dict[str, str]:
    """Resource -> the commands ``adjust`` would run, for each resource that is up and would change (through
    the node's replicator unless ``replicator`` is given)."""
    if replicator is None:
        replicator = node_backends(desired).replicator
    changes: dict[str, str] = {}
    for vm in desired.vms:
        if vm.drbd is None or vm.suspended or observed.drbd.resource(vm.drbd.name) is None:
            continue
        result = host.run(replicator.dry_run_adjust_argv(vm.drbd.name), timeout=DRY_RUN_TIMEOUT)
        would = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        if result.ok and would:
            changes[vm.drbd.name] = "; ".join(would)
    return changes
