"""One entry per action kind: what the planner, the daemon's gates and the executor need to know about it.

Every rule that differs by kind reads this table, so adding a kind means one entry here (a test fails
when a kind has none) instead of edits to lists spread over the planner, the loop and the executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from reconciler.core.actions import ActionKind
from reconciler.core.seams import Backends

ObservedTool = Literal["lvm", "dmsetup", "replicator", "hypervisor", "files"]
"""The part of the observation an action relies on: when it could not be read, the action is refused.
``replicator`` and ``hypervisor`` stand for the tool of the node's backend in that role (:func:`observed_tool`),
so the table names no backend behind a seam."""

Precheck = Literal["signatures", "forced-promotion", "promotion", "not-mounted", "dm-ours", "lv-ours", "dm-adoptable",
                   "lv-adoptable", "split-brain-incident", "quorum-lost", "provisionable", "unused",
                   "migration-window", "sole-instance"]
"""Checks the executor makes right before running an action, from a fresh read of the node (the gate's
last word; the plan may be seconds or minutes old by then):

- ``signatures``: ``blkid -p`` on every device the action writes and every device beneath it.
- ``forced-promotion``: DRBD's state and generation identifiers still show a brand-new pair.
- ``promotion``: DRBD still shows that the peer is not Primary and cannot write.
- ``not-mounted``: no disk of the domain is mounted in dom0.
- ``dm-ours``: the dm device still carries the project's uuid.
- ``lv-ours``: the LV still has the uuid the plan saw and carries the project's tag.
- ``dm-adoptable``: the dm device still has no uuid and its live table still equals the desired one.
- ``lv-adoptable``: the LV is still the one the plan saw, untagged, of the desired size and stripes.
- ``split-brain-incident``: DRBD still shows the split brain the desired state names (StandAlone, and this
  node's record with the peer's still names the same incident).
- ``provisionable``: the filesystem is about to be mounted (privately) and filled: DRBD still shows this node
  Primary and no peer Primary (the domain cannot run there), ``xl`` shows no domain of the VM here; the
  label (a fresh ``blkid -p``, with the crash journal, in the executor) then says whether it was made for
  provisioning, is not provisioned yet, and no earlier attempt of the same number failed.
- ``unused``: every device the action names is opened exclusively (O_EXCL) and closed again: nothing has it
  mounted in any mount namespace (a provisioning's private mount, which ``/proc/mounts`` cannot show, and
  which Xen's block hotplug script, looking in its own namespace only, would miss) or otherwise claimed.
- ``migration-window``: DRBD still shows the live migration's window open here (the runtime allowance of two
  primaries in force), the resource Connected to its peer with UpToDate data on both sides; for
  ``migrate-domain`` also the peer still Primary.
- ``sole-instance``: a domain is started only where it can be the one instance: DRBD, re-read for the
  action's ``resource``, shows no peer Primary (inside a live migration's window the peer may be Primary and
  run the domain), and ``xl`` lists none of its live migration names here. What cannot be read refuses.
- ``quorum-lost``: DRBD still shows the resource without quorum here (a destroy for lost quorum is never run
  on a domain whose disk has quorum again); for ``reboot-node`` also still Primary (a node is never rebooted
  for a resource that has been demoted or has quorum again).
"""

UndoCheck = Literal["unstarted-domain"]
"""What the executor checks, after an action failed, before it runs the action's ``undo`` commands:

- ``unstarted-domain``: a domain of that name exists, paused, with no CPU time at all: what `xl create`
  leaves when it is killed before it unpauses the domain. Its guest never ran, so destroying it loses nothing.
