"""Tool versions remembered between one-shot commands on a real node (`reconciler plan`, `observe`).

The version probes (`lvm version`, `dmsetup version`, `drbdadm --version`: the backends' registered
`VERSION_PROBES`) cost about as much as the `vgs` and `lvs` a pass needs, and their answers change only when a
package is upgraded or the node reboots (the device-mapper driver's version comes from the running kernel). So
a fresh command reuses the versions a previous one found, as long as the same binaries (path, inode, size,
modification time) and the same boot are in place; anything else, or any doubt about the file, means probing
again.

The file lives in /run (gone at reboot), owned by root, mode 0600; it is only ever read as data.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from reconciler.backends.providers import VERSION_PROBES
from reconciler.core.facts import ToolVersions, VersionProbe
from reconciler.model.observed import ToolStatus

CACHE_DIR = Path("/run/reconciler")
CACHE_FILE = "tool-versions.json"
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_MAX_BYTES = 64 * 1024


def fingerprint(probes: Sequence[VersionProbe] = VERSION_PROBES) -> str:
    """What the versions depend on: this boot, whether device-mapper's driver is there, the binaries PATH finds."""
    parts = [f"dm-control:{os.path.exists('/dev/mapper/control')}"]
    try:
        parts.append(_BOOT_ID.read_text().strip())
    except OSError:
        parts.append("no-boot-id")
    for name in dict.fromkeys(probe.binary for probe in probes):
        found = shutil.which(name)
        if found is None:
            parts.append(f"{name}:missing")
            continue
        try:
            real = os.path.realpath(found)
            st = os.stat(real)
        except OSError:
            parts.append(f"{name}:unreadable")
            continue
        parts.append(f"{name}:{real}:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def load(directory: Path = CACHE_DIR, probes: Sequence[VersionProbe] = VERSION_PROBES) -> ToolVersions | None:
    """The remembered versions for the current fingerprint, or None (probe then)."""
    path = directory / CACHE_FILE
    try:
        st = path.lstat()
        if not path.is_file() or path.is_symlink() or st.st_uid != os.geteuid() or st.st_mode & 0o077 \
                or st.st_size > _MAX_BYTES:
            return None
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("fingerprint") != fingerprint(probes):
            return None
        tools = data["tools"]
        if not isinstance(tools, dict) or list(tools) != [probe.name for probe in probes]:
            return None  # remembered for other probes than these
        return ToolVersions(tools=tuple((name, ToolStatus.model_validate(status)) for name, status in tools.items()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(versions: ToolVersions, directory: Path = CACHE_DIR, probes: Sequence[VersionProbe] = VERSION_PROBES) -> None:
    """Remember ``versions`` when every probe answered; a node that could not be asked is asked next time."""
    if not versions.complete:
        return
    data = {"fingerprint": fingerprint(probes),
            "tools": {name: status.model_dump(mode="json") for name, status in versions.tools}}
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        partial = directory / f".{CACHE_FILE}.{os.getpid()}"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        os.replace(partial, directory / CACHE_FILE)
    except OSError:
        return  # not root, or /run read-only: the next command probes again
