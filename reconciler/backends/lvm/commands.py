"""The LVM commands a plan runs: create, take over, extend and remove a logical volume.

Every LV the reconciler creates or takes over carries the project's tag (:data:`reconciler.ownership.LV_TAG`),
which the safety gate checks before any removal; every name passes :func:`reconciler.names.check_name`.
"""

from __future__ import annotations

from reconciler.core.actions import Command, cmd
from reconciler.names import check_name
from reconciler.ownership import LV_TAG


def lvcreate(vg: str, name: str, size_bytes: int, stripes: int = 1, stripe_size_bytes: int | None = None) -> Command:
    """Wipe signatures and zero the start, so reused disk space never looks provisioned; the tag marks it ours."""
    argv = ["lvcreate", "--yes", "--wipesignatures", "y", "--zero", "y", "--addtag", LV_TAG, "-L", f"{size_bytes}b"]
    if stripes > 1:
        argv += ["-i", str(stripes)]
        if stripe_size_bytes:
            argv += ["-I", f"{stripe_size_bytes // 1024}k"]
    argv += ["-n", check_name(name, "logical volume"), check_name(vg, "volume group")]
    return cmd(*argv)


def lvchange_addtag(vg: str, name: str) -> Command:
    """Take over an LV made by hand: the tag is metadata only, the LV's data and mapping stay as they are."""
    return cmd("lvchange", "--addtag", LV_TAG, f"{check_name(vg, 'volume group')}/{check_name(name, 'logical volume')}")


def lvextend(vg: str, name: str, size_bytes: int) -> Command:
    target = f"{check_name(vg, 'volume group')}/{check_name(name, 'logical volume')}"
    return cmd("lvextend", "-L", f"{size_bytes}b", target)


def lvremove(vg: str, name: str) -> Command:
    return cmd("lvremove", "-y", f"{check_name(vg, 'volume group')}/{check_name(name, 'logical volume')}")
