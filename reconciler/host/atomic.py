"""The one atomic file writer: temporary file, fsync, rename, fsync of the directory."""

from __future__ import annotations

import os
import stat
import tempfile

from reconciler.host.base import HostFileError


def write_atomic(path: str, content: str, mode: int = 0o644) -> None:
    """Readers see the old or the new content, never a torn file; a planted symlink is never followed."""
    directory = os.path.dirname(path) or "."
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        raise HostFileError(0, f"refusing to write {path}: it exists and is not a regular file "
                               "(a symlink or device there is not ours to replace)")
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_directory(directory)


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Make the names in ``path`` (new files, a rename into it) durable, as a file's fsync makes its data."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
