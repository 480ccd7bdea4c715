"""Every action kind has exactly one registry entry, and the rules that differ by kind read it."""

from __future__ import annotations

from typing import get_args

from reconciler.core.action_registry import REGISTRY, kinds_where, spec
from reconciler.core.actions import ActionKind
from reconciler.daemon.loop.gating import BOOT_GATED, NEEDS_PEER_AT_REVISION
from reconciler.plan.diff import REMOVAL_KINDS, plan_node
from tests.plan.factories import converged, empty_observed, make_node, make_vm


def test_every_action_kind_has_an_entry_and_no_entry_lacks_a_kind() -> None:
    assert set(get_args(ActionKind)) == set(REGISTRY)


def test_the_scattered_lists_are_views_of_the_registry() -> None:
    assert {k for k, s in REGISTRY.items() if s.removes} == REMOVAL_KINDS
    assert {k for k, s in REGISTRY.items() if s.peer_revision} == NEEDS_PEER_AT_REVISION
    assert {k for k, s in REGISTRY.items() if s.boot_gated} == BOOT_GATED
    assert {"promote", "promote-force-initial", "start-domain", "shutdown-domain", "demote"} <= BOOT_GATED


def test_every_destructive_write_is_probed_right_before_it_runs() -> None:
    for kind in ("create-md", "make-fs", "make-swap"):
        assert "signatures" in spec(kind).prechecks
    assert "forced-promotion" in spec("promote-force-initial").prechecks
    assert "promotion" in spec("promote").prechecks
    assert "lv-ours" in spec("remove-lv").prechecks
    assert "dm-ours" in spec("remove-stripe").prechecks
    assert "split-brain-incident" in spec("discard-my-data").prechecks
    assert "split-brain-incident" in spec("split-brain-connect").prechecks


def test_planned_commands_carry_their_kinds_timeout() -> None:
    fresh = plan_node(make_node(make_vm(100)), empty_observed())
    deleted = plan_node(make_node(make_vm(100, lifecycle="deleted")), converged(make_node(make_vm(100))))
    actions = [*fresh.actions, *deleted.actions]
    assert len({a.kind for a in actions}) >= 15
    for action in actions:
        assert all(c.timeout_s == spec(action.kind).timeout_s for c in action.commands), action.kind


def test_each_flag_selects_exactly_its_kinds() -> None:
    # Asked at run time, not only through the module constants computed at import.
    assert kinds_where("removes") == {"remove-lv", "remove-stripe", "remove-drbd-config", "drbd-down",
                                      "remove-xen-config"}
    migration = {"open-migration-window", "promote-for-migration", "migrate-domain"}
    assert kinds_where("peer_revision") == {"remove-lv", "remove-stripe", "remove-drbd-config", "drbd-adjust",
                                            "drbd-resize", "drbd-down", *migration}
    assert kinds_where("boot_gated") == {"promote", "promote-force-initial", "demote", "start-domain", "provision-fs",
                                         "shutdown-domain", "discard-my-data", *migration}


def test_a_domain_start_outlasts_its_transient_units_start_timeout() -> None:
    from reconciler.daemon.node.scope import START_TIMEOUT_S

    # Killing `xl create` before systemd gives up on it leaves a half-made domain without its monitor.
    assert spec("start-domain").timeout_s > START_TIMEOUT_S
