"""DRBD's part of ``reconciler doctor``: drbd-utils, the kernel module and the handlers it runs, and the
service that must not manage the resources too (:class:`reconciler.core.doctor.BackendDoctor`)."""

from __future__ import annotations

import re

from reconciler.core.doctor import NO_DESIRED, BackendDoctor, Check, DaemonSettings, ToolCheck, check_service
from reconciler.host.base import Host
from reconciler.model.desired import DesiredNode


def check_drbd_module(host: Host, desired: DesiredNode | None = None) -> Check:
    text = host.read_file("/proc/drbd")
    if text is None:
        return Check("DRBD kernel module", "warn", "not loaded (/proc/drbd is absent); `drbdadm up` loads it, "
                                                    "but check that the drbd module is installed for this kernel")
    match = re.search(r"version:\s*(\S+)", text)
    version = match.group(1) if match else None
    if desired is not None and version is not None:
        # The rendered resource files follow the declared version: a DRBD 9 file on an 8.4 module (or the
        # reverse) is rejected by drbdadm at the first `up`.
        running = "9" if version.split(".")[0] == "9" else "8.4" if version.startswith("8.") else version
        if running != desired.drbd_version:
            return Check("DRBD kernel module", "fail",
                         f"version {version} runs here, but cluster.yaml declares drbd_version "
                         f"{desired.drbd_version!r} for this node; fix one of them")
    return Check("DRBD kernel module", "ok", f"version {version or 'unknown'}")


USERMODE_HELPER_PATH = "/sys/module/drbd/parameters/usermode_helper"
# The program DRBD runs for every handler; the default is drbdadm, which reads the resource file and runs the
# handler configured there (the reconciler's fence-peer and split-brain commands).
_HANDLER_RUNNERS = frozenset({"drbdadm"})
_NO_HANDLER = frozenset({"true", "false"})


def check_usermode_helper(host: Host) -> Check:
    """DRBD's usermode helper must be drbdadm, or none of the rendered handlers ever runs.

    What DRBD does without it (drbd_nl.c): with the value ``disabled`` (DRBD 9), ``drbd_maybe_khelper()``
    returns DRBD_UMH_DISABLED and ``conn_try_outdate_peer()`` returns true on that: fencing counts as
    succeeded although the peer was never outdated, and the split-brain and before-resync handlers are
    skipped. With ``/bin/true`` (Ganeti's convention) the kernel runs true instead of drbdadm: no handler
    runs, and its exit code 0 is none of fence-peer's answers (3-7), so ``conn_try_outdate_peer()`` logs
    "fence-peer helper broken, returned 0" and fails (a resource-and-stonith primary keeps its I/O frozen).
    An empty value makes the call itself fail, and DRBD ignores that errno the same way (ret 0). Either way the
    reconciler never hears of a split brain and its fence-peer never outdates the peer.
    """
    name = "DRBD usermode helper"
    text = host.read_file(USERMODE_HELPER_PATH)
    if text is None:
        return Check(name, "skip", f"{USERMODE_HELPER_PATH} is absent (the drbd module is not loaded)")
    value = text.strip().strip("\0")
    base = value.rsplit("/", 1)[-1]
    fix = (f"the handlers (fence-peer, split-brain) never run and DRBD treats fencing as done or failed without "
           f"asking the peer; set it back: `echo /sbin/drbdadm > {USERMODE_HELPER_PATH}` and remove "
           "usermode_helper= from the drbd module options (/etc/modprobe.d) and the kernel command line")
    if not value:
        return Check(name, "fail", f"{USERMODE_HELPER_PATH} is empty: {fix}")
    if value == "disabled" or base in _NO_HANDLER:
        return Check(name, "fail", f"{USERMODE_HELPER_PATH} is {value!r}: {fix}")
    if base in _HANDLER_RUNNERS:
        return Check(name, "ok", f"{value} (runs the handlers configured in the resource files)")
    return Check(name, "warn", f"{USERMODE_HELPER_PATH} is {value!r}, not drbdadm: make sure it runs the handler "
                               "drbdadm would (fence-peer and split-brain go to the reconciler)")


_HANDLER = re.compile(r'^\s*([a-z][a-z0-9-]*)\s+"([^"]+)"\s*;', re.MULTILINE)


def check_drbd_handlers(host: Host, desired: DesiredNode | None) -> Check:
    """Every program the rendered resources name as a DRBD handler must be executable here. The kernel runs
    handlers as usermode helpers: a missing one fails silently from the daemon's point of view, so a split
    brain is never recorded (the daemon cannot report it, and would treat the StandAlone connection as drift)
    and fencing can prove nothing."""
    if desired is None:
        return Check("DRBD handlers", "skip", NO_DESIRED)
    programs: dict[str, str] = {}
    for vm in desired.vms:
        if vm.drbd is None:
            continue
        for handler, command in _HANDLER.findall(vm.drbd.config_text.split("handlers", 1)[-1]):
            programs.setdefault(command.split()[0], f"{handler} of {vm.drbd.name}")
    if not programs:
        return Check("DRBD handlers", "skip", "no resource names a handler")
    missing = [f"{program} ({use})" for program, use in sorted(programs.items())
               if not host.run(("test", "-x", program), timeout=10).ok]
    if missing:
        return Check("DRBD handlers", "fail",
                     f"not an executable file here: {', '.join(missing)}; the kernel runs these when DRBD fences or "
                     "detects a split brain (install the package, which provides /usr/bin/reconciler)")
    return Check("DRBD handlers", "ok", ", ".join(sorted(programs)))


def _module(host: Host, desired: DesiredNode | None, settings: DaemonSettings) -> list[Check]:
    return [check_drbd_module(host, desired), check_drbd_handlers(host, desired)]


def _helper(host: Host, desired: DesiredNode | None, settings: DaemonSettings) -> list[Check]:
    return [check_usermode_helper(host)]


def _services(host: Host, desired: DesiredNode | None, settings: DaemonSettings) -> list[Check]:
    return [check_service(host, "drbd.service")]


DOCTOR = BackendDoctor(
    tools=(ToolCheck("drbd-utils", ("drbdadm", "--version"), r"DRBDADM_VERSION=(\S+)"),),
    checks={"module": (_module,), "helper": (_helper,), "services": (_services,)},
)
