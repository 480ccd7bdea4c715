"""The daemon's gates for the one-shot commands (`plan`, `apply`): suspensions from the state directory, and
what needs the peer (its revision, its role) held back, because a one-shot run sees no peer status."""

from __future__ import annotations

from pathlib import Path

from reconciler.apply.oneshot import Gate
from reconciler.core.plan_model import Note, Plan
from reconciler.daemon.loop.gating import hold_for_one_shot, without_vms
from reconciler.daemon.node.control import ControlStore
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode


def one_shot_gate(state_dir: Path) -> Gate:
    def gate(plan: Plan, desired: DesiredNode, observed: ObservedNode) -> Plan:
        control = ControlStore(state_dir).read()
        if control.node_suspended:
            susp = control.suspension("node")
            note = Note(key="node", vm="", kind="info",
                        message=f"the node is suspended ({susp.reason if susp else ''}); nothing is changed")
            return plan.model_copy(update={"actions": (), "notes": (*plan.notes, note)})
        suspended = frozenset(vm.name for vm in desired.vms if control.vm_suspended(vm.name) is not None)
        notes = tuple(Note(key=f"vm:{name}", vm=name, kind="info", message=f"{name} is suspended; not reconciled")
                      for name in sorted(suspended))
        held, _ = hold_for_one_shot(without_vms(plan, suspended), desired, observed)
        resources = tuple(r.model_copy(update={"suspended": True}) if r.vm in suspended else r
                          for r in held.resources)
        return held.model_copy(update={"notes": (*held.notes, *notes), "resources": resources})

    return gate
