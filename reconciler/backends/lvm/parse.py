"""lvm2 JSON reports (``vgs``, ``lvs``, ``pvs`` with ``--units b --nosuffix``) and ``lvm version``.

Both report flavours are read: plain ``json`` gives every value as a string, ``json_std`` (lvm2 >= 2.03.17)
gives numbers as numbers, empty numbers as null and tags as a list. The ``log`` section that newer lvm2
appends is ignored. When segment fields are asked for, lvm2 prints one row per segment; rows of one LV
are merged back into one :class:`LogicalVolume`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from reconciler.backends.lvm import argv as _argv
from reconciler.core.jsontext import load_json
from reconciler.core.parse_error import ParseError
from reconciler.model.base import Frozen
from reconciler.model.observed import LogicalVolume, VolumeGroup
from reconciler.names import check_name

# The report command lines live in backends.lvm.argv (importable on their own); these names stay the parsers'.
VGS_ARGV: tuple[str, ...] = _argv.VGS_ARGV
LVS_ARGV: tuple[str, ...] = _argv.LVS_ARGV
PVS_ARGV: tuple[str, ...] = _argv.PVS_ARGV
VERSION_ARGV: tuple[str, ...] = ("lvm", "version")


class PhysicalVolumeRow(Frozen):
    """One row of ``pvs``; ``vg`` is None for a PV that belongs to no volume group."""

    name: str
    vg: str | None
    size_bytes: int
    free_bytes: int


_TRAILING_COMMA = re.compile(r",(\s*[\]}])")


def _load_report(text: str, tool: str, section: str) -> list[dict[str, Any]]:
    """Return every row of ``section`` ('lv', 'vg', 'pv') across all report objects."""
    if not text.strip():
        raise ParseError(tool, "empty output; expected a JSON report")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # Some lvm2 builds (and the examples in lvmreport(7)) leave a comma before a closing bracket.
        data = load_json(_TRAILING_COMMA.sub(r"\1", text), tool, "a JSON report")
    except RecursionError:
        raise ParseError(tool, "JSON nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("report"), list):
        raise ParseError(tool, "expected an object with a 'report' list")
    rows: list[dict[str, Any]] = []
    found = False
    for part in data["report"]:
        if not isinstance(part, dict):
            raise ParseError(tool, f"report entry is {type(part).__name__}, expected an object")
        if section in part:
            found = True
            section_rows = part[section]
            if not isinstance(section_rows, list):
                raise ParseError(tool, f"'{section}' is {type(section_rows).__name__}, expected a list")
            for row in section_rows:
                if not isinstance(row, dict):
                    raise ParseError(tool, f"a '{section}' row is {type(row).__name__}, expected an object")
                rows.append(row)
    if not found:
        raise ParseError(tool, f"the report has no '{section}' section")
    return rows


def _row_text(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True)


def _string(row: dict[str, Any], key: str, tool: str, *, required: bool = True) -> str | None:
    if key not in row:
        if required:
            raise ParseError(tool, f"row lacks '{key}'", line=_row_text(row))
        return None
    value = row[key]
    if not isinstance(value, str):
        raise ParseError(tool, f"'{key}' is {type(value).__name__}, expected a string", line=_row_text(row))
    return value


def _required_string(row: dict[str, Any], key: str, tool: str) -> str:
    value = _string(row, key, tool)
    if not value:
        raise ParseError(tool, f"'{key}' is empty", line=_row_text(row))
    return value


def _integer(row: dict[str, Any], key: str, tool: str, *, required: bool = True) -> int | None:
    """An integer given as a string ('json') or a number ('json_std'); '' or null means absent."""
    if key not in row:
        if required:
            raise ParseError(tool, f"row lacks '{key}'", line=_row_text(row))
        return None
    value = row[key]
    if value is None or value == "":
        if required:
            raise ParseError(tool, f"'{key}' is empty", line=_row_text(row))
        return None
    if isinstance(value, bool):
        raise ParseError(tool, f"'{key}' is a boolean, expected a number", line=_row_text(row))
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        number = int(value.strip())
    else:
        raise ParseError(
            tool,
            f"'{key}' is {value!r}, expected a whole number of bytes (is --units b --nosuffix missing?)",
            line=_row_text(row),
        )
    if number < 0:
        raise ParseError(tool, f"'{key}' is negative ({number})", line=_row_text(row))
    return number


def _required_integer(row: dict[str, Any], key: str, tool: str) -> int:
    value = _integer(row, key, tool)
    if value is None:  # unreachable: required=True raises first; keeps the type narrow
        raise ParseError(tool, f"'{key}' is empty", line=_row_text(row))
    return value


def _tags(row: dict[str, Any], tool: str) -> tuple[str, ...]:
    value = row.get("lv_tags")
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(tag for tag in value.split(",") if tag)
    if isinstance(value, list) and all(isinstance(tag, str) for tag in value):
        return tuple(value)
    raise ParseError(tool, f"'lv_tags' is {value!r}, expected a string or a list of strings", line=_row_text(row))


def _devices(row: dict[str, Any], tool: str) -> tuple[str, ...]:
    value = row.get("devices")
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(device for device in value.split(",") if device)
    if isinstance(value, list) and all(isinstance(device, str) for device in value):
        return tuple(value)
    raise ParseError(tool, f"'devices' is {value!r}, expected a string or a list of strings", line=_row_text(row))


def parse_vgs(text: str) -> tuple[VolumeGroup, ...]:
    tool = "vgs"
    groups = []
    for row in _load_report(text, tool, "vg"):
        groups.append(
            VolumeGroup(
                name=_required_string(row, "vg_name", tool),
                size_bytes=_required_integer(row, "vg_size", tool),
                free_bytes=_required_integer(row, "vg_free", tool),
                extent_size_bytes=_integer(row, "vg_extent_size", tool, required=False),
                pv_count=_integer(row, "pv_count", tool, required=False),
            )
        )
    return tuple(groups)


def parse_pvs(text: str) -> tuple[PhysicalVolumeRow, ...]:
    tool = "pvs"
    volumes = []
    for row in _load_report(text, tool, "pv"):
        vg = _string(row, "vg_name", tool, required=False)
        volumes.append(
            PhysicalVolumeRow(
                name=_required_string(row, "pv_name", tool),
                vg=vg or None,
                size_bytes=_required_integer(row, "pv_size", tool),
                free_bytes=_required_integer(row, "pv_free", tool),
            )
        )
    return tuple(volumes)


def _segment(row: dict[str, Any], tool: str) -> LogicalVolume:
    return LogicalVolume(
        vg=_required_string(row, "vg_name", tool),
        name=_required_string(row, "lv_name", tool),
        size_bytes=_required_integer(row, "lv_size", tool),
        attributes=_string(row, "lv_attr", tool, required=False) or "",
        uuid=_string(row, "lv_uuid", tool, required=False) or None,
        segtype=_string(row, "segtype", tool, required=False) or None,
        stripes=_integer(row, "stripes", tool, required=False),
        stripe_size_bytes=_integer(row, "stripe_size", tool, required=False),
        devices=_devices(row, tool),
        tags=_tags(row, tool),
    )


def _common(values: list[int | None]) -> int | None:
    return values[0] if all(v == values[0] for v in values) else None


def _merge_segments(segments: list[LogicalVolume], tool: str) -> LogicalVolume:
    first = segments[0]
    if len(segments) == 1:
        return first
    for other in segments[1:]:
        for field in ("size_bytes", "attributes", "uuid", "tags"):
            if getattr(other, field) != getattr(first, field):
                raise ParseError(
                    tool,
                    f"segment rows of {first.vg}/{first.name} disagree on {field}: "
                    f"{getattr(first, field)!r} vs {getattr(other, field)!r}",
                )
    segtypes = list(dict.fromkeys(s.segtype for s in segments if s.segtype))
    devices: list[str] = []
    for segment in segments:
        devices.extend(segment.devices)
    return first.model_copy(
        update={
            # Mixed segment types stay visible as "linear,striped" instead of claiming one of them.
            "segtype": ",".join(segtypes) or None,
            "stripes": _common([s.stripes for s in segments]),
            "stripe_size_bytes": _common([s.stripe_size_bytes for s in segments]),
            "devices": tuple(devices),
        }
    )


def parse_lvs(text: str) -> tuple[LogicalVolume, ...]:
    tool = "lvs"
    grouped: dict[tuple[str, str], list[LogicalVolume]] = {}
    for row in _load_report(text, tool, "lv"):
        segment = _segment(row, tool)
        grouped.setdefault((segment.vg, segment.name), []).append(segment)
    return tuple(_merge_segments(segments, tool) for segments in grouped.values())


def lvs_named_argv(names: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """The ``lvs`` report of the observer, restricted to the LVs ``names`` ((vg, lv) pairs, given as ``VG/LV``).

    Its cost does not grow with the number of LVs on the node. Each name is validated before it reaches the
    command line."""
    if not names:
        raise ValueError("lvs_named_argv needs at least one LV")
    return (*LVS_ARGV, *(f"{check_name(vg, 'volume group')}/{check_name(lv, 'logical volume')}" for vg, lv in names))


# What lvm2 prints (exit 5) for each named LV it does not find; it still reports the others.
_NOT_FOUND = re.compile(r'^\s*Failed to find logical volume "([^"/]+)/([^"/]+)"\s*$')


def lvs_not_found(stderr: str) -> set[tuple[str, str]]:
    """The (vg, lv) pairs a targeted ``lvs`` said it could not find."""
    found = set()
    for line in stderr.splitlines():
        match = _NOT_FOUND.match(line)
        if match:
            found.add((match.group(1), match.group(2)))
    return found


_LVM_VERSION = re.compile(r"^\s*LVM version:\s*([0-9]+\.[0-9]+\.[0-9]+)")


def parse_lvm_version(text: str) -> str:
    """The lvm2 release (e.g. '2.03.16') from ``lvm version``; device-mapper warnings around it are ignored."""
    for line in text.splitlines():
        match = _LVM_VERSION.match(line)
        if match:
            return match.group(1)
    raise ParseError("lvm version", "no 'LVM version:' line found")
