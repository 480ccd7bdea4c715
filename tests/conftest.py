"""Fixtures shared by every test module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = PROJECT_ROOT / "desired-state"
# The real tools' outputs live beside the project, never inside it (see the README of that folder).
REAL_OUTPUTS = Path(os.environ.get("RECONCILER_REAL_OUTPUTS", PROJECT_ROOT.parent / "shared" / "real-outputs"))


@pytest.fixture
def real_outputs() -> Path:
    if not REAL_OUTPUTS.is_dir():
        pytest.skip(f"conformance corpus not present at {REAL_OUTPUTS} (set RECONCILER_REAL_OUTPUTS)")
    return REAL_OUTPUTS


def read_capture(path: Path) -> tuple[str, int, str, str]:
    """Split a captured-here file into (command, exit code, stdout, stderr)."""
    command = ""
    code = 0
    out: list[str] = []
    err: list[str] = []
    target: list[str] | None = None
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("# command: "):
            command = line[len("# command: "):].strip()
        elif line.startswith("# exit: "):
            code = int(line[len("# exit: "):].strip())
        elif line.startswith("# --- stdout"):
            target = out
        elif line.startswith("# --- stderr"):
            target = err
        elif target is not None:
            target.append(line)
    return command, code, "".join(out), "".join(err)
