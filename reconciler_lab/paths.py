"""Where the lab keeps what it fetched and what a run makes: outside the checkout, never in git."""

from __future__ import annotations

import os
import re
from pathlib import Path

CACHE = Path(os.environ.get("RECONCILER_LAB_CACHE", "/var/cache/reconciler-lab"))
DEBS = CACHE / "debs"
KERNEL_TREE = CACHE / "kernel"
XEN_ROOT = CACHE / "xenroot"
XEN_IMAGE = CACHE / "xen-4.17-amd64"
DOM0_INITRD = CACHE / "dom0-initrd.img"
DOMU_INITRD = CACHE / "domu-initrd.img"
STAMP = CACHE / "setup.json"
# A second lab may run beside the first (its own run directory and namespace), e.g. a benchmark.
RUN = Path(os.environ.get("RECONCILER_LAB_RUN", CACHE / "run"))
NETNS = os.environ.get("RECONCILER_LAB_NETNS", "reconciler-lab")
if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", NETNS):
    raise ValueError(f"RECONCILER_LAB_NETNS={NETNS!r}: expected a short name of lower-case letters, digits and '-'")
PROJECT = Path(__file__).resolve().parent.parent
GUEST_DIR = Path(__file__).resolve().parent / "guest"


def kernel_version() -> str:
    """The version of the unpacked Debian kernel (``6.1.0-57-amd64``)."""
    images = sorted((KERNEL_TREE / "boot").glob("vmlinuz-*"))
    if not images:
        raise FileNotFoundError(f"no kernel under {KERNEL_TREE}/boot: run scripts/lab setup")
    return images[-1].name.removeprefix("vmlinuz-")


def vmlinuz() -> Path:
    return KERNEL_TREE / "boot" / f"vmlinuz-{kernel_version()}"
