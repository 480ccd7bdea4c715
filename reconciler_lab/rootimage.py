"""The root file system the lab provisions onto a VM's new XFS (scenario 16): busybox and an init that says,
on the domU's console, which device and file system it booted from and the token this image carries, then
writes numbered records to that file system (scenario 17 migrates the VM live while it writes)."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

from reconciler_lab import paths

INITTAB = b"::sysinit:/etc/rc\n::respawn:/etc/writer\n::shutdown:/bin/umount -a -r\n"
RC = b"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
root=$(awk '$2 == "/" { r = $1 " " $3 } END { print r }' /proc/mounts)
echo "lab-prov: booted from $root with token $(cat /etc/lab-provisioned)" >/dev/console
mkdir -p /records
"""
# The write verifier's writer, as vm100's domU runs it (guest/domu-writer.sh), on the provisioned root itself and
# announcing as this image: each record made durable (fsync) before its number is announced; the announcements'
# times show how long the domU stood still.
_WRITER_EDITS = ((b"/mnt/records/", b"/records/"), (b"lab-domu: ack", b"lab-prov: ack"))


def writer() -> bytes:
    text = (paths.GUEST_DIR / "domu-writer.sh").read_bytes()
    for old, new in _WRITER_EDITS:
        if old not in text:
            raise ValueError(f"guest/domu-writer.sh no longer says {old.decode()!r}: the provisioned image's writer "
                             "cannot be made from it")
        text = text.replace(old, new)
    return text


MARKER = "lab-prov: booted from /dev/xvda xfs with token "
ACK = "lab-prov: ack "


def build(out: Path, token: str) -> None:
    """Write the image as a tar archive at ``out`` (atomically: the daemon may read the directory)."""
    busybox = Path("/bin/busybox").read_bytes()
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w") as archive:
        for name in ("bin", "sbin", "etc", "dev", "proc", "sys", "tmp", "run"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        for name, data, mode in (("bin/busybox", busybox, 0o755), ("etc/inittab", INITTAB, 0o644),
                                 ("etc/rc", RC, 0o755), ("etc/writer", writer(), 0o755),
                                 ("etc/lab-provisioned", token.encode() + b"\n", 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            archive.addfile(info, io.BytesIO(data))
        for link, target in (("bin/sh", "busybox"), ("sbin/init", "../bin/busybox"),
                             ("sbin/poweroff", "../bin/busybox"), ("bin/umount", "busybox")):
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    tmp.replace(out)
