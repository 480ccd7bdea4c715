"""Small JSON records in a folder of the state directory, one file per name (a VM, a peer node), written by
this project's own processes: written atomically and unreadable to others, and read back only where they still
look like ours (a safe name, a regular file of bounded size, valid JSON that builds a record)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from reconciler.host.atomic import write_atomic
from reconciler.names import UnsafeNameError, check_name

MAX_RECORD_BYTES = 16 * 1024
T = TypeVar("T")


def record_path(directory: Path, name: str, what: str) -> Path:
    return directory / f"{check_name(name, what)}.json"


def write_named(directory: Path, name: str, what: str, text: str) -> None:
    write_atomic(str(record_path(directory, name, what)), text, mode=0o640)


def read_named(directory: Path, what: str, build: Callable[[Mapping[str, object]], T]) -> dict[str, T]:
    """Each readable record by the name its file carries; unreadable or foreign files are skipped, never
    trusted. ``build`` raises ValueError, KeyError or TypeError for data that is not a record."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return {}
    found: dict[str, T] = {}
    for entry in names:
        if not entry.endswith(".json"):
            continue
        try:
            name = check_name(entry[:-5], what)
            path = directory / entry
            if path.is_symlink() or path.stat().st_size > MAX_RECORD_BYTES:
                continue
            found[name] = build(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError, UnsafeNameError):
            continue
    return found


def as_float(value: object) -> float:
    """A number of a record: what ``float()`` takes from JSON (a number or a numeric string), TypeError otherwise."""
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError(f"not a number: {type(value).__name__}")
