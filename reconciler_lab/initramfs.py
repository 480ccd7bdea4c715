"""Initramfs images (cpio newc, written here so that no cpio tool is needed)."""

from __future__ import annotations

import gzip
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    path: str            # inside the image, no leading slash
    mode: int            # file type and permissions
    data: bytes = b""    # the file's bytes, or a symlink's target


def _header(ino: int, entry: Entry, size: int) -> bytes:
    name = entry.path.encode() + b"\0"
    fields = (ino, entry.mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(name), 0)
    head = b"070701" + b"".join(f"{value:08x}".encode() for value in fields)
    return head + name + b"\0" * ((4 - (len(head) + len(name)) % 4) % 4)


def _pad(size: int) -> bytes:
    return b"\0" * ((4 - size % 4) % 4)


def build(entries: list[Entry], out: Path) -> None:
    """Write ``entries`` (directories first) as a gzip-compressed newc archive to ``out``."""
    chunks: list[bytes] = []
    for ino, entry in enumerate(entries, start=1):
        data = b"" if stat.S_ISDIR(entry.mode) else entry.data
        chunks += [_header(ino, entry, len(data)), data, _pad(len(data))]
    chunks.append(_header(len(entries) + 1, Entry("TRAILER!!!", 0), 0))
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress(b"".join(chunks), compresslevel=6))
    tmp.replace(out)


def directory(path: str) -> Entry:
    return Entry(path, stat.S_IFDIR | 0o755)


def regular(path: str, data: bytes, mode: int = 0o644) -> Entry:
    return Entry(path, stat.S_IFREG | mode, data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())
