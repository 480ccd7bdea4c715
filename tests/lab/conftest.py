"""The real-kernel lab's fixtures. The scenarios run only when asked (RECONCILER_LAB=1, which
``scripts/lab run`` sets): they boot two QEMU guests and take many minutes."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler_lab import paths
from reconciler_lab.lab import Lab, bring_up, down

_failed: list[str] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("RECONCILER_LAB") == "1":
        return
    skip = pytest.mark.skip(reason="the real-kernel lab runs only when asked: scripts/lab run (or RECONCILER_LAB=1)")
    for item in items:
        if "tests/lab/" in item.nodeid.replace("\\", "/") or item.nodeid.startswith("lab/"):
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if getattr(report, "failed", False):
        _failed.append(item.nodeid)
    return report


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if not paths.STAMP.exists():
        pytest.fail(f"the lab is not set up ({paths.STAMP} missing): run scripts/lab setup first")
    the_lab = Lab()
    try:
        bring_up(the_lab)
    except BaseException:
        _failed.append("lab bring-up")
        _finish(the_lab)
        raise
    yield the_lab
    _finish(the_lab)


def _finish(the_lab: Lab) -> None:
    out = os.environ.get("RECONCILER_LAB_OUT")
    target = Path(out) if out else paths.RUN / "out"
    try:
        the_lab.save(target)
    except Exception as exc:  # saving evidence must not hide the failure itself
        print(f"lab: could not save the nodes' logs: {exc}", file=sys.stderr)
    summary = ["lab timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in the_lab.timings.items())]
    if the_lab.figures:
        summary.append("lab figures: " + ", ".join(f"{k} {v}" for k, v in the_lab.figures.items()))
    summary += [f"lab note: {note}" for note in the_lab.notes]
    print("\n" + "\n".join(summary), file=sys.stderr)
    # pytest keeps a session fixture's output to itself when nothing failed: the summary is a file as well.
    with contextlib.suppress(OSError):
        (target / "summary.txt").write_text("\n".join(summary) + "\n")
    if _failed:
        print(f"\nlab: failed: {', '.join(_failed)}; consoles and logs in {target}", file=sys.stderr)
        print(the_lab.consoles(), file=sys.stderr)
    if os.environ.get("RECONCILER_LAB_KEEP") != "1":
        for node in the_lab.nodes.values():
            node.agent.close()
        down()
