"""reconciler(1) is written from the command line's own help: every command and option appears in it."""

from __future__ import annotations

import argparse
import shutil
import subprocess

import pytest

from reconciler.cli.main import COMMANDS, build_parser
from reconciler.cli.manpage import render


def _options(parser: argparse.ArgumentParser) -> set[str]:
    found = {opt for action in parser._actions for opt in action.option_strings if opt.startswith("--")}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _options(sub)
    return found


def test_every_command_and_option_is_in_the_manual_page() -> None:
    page = render("2026-01-01")
    for name, _, _ in COMMANDS:
        assert f".SS {name}\n" in page
    missing = sorted(opt for opt in _options(build_parser()) if opt.replace("-", "\\-") not in page
                     and opt not in page)
    assert missing == []
    assert page.startswith('.TH RECONCILER 1 "2026-01-01"')


def test_the_page_formats_without_warnings() -> None:
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed")
    proc = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=render(), capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0
    assert proc.stderr == ""
