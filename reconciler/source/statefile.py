"""Atomic JSON files in the daemon's state directory (status, source state, control requests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconciler.host import atomic


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` so readers see either the old or the new content, never a torn file."""
    atomic.write_atomic(str(path), text, mode)


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    """The parsed content of ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
