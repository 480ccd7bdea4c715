"""What one node would get, as files an operator can review: DRBD resources, Xen configs, dm tables, LVs."""

from __future__ import annotations

from reconciler.model.desired import DesiredNode
from reconciler.sizes import format_size

LV_LISTING = "lvs.txt"


def _relative(absolute: str) -> str:
    return absolute.lstrip("/")


def lv_listing(node: DesiredNode) -> str:
    rows = [("LV", "SIZE", "BYTES", "PURPOSE", "STRIPES", "VM", "LIFECYCLE")]
    for vm in node.vms:
        for lv in vm.lvs:
            stripes = str(lv.stripes) if lv.stripe_size_bytes is None else f"{lv.stripes}x{lv.stripe_size_bytes}B"
            rows.append((f"{lv.vg}/{lv.name}", format_size(lv.size_bytes), str(lv.size_bytes), lv.purpose, stripes,
                         vm.name, vm.lifecycle))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"# logical volumes of node {node.node} in cluster {node.cluster}"]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


def render_node(node: DesiredNode) -> dict[str, str]:
    """Relative path -> content. VMs whose data is to be deleted get no configuration, only their LV rows."""
    files: dict[str, str] = {}
    for vm in node.vms:
        if vm.lifecycle == "deleted":
            continue
        if vm.drbd is not None:
            files[_relative(vm.drbd.config_path)] = vm.drbd.config_text
        if vm.domain is not None:
            files[_relative(vm.domain.config_path)] = vm.domain.config_text
        if vm.stripe is not None:
            files[f"dm/{vm.stripe.name}.table"] = vm.stripe.table + "\n"
    files[LV_LISTING] = lv_listing(node)
    return files
