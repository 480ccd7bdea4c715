"""The root file system the lab provisions onto a VM's new XFS (scenario 17): busybox and an init that says,
on the domU's console, which device and file system it booted from and the token this image carries."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

INITTAB = b"::sysinit:/etc/rc\n::shutdown:/bin/umount -a -r\n"
RC = b"""#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
root=$(awk '$2 == "/" { r = $1 " " $3 } END { print r }' /proc/mounts)
echo "lab-prov: booted from $root with token $(cat /etc/lab-provisioned)" >/dev/console
"""
MARKER = "lab-prov: booted from /dev/xvda xfs with token "


def build(out: Path, token: str) -> None:
    """Write the image as a tar archive at ``out`` (atomically: the daemon may read the directory)."""
    busybox = Path("/bin/busybox").read_bytes()
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w") as archive:
        for name in ("bin", "sbin", "etc", "dev", "proc", "sys", "tmp"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        for name, data, mode in (("bin/busybox", busybox, 0o755), ("etc/inittab", INITTAB, 0o644),
                                 ("etc/rc", RC, 0o755), ("etc/lab-provisioned", token.encode() + b"\n", 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            archive.addfile(info, io.BytesIO(data))
        for link, target in (("bin/sh", "busybox"), ("sbin/init", "../bin/busybox"),
                             ("sbin/poweroff", "../bin/busybox"), ("bin/mount", "busybox"), ("bin/awk", "busybox"),
                             ("bin/cat", "busybox"), ("bin/umount", "busybox")):
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    tmp.replace(out)
