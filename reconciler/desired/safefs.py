"""Reading a desired-state directory without trusting it: bounded, regular files only, no link followed.

The directory may come from anyone who can push, and both ``validate`` and the daemon (as root) read it.
So every step is taken relative to an already opened directory with ``O_NOFOLLOW``: a symbolic link
anywhere (the directory itself, ``vms/``, a subdirectory, a file) is reported and never followed; a FIFO,
socket or device is reported from ``lstat`` and never opened (opening a FIFO for reading blocks until a
writer comes); a file is opened with ``O_NONBLOCK`` and checked again with ``fstat`` so that a swap
between the two looks cannot slip one in. Sizes and counts are bounded before anything is read whole.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from reconciler.desired.errors import Issue
from reconciler.sizes import MIB

CLUSTER_FILE = "cluster.yaml"
VMS_DIR = "vms"
VM_SUFFIXES = (".yaml", ".yml")

# A VM file is a few hundred bytes and a cluster file of a thousand nodes some 100 KiB; 50,000 files are
# five times the largest fleet benchmarked. Together these keep one load below a few hundred MB of memory.
MAX_FILE_BYTES = MIB
MAX_FILES = 50_000
MAX_TOTAL_BYTES = 64 * MIB
MAX_DIR_DEPTH = 8

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class UnsafePath(Exception):
    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message)
        self.issue = issue


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def _special(rel: str, mode: int) -> Issue:
    return Issue(rel, 1, 1, f"is {_kind(mode)}; the desired state is read from regular files only",
                 "commit the file itself (not a link, pipe or device) or remove it")


def open_directory(path: str) -> int:
    """An fd of ``path``, reached component by component without following any symbolic link."""
    start = "/" if os.path.isabs(path) else "."
    fd = os.open(start, _O_DIR)
    walked = "" if start == "." else "/"
    try:
        for part in [p for p in path.split("/") if p not in ("", ".")]:
            walked = os.path.join(walked, part) if walked else part
            try:
                info = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                raise UnsafePath(Issue(path, 1, 1, "no such directory",
                                       "give the desired-state directory (the one holding cluster.yaml)")) from None
            if not stat.S_ISDIR(info.st_mode):
                link = stat.S_ISLNK(info.st_mode)
                hint = ("give the real directory (the output of `realpath`), not a link to it; a link is never "
                        "followed" if link else "give the desired-state directory (the one holding cluster.yaml)")
                last = os.path.normpath(walked) == os.path.normpath(path)
                if last and not link:
                    raise UnsafePath(Issue(path, 1, 1, "not a directory", hint))
                what = f"is {_kind(info.st_mode)}" if last else f"{walked} is {_kind(info.st_mode)}"
                raise UnsafePath(Issue(path, 1, 1, f"{what}, not a directory", hint))
            child = os.open(part, _O_DIR, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


@dataclass
class DesiredFiles:
    """What a desired-state directory holds: the texts to parse, and the problems met while reading."""

    cluster: str | None = None
    cluster_present: bool = False
    vms: list[tuple[str, str]] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    total_bytes: int = 0
    entries: int = 0


def _read_file(dir_fd: int, name: str, rel: str, files: DesiredFiles) -> str | None:
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode):
            files.issues.append(_special(rel, info.st_mode))
            return None
        if info.st_size > MAX_FILE_BYTES:
            files.issues.append(_too_big(rel, info.st_size))
            return None
        if files.total_bytes + info.st_size > MAX_TOTAL_BYTES:
            files.issues.append(Issue(rel, 1, 1, f"the desired state is larger than {MAX_TOTAL_BYTES} bytes in all",
                                      "split the fleet into several repositories or paths"))
            return None
        fd = os.open(name, _O_FILE, dir_fd=dir_fd)
        try:
            now = os.fstat(fd)
            if not stat.S_ISREG(now.st_mode) or now.st_ino != info.st_ino:
                files.issues.append(_special(rel, now.st_mode))
                return None
            data = os.read(fd, MAX_FILE_BYTES + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        files.issues.append(Issue(rel, 1, 1, f"cannot read the file: {exc.strerror}", "check its permissions"))
        return None
    if len(data) > MAX_FILE_BYTES:
        files.issues.append(_too_big(rel, len(data)))
        return None
    files.total_bytes += len(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        files.issues.append(Issue(rel, 1, 1, f"not UTF-8 text: {exc.reason}", "save the file as UTF-8"))
        return None


def _too_big(rel: str, size: int) -> Issue:
    return Issue(rel, 1, 1, f"the file has {size} bytes, more than the {MAX_FILE_BYTES} a desired-state file may have",
                 "one file holds one VM (or the cluster); split it or remove what is not desired state")


def _scan_vms(dir_fd: int, rel: str, depth: int, files: DesiredFiles) -> None:
    try:
        entries = sorted(os.scandir(dir_fd), key=lambda e: e.name)
    except OSError as exc:
        files.issues.append(Issue(rel, 1, 1, f"cannot list the directory: {exc.strerror}", "check its permissions"))
        return
    for entry in entries:
        files.entries += 1
        if files.entries > MAX_FILES:
            files.issues.append(Issue(rel, 1, 1, f"more than {MAX_FILES} files and directories under {VMS_DIR}/",
                                      "split the fleet into several repositories or paths"))
            return
        child = f"{rel}/{entry.name}"
        if entry.name.startswith("."):
            # Hidden files are never desired state (editor swap files, .gitkeep); one that looks like a VM
            # file is reported, so that no VM can hide behind a dot.
            if entry.name.lower().endswith(VM_SUFFIXES):
                files.issues.append(Issue(child, 1, 1, "is a hidden file and is not read",
                                          "remove the leading '.' from its name, or remove the file"))
            continue
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError as exc:
            files.issues.append(Issue(child, 1, 1, f"cannot read: {exc.strerror}", "check its permissions"))
            continue
        if stat.S_ISDIR(mode):
            if depth >= MAX_DIR_DEPTH:
                files.issues.append(Issue(child, 1, 1, f"directories nested deeper than {MAX_DIR_DEPTH} levels",
                                          "keep the VM files at most a few directories deep"))
                continue
            try:
                sub = os.open(entry.name, _O_DIR, dir_fd=dir_fd)
            except OSError as exc:
                files.issues.append(Issue(child, 1, 1, f"cannot open the directory: {exc.strerror}",
                                          "check its permissions"))
                continue
            try:
                _scan_vms(sub, child, depth + 1, files)
            finally:
                os.close(sub)
        elif not stat.S_ISREG(mode):
            files.issues.append(_special(child, mode))
        elif not entry.name.endswith(VM_SUFFIXES):
            files.issues.append(Issue(child, 1, 1, "is not read: only files ending in .yaml or .yml (lower case) "
                                      f"under {VMS_DIR}/ describe VMs",
                                      "rename it to end in .yaml, or move it out of vms/"))
        else:
            text = _read_file(dir_fd, entry.name, child, files)
            if text is not None:
                files.vms.append((child, text))


def read_desired(directory: str) -> DesiredFiles:
    """Read ``directory``: raises :class:`UnsafePath` when the directory itself cannot be used."""
    files = DesiredFiles()
    root = open_directory(directory)
    try:
        try:
            info = os.stat(CLUSTER_FILE, dir_fd=root, follow_symlinks=False)
        except FileNotFoundError:
            info = None
        if info is not None:
            files.cluster_present = True
            files.cluster = _read_file(root, CLUSTER_FILE, CLUSTER_FILE, files)
        try:
            vms_info = os.stat(VMS_DIR, dir_fd=root, follow_symlinks=False)
        except FileNotFoundError:
            return files
        if not stat.S_ISDIR(vms_info.st_mode):
            files.issues.append(_special(VMS_DIR, vms_info.st_mode))
            return files
        vms = os.open(VMS_DIR, _O_DIR, dir_fd=root)
        try:
            _scan_vms(vms, VMS_DIR, 1, files)
        finally:
            os.close(vms)
    finally:
        os.close(root)
    files.vms.sort()
    return files
