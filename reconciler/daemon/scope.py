"""Start domains outside the service's cgroup, so restarting or stopping the daemon cannot kill them.

``xl create`` leaves a background ``xl`` process per domain (it handles the domain's reboot and crash
actions) and, for some guests, a device-model process. Started from the daemon they would live in
``reconciler.service``'s cgroup, and ``systemctl restart reconciler`` would kill them (KillMode=mixed
sends the final SIGKILL to everything left in the cgroup). ``systemd-run --scope`` puts them in a
transient scope unit of their own under ``machine.slice`` instead, as libvirt does for its guests.
Outside systemd (a terminal, the simulator) commands run unchanged.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence

from reconciler.host.base import DEFAULT_TIMEOUT, CommandResult, Host
from reconciler.names import check_name


def under_systemd() -> bool:
    return bool(os.environ.get("INVOCATION_ID")) and os.path.isdir("/run/systemd/system")


def scoped_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """``xl create /etc/xen/NAME.cfg`` wrapped in its own scope; any other argv unchanged."""
    args = tuple(argv)
    if len(args) >= 3 and args[0] == "xl" and args[1] == "create":
        name = posixpath.basename(args[-1]).removesuffix(".cfg")
        check_name(name, "domain")
        return ("systemd-run", "--scope", "--quiet", "--collect", "--slice=machine.slice",
                f"--description=Xen domain {name} (started by reconciler)", "--", *args)
    return args


class ScopedHost:
    """The host seam, with domain starts moved into their own scope unit."""

    def __init__(self, inner: Host) -> None:
        self._inner = inner

    @property
    def node(self) -> str:
        return self._inner.node

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        return self._inner.run(scoped_argv(argv), timeout=timeout, stdin=stdin)

    def read_file(self, path: str) -> str | None:
        return self._inner.read_file(path)

    def list_dir(self, path: str) -> tuple[str, ...]:
        return self._inner.list_dir(path)

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        self._inner.write_file(path, content, mode)

    def remove_file(self, path: str) -> None:
        self._inner.remove_file(path)
