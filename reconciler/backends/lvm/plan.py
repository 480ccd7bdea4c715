"""The logical volumes of one VM: create, take over, extend; never shrink.

An LV made by hand is taken over (the project's tag added) before anything is built on it; a smaller
desired size is refused by the safety gate, never applied.
"""

from __future__ import annotations

from reconciler.backends.lvm import commands as lvm
from reconciler.core.safety import lv_adoption_refusal, lv_shrink_refusal
from reconciler.core.seams import PlanBuilder
from reconciler.ownership import LV_TAG
from reconciler.sizes import format_size


def plan_lvs(b: PlanBuilder) -> None:
    for lv in b.vm.lvs:
        found = b.observed.lv(lv.vg, lv.name)
        vg = b.observed.vg(lv.vg)
        if found is None:
            refused = "" if vg is not None else f"volume group {lv.vg} does not exist on this node"
            what = f"create {lv.purpose} LV {lv.vg}/{lv.name} ({format_size(lv.size_bytes)})"
            b.add("create-lv", lv.key, "create", what,
                  commands=(lvm.lvcreate(lv.vg, lv.name, lv.size_bytes, lv.stripes, lv.stripe_size_bytes),),
                  refused=refused)
            continue
        if LV_TAG not in found.tags and b.vm.lifecycle == "present":
            # Made by hand (the identity gate let it through: its VM exists here): take it over first.
            extent = vg.extent_size_bytes if vg else None
            refused = lv_adoption_refusal(lv.vg, lv.name, found, uuid=found.uuid or "", size_bytes=lv.size_bytes,
                                          stripes=lv.stripes, extent_bytes=extent, tag=LV_TAG) or ""
            b.add("adopt-lv", lv.key, "change", f"take over LV {lv.vg}/{lv.name} (add the tag {LV_TAG!r})",
                  commands=(lvm.lvchange_addtag(lv.vg, lv.name),), refused=refused,
                  identity=f"{found.uuid or '-'} {lv.size_bytes} {lv.stripes} {extent or 0}")
            continue
        if found.size_bytes >= lv.size_bytes:
            refusal = lv_shrink_refusal(f"{lv.vg}/{lv.name}", lv.size_bytes, found.size_bytes,
                                        vg.extent_size_bytes if vg else None, lv.stripes)
            if refusal:
                b.add("extend-lv", lv.key, "change", f"resize LV {lv.vg}/{lv.name}", refused=refusal)
            continue
        b.add("extend-lv", lv.key, "change",
              f"extend LV {lv.vg}/{lv.name} {format_size(found.size_bytes)} -> {format_size(lv.size_bytes)}",
              commands=(lvm.lvextend(lv.vg, lv.name, lv.size_bytes),), identity=found.uuid or "")
