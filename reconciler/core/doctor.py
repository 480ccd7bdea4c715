"""What a backend adds to ``reconciler doctor``: its tools and its checks, run in the shared order.

The doctor (:mod:`reconciler.daemon.node.doctor`) runs the shared checks and, at fixed places (a
:data:`DoctorSlot`), the checks each registered backend declares (:data:`reconciler.backends.doctors.DOCTORS`,
in registration order): a backend's checks read its own tools, handler paths and config paths.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from reconciler.host.base import Host
from reconciler.model.desired import DesiredNode

Verdict = Literal["ok", "warn", "fail", "skip"]
TIMEOUT = 20.0
NO_DESIRED = "no desired state known (give a directory or --state-dir)"


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    detail: str


@dataclass(frozen=True)
class ToolCheck:
    """A tool that must answer its version here."""

    name: str
    argv: tuple[str, ...]
    pattern: str  # finds the version in what it printed
    required: bool = True


# Where in the doctor's order a backend's checks run: after the tools, the kernel's part of the node
# ("module": the replication's module and handlers; "helper": how the kernel runs them), the device filter,
# the services that must not also manage the resources, the hypervisor's settings, the live migration's
# transport, the storage.
DoctorSlot = Literal["module", "helper", "filter", "services", "settings", "migration", "storage"]
SLOTS: tuple[DoctorSlot, ...] = ("module", "helper", "filter", "services", "settings", "migration", "storage")

# The daemon's settings as this node has them: its RECONCILER_* variables, from the environment, else from the
# daemon's environment file (what a backend's check of how the daemon is configured reads).
DaemonSettings = Mapping[str, str]

DoctorCheck = Callable[[Host, DesiredNode | None, DaemonSettings], list[Check]]


@dataclass(frozen=True)
class BackendDoctor:
    """One backend's tools and checks, by the slot they run in."""

    tools: tuple[ToolCheck, ...] = ()
    checks: Mapping[DoctorSlot, tuple[DoctorCheck, ...]] = field(default_factory=dict)


def check_tool(host: Host, tool: ToolCheck) -> Check:
    result = host.run(tool.argv, timeout=TIMEOUT)
    said = result.stdout + "\n" + result.stderr
    match = re.search(tool.pattern, said)
    if result.not_found:
        return Check(f"tool {tool.name}", "fail" if tool.required else "warn", f"`{tool.argv[0]}` is not installed")
    if match is None:
        return Check(f"tool {tool.name}", "fail", f"`{' '.join(tool.argv)}` did not report a version: "
                                                  f"{result.describe()}")
    return Check(f"tool {tool.name}", "ok", f"version {match.group(1)}")


ENABLED_STATES = ("enabled", "enabled-runtime", "static", "alias", "indirect", "generated")


def check_service(host: Host, unit: str) -> Check:
    """A service that would also start or stop the reconciler's resources must not be enabled."""
    result = host.run(("systemctl", "is-enabled", unit), timeout=TIMEOUT)
    state = result.stdout.strip()
    if result.not_found:
        return Check(f"service {unit}", "skip", "systemctl is not available")
    if state in ENABLED_STATES:
        return Check(f"service {unit}", "fail",
                     f"{unit} is {state}: it would also start/stop these resources at boot and shutdown. "
                     f"`systemctl disable {unit}` (reconciler-shutdown.service does the shutdown part)")
    return Check(f"service {unit}", "ok", state or "not installed")
