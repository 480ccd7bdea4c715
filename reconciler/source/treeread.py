"""A revision's desired state, read from git's object store exactly as committed.

``git archive`` honours ``.gitattributes`` (``export-ignore`` drops a file, ``export-subst`` rewrites one),
so a commit could show reviewers one desired state and the daemons another. Here the tree is listed with
``git ls-tree`` and every blob read with ``git cat-file --batch``: what is committed is what is loaded.

A pusher decides the content, so it is bounded before anything is read whole (listing size, file count,
file and total size: the loader's own limits), and whatever cannot be read as plain files is refused like
an invalid revision, with the reason: a symbolic link or submodule in the desired state, a path that is
not a directory, a name that cannot be a file name.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from reconciler.desired.safefs import CLUSTER_FILE, MAX_FILE_BYTES, MAX_FILES, MAX_TOTAL_BYTES, VMS_DIR
from reconciler.host.atomic import fsync_directory
from reconciler.printable import escape
from reconciler.source.errors import GitFailed, SourceError
from reconciler.source.gitcmd import GitRunner

# One ls-tree line is the mode, type, id, size and path: a few hundred bytes even for long paths.
_MAX_LISTING = MAX_FILES * 4 * 1024
_REGULAR = {"100644", "100755", "100664"}
_LINK = "120000"
_SUBMODULE = "160000"


class UnreadableRevision(SourceError):
    """The revision's content cannot be read as the desired state; ``reasons`` say why, one per problem."""

    def __init__(self, reasons: tuple[str, ...]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


@dataclass(frozen=True)
class _Entry:
    mode: str
    kind: str
    oid: str
    size: int
    path: str


def _desired(path: str) -> bool:
    return path in (CLUSTER_FILE, VMS_DIR) or path.startswith(VMS_DIR + "/")


def _parse_listing(data: bytes) -> list[_Entry]:
    entries = []
    for record in data.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        fields = meta.decode("ascii", "replace").split()
        if len(fields) != 4:
            raise SourceError(f"unexpected git ls-tree output: {escape(record[:200].decode('utf-8', 'replace'))}")
        mode, kind, oid, size = fields
        path = raw_path.decode("utf-8", "surrogateescape")
        entries.append(_Entry(mode, kind, oid, int(size) if size.isdigit() else -1, path))
    return entries


def _unsafe_name(path: str) -> str | None:
    parts = path.split("/")
    if any(part in ("", ".", "..", ".git") for part in parts):
        return "has a path component git itself refuses to check out ('', '.', '..' or '.git')"
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "has a name that is not UTF-8"
    return None


def _check(entries: list[_Entry]) -> tuple[list[_Entry], list[str]]:
    """The entries to write, and the reasons (if any) the revision must be refused."""
    problems: list[str] = []
    keep: list[_Entry] = []
    total = 0
    for entry in entries:
        shown = escape(entry.path)
        desired = _desired(entry.path)
        bad_name = _unsafe_name(entry.path)
        if bad_name is not None:
            problems.append(f"{shown}: {bad_name}")
            continue
        if entry.mode not in _REGULAR:
            if desired:
                what = {_LINK: "a symbolic link", _SUBMODULE: "a submodule"}.get(entry.mode, f"mode {entry.mode}")
                problems.append(f"{shown}: is {what} in the commit; the desired state is read from regular files "
                                "only (commit the file itself)")
            continue  # outside the desired state (docs, scripts): not needed, never written
        if entry.size > MAX_FILE_BYTES or entry.size < 0:
            if desired:
                problems.append(f"{shown}: the file has {entry.size} bytes, more than the {MAX_FILE_BYTES} a "
                                "desired-state file may have")
            continue
        total += entry.size
        keep.append(entry)
    if len(keep) > MAX_FILES:
        problems.append(f"the revision has {len(keep)} files, more than {MAX_FILES}; point the daemon's --path at "
                        "the desired-state directory")
    elif total > MAX_TOTAL_BYTES:
        problems.append(f"the revision's files add up to {total} bytes, more than {MAX_TOTAL_BYTES}; point the "
                        "daemon's --path at the desired-state directory")
    return keep, problems


def _read_blobs(git: GitRunner, git_dir: str, entries: list[_Entry], timeout: float) -> dict[str, bytes]:
    request = b"".join(e.oid.encode() + b"\n" for e in entries)
    limit = sum(e.size + 128 for e in entries)
    out = git.bounded_output(["--git-dir", git_dir, "cat-file", "--batch"], stdin=request, max_bytes=limit,
                             timeout=timeout)
    if out.returncode != 0 or len(out.stdout) > limit:
        raise GitFailed(("cat-file", "--batch"), out.returncode, out.stderr or "more output than the listed sizes")
    blobs: dict[str, bytes] = {}
    data = out.stdout
    pos = 0
    for entry in entries:
        end = data.index(b"\n", pos)
        header = data[pos:end].decode("ascii", "replace").split()
        if len(header) != 3 or header[0] != entry.oid or header[1] != "blob" or int(header[2]) != entry.size:
            raise SourceError(f"git cat-file answered {' '.join(header)!r} for {escape(entry.path)}")
        start = end + 1
        blobs[entry.path] = data[start:start + entry.size]
        pos = start + entry.size + 1
    return blobs


def export_tree(git: GitRunner, git_dir: str, sha: str, subdir: str, dest: Path, *, timeout: float) -> Path:
    """Write the files of ``sha`` (under ``subdir`` when given) to ``dest``; return the directory to load.

    Raises :class:`UnreadableRevision` for content that cannot be the desired state, and
    :class:`SourceError` for trouble with git itself."""
    treeish = f"{sha}:{subdir}" if subdir else f"{sha}^{{tree}}"
    kind = git.output(["--git-dir", git_dir, "cat-file", "-t", treeish])
    what = kind.stdout.decode(errors="replace").strip()
    if kind.returncode != 0 or what != "tree":
        if subdir:
            described = f"is a {what} (a file or a symbolic link)" if kind.returncode == 0 else "does not exist"
            raise UnreadableRevision((f"{escape(subdir)}: the desired-state path {described} in this revision; "
                                      "it must be a directory",))
        raise SourceError(f"revision {sha[:12]} has no tree: {kind.stderr.strip()[:200]}")
    listing = git.bounded_output(["--git-dir", git_dir, "ls-tree", "-r", "-z", "-l", "--full-name", treeish],
                                 max_bytes=_MAX_LISTING, timeout=timeout)
    if len(listing.stdout) > _MAX_LISTING:
        raise UnreadableRevision((f"the revision lists more than {_MAX_LISTING} bytes of file names; point the "
                                  "daemon's --path at the desired-state directory",))
    if listing.returncode != 0:
        raise GitFailed(("ls-tree", treeish), listing.returncode, listing.stderr)
    keep, problems = _check(_parse_listing(listing.stdout))
    if problems:
        raise UnreadableRevision(tuple(problems))
    blobs = _read_blobs(git, git_dir, keep, timeout) if keep else {}
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    root = tmp / subdir if subdir else tmp
    root.mkdir(parents=True, mode=0o700)
    made = {tmp, root}
    for entry in keep:
        target = root / entry.path
        for parent in reversed(target.relative_to(tmp).parents):
            made.add(tmp / parent)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(blobs[entry.path])
            handle.flush()
            os.fsync(handle.fileno())
    # Every file and directory is on disk before the rename makes the export visible: without this, a power
    # loss soon after an export left the renamed directory with empty files (the lab's power-loss scenario
    # found it), and the revision in force then read as invalid.
    for directory in sorted(made, key=lambda d: len(d.parts), reverse=True):
        fsync_directory(directory)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    fsync_directory(dest.parent)
    return dest / subdir if subdir else dest

