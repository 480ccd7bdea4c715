"""Xen's part of ``reconciler doctor``: xl, the service that must not manage the domains too, and dom0's
memory settings (:class:`reconciler.core.doctor.BackendDoctor`)."""

from __future__ import annotations

import re

from reconciler.backends.xen import paths as xen_paths
from reconciler.core.doctor import TIMEOUT, BackendDoctor, Check, ToolCheck, check_service
from reconciler.host.base import Host
from reconciler.model.desired import DesiredNode


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


def _services(host: Host, desired: DesiredNode | None) -> list[Check]:
    return [check_service(host, "xendomains.service")]


def _settings(host: Host, desired: DesiredNode | None) -> list[Check]:
    return [check_ballooning(host)]


DOCTOR = BackendDoctor(
    tools=(ToolCheck("xl", ("xl", "info"), r"xen_version\s*:\s*(\S+)"),),
    checks={"services": (_services,), "settings": (_settings,)},
)
