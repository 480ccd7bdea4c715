"""Atomic JSON files in the daemon's state directory (status, source state, control requests).

The state directory holds the mirror of the desired state, the nonces of the peer channel and the
status: readable by root alone (mode 0700, files 0600), since the desired state may name what an
unprivileged user of the node has no business knowing."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.host import atomic


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (mode 0700), or take group and world access away from an existing one."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    current = path.stat().st_mode & 0o777
    if current & 0o077:
        path.chmod(current & 0o700)


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` so readers see either the old or the new content, never a torn file."""
    atomic.write_atomic(str(path), text, mode)


def write_json(path: Path, data: object) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> object:
    """The parsed content of ``path`` (of any JSON type: the caller checks it), or None when it is missing or
    unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
