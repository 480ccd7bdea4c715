"""Start domains as transient services of their own, so that neither the daemon's lifetime nor its sandbox
reaches them.

``xl create`` leaves a background ``xl`` process per domain (it handles the domain's reboot and crash
actions) and, for some guests, a device model (qemu) and hotplug scripts. Started from the daemon they
would live in ``reconciler.service``'s cgroup, and ``systemctl restart reconciler`` would kill them
(KillMode=mixed sends the final SIGKILL to everything left in the cgroup). A ``systemd-run --scope`` would
move them to a cgroup of their own, but a scope's processes are still the daemon's children: they keep its
seccomp filter, capability bounding set, namespaces and read-only file system. So the domain is started as
a transient *service*, ``reconciler-domain-NAME.service`` under ``machine.slice``, which PID 1 spawns
with no more than systemd's defaults: the daemon's unit can then be locked down without a domain that can
no longer start. ``Type=forking`` fits ``xl create``: it returns once the domain is created, and the
remaining ``xl`` monitor keeps the unit active until the domain is gone (``--collect`` then unloads it).
When the start fails, the unit's journal (what ``xl`` said) is added to the error.
At system shutdown the domain's unit must outlive ``reconciler-shutdown.service``'s ExecStop: the ``xl``
monitor is what destroys a domain once it has shut down (its ``on_poweroff`` action) and releases its
disks; stopped first, it leaves the domain in the shutdown state holding the DRBD device, and the clean
shutdown degrades into waiting out the timeout and destroying it. ``Before=`` that unit reverses into
"stopped after it" at shutdown (libvirt orders its machines before ``virt-guest-shutdown.target`` for the
same reason).
Outside systemd (a terminal, the simulator) commands run unchanged.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from collections.abc import Sequence

from reconciler.host.base import DEFAULT_TIMEOUT, CommandResult, HostWrapper
from reconciler.names import check_name

UNIT_PREFIX = "reconciler-domain-"
START_TIMEOUT_S = 300
SHUTDOWN_UNIT = "reconciler-shutdown.service"


def under_systemd() -> bool:
    return bool(os.environ.get("INVOCATION_ID")) and os.path.isdir("/run/systemd/system")


def domain_unit(name: str) -> str:
    """The transient unit of domain ``name`` (a checked name; '+' escaped the way systemd-escape does)."""
    check_name(name, "domain")
    return UNIT_PREFIX + name.replace("+", "\\x2b") + ".service"


def _domain_started(argv: tuple[str, ...]) -> str | None:
    if len(argv) >= 3 and argv[0] == "xl" and argv[1] == "create":
        return posixpath.basename(argv[-1]).removesuffix(".cfg")
    return None


PROVISION_PREFIX = "reconciler-provision-"


def _provisioned(argv: tuple[str, ...]) -> tuple[str, str] | None:
    """(VM, timeout) of ``unshare ... reconciler helper provision-run --vm VM ... --timeout S``."""
    if not argv or argv[0] != "unshare" or "provision-run" not in argv or "--vm" not in argv:
        return None
    vm = argv[argv.index("--vm") + 1]
    timeout = argv[argv.index("--timeout") + 1] if "--timeout" in argv else str(START_TIMEOUT_S)
    return check_name(vm, "VM"), timeout


def scoped_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """``xl create /etc/xen/NAME.cfg`` as a transient service of its own; a provisioning too (the daemon's own
    sandbox may neither mount nor make namespaces: ``SystemCallFilter=~@mount``, ``RestrictNamespaces=yes``),
    waited for, its output passed through, and stopped by systemd at its deadline should the daemon give up
    waiting first; any other argv unchanged."""
    args = tuple(argv)
    provisioning = _provisioned(args)
    if provisioning is not None:
        vm, timeout = provisioning
        limit = int(timeout) + 60 if timeout.isdigit() else START_TIMEOUT_S
        return ("systemd-run", f"--unit={PROVISION_PREFIX}{vm.replace('+', chr(92) + 'x2b')}.service", "--wait",
                "--pipe", "--collect", "--quiet", "--no-ask-password", "--service-type=exec",
                f"--description=Provisioning of {vm} (run by reconciler)", f"--property=RuntimeMaxSec={limit}",
                "--", *args)
    name = _domain_started(args)
    if name is None:
        return args
    unit = domain_unit(name)
    return ("systemd-run", f"--unit={unit}", "--slice=machine.slice", "--service-type=forking", "--collect",
            "--quiet", "--no-ask-password", f"--description=Xen domain {name} (started by reconciler)",
            f"--property=TimeoutStartSec={START_TIMEOUT_S}", f"--property=Before={SHUTDOWN_UNIT}", "--", *args)


class ScopedHost(HostWrapper):
    """The host seam, with domain starts moved into transient services of their own."""

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        wrapped = scoped_argv(argv)
        result = self._inner.run(wrapped, timeout=timeout, stdin=stdin)
        name = _domain_started(tuple(argv))
        if result.ok or name is None:
            return result
        # systemd-run only says the job failed; what xl said is in the unit's journal.
        journal = self._inner.run(("journalctl", "--no-pager", "--quiet", "--output=cat", "--lines=20",
                                   f"--unit={domain_unit(name)}"), timeout=10)
        if journal.ok and journal.stdout.strip():
            return dataclasses.replace(result, stderr=f"{result.stderr.rstrip()}\n{journal.stdout.rstrip()}")
        return result
