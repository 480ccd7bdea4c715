"""Typed actions: what apply will do, with the exact argv lists or file contents.

An action is a value: the plan is a list of them, the CLI prints them, apply executes them. Builders
validate every name through :mod:`reconciler.names` before it reaches an argv or a path.
"""

from __future__ import annotations

from typing import Literal

from reconciler.model.base import Frozen
from reconciler.model.desired import DemoteFailureAction
from reconciler.names import check_device_path

ActionKind = Literal[
    "adopt-lv",
    "adopt-stripe",
    "create-lv",
    "extend-lv",
    "create-stripe",
    "reload-stripe",
    "resume-stripe",
    "write-drbd-config",
    "create-md",
    "drbd-up",
    "drbd-adjust",
    "drbd-resize",
    "promote",
    "promote-force-initial",
    "demote",
    "discard-my-data",
    "split-brain-connect",
    "make-swap",
    "make-fs",
    "provision-fs",
    "write-xen-config",
    "start-domain",
    "shutdown-domain",
    "destroy-domain",
    "quorum-demote",
    "reboot-node",
    "set-domain-memory",
    "set-domain-vcpus",
    "open-migration-window",
    "promote-for-migration",
    "migrate-domain",
    "close-migration-window",
    "drbd-down",
    "remove-drbd-config",
    "remove-stripe",
    "remove-lv",
    "remove-xen-config",
]

Change = Literal["create", "change", "delete"]
WaitFor = Literal["", "peer-backing-size", "peer-revision", "peer-state", "boot-gate", "one-shot", "local-state"]
"""What a waiting action waits for, as a value code can test (``waiting`` is the sentence for the operator)."""

# Seconds. Each kind's own timeout (reconciler.core.action_registry) replaces this when the action is built.
DEFAULT_COMMAND_TIMEOUT = 60.0

# The reboot-node action's command by the VM's on_demote_failure: systemd's reboot, as its FailureAction= names
# them: a clean reboot, one that skips the services' own stop, and one that calls reboot(2) at once (the only
# one certain to finish while I/O is frozen). The node's, not a backend's: the daemon's escalation asks it too.
REBOOT_ARGV: dict[DemoteFailureAction, tuple[str, ...]] = {
    "reboot": ("systemctl", "reboot"),
    "reboot-force": ("systemctl", "reboot", "--force"),
    "reboot-immediate": ("systemctl", "reboot", "--force", "--force"),
}


class Command(Frozen):
    argv: tuple[str, ...]
    stdin: str | None = None
    timeout_s: float = DEFAULT_COMMAND_TIMEOUT
    mutating: bool = True
    # False: one attempt only, whatever the failure (a promotion that runs DRBD's fence-peer handler, which may
    # power a node off, is never repeated by the retry loop).
    retry: bool = True


class Action(Frozen):
    """One step of a plan.

    ``refused`` and ``waiting`` are reasons: a refused action is never run and its dependents are skipped;
    a waiting one is requeued for a later pass without counting as a failure. ``probe_before`` lists the
    devices whose ``blkid -p`` signature apply checks right before running (the gate's last word), and
    ``probe_beneath`` the devices under them (each leg of a stripe), which are probed too but never written.
    ``safety`` is the DRBD resource's safety mechanism, for the promotion rule re-checked right before.
    ``identity`` lists the LVs beneath the written device (comma-separated paths, or an LV uuid for an
    extend or removal); apply resolves the paths to LV uuids for the crash journal, so a recreated device
    is never mistaken for the one an interrupted step was writing. ``undo`` clears what the action leaves
    half-made when it fails; it runs only when the kind's undo check (``reconciler.core.action_registry``) proves
    it safe on a fresh look.
    """

    id: str
    kind: ActionKind
    key: str
    vm: str
    change: Change
    description: str
    commands: tuple[Command, ...] = ()
    file_path: str | None = None
    file_content: str | None = None
    depends_on: tuple[str, ...] = ()
    destructive: bool = False
    probe_before: tuple[str, ...] = ()
    probe_beneath: tuple[str, ...] = ()
    identity: str = ""
    safety: str = ""
    # The DRBD hosts that hold no data by design (a quorum tiebreaker), for the promotion rule re-checked right
    # before: their disk state says nothing about the data.
    diskless_peers: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    # The DRBD resource beneath a domain to start, re-read right before the start (no peer may be Primary).
    resource: str = ""
    refused: str = ""
    waiting: str = ""
    wait_for: WaitFor = ""
    reason: str = ""
    undo: tuple[Command, ...] = ()

    @property
    def symbol(self) -> str:
        if self.refused:
            return "!"
        if self.waiting:
            return "="
        return {"create": "+", "change": "~", "delete": "-"}[self.change]

    @property
    def argvs(self) -> tuple[tuple[str, ...], ...]:
        return tuple(c.argv for c in self.commands)

    def with_(self, **changes: object) -> Action:
        return self.model_copy(update=changes)


def action_id(kind: str, key: str) -> str:
    return f"{kind}@{key}"


def cmd(*argv: str, stdin: str | None = None, timeout: float | None = None, mutating: bool = True) -> Command:
    limit = timeout if timeout is not None else DEFAULT_COMMAND_TIMEOUT
    return Command(argv=tuple(argv), stdin=stdin, timeout_s=limit, mutating=mutating)


# --- wiping a device (the executor's, after the gate) ------------------------------------------------


def wipefs_all(device: str) -> Command:
    return cmd("wipefs", "-a", check_device_path(device), timeout=120.0)
