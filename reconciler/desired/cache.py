"""The validated desired state of one node, kept for the next one-shot command on the same files.

Parsing, validating and expanding the desired state is most of what a fresh `reconciler plan` spends its
time on (YAML, the schema of every file, the checks across files), yet the files rarely change between two
commands. So the expanded node is kept in the state directory, under a key that covers everything it is
computed from: the name and bytes of every file the load reads, the node, the source of the whole
reconciler package, and the Python and pydantic versions. Anything else in the key, or any doubt about the
file (missing, damaged, not ours, readable by others), is a miss, never an error: the state is then loaded
and validated in full, and the result kept for the next command. Invalid files are never kept; their
problems are reported by the full load every time.

Read back, the node is checked again against its model (reconciler.model.base: every field present and of
its type, nothing unknown). The file is root's, mode 0600, replaced atomically, and only ever read as data.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

from reconciler.desired.safefs import DesiredFiles, UnsafePath, read_desired
from reconciler.model.desired import DesiredNode
from reconciler.sizes import MIB

CACHE_FILE = "desired-node.cache"
# A node of a large fleet is a few megabytes of JSON; anything much bigger is not ours.
_MAX_BYTES = 256 * MIB

_code_digest: str | None = None


def code_digest() -> str:
    """The reconciler package's source (every module, by path and content) and the libraries the
    validation runs on: a cached node is never used by other code than the one that validated it."""
    global _code_digest  # noqa: PLW0603  (computed once per process)
    if _code_digest is None:
        root = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # the reconciler package
        sources: list[tuple[str, str]] = []  # (path inside the package, path); os.scandir: no Path per file
        pending = [""]
        while pending:
            relative = pending.pop()
            with os.scandir(os.path.join(root, relative)) as entries:
                for entry in entries:
                    inside = f"{relative}/{entry.name}" if relative else entry.name
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name != "__pycache__":
                            pending.append(inside)
                    elif entry.name.endswith(".py"):
                        sources.append((inside, entry.path))
        digest = hashlib.sha256(_framed(f"python {sys.version}", _pydantic_version()))
        for inside, path in sorted(sources):
            with open(path, "rb") as source:
                digest.update(_framed(inside, source.read()))
        _code_digest = digest.hexdigest()
    return _code_digest


def _pydantic_version() -> bytes:
    """The source of pydantic's version module, read without importing pydantic (that import is most of
    what the kept node saves)."""
    spec = importlib.util.find_spec("pydantic")
    if spec is None or spec.origin is None:
        return b"no pydantic"
    try:
        return Path(spec.origin).with_name("version.py").read_bytes()
    except OSError:
        return b"pydantic of unknown version"


def _framed(*parts: str | bytes) -> bytes:
    # Each part with its length: no two different sequences of parts hash the same bytes.
    out = bytearray()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out += len(data).to_bytes(8, "little") + data
    return bytes(out)


def cache_key(files: DesiredFiles, node: str) -> str:
    """What the expanded node depends on: the code, the node, and every file the load reads."""
    digest = hashlib.sha256(
        _framed(code_digest(), node, "cluster" if files.cluster_present else "no cluster", files.cluster or "")
    )
    for rel, text in files.vms:
        digest.update(_framed(rel, text))
    return digest.hexdigest()


def read(state_dir: Path, key: str) -> DesiredNode | None:
    """The node kept under ``key``, or None."""
    path = state_dir / CACHE_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            # Only a file no one else could have written (or read: it names the node's storage).
            if (
                not stat.S_ISREG(st.st_mode)
                or st.st_uid != os.geteuid()
                or st.st_mode & 0o077
                or st.st_size > _MAX_BYTES
            ):
                return None
            stored_key = handle.readline().rstrip(b"\n").decode("ascii")
            if stored_key != key:
                return None
            return DesiredNode.model_validate_json(handle.read())
    except (OSError, ValueError):  # ValueError: a key that is not ASCII, or data that is no node
        return None


def write(state_dir: Path, key: str, node: DesiredNode) -> None:
    """Keep ``node`` under ``key``; quietly nothing when the state directory cannot be written (not root)."""
    partial = state_dir / f".{CACHE_FILE}.{os.getpid()}"
    try:
        state_dir.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.encode("ascii") + b"\n")
            handle.write(node.model_dump_json().encode())
        os.replace(partial, state_dir / CACHE_FILE)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def desired_node(
    directory: str, node: str, state_dir: Path | None, load: Callable[[DesiredFiles | None], DesiredNode]
) -> DesiredNode:
    """``node``'s desired state in ``directory``: kept from an earlier command on the very same files and
    code, else ``load(files)`` (which validates everything, and raises on any problem) and kept."""
    if state_dir is None:
        return load(None)
    try:
        files = read_desired(directory)
    except (UnsafePath, OSError):
        return load(None)  # the full load reports it
    if files.issues:
        return load(files)
    key = cache_key(files, node)
    cached = read(state_dir, key)
    if cached is not None and cached.node == node:
        return cached
    desired = load(files)
    write(state_dir, key, desired)
    return desired
