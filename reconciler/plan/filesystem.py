"""The filesystem and the swaps of one VM, made once, only where ``blkid -p`` finds no signature.

Neither belongs to one backend: the filesystem is made on the replicated device, the swaps on local LVs.
"""

from __future__ import annotations

from reconciler.core import provisioning
from reconciler.core.actions import Command, cmd
from reconciler.core.vm_builder import VmBuilder
from reconciler.names import check_device_path, check_name


def mkfs_xfs(device: str, label: str | None = None) -> Command:
    argv = ["mkfs.xfs"]  # never -f: an existing filesystem must make it fail
    if label:
        argv += ["-L", check_name(label, "filesystem label")]
    return cmd(*argv, check_device_path(device))


def mkswap(device: str, label: str | None = None) -> Command:
    argv = ["mkswap"]
    if label:
        argv += ["-L", check_name(label, "swap label")]
    return cmd(*argv, check_device_path(device))


def plan_make_fs(b: VmBuilder, after: tuple[str | None, ...]) -> str | None:
    fs = b.vm.filesystem
    if fs is None:
        return None
    data = tuple(lv.path for lv in b.vm.lvs if lv.purpose == "data")
    return b.add("make-fs", fs.key, "create",
                 f"make an XFS filesystem on {fs.device} (only if blkid -p finds no signature there "
                 "nor a foreign one on any LV beneath it)",
                 commands=(mkfs_xfs(fs.device, fs.label),), depends_on=after, destructive=True,
                 probe_before=(fs.device,), probe_beneath=data, identity=",".join(data))


def plan_provision(b: VmBuilder, after: tuple[str | None, ...]) -> str | None:
    """Fill the new filesystem once, before the domain first starts (reconciler.core.provisioning).

    Planned wherever the filesystem is: the label read right before the step says whether it runs, is done
    already (every later start), failed (the VM is Failed until a new attempt is stated), does not apply
    (another label: the guest's filesystem, left alone) or is refused (no filesystem, or unreadable). The
    first command only reads the node's provisioning config, so a provisioner or image missing there fails
    before the label records an attempt, and the next pass tries again once the node is fixed."""
    wanted = b.vm.provision
    fs = b.vm.filesystem
    if wanted is None or fs is None:
        return None
    device = fs.device
    timeout = wanted.timeout_s + provisioning.OUTER_GRACE_S
    check = cmd(*provisioning.check_argv(b.vm.name, wanted.provisioner, wanted.image), mutating=False)
    run = cmd(*provisioning.run_argv(b.vm.name, device, wanted.provisioner, wanted.image, wanted.timeout_s))
    # Never repeated by the retry loop: a second run would find the first one's files (and refuse).
    run = run.model_copy(update={"retry": False})
    commands = (check, cmd(*provisioning.label_argv(device, provisioning.label_try(wanted.attempt))), run,
                cmd(*provisioning.label_argv(device, provisioning.LABEL_DONE)))
    return b.add("provision-fs", wanted.key, "create",
                 f"provision {device} from the {wanted.source} (attempt {wanted.attempt}), once: mounted privately, "
                 "only while empty, only if the label says it was made for it and not provisioned yet",
                 commands=commands, depends_on=after, timeout=timeout, devices=(device,), identity=str(wanted.attempt))


def plan_make_swaps(b: VmBuilder) -> tuple[str, ...]:
    made = []
    for swap in b.vm.swaps:
        lv = next((lv for lv in b.vm.lvs if lv.path == swap.device), None)
        created = b.find("create-lv", lv.key) if lv else None
        made.append(b.add("make-swap", swap.key, "create",
                          f"make swap on {swap.device} (only if blkid -p finds no signature there)",
                          commands=(mkswap(swap.device, swap.label),), depends_on=(created,), destructive=True,
                          probe_before=(swap.device,), identity=swap.device))
    return tuple(made)
