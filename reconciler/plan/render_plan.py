"""Show a plan like ``terraform plan``: ``+`` create, ``~`` change, ``-`` delete, ``!`` refused, ``=`` waiting."""

from __future__ import annotations

import shlex
from typing import Any

from reconciler.core.plan_model import Plan

LEGEND = "+ create   ~ change   - delete   ! refused (left alone)   = waiting (requeued)"


def render_text(plan: Plan) -> str:
    lines: list[str] = []
    if plan.is_empty:
        lines.append(f"{plan.node}: no changes; the node matches the desired state.")
    for refusal in plan.refused_vms:
        lines.append(f"! {refusal.vm}: refused, nothing of it is changed: {refusal.reason}")
    if plan.actions:
        counts = {s: sum(a.symbol == s for a in plan.actions) for s in "+~-!="}
        lines.append(f"{plan.node}: {len(plan.actions)} actions "
                     f"({counts['+']} to create, {counts['~']} to change, {counts['-']} to delete, "
                     f"{counts['!']} refused, {counts['=']} waiting)")
        lines.append(f"  {LEGEND}")
        current_vm = None
        for action in plan.actions:
            if action.vm != current_vm:
                current_vm = action.vm
                lines.append("")
                lines.append(f"# {action.vm}")
            lines.append(f"{action.symbol} {action.kind:<22} {action.key}: {action.description}")
            for command in action.commands:
                lines.append(f"      $ {shlex.join(command.argv)}")
                if command.stdin:
                    lines.append(f"        stdin: {command.stdin.strip()}")
            if action.file_path and action.file_content is not None:
                lines.append(f"      write {action.file_path} ({len(action.file_content.splitlines())} lines)")
            elif action.file_path:
                lines.append(f"      remove {action.file_path}")
            if action.refused:
                lines.append(f"      refused: {action.refused}")
            if action.waiting:
                lines.append(f"      waiting: {action.waiting}")
    if plan.notes:
        lines.append("")
        for note in plan.notes:
            lines.append(f"note [{note.kind}] {note.key}: {note.message}")
    return "\n".join(lines) + "\n"


def render_json(plan: Plan) -> dict[str, Any]:
    return {
        "node": plan.node,
        "changes": len(plan.actions),
        "actions": [
            {
                "id": a.id,
                "kind": a.kind,
                "resource": a.key,
                "vm": a.vm,
                "change": a.change,
                "symbol": a.symbol,
                "description": a.description,
                "argv": [list(c.argv) for c in a.commands],
                "stdin": [c.stdin for c in a.commands],
                "file": a.file_path,
                "depends_on": list(a.depends_on),
                "destructive": a.destructive,
                "probe_before": list(a.probe_before),
                "refused": a.refused or None,
                "waiting": a.waiting or None,
            }
            for a in plan.actions
        ],
        "notes": [n.model_dump() for n in plan.notes],
        "refused_vms": [r.model_dump() for r in plan.refused_vms],
    }
