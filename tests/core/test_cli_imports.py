"""Each command imports only what it needs: `--help` and `validate` load no git, HTTP, metrics or simulator."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli.main import COMMANDS, build_parser
from tests.apply.simlab import init_cluster

ROOT = Path(__file__).resolve().parents[2]

# Run a command in a fresh interpreter, then print the modules it loaded.
PROGRAM = """
import json, sys
from reconciler.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
"""

# Modules no light command has any use for; each weighs tens of milliseconds at start-up.
HEAVY_EVERYWHERE = ("git", "http.server", "http.client", "urllib.request", "prometheus_client", "watchdog",
                    "tenacity", "reconciler.sim.state", "reconciler.source.gitsource", "reconciler.metrics",
                    "reconciler.daemon.loop.runtime", "reconciler.apply.executor")
# --help needs none of the desired-state machinery either.
HEAVY_FOR_HELP = (*HEAVY_EVERYWHERE, "pydantic", "yaml", "reconciler.desired.schema", "reconciler.model.desired")


def loaded_modules(*argv: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", PROGRAM, *argv], capture_output=True, text=True, timeout=60,
                          check=False, cwd=ROOT)
    marker = [line for line in proc.stderr.splitlines() if line.startswith("MODULES ")]
    assert marker, proc.stderr
    return set(json.loads(marker[-1][len("MODULES "):]))


def heavy_in(modules: set[str], heavy: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy))


COMMAND_MODULES = frozenset(module for _, module, _ in COMMANDS)


def command_modules(modules: set[str]) -> list[str]:
    return sorted(modules & COMMAND_MODULES)


@pytest.mark.parametrize("argv", [["--help"], ["--version"], []])
def test_top_level_help_loads_no_command_module(argv: list[str]) -> None:
    modules = loaded_modules(*argv)
    assert heavy_in(modules, HEAVY_FOR_HELP) == []
    assert command_modules(modules) == []
    assert sorted(m for m in modules if m.startswith("reconciler.sim")) == []


def test_validate_loads_the_schema_and_nothing_heavier() -> None:
    modules = loaded_modules("validate", str(ROOT / "desired-state"))
    assert "reconciler.desired.schema" in modules  # it did validate
    assert heavy_in(modules, HEAVY_EVERYWHERE) == []


def test_a_command_loads_only_its_own_module() -> None:
    modules = loaded_modules("sim", "--help")
    assert command_modules(modules) == ["reconciler.sim.cli"]
    assert heavy_in(modules, HEAVY_FOR_HELP) == []


def test_a_command_on_a_real_node_loads_no_simulator() -> None:
    modules = loaded_modules("validate", str(ROOT / "desired-state"))
    assert sorted(m for m in modules if m.startswith("reconciler.sim")) == []


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: choice.help or "" for choice in action._choices_actions}


def test_the_command_table_matches_what_the_modules_register() -> None:
    """The one-line help shown by `reconciler --help` is the one each module registers, in the same order."""
    full = _subcommands(build_parser())
    table = {name: help_text for name, _, help_text in COMMANDS}
    assert list(full) == list(table)
    assert full == table


def test_an_unknown_command_lists_every_command() -> None:
    proc = subprocess.run([sys.executable, "-c", PROGRAM, "no-such-command"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert "invalid choice: 'no-such-command'" in proc.stderr
    for name, _, _ in COMMANDS:
        assert f"'{name}'" in proc.stderr


def test_a_plan_on_unchanged_files_loads_no_parser_schema_or_pydantic(tmp_path: Path) -> None:
    """The second plan over the same files takes the node validated by the first (see desired.cache); the
    models it plans with are not pydantic's (see model.base)."""
    init_cluster(tmp_path / "sim")
    argv = ("plan", "--sim", str(tmp_path / "sim"), "--node", "erdbeere", "--state-dir", str(tmp_path / "state"),
            str(ROOT / "desired-state"))
    first = loaded_modules(*argv)
    assert "reconciler.desired.schema" in first
    again = loaded_modules(*argv)
    assert "pydantic" in first
    assert heavy_in(again, ("yaml", "pydantic", "reconciler.desired.schema", "reconciler.desired.load")) == []
    assert "reconciler.plan.diff" in again  # it did plan
