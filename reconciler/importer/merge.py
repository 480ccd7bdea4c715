"""Merge what was imported from each node into one desired-state directory, and list where the nodes disagree.

The YAML is written field by field (every value is a validated name, a number or a size), so the files read
like hand-written ones: every VM setting explicit in its own file, nothing inherited but the bridge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.desired.resolve import DEFAULT_BRIDGE
from reconciler.desired.safefs import CLUSTER_FILE, VMS_DIR
from reconciler.importer.facts import Finding, NodeFacts, VmFacts
from reconciler.model.desired import derived_data_lv, derived_swap_lv, derived_vm_name
from reconciler.sizes import MIB, format_size


@dataclass
class Merged:
    files: dict[str, str]  # path relative to the output directory -> text
    findings: list[Finding] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)


def _size(num_bytes: int) -> str:
    return format_size(num_bytes).replace("iB", "")


def _mib(mib: int) -> str:
    return _size(mib * MIB)


def _differences(a: object, b: object, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            out += _differences(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        return out
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def merge(nodes: list[NodeFacts], cluster: str = "imported") -> Merged:
    nodes = sorted(nodes, key=lambda n: n.node)
    merged = Merged(files={})
    for node in nodes:
        merged.findings += [Finding(f"{node.node}: {f.source}", f.message, f.kind) for f in node.findings]
    by_resource: dict[str, dict[str, VmFacts]] = {}
    for node in nodes:
        for vm in node.vms:
            by_resource.setdefault(vm.resource, {})[node.node] = vm
    merged.files[CLUSTER_FILE] = _cluster_yaml(nodes, cluster, by_resource, merged)
    used_ids: set[int] = set()
    for resource, seen in sorted(by_resource.items()):
        first_node, first = next(iter(sorted(seen.items())))
        for other_node, other in sorted(seen.items())[1:]:
            a, b = first.comparable(), other.comparable()
            if first.domain is None or other.domain is None:
                # Without a domain config a node shows no domain and no swap LVs: absent is not a disagreement.
                for key in ("domain", "swap_lv", "swap_vgs", "swap_size", "name", "id"):
                    a.pop(key)
                    b.pop(key)
            for diff in _differences(a, b):
                merged.disagreements.append(f"{resource}: {diff} ({first_node} vs {other_node})")
        imported = {x.node for x in nodes}
        for absent in sorted(n for n in first.hosts if n in imported and n not in seen):
            merged.disagreements.append(f"{resource}: node {absent} was imported but has no such resource")
        vm = _best(seen)
        if vm.id in used_ids:
            merged.findings.append(Finding(vm.defined_at, f"id {vm.id} of {resource} is taken by another imported VM; "
                                                          "using the next free one (names stay explicit)"))
            while vm.id in used_ids:
                vm.id += 1
        used_ids.add(vm.id)
        primary = _primary(seen, merged, resource)
        merged.files[f"{VMS_DIR}/{vm.name}.yaml"] = _vm_yaml(vm, primary)
    return merged


def _best(seen: dict[str, VmFacts]) -> VmFacts:
    """The node's view with the domain settings (the primary's first)."""
    ordered = sorted(seen.values(), key=lambda v: (not v.running_here, v.domain is None, v.drbd_role != "Primary"))
    return ordered[0]


def _primary(seen: dict[str, VmFacts], merged: Merged, resource: str) -> str:
    running = sorted(n for n, v in seen.items() if v.running_here)
    if len(running) > 1:
        merged.disagreements.append(f"{resource}: the domain runs on {', '.join(running)} at once")
    if running:
        return running[0]
    primaries = sorted(n for n, v in seen.items() if v.drbd_role == "Primary")
    if primaries:
        return primaries[0]
    chosen = sorted(next(iter(seen.values())).hosts)[0]
    merged.findings.append(Finding(resource, f"the domain runs nowhere and no node is Primary; primary: {chosen} "
                                             "is a guess to review", "note"))
    return chosen


def _cluster_yaml(nodes: list[NodeFacts], cluster: str, by_resource: dict[str, dict[str, VmFacts]],
                  merged: Merged) -> str:
    imported = {n.node: n for n in nodes}
    names = set(imported)
    for seen in by_resource.values():
        for vm in seen.values():
            names.update(vm.hosts)
    lines = ["# Written by `reconciler import`; review every value before the first commit.", f"cluster: {cluster}",
             "", "nodes:"]
    base = nodes[0]
    for name in sorted(names):
        node = imported.get(name)
        if node is None:
            address = next((n.peer_addresses[name] for n in nodes if name in n.peer_addresses), None)
            merged.findings.append(Finding(name, f"node {name} was not imported; its volume groups and DRBD version "
                                                 f"are assumed equal to {base.node}'s: import it too", "note"))
            vgs, version = base.volume_groups, base.drbd_version
        else:
            address, vgs, version = node.address, node.volume_groups, node.drbd_version
        for other in nodes:
            seen_as = other.peer_addresses.get(name)
            if address and seen_as and seen_as != address:
                merged.disagreements.append(f"node {name}: address {address} vs {seen_as} in {other.node}'s config")
        lines += [f"  {name}:", f"    hostname: {name}", f"    address: {address or '0.0.0.0  # unknown: fill in'}",
                  f"    volume_groups: [{', '.join(vgs)}]", f'    drbd_version: "{version or "9"}"']
    lines += ["", "defaults:", "  domain:", f"    bridge: {DEFAULT_BRIDGE}", "", "guards:",
              "  max_removals_per_revision: 1", ""]
    return "\n".join(lines)


def _vm_yaml(vm: VmFacts, primary: str) -> str:
    lines = [f"# Imported from {vm.defined_at}" + (f" and {vm.domain.config_path}" if vm.domain else ""),
             f"id: {vm.id}"]
    if vm.name != derived_vm_name(vm.id):
        lines.append(f"name: {vm.name}")
    names = {}
    if vm.data_lv != derived_data_lv(vm.id):
        names["data_lv"] = vm.data_lv
    if vm.swap_lv is not None and vm.swap_lv != derived_swap_lv(vm.id):
        names["swap_lv"] = vm.swap_lv
    if vm.resource != vm.name:
        names["resource"] = vm.resource
    if names:
        lines.append("names: {" + ", ".join(f"{k}: {v}" for k, v in names.items()) + "}")
    lines += [f"nodes: [{', '.join(vm.hosts)}]", f"primary: {primary}", "storage:", f"  layout: {vm.layout}",
              f"  volume_groups: [{', '.join(vm.data_vgs)}]"]
    if vm.layout != "linear":
        lines.append(f"  stripes: {vm.stripes}")
        if vm.chunk_sectors:
            lines.append(f"  chunk_sectors: {vm.chunk_sectors}")
    lines.append(f"  size: {_size(vm.data_size)}")
    if vm.swap_size is not None:
        lines += ["swap:", f"  size: {_size(vm.swap_size)}", f"  volume_groups: [{', '.join(vm.swap_vgs)}]"]
    lines += ["drbd:", f"  minor: {vm.minor}", f"  port: {vm.port}"]
    for key, value in (("protocol", vm.protocol), ("on_io_error", vm.on_io_error), ("al_extents", vm.al_extents),
                       ("degr_wfc_timeout", vm.degr_wfc_timeout), ("wfc_timeout", vm.wfc_timeout)):
        if value is not None:
            lines.append(f"  {key}: {value}")
    if vm.options:
        lines.append("  options:")
        for section, values in sorted(vm.options.items()):
            lines.append(f"    {section}: {{" + ", ".join(f'{k}: "{v}"' for k, v in sorted(values.items())) + "}")
    if vm.fencing_policy:
        lines += ["safety:", "  mechanism: fencing", f"  fencing_policy: {vm.fencing_policy}"]
    else:
        lines += ["safety:", "  mechanism: none             # the hand-built resource has no fencing"]
    lines.append("filesystem: xfs")
    if vm.domain is not None:
        d = vm.domain
        lines += ["domain:", f"  type: {d.type}", f"  memory: {_mib(d.memory_mib)}"]
        if d.maxmem_mib is not None and d.maxmem_mib != d.memory_mib:
            lines.append(f"  maxmem: {_mib(d.maxmem_mib)}")
        lines.append(f"  vcpus: {d.vcpus}")
        if d.maxvcpus is not None and d.maxvcpus != d.vcpus:
            lines.append(f"  maxvcpus: {d.maxvcpus}")
        for key in ("bootloader", "kernel", "ramdisk", "extra"):
            value = getattr(d, key)
            if value is not None:
                lines.append(f'  {key}: "{value}"')
        if d.vifs:
            lines.append("  vifs:")
            lines += [f'    - {{mac: "{v["mac"]}", bridge: {v["bridge"]}}}' for v in d.vifs]
    return "\n".join(lines) + "\n"
