"""Fixtures shared by every test module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = PROJECT_ROOT / "desired-state"
# The real tools' outputs live beside the project, never inside it (see the README of that folder).
REAL_OUTPUTS = Path(os.environ.get("RECONCILER_REAL_OUTPUTS", PROJECT_ROOT.parent / "shared" / "real-outputs"))


def _foreign_entries() -> set[str]:
    """Everything under the example repository that is not desired state (a simulator's lock, state, logs)."""
    return {p.relative_to(EXAMPLE_DIR).as_posix() for p in EXAMPLE_DIR.rglob("*")
            if p.is_file() and p.suffix not in (".yaml", ".yml")} if EXAMPLE_DIR.is_dir() else set()


@pytest.fixture(scope="session", autouse=True)
def example_stays_untouched() -> Iterator[None]:
    """The example repository is an input: a test that writes into it (e.g. uses it as a simulated cluster's
    directory, which once left a ``lock`` file there) fails the run instead of dirtying the checkout."""
    before = _foreign_entries()
    yield
    added = sorted(_foreign_entries() - before)
    assert not added, f"the test run wrote into {EXAMPLE_DIR}: {', '.join(added)}; use a copy under tmp_path"


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """`plan` and `apply` keep the validated desired state in their state directory (by default the
    machine's /var/lib/reconciler): every test gets one of its own instead."""
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(tmp_path_factory.mktemp("state")))


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
