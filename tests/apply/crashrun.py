"""Run one apply pass on a simulated node and SIGKILL this very process at a chosen point.

    python -m tests.apply.crashrun SIM_DIR NODE N before|after [DESIRED_DIR]

The N-th mutating operation (a command that changes the node, or a write or removal of a file other than
the journal) is where the process dies: just before it starts, or just after it took effect but before
apply learned its result. Exit status 3 means the pass ended before reaching operation N.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from reconciler.apply.journal import DEFAULT_JOURNAL_PATH
from reconciler.host.base import DEFAULT_TIMEOUT, CommandResult, Host
from tests.apply.simlab import SimLab

READ_ONLY = {"vgs", "lvs", "pvs", "blkid", "xl list", "xl info", "dmsetup info", "dmsetup table", "dmsetup version",
             "dmsetup ls", "drbdsetup status", "drbdsetup events2", "drbdadm show-gi", "drbdadm status",
             "drbdadm dump", "lvm version", "drbdadm -d"}


def mutating(argv: Sequence[str]) -> bool:
    if any(word in ("--version", "version") for word in argv[1:2]):
        return False  # the observer's one-time version probes
    return argv[0] not in READ_ONLY and " ".join(argv[:2]) not in READ_ONLY


class KillingHost:
    def __init__(self, inner: Host, kill_at: int, mode: str) -> None:
        self.inner = inner
        self.kill_at = kill_at
        self.mode = mode
        self.seen = 0
        self.ops: list[tuple[str, ...]] = []

    @property
    def node(self) -> str:
        return self.inner.node

    def _before(self, what: tuple[str, ...]) -> None:
        self.seen += 1
        self.ops.append(what)
        if self.mode == "before" and self.seen == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def _after(self) -> None:
        if self.mode == "after" and self.seen == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        if not mutating(argv):
            return self.inner.run(argv, timeout=timeout, stdin=stdin)
        self._before(tuple(argv))
        result = self.inner.run(argv, timeout=timeout, stdin=stdin)
        self._after()
        return result

    def read_file(self, path: str) -> str | None:
        return self.inner.read_file(path)

    def list_dir(self, path: str) -> tuple[str, ...]:
        return self.inner.list_dir(path)

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        if path == DEFAULT_JOURNAL_PATH:
            self.inner.write_file(path, content, mode)
            return
        self._before(("write", path))
        self.inner.write_file(path, content, mode)
        self._after()

    def remove_file(self, path: str) -> None:
        if path == DEFAULT_JOURNAL_PATH:
            self.inner.remove_file(path)
            return
        self._before(("remove", path))
        self.inner.remove_file(path)
        self._after()


def main(argv: list[str]) -> int:
    sim, node, n, mode = argv[:4]
    lab = SimLab(Path(sim)) if len(argv) < 5 else SimLab(Path(sim), desired_dir=Path(argv[4]))
    lab.apply(node, wrap=lambda host: KillingHost(host, int(n), mode))
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
