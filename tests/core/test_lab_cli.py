"""The lab's scenario selection (the scenarios themselves need QEMU and run only in the lab)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from reconciler_lab.cli import SCENARIOS, selector
from reconciler_lab.proc import LabError

SCENARIO_FILE = Path(__file__).resolve().parents[1] / "lab" / "test_scenarios.py"


def test_scenarios_name_the_tests_in_the_order_the_file_runs_them() -> None:
    tree = ast.parse(SCENARIO_FILE.read_text())
    in_file = [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]
    assert list(SCENARIOS.values()) == in_file


def test_a_subset_runs_after_the_bring_up() -> None:
    assert selector(["5"]) == "test_1_bring_up or test_5_power_loss_of_the_primary"
    assert selector(["5", "2", "4", "1"]) == ("test_1_bring_up or test_2_no_op_pass or test_4_planned_switchover"
                                              " or test_5_power_loss_of_the_primary")
    assert selector([]) == " or ".join(SCENARIOS.values())


def test_an_unknown_scenario_is_refused_with_the_known_ones() -> None:
    known = ", ".join(str(n) for n in range(1, 18))
    with pytest.raises(LabError, match=rf"unknown scenario\(s\) 18; known: {known}$"):
        selector(["18"])
