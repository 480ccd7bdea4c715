"""A clean Debian 12 root for installing the package into, cached between runs outside the repository.

The root is made once with mmdebstrap from Debian's package registry (minbase plus the package's
dependencies, about 60 MB of downloads) and kept as a tarball in ``$RECONCILER_DEB_TEST_CACHE``
(default /var/cache/reconciler-deb-test). Every test unpacks a fresh copy, so nothing one test installs
is seen by the next. Commands run in the root through ``unshare`` (own mount and PID namespaces, /proc
of its own), so no mount outlives the command, even when it fails.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

SUITE = "bookworm"
# The package's Depends (python3, git, lvm2) and procps, which doctor reads the system with.
INCLUDE = ("python3", "git", "lvm2", "procps")
MIRROR = "http://deb.debian.org/debian"
BUILD_TIMEOUT = 900.0
COMMAND_TIMEOUT = 300.0


def cache_dir() -> Path:
    return Path(os.environ.get("RECONCILER_DEB_TEST_CACHE", "/var/cache/reconciler-deb-test"))


def cached_root() -> Path:
    key = hashlib.sha256(" ".join((SUITE, *INCLUDE)).encode()).hexdigest()[:12]
    return cache_dir() / f"{SUITE}-minbase-{key}.tar.gz"


def unavailable_reason() -> str | None:
    """Why a clean root cannot be used here, or None."""
    if os.geteuid() != 0:
        return "needs root to unpack a Debian root and install a package into it"
    for program in ("dpkg-deb", "unshare", "chroot", "tar"):
        if shutil.which(program) is None:
            return f"{program} is not installed"
    if not cached_root().exists() and shutil.which("mmdebstrap") is None:
        return f"no cached Debian root at {cached_root()} and mmdebstrap is not installed to make one"
    return None


def ensure_root_tarball() -> tuple[Path | None, str]:
    """The cached tarball, made now if missing; (None, why) when it cannot be made (e.g. no network)."""
    tarball = cached_root()
    if tarball.exists():
        return tarball, "cached"
    tarball.parent.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_name(tarball.name + ".partial.tar.gz")
    proc = subprocess.run(
        ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(INCLUDE)}", SUITE, str(partial), MIRROR],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        return None, f"mmdebstrap could not make a Debian root (no network to {MIRROR}?): {proc.stderr.strip()[-500:]}"
    partial.rename(tarball)
    return tarball, "made"


def unpack(tarball: Path, target: Path) -> None:
    target.mkdir(parents=True)
    # Our own root, unpacked as made: device nodes, owners and modes.
    subprocess.run(["tar", "--numeric-owner", "-xzf", str(tarball), "-C", str(target)], capture_output=True,
                   timeout=COMMAND_TIMEOUT, check=True)


def in_root(root: Path, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside ``root`` (own mount and PID namespaces, fresh /proc, no network needed)."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/root"}
    return subprocess.run(
        ["unshare", "--mount", "--pid", "--fork", f"--mount-proc={root / 'proc'}", "chroot", str(root), *argv],
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False, env=env, stdin=subprocess.DEVNULL)