"""


@dataclass(frozen=True)
class KindSpec:
    tool: ObservedTool
    timeout_s: float  # per command of the action
    removes: bool = False  # takes something away: held whole by the mass-deletion guard
    peer_revision: bool = False  # both DRBD sides must agree: waits until the peer applied the same revision
    boot_gated: bool = False  # changes who runs a domain: never decided from a cached revision after a start
    prechecks: tuple[Precheck, ...] = ()
    undo_check: UndoCheck | None = None  # when the action fails: what proves its ``undo`` commands safe


DEFAULT_TIMEOUT = 60.0

REGISTRY: dict[ActionKind, KindSpec] = {
    # Taking over what was made by hand: metadata only (a uuid, a tag); nothing is written to the devices.
    "adopt-lv": KindSpec("lvm", DEFAULT_TIMEOUT, prechecks=("lv-adoptable",)),
    "adopt-stripe": KindSpec("dmsetup", DEFAULT_TIMEOUT, prechecks=("dm-adoptable",)),
    # lvcreate wipes signatures and zeroes the start, which touches the disk.
    "create-lv": KindSpec("lvm", 300.0),
    "extend-lv": KindSpec("lvm", DEFAULT_TIMEOUT),
    "remove-lv": KindSpec("lvm", DEFAULT_TIMEOUT, removes=True, peer_revision=True, prechecks=("lv-ours",)),
    "create-stripe": KindSpec("dmsetup", DEFAULT_TIMEOUT),
    "reload-stripe": KindSpec("dmsetup", DEFAULT_TIMEOUT, prechecks=("dm-ours",)),
    "resume-stripe": KindSpec("dmsetup", DEFAULT_TIMEOUT, prechecks=("dm-ours",)),
    "remove-stripe": KindSpec("dmsetup", DEFAULT_TIMEOUT, removes=True, peer_revision=True, prechecks=("dm-ours",)),
    "write-drbd-config": KindSpec("files", DEFAULT_TIMEOUT),
    "remove-drbd-config": KindSpec("files", DEFAULT_TIMEOUT, removes=True, peer_revision=True),
    "create-md": KindSpec("replicator", 300.0, prechecks=("signatures",)),
    "drbd-up": KindSpec("replicator", DEFAULT_TIMEOUT),
    "drbd-adjust": KindSpec("replicator", DEFAULT_TIMEOUT, peer_revision=True),
    # An online resize resyncs the new area before it returns.
    "drbd-resize": KindSpec("replicator", 900.0, peer_revision=True),
    "drbd-down": KindSpec("replicator", DEFAULT_TIMEOUT, removes=True, peer_revision=True),
    "promote": KindSpec("replicator", DEFAULT_TIMEOUT, boot_gated=True, prechecks=("promotion",)),
    "promote-force-initial": KindSpec("replicator", DEFAULT_TIMEOUT, boot_gated=True, prechecks=("forced-promotion",)),
    "demote": KindSpec("replicator", DEFAULT_TIMEOUT, boot_gated=True),
    # Split brain resolved by commit: the discarding node demotes and drops its changes (destructive); the
    # survivor only connects. Neither waits for the peer's revision: the incident itself is what both agree on.
    "discard-my-data": KindSpec("replicator", DEFAULT_TIMEOUT, boot_gated=True, prechecks=("split-brain-incident",)),
    "split-brain-connect": KindSpec("replicator", DEFAULT_TIMEOUT, prechecks=("split-brain-incident",)),
    "make-fs": KindSpec("replicator", 900.0, prechecks=("signatures",)),
    "make-swap": KindSpec("lvm", 300.0, prechecks=("signatures",)),
    # Mount (in a private namespace), fill and unmount a filesystem made for it; its timeout is the VM's own
    # (``provision.timeout``) plus a grace, given when the action is built. Only ever on a Primary whose
    # domain runs nowhere; boot-gated like the start it precedes.
    "provision-fs": KindSpec("replicator", 1800.0, boot_gated=True, prechecks=("provisionable", "unused")),
    "write-xen-config": KindSpec("files", DEFAULT_TIMEOUT),
    "remove-xen-config": KindSpec("files", DEFAULT_TIMEOUT, removes=True),
    # Longer than the transient unit's TimeoutStartSec (300 s): on an emulated CPU under load a start took
    # over 120 s in the lab. `xl create` killed mid-way leaves a paused domain that blocks every later start.
    "start-domain": KindSpec("hypervisor", 330.0, boot_gated=True, prechecks=("not-mounted", "unused", "sole-instance"),
                             undo_check="unstarted-domain"),
    # `xl shutdown -w` waits for the guest to finish its own shutdown.
    "shutdown-domain": KindSpec("hypervisor", 330.0, boot_gated=True),
    # A Primary that lost quorum: its disk fails or freezes every write, so a clean shutdown cannot finish,
    # and the other side may take the VM over once its grace ends. Never boot-gated: it only stops.
    "destroy-domain": KindSpec("hypervisor", DEFAULT_TIMEOUT, prechecks=("quorum-lost",)),
    # Its demotion: never boot-gated (it decides nothing from a revision and cannot make a second writer), and
    # re-checked right before (quorum back: the node stays the VM's Primary and starts the domain again).
    "quorum-demote": KindSpec("replicator", DEFAULT_TIMEOUT, prechecks=("quorum-lost",)),
    # The last resort when a Primary without quorum cannot be stopped: the kernel forgets the role and the domain.
    # `systemctl reboot` returns once systemd took the job; with --force --force the call never returns.
    "reboot-node": KindSpec("replicator", DEFAULT_TIMEOUT, prechecks=("quorum-lost",)),
    "set-domain-memory": KindSpec("hypervisor", DEFAULT_TIMEOUT),
    "set-domain-vcpus": KindSpec("hypervisor", DEFAULT_TIMEOUT),
    # A live migration's steps (reconciler.plan.migration). Opening the window and the target's promotion need
    # both nodes at one revision and are never decided from a cached one after a start; closing it never waits:
    # it only takes the allowance away. `xl migrate` copies the guest's memory, hence its own budget.
    "open-migration-window": KindSpec("replicator", DEFAULT_TIMEOUT, peer_revision=True, boot_gated=True),
    "promote-for-migration": KindSpec("replicator", DEFAULT_TIMEOUT, peer_revision=True, boot_gated=True,
                                      prechecks=("migration-window",)),
    "migrate-domain": KindSpec("hypervisor", 900.0, peer_revision=True, boot_gated=True,
                               prechecks=("migration-window",)),
    "close-migration-window": KindSpec("replicator", DEFAULT_TIMEOUT),
}


def spec(kind: ActionKind) -> KindSpec:
    return REGISTRY[kind]


def observed_tool(kind: ActionKind, backends: Backends) -> str:
    """The tool status (``ObservedNode.tools``) ``kind`` relies on, its backend's role resolved to its tool."""
    tool = spec(kind).tool
    if tool == "hypervisor":
        return backends.hypervisor.tool
    if tool == "replicator":
        return backends.replicator.tool
    return tool


def kinds_where(flag: Literal["removes", "peer_revision", "boot_gated"]) -> frozenset[ActionKind]:
    return frozenset(kind for kind, entry in REGISTRY.items() if getattr(entry, flag))


ALL_KINDS: tuple[ActionKind, ...] = get_args(ActionKind)
