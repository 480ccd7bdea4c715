"""How an observation is shown: a JSON document for machines, aligned tables for people. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from reconciler.model.observed import DrbdResourceState, ObservedNode
from reconciler.sizes import format_size

JSON_FORMAT = "reconciler-observation/1"


def to_json(observed: ObservedNode, version_commands: int = 0) -> dict[str, Any]:
    """The observation as plain JSON values. Sizes are bytes, memory MiB; absent values are null.

    ``version_commands``: the tool-version probes run before this pass (once per observer), so that
    ``commands_run + version_commands_run`` is every command that really ran."""
    return {
        "format": JSON_FORMAT,
        "node": observed.node,
        "commands_run": observed.commands_run,
        "version_commands_run": version_commands,
        "tools": [t.model_dump() for t in observed.tools],
        "volume_groups": [vg.model_dump() for vg in observed.volume_groups],
        "logical_volumes": [
            {**lv.model_dump(), "devices": list(lv.devices), "tags": list(lv.tags)} for lv in observed.logical_volumes
        ],
        "dm_devices": [{**d.model_dump(exclude={"targets"}), "table": d.table} for d in observed.dm_devices],
        "drbd": {
            "kernel_version": observed.drbd.kernel_version,
            "major": observed.drbd.major,
            "resources": [r.model_dump(mode="json") for r in observed.drbd.resources],
        },
        "domains": [
            {
                "name": d.name,
                "id": d.domid,
                "state": d.state,
                "memory_mib": d.memory_mib,
                "maxmem_mib": d.maxmem_mib,
                "vcpus": d.vcpus,
                "uuid": d.uuid,
                "disks": list(d.disks),
                "nics": list(d.nics),
            }
            for d in observed.domains
        ],
        "host": observed.host.model_dump(),
        "files": [
            {
                "path": f.path,
                "size_bytes": None if f.content is None else len(f.content.encode()),
                "sha256": None if f.content is None else hashlib.sha256(f.content.encode()).hexdigest(),
            }
            for f in observed.files
        ],
    }


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "  ") -> list[str]:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    cells = [[_text(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        padded = [v.ljust(w) for v, w in zip(values[:-1], widths[:-1], strict=True)] + [values[-1]]
        return (indent + "  ".join(padded)).rstrip()

    return [line(list(headers)), *(line(r) for r in cells)]


def _size(num_bytes: int | None) -> str:
    if num_bytes is None:
        return "-"
    for suffix, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if num_bytes >= factor:
            exact = format_size(num_bytes)
            return exact if exact.endswith(suffix) else f"{num_bytes / factor:.2f}{suffix}"
    return f"{num_bytes}B"


def _drbd_rows(resource: DrbdResourceState) -> list[list[object]]:
    disks = ",".join(f"{d.minor}:{d.disk_state}" for d in resource.devices) or "-"
    if not resource.connections:
        return [[resource.name, resource.role, disks, "-", "-", "-", "-", "-", "-", "-"]]
    rows: list[list[object]] = []
    for connection in resource.connections:
        peer_devices = connection.peer_devices or ()
        replication = ",".join(p.replication_state for p in peer_devices) or "-"
        peer_disks = ",".join(p.peer_disk_state for p in peer_devices) or "-"
        out_of_sync = sum(p.out_of_sync_bytes or 0 for p in peer_devices)
        resync = [p.resync_percent for p in peer_devices if p.resync_percent is not None]
        verify = [p.verify_percent for p in peer_devices if p.verify_percent is not None]
        rows.append([
            resource.name, resource.role, disks, connection.peer_name, connection.connection_state,
            connection.peer_role, peer_disks, replication, _size(out_of_sync) if peer_devices else "-",
            f"{min(resync):.1f}%" if resync else f"verify {min(verify):.1f}%" if verify else "-",
        ])
    return rows


def format_summary(observed: ObservedNode, version_commands: int = 0) -> str:
    probes = f" and {version_commands} version probes" if version_commands else ""
    total = observed.commands_run + version_commands
    lines = [f"node {observed.node}: {total} commands ran ({observed.commands_run} for this pass{probes})", "",
             "tools"]
    lines += table(("TOOL", "STATE", "VERSION", "DETAIL"),
                   [(t.name, t.state, t.version, t.detail or "") for t in observed.tools])
    sections: list[tuple[str, str, Sequence[str], Sequence[Sequence[object]]]] = [
        ("lvm", "volume groups", ("VG", "SIZE", "FREE", "PVS"),
         [(vg.name, _size(vg.size_bytes), _size(vg.free_bytes), vg.pv_count) for vg in observed.volume_groups]),
        ("lvm", "logical volumes", ("VG", "LV", "SIZE", "ATTR", "TYPE", "STRIPES"),
         [(lv.vg, lv.name, _size(lv.size_bytes), lv.attributes, lv.segtype, lv.stripes)
          for lv in observed.logical_volumes]),
        ("dmsetup", "device-mapper devices", ("NAME", "UUID", "OPEN", "SUSPENDED", "TARGETS"),
         [(d.name, d.uuid or "-", d.open_count, d.suspended, ",".join(t.target for t in d.targets) or "-")
          for d in observed.dm_devices]),
        ("drbd", f"drbd (kernel {observed.drbd.kernel_version or 'not loaded'})",
         ("RESOURCE", "ROLE", "DISKS", "PEER", "CONNECTION", "PEER-ROLE", "PEER-DISK", "REPLICATION",
          "OUT-OF-SYNC", "RESYNC"),
         [row for r in observed.drbd.resources for row in _drbd_rows(r)]),
        ("xl", "domains", ("NAME", "ID", "STATE", "MEMORY", "VCPUS"),
         [(d.name, d.domid, d.state, f"{d.memory_mib}MiB", d.vcpus) for d in observed.domains]),
        ("files", "owned files", ("PATH", "SIZE"),
         [(f.path, "absent" if f.content is None else _size(len(f.content.encode()))) for f in observed.files]),
    ]
    for tool_name, title, headers, rows in sections:
        tool = observed.tool(tool_name)
        if tool is not None and tool.state != "available" and not rows:
            lines += ["", f"{title}: unknown ({tool_name} {tool.state})"]
            continue
        lines += ["", f"{title}: {len(rows)}" if rows else f"{title}: none"]
        if rows:
            lines += table(headers, rows)
    host = observed.host
    if host.free_memory_mib is not None or host.total_memory_mib is not None:
        lines += ["", f"host memory: {_text(host.free_memory_mib)} MiB free of {_text(host.total_memory_mib)} MiB"
                      + (f" (Xen {host.xen_version})" if host.xen_version else "")]
    return "\n".join(lines) + "\n"
