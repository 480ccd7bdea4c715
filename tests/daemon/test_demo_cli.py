"""`reconciler demo` with a place it cannot use: a clear error, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.sim.demo import environment_ok


def test_demo_in_an_unusable_directory_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problem = environment_ok()
    if problem is not None:
        pytest.skip(f"the demo cannot run here: {problem}")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    assert main(["demo", "--dir", str(blocker / "demo")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"reconciler demo: cannot create the demo in {blocker / 'demo'}: ")
    assert "Traceback" not in err


def test_progress_reasons_are_cut_at_a_word_boundary() -> None:
    from reconciler.sim.demo_cli import shorten

    reason = "vm100 comes up in this pass; promotion is decided from its state on the next pass"
    cut = shorten(reason, 70)
    assert cut == "vm100 comes up in this pass; promotion is decided from its state on…"
    assert len(cut) <= 70
    assert shorten("short enough", 70) == "short enough"
