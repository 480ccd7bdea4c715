"""The Debian package for the lab's nodes: built with ``scripts/build-deb`` once per source tree and kept in the
cache (never in git), where the nodes read it over the shared root (``/mnt/host/...``)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from reconciler_lab import paths
from reconciler_lab.proc import LabError, run

DEB_DIR = paths.CACHE / "deb"
KEEP = 3   # builds kept besides the current one


def _git(*args: str) -> str:
    return run(("git", "-C", str(paths.PROJECT), *args), timeout=120).stdout


def source_key() -> str:
    """The commit the checkout is at, plus a digest of its uncommitted changes (tracked and new files) if any:
    the same key means the same files go into the package."""
    head = _git("rev-parse", "HEAD").strip()
    status = _git("status", "--porcelain", "--untracked-files=all")
    if not status.strip():
        return head
    digest = hashlib.sha256(_git("diff", "HEAD", "--binary").encode())
    for line in sorted(status.splitlines()):
        if line.startswith("?? "):
            path = paths.PROJECT / line[3:]
            digest.update(line.encode())
            if path.is_file():
                digest.update(path.read_bytes())
    return f"{head}-dirty-{digest.hexdigest()[:12]}"


def _readable(path: Path) -> None:
    """The guests read the cache over 9p as another user's files."""
    for parent in (DEB_DIR, path.parent):
        os.chmod(parent, 0o755)  # noqa: S103
    os.chmod(path, 0o644)


def build_deb() -> Path:
    """The package of this checkout: a cached build for the same source key, or a new ``scripts/build-deb``."""
    key = source_key()
    target = DEB_DIR / key
    found = sorted(target.glob("reconciler_*.deb"))
    if found:
        return found[-1]
    DEB_DIR.mkdir(parents=True, exist_ok=True)
    scratch = DEB_DIR / f".build-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    done = run((str(paths.PROJECT / "scripts" / "build-deb"), "--out", str(scratch)), timeout=1800,
               cwd=paths.PROJECT)
    built = sorted(scratch.glob("reconciler_*.deb"))
    if len(built) != 1:
        raise LabError(f"scripts/build-deb left {[p.name for p in built]} in {scratch}:\n{done.stdout[-2000:]}")
    scratch.rename(target)
    deb = target / built[0].name
    _readable(deb)
    older = sorted((p for p in DEB_DIR.iterdir() if p.is_dir() and p != target and not p.name.startswith(".")),
                   key=lambda p: p.stat().st_mtime)
    for stale in older[:-KEEP]:
        shutil.rmtree(stale, ignore_errors=True)
    return deb


def in_guest(deb: Path) -> str:
    """Where a node finds the package: the host's root, read through the plain 9p mount."""
    return f"/mnt/host{deb}"
