"""One-time provisioning of a VM's filesystem: where its progress is recorded, and the commands that do it.

The record is the XFS filesystem label of the replicated device. DRBD replicates it, so the peer sees it
after a failover; it lives outside the guest's files, so nothing the guest does to its files erases it (only
``xfs_admin -L`` or a new filesystem does); and a re-clone of the repository or a reboot leaves it alone.
It moves through three values, each written while the filesystem is not mounted anywhere:

- ``rprov-new``: written by ``mkfs.xfs -L`` when this project made the filesystem for a VM that names a
  provisioning: the proof that the filesystem was made for it and was never filled.
- ``rprov-tryN``: written right before attempt N runs. Seen again at a later pass, attempt N failed or
  was interrupted: the VM is Failed until the desired state names a higher attempt.
- ``rprov-done``: written after the provisioning finished and the filesystem was unmounted. Never again.

XFS labels hold at most 12 characters, so N goes up to 999. The guest owns the device and may change the
label: any other label means the filesystem is the guest's, left alone (provisioning does not apply and the
domain starts); setting one of these labels is within a guest's reach too (docs/security.md).
"""

from __future__ import annotations

import re

from reconciler.model.desired import MAX_PROVISION_ATTEMPT, PROVISION_LABEL_NEW
from reconciler.names import check_absolute_path, check_device_path, check_name

LABEL_PREFIX = "rprov-"
LABEL_NEW = PROVISION_LABEL_NEW
LABEL_DONE = "rprov-done"
MAX_ATTEMPT = MAX_PROVISION_ATTEMPT
_TRY_RE = re.compile(r"rprov-try([1-9][0-9]{0,2})")

# The program that runs inside the private mount namespace (``reconciler helper``): where the package installs
# it (and where DRBD's handlers find it too), so the daemon's own PATH does not decide what runs as root.
RECONCILER = "/usr/bin/reconciler"
# Between the provisioning's own deadline (the helper kills its command then) and the outer one (the host
# kills ``unshare``, whose --kill-child takes the helper and, with the PID namespace, everything it started).
OUTER_GRACE_S = 120


def label_try(attempt: int) -> str:
    if not 1 <= attempt <= MAX_ATTEMPT:
        raise ValueError(f"attempt {attempt} is outside 1..{MAX_ATTEMPT}")
    return f"{LABEL_PREFIX}try{attempt}"


def tried_attempt(label: str | None) -> int | None:
    """N when ``label`` records that attempt N started (``rprov-tryN``), else None."""
    match = _TRY_RE.fullmatch(label or "")
    return int(match.group(1)) if match else None


def label_argv(device: str, label: str) -> tuple[str, ...]:
    """``xfs_admin -L``: changes the label in every superblock; it refuses a mounted filesystem."""
    return ("xfs_admin", "-L", check_name(label, "filesystem label"), check_device_path(device))


def source_args(provisioner: str | None, image: str | None) -> tuple[str, ...]:
    if (provisioner is None) == (image is None):
        raise ValueError("a provisioning names exactly one of a provisioner and an image")
    if provisioner is not None:
        return ("--provisioner", check_name(provisioner, "provisioner"))
    return ("--image", check_absolute_path(image or "", "image"))


def check_argv(vm: str, provisioner: str | None, image: str | None) -> tuple[str, ...]:
    """Reads the node's provisioning config and checks the provisioner or image is there; writes nothing."""
    return (RECONCILER, "helper", "provision-check", "--vm", check_name(vm, "VM"),
            *source_args(provisioner, image))


def run_argv(vm: str, device: str, provisioner: str | None, image: str | None, timeout_s: int) -> tuple[str, ...]:
    """The whole mount, fill and unmount as one invocation in a mount namespace of its own (so no other
    process sees the mount, and it cannot outlive the helper) and a PID namespace of its own (so nothing the
    provisioner starts outlives it either: the namespace's init is the helper, and its end kills them all)."""
    return ("unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--",
            RECONCILER, "helper", "provision-run", "--vm", check_name(vm, "VM"), "--device", check_device_path(device),
            "--timeout", str(int(timeout_s)), *source_args(provisioner, image))


def unused_argv(devices: tuple[str, ...]) -> tuple[str, ...]:
    """Proves each device unused by opening it exclusively (O_EXCL): the kernel refuses that while any
    mount namespace has it mounted or any other holder claimed it, which ``/proc/mounts`` cannot show."""
    return (RECONCILER, "helper", "unused", *(check_device_path(d) for d in devices))
