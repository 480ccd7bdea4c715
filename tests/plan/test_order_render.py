"""Ordering with graphlib and the terraform-like rendering."""

from __future__ import annotations

import pytest

from reconciler.core.action_order import PlanError, order_actions
from reconciler.core.actions import Action
from reconciler.plan.diff import plan_node
from reconciler.plan.render_plan import render_json, render_text
from tests.plan.factories import converged, empty_observed, make_node, make_vm


def act(ident: str, *deps: str) -> Action:
    return Action(id=ident, kind="create-lv", key=ident, vm="vm", change="create", description=ident,
                  depends_on=deps)


def test_order_respects_dependencies_and_keeps_planner_order_otherwise() -> None:
    ordered = order_actions([act("c", "b"), act("a"), act("b", "a"), act("d")])
    assert [a.id for a in ordered] == ["a", "b", "c", "d"]


def test_cycles_and_dangling_dependencies_are_errors() -> None:
    with pytest.raises(PlanError, match="cycle"):
        order_actions([act("a", "b"), act("b", "a")])
    with pytest.raises(PlanError, match="not in the plan"):
        order_actions([act("a", "zzz")])


def test_text_shows_symbols_argv_and_refusals() -> None:
    deleted = make_node(make_vm(100, lifecycle="deleted"), make_vm(101, lifecycle="deleted"))
    text = render_text(plan_node(deleted, converged(make_node(make_vm(100), make_vm(101)))))
    assert "\n! remove-lv" in text
    assert "refused: 2 VMs would be removed" in text
    assert "$ xl shutdown -w vm100" in text
    fresh = render_text(plan_node(make_node(make_vm(100)), empty_observed()))
    assert "\n+ create-lv" in fresh
    assert "$ lvcreate --yes --wipesignatures y --zero y --addtag reconciler -L 10737418240b -n root100 vg-sda" in fresh
    assert "\n= promote" in fresh
    assert "stdin: 0 62914560 striped 3 128 /dev/vg-sda/root100 0" in fresh


def test_empty_plan_says_so() -> None:
    desired = make_node(make_vm(100))
    assert "no changes" in render_text(plan_node(desired, converged(desired)))


def test_json_lists_kind_resource_argv_depends_and_refusal() -> None:
    doc = render_json(plan_node(make_node(make_vm(100)), empty_observed()))
    first = doc["actions"][0]
    assert set(first) >= {"kind", "resource", "argv", "depends_on", "refused"}
    stripe = next(a for a in doc["actions"] if a["kind"] == "create-stripe")
    assert len(stripe["depends_on"]) == 3
    assert stripe["argv"] == [["dmsetup", "create", "root100", "--uuid", "RECONCILER-root100"]]
