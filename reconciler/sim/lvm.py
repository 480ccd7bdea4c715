"""Simulated lvm2 (2.03.16, as on Debian 12): reports and LV life cycle, with the real messages.

The simulated node has device-mapper activation enabled, as a real node does, so nothing prints the
"Activation disabled" warning the reference captures carry (they were taken where the kernel has no
device-mapper), LVs show as active (``-wi-a-----``, ``o`` when open) and ``lvreduce`` on an active LV
asks for confirmation (answered "n" without a terminal) unless ``-f``/``-y`` is given.

Extents are allocated per PV like the "normal" policy (first free extents in PV order). Removing an
LV leaves what was written at its extents: a later LV starting at the same extent inherits the old
signature unless it is created with signature wiping or zeroing (lvm's defaults: ``-Z y`` and, with
zeroing, ``-W y``; ``-Wn -Zn`` keeps the old data). DRBD metadata at the end of the old LV is
inherited when the new LV covers exactly the same extents and is not wiped.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterable
from typing import Any

from reconciler.host.base import CommandResult
from reconciler.sim.commands import CommandContext, command
from reconciler.sim.extent_index import extent_index
from reconciler.sim.options import OptionError, Parsed, scan
from reconciler.sim.state import (
    DM_MAJOR,
    NodeState,
    State,
    content,
    lvm_uuid,
    mapper_name,
    open_count,
    open_counts,
    open_counts_of,
)

EXIT_OK = 0
EXIT_CMDLINE = 3
EXIT_FAILED = 5
SECTOR = 512
ZERO_BYTES = 4096
DEFAULT_STRIPE_SIZE = 64 * 1024
# Signatures whose magic lies in the first 4 KiB, which zeroing a new LV overwrites.
ZEROED_SIGNATURES = frozenset({"xfs", "swap", "ext4", "ext3", "ext2", "btrfs", "LVM2_member"})

_LV_NAME_RE = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]*")
_RESERVED_PREFIXES = ("snapshot", "pvmove")
_RESERVED_SUBSTRINGS = ("_cdata", "_cmeta", "_corig", "_mlog", "_mimage", "_pmspare", "_rimage", "_rmeta",
                        "_tdata", "_tmeta", "_vorigin", "_vdata")

# --- model helpers ----------------------------------------------------------------------------


def vg_extent_count(vg: dict[str, Any]) -> int:
    return sum(int(pv["pe_count"]) for pv in vg["pvs"])


def lv_extents(lv: dict[str, Any]) -> int:
    return sum(int(seg["extents"]) for seg in lv["segments"])


def lv_size(vg: dict[str, Any], lv: dict[str, Any]) -> int:
    return lv_extents(lv) * int(vg["extent_size"])


def used_ranges(vg: dict[str, Any]) -> dict[str, list[tuple[int, int]]]:
    """PV name -> sorted (start, length) ranges in use."""
    index = extent_index(vg) if vg["lvs"] else None
    if index is not None:
        return {pv["name"]: list(index.used.get(pv["name"], ())) for pv in vg["pvs"]}
    used: dict[str, list[tuple[int, int]]] = {pv["name"]: [] for pv in vg["pvs"]}
    for lv in vg["lvs"].values():
        for seg in lv["segments"]:
            per_area = int(seg["extents"]) // len(seg["areas"])
            for pv_name, start in seg["areas"]:
                used[pv_name].append((int(start), per_area))
    return {name: sorted(ranges) for name, ranges in used.items()}


def free_ranges(vg: dict[str, Any]) -> dict[str, list[tuple[int, int]]]:
    index = extent_index(vg) if vg["lvs"] else None
    if index is None:
        return _free_ranges(vg)
    # Worked out again only when an LV or a PV changed since.
    pvs = tuple((str(pv["name"]), int(pv["pe_count"])) for pv in vg["pvs"])
    if index.free is None or index.free[0] != index.version or index.free[1] != pvs:
        index.free = (index.version, pvs, _free_ranges(vg))
    return {name: list(ranges) for name, ranges in index.free[2].items()}


def _free_ranges(vg: dict[str, Any]) -> dict[str, list[tuple[int, int]]]:
    used = used_ranges(vg)
    free: dict[str, list[tuple[int, int]]] = {}
    for pv in vg["pvs"]:
        position = 0
        ranges: list[tuple[int, int]] = []
        for start, length in used[pv["name"]]:
            if start > position:
                ranges.append((position, start - position))
            position = max(position, start + length)
        if position < int(pv["pe_count"]):
            ranges.append((position, int(pv["pe_count"]) - position))
        free[pv["name"]] = ranges
    return free


def vg_free_extents(vg: dict[str, Any]) -> int:
    return sum(length for ranges in free_ranges(vg).values() for _, length in ranges)


def pv_free_extents(vg: dict[str, Any], pv_name: str) -> int:
    return sum(length for _, length in free_ranges(vg)[pv_name])


def _allocate_linear(vg: dict[str, Any], extents: int, start_le: int) -> list[dict[str, Any]] | None:
    segments: list[dict[str, Any]] = []
    needed = extents
    le = start_le
    for pv in vg["pvs"]:
        for start, length in free_ranges(vg)[pv["name"]]:
            if needed == 0:
                break
            take = min(length, needed)
            segments.append({"start_le": le, "extents": take, "type": "linear", "stripe_size": 0,
                             "areas": [[pv["name"], start]]})
            le += take
            needed -= take
    return segments if needed == 0 else None


def _allocate_striped(vg: dict[str, Any], extents: int, stripes: int, stripe_size: int,
                      *, start_le: int, avoid_order: list[str] | None = None) -> dict[str, Any] | None:
    """One striped segment: ``extents / stripes`` contiguous extents on each of ``stripes`` PVs."""
    per_stripe = extents // stripes
    free = free_ranges(vg)
    candidates: list[tuple[str, int]] = []
    order = avoid_order or [pv["name"] for pv in vg["pvs"]]
    for name in order:
        fitting = [start for start, length in free[name] if length >= per_stripe]
        if fitting:
            candidates.append((name, fitting[0]))
    if len(candidates) < stripes:
        return None
    return {"start_le": start_le, "extents": extents, "type": "striped", "stripe_size": stripe_size,
            "areas": [[name, start] for name, start in candidates[:stripes]]}


def lv_is_open(state: State, node: str, vg_name: str, lv_name: str) -> bool:
    """Whether something holds the LV open: a dm table, a mount, a running domain, DRBD."""
    return open_count(state, node, f"/dev/{vg_name}/{lv_name}") > 0


def next_minor(ns: NodeState) -> int:
    minor = int(ns.get("next_minor", 0))
    ns["next_minor"] = minor + 1
    return minor


# --- formatting -------------------------------------------------------------------------------

_DISPLAY_UNITS = (("EiB", 1024**6), ("PiB", 1024**5), ("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2),
                  ("KiB", 1024))


def display_size(num_bytes: int) -> str:
    """lvm2's long human size: ``4.00 MiB``, ``1.50 GiB``."""
    for suffix, factor in _DISPLAY_UNITS:
        if num_bytes >= factor:
            return f"{num_bytes / factor:.2f} {suffix}"
    return f"{num_bytes:.2f} B" if num_bytes else "0 "


_SHORT_UNITS = {"b": 1, "s": 512, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5,
                "e": 1024**6}
_SI_UNITS = {"B": 1, "S": 512, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5,
             "E": 1000**6}


def report_size(num_bytes: int, units: str, suffix: bool) -> str:
    """A size field as ``lvs`` prints it with ``--units`` (``h`` by default) and ``--nosuffix``."""
    if units in ("h", "H"):
        if num_bytes == 0:
            return "0 " if suffix else "0"
        base = 1024 if units == "h" else 1000
        letters = "bkmgtpe"
        index = 0
        value = float(num_bytes)
        while value >= base and index < len(letters) - 1:
            value /= base
            index += 1
        text = f"{value:.2f}"
        prefix = "<" if float(text) > value + 1e-12 else ""
        letter = letters[index] if units == "h" else letters[index].upper()
        return f"{prefix}{text}{letter if suffix else ''}"
    factor = _SHORT_UNITS.get(units) or _SI_UNITS[units]
    text = str(num_bytes) if factor == 1 else f"{num_bytes / factor:.2f}"
    return text + (units.upper() if units in ("b", "B") and suffix else (units if suffix else ""))


# --- argument helpers -------------------------------------------------------------------------


class LvmError(Exception):
    """Ends a simulated lvm command with ``code`` and ``message`` (lines, already indented)."""

    def __init__(self, code: int, message: str, stdout: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.stdout = stdout


def _err(*lines: str) -> str:
    return "".join(f"  {line}\n" for line in lines)


def _cmdline_error(program: str, detail: str) -> LvmError:
    return LvmError(EXIT_CMDLINE, detail + _err("Error during parsing of command line."))


def _scan(program: str, args: list[str], spec: dict[str, tuple[str, bool]]) -> Parsed:
    try:
        return scan(args, {**_COMMON, **spec})
    except OptionError as exc:
        raise _cmdline_error(program, f"{program}: {exc.reason} '{exc.option}'\n") from None


_COMMON: dict[str, tuple[str, bool]] = {
    "-v": ("verbose", False), "--verbose": ("verbose", False), "-q": ("quiet", False),
    "--quiet": ("quiet", False), "-d": ("debug", False), "--debug": ("debug", False),
    "-t": ("test", False), "--test": ("test", False), "--config": ("config", True),
    "--nolocking": ("nolocking", False), "-h": ("help", False), "--help": ("help", False),
}

_SIZE_RE = re.compile(r"([+-]?)(\d+(?:\.\d+)?)([bBsSkKmMgGtTpPeE]?)")


def parse_size_arg(program: str, text: str) -> tuple[str, int]:
    """``-L`` values: sign and bytes; the default unit is MiB."""
    match = _SIZE_RE.fullmatch(text)
    if match is None:
        raise _cmdline_error(program, _err(f"Invalid argument for --size: {text}"))
    sign, number, unit = match.groups()
    factor = _SHORT_UNITS[unit.lower()] if unit else 1024**2
    return sign, math.ceil(float(number) * factor)


_EXTENTS_RE = re.compile(r"([+-]?)(\d+)(%(?:FREE|VG|PVS|ORIGIN))?", re.IGNORECASE)


def parse_extents_arg(program: str, text: str, vg: dict[str, Any]) -> tuple[str, int]:
    match = _EXTENTS_RE.fullmatch(text)
    if match is None:
        raise _cmdline_error(program, _err(f"Invalid argument for --extents: {text}"))
    sign, number, percent = match.groups()
    value = int(number)
    if percent:
        base = vg_free_extents(vg) if percent.upper() == "%FREE" else vg_extent_count(vg)
        value = base * value // 100
    return sign, value


def parse_stripe_size(program: str, text: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmMbBsS]?)", text)
    if match is None:
        raise _cmdline_error(program, _err(f"Invalid argument for --stripesize: {text}"))
    number, unit = match.groups()
    return int(number) * (_SHORT_UNITS[unit.lower()] if unit else 1024)


def lv_name_problem(name: str) -> str | None:
    """lvm2's complaint about an LV name, or None when the name is valid."""
    if name in (".", "..") or not _LV_NAME_RE.fullmatch(name) or len(name) > 127:
        return f'Logical volume name "{name}" is invalid.'
    for prefix in _RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f'Names starting "{prefix}" are reserved. Please choose a different LV name.'
    for part in _RESERVED_SUBSTRINGS:
        if part in name:
            return f'Names including "{part}" are reserved. Please choose a different LV name.'
    return None


def _find_vg(ns: NodeState, vg_name: str) -> dict[str, Any]:
    vg: dict[str, Any] | None = ns["vgs"].get(vg_name)
    if vg is None:
        raise LvmError(EXIT_FAILED, _err(f'Volume group "{vg_name}" not found',
                                         f"Cannot process volume group {vg_name}"))
    return vg


def _split_lv_arg(arg: str) -> tuple[str, str] | None:
    text = arg
    if text.startswith("/dev/mapper/"):
        from reconciler.sim.state import split_mapper_name  # noqa: PLC0415

        return split_mapper_name(text[len("/dev/mapper/"):])
    if text.startswith("/dev/"):
        text = text[len("/dev/"):]
    vg, slash, lv = text.partition("/")
    if not slash or not vg or not lv or "/" in lv:
        return None
    return vg, lv


def _find_lv(ns: NodeState, arg: str) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
    split = _split_lv_arg(arg)
    if split is None:
        raise LvmError(EXIT_FAILED, _err(f'Volume group "{arg}" not found', f"Cannot process volume group {arg}"))
    vg_name, lv_name = split
    vg = _find_vg(ns, vg_name)
    lv = vg["lvs"].get(lv_name)
    if lv is None:
        raise LvmError(EXIT_FAILED, _err(f'Failed to find logical volume "{vg_name}/{lv_name}"'))
    return vg_name, vg, lv_name, lv


def _yes_no(value: str, option: str, program: str) -> bool:
    if value in ("y", "yes", "Y"):
        return True
    if value in ("n", "no", "N"):
        return False
    raise _cmdline_error(program, _err(f"Invalid argument for {option}: {value}"))


def _run(ctx: CommandContext, body: Any) -> CommandResult:
    """Run ``body(node_state, out)``; an ``LvmError`` rolls back the command's changes."""
    out: list[str] = []
    try:
        code = body(ctx.node_state, out)
    except LvmError as exc:
        stdout, stderr = _split_output(out)
        raise ctx.abort(exc.code, stderr + exc.message, stdout + exc.stdout) from None
    stdout, stderr = _split_output(out)
    return ctx.result(code, stdout, stderr)


def _split_output(out: list[str]) -> tuple[str, str]:
    stdout = "".join(line for line in out if not line.startswith("\x00"))
    stderr = "".join(line[1:] for line in out if line.startswith("\x00"))
    return stdout, stderr


def _warn(out: list[str], text: str) -> None:
    """Lines for stderr are marked with a NUL byte in the shared output list."""
    out.append("\x00" + text)


# --- reports ----------------------------------------------------------------------------------

LV_DEFAULT = ("lv_name", "vg_name", "lv_attr", "lv_size", "pool_lv", "origin", "data_percent",
              "metadata_percent", "move_pv", "mirror_log", "copy_percent", "convert_lv")
VG_DEFAULT = ("vg_name", "pv_count", "lv_count", "snap_count", "vg_attr", "vg_size", "vg_free")
PV_DEFAULT = ("pv_name", "vg_name", "pv_fmt", "pv_attr", "pv_size", "pv_free")
SEGMENT_FIELDS = frozenset({"segtype", "stripes", "stripe_size", "devices", "seg_start", "seg_size",
                            "seg_pe_ranges", "seg_size_pe", "seg_start_pe", "data_stripes"})
SIZE_FIELDS = frozenset({"lv_size", "vg_size", "vg_free", "vg_extent_size", "pv_size", "pv_free", "dev_size",
                         "stripe_size", "seg_start", "seg_size", "pe_start", "pv_used"})
HEADINGS = {
    "lv_name": "LV", "vg_name": "VG", "lv_attr": "Attr", "lv_size": "LSize", "pool_lv": "Pool", "origin": "Origin",
    "data_percent": "Data%", "metadata_percent": "Meta%", "move_pv": "Move", "mirror_log": "Log",
    "copy_percent": "Cpy%Sync", "convert_lv": "Convert", "lv_uuid": "LV UUID", "segtype": "Type",
    "stripes": "#Str", "stripe_size": "Stripe", "devices": "Devices", "lv_tags": "LV Tags", "seg_start": "Start",
    "seg_size": "SSize", "pv_count": "#PV", "lv_count": "#LV", "snap_count": "#SN", "vg_attr": "Attr",
    "vg_size": "VSize", "vg_free": "VFree", "vg_uuid": "VG UUID", "vg_extent_size": "Ext",
    "vg_extent_count": "#Ext", "vg_free_count": "Free", "pv_name": "PV", "pv_fmt": "Fmt", "pv_attr": "Attr",
    "pv_size": "PSize", "pv_free": "PFree", "pv_uuid": "PV UUID", "dev_size": "DevSize", "lv_path": "Path",
    "lv_dm_path": "DMPath", "lv_kernel_major": "KMaj", "lv_kernel_minor": "KMin", "lv_active": "Active",
    "vg_tags": "VG Tags", "pv_pe_count": "PE", "pv_pe_alloc_count": "Alloc", "pe_start": "1st PE",
    "seg_start_pe": "Start", "seg_size_pe": "SSize", "seg_pe_ranges": "PE Ranges", "data_stripes": "#DStr",
    "pv_used": "Used",
}
MIN_WIDTHS = {"lv_name": 4, "data_percent": 6, "metadata_percent": 6, "snap_percent": 6}
NUMERIC_FIELDS = SIZE_FIELDS | {"stripes", "pv_count", "lv_count", "snap_count", "vg_extent_count",
                                "vg_free_count", "lv_kernel_major", "lv_kernel_minor", "pv_pe_count",
                                "pv_pe_alloc_count", "seg_size_pe", "seg_start_pe", "data_stripes"}


def _lv_row(open_flag: bool, vg_name: str, vg: dict[str, Any], lv_name: str, lv: dict[str, Any],
            *, seg: dict[str, Any] | None, vg_extents: tuple[int, int] | None = None) -> dict[str, Any]:
    extent = int(vg["extent_size"])
    total, free = vg_extents or (vg_extent_count(vg), vg_free_extents(vg))
    row: dict[str, Any] = {
        "lv_name": lv_name, "vg_name": vg_name, "lv_uuid": lv["uuid"],
        "lv_attr": "-wi-ao----" if open_flag else "-wi-a-----",
        "lv_size": lv_size(vg, lv), "pool_lv": "", "origin": "", "data_percent": "", "metadata_percent": "",
        "move_pv": "", "mirror_log": "", "copy_percent": "", "convert_lv": "",
        "lv_tags": ",".join(lv.get("tags", [])), "lv_path": f"/dev/{vg_name}/{lv_name}",
        "lv_dm_path": f"/dev/mapper/{mapper_name(vg_name, lv_name)}", "lv_kernel_major": DM_MAJOR,
        "lv_kernel_minor": lv.get("minor", -1), "lv_active": "active", "vg_uuid": vg["uuid"],
        "vg_size": total * extent, "vg_free": free * extent, "vg_extent_size": extent,
    }
    segments = [seg] if seg is not None else lv["segments"]
    first = segments[0]
    row["segtype"] = first["type"]
    row["stripes"] = len(first["areas"])
    row["data_stripes"] = len(first["areas"])
    row["stripe_size"] = int(first["stripe_size"])
    row["seg_start"] = int(first["start_le"]) * extent
    row["seg_start_pe"] = int(first["start_le"])
    row["seg_size"] = int(first["extents"]) * extent
    row["seg_size_pe"] = int(first["extents"])
    row["devices"] = ",".join(f"{pv}({start})" for s in segments for pv, start in s["areas"])
    row["seg_pe_ranges"] = " ".join(
        f"{pv}:{start}-{int(start) + int(s['extents']) // len(s['areas']) - 1}" for s in segments
        for pv, start in s["areas"])
    return row


def _vg_row(vg_name: str, vg: dict[str, Any]) -> dict[str, Any]:
    extent = int(vg["extent_size"])
    count = vg_extent_count(vg)
    free = vg_free_extents(vg)
    return {
        "vg_name": vg_name, "vg_uuid": vg["uuid"], "vg_size": count * extent, "vg_free": free * extent,
        "vg_extent_size": extent, "vg_extent_count": count, "vg_free_count": free, "pv_count": len(vg["pvs"]),
        "lv_count": len(vg["lvs"]), "snap_count": 0, "vg_attr": "wz--n-", "vg_tags": "",
    }


def _pv_row(vg_name: str, vg: dict[str, Any], pv: dict[str, Any]) -> dict[str, Any]:
    extent = int(vg["extent_size"])
    free = pv_free_extents(vg, pv["name"])
    return {
        "pv_name": pv["name"], "vg_name": vg_name, "pv_size": int(pv["pe_count"]) * extent, "pv_free": free * extent,
        "pv_uuid": pv["uuid"], "pv_fmt": "lvm2", "pv_attr": "a--", "dev_size": int(pv.get("dev_size", 0)),
        "pv_pe_count": int(pv["pe_count"]), "pv_pe_alloc_count": int(pv["pe_count"]) - free, "pe_start": 1024**2,
        "pv_used": (int(pv["pe_count"]) - free) * extent, "vg_uuid": vg["uuid"],
        "vg_size": vg_extent_count(vg) * extent, "vg_free": vg_free_extents(vg) * extent, "vg_extent_size": extent,
    }


_REPORT_SPEC: dict[str, tuple[str, bool]] = {
    "-o": ("options", True), "--options": ("options", True), "--reportformat": ("reportformat", True),
    "--units": ("units", True), "--nosuffix": ("nosuffix", False), "--noheadings": ("noheadings", False),
    "--separator": ("separator", True), "-a": ("all", False), "--all": ("all", False), "-O": ("sort", True),
    "--sort": ("sort", True), "--segments": ("segments", False), "--aligned": ("aligned", False),
    "--binary": ("binary", False), "--readonly": ("readonly", False), "--nameprefixes": ("nameprefixes", False),
    "-P": ("partial", False), "--foreign": ("foreign", False), "--rows": ("rows", False),
    "--unbuffered": ("unbuffered", False),
}


def _resolve_fields(program: str, kind: str, parsed: Parsed, default: tuple[str, ...],
                    known: Iterable[str]) -> list[str]:
    known_set = set(known)
    fields: list[str] = []
    for group in parsed.all("options"):
        replace = not group.startswith("+")
        names = [n.strip() for n in group.lstrip("+").split(",") if n.strip()]
        if replace:
            fields = []
        elif not fields:
            fields = list(default)
        for name in names:
            resolved = _field_name(kind, name, known_set)
            if resolved is None:
                raise LvmError(EXIT_FAILED, _err(f"Unrecognised field: {name}"))
            fields.append(resolved)
    return fields or list(default)


def _field_name(kind: str, name: str, known: set[str]) -> str | None:
    lowered = name.lower()
    aliases = {"name": f"{kind}_name", "size": f"{kind}_size", "attr": f"{kind}_attr", "uuid": f"{kind}_uuid",
               "tags": f"{kind}_tags", "free": f"{kind}_free"}
    for candidate in (lowered, aliases.get(lowered, ""), f"{kind}_{lowered}"):
        if candidate in known:
            return candidate
    return None


def _format_value(field: str, value: Any, units: str, suffix: bool) -> str:
    if field in SIZE_FIELDS and isinstance(value, int):
        return report_size(value, units, suffix)
    return str(value)


def _render_json(kind: str, rows: list[dict[str, str]]) -> str:
    lines = ["  {", '      "report": [', "          {", f'              "{kind}": [']
    rendered = []
    for row in rows:
        # One encoder call per row (the field names are ASCII): the same text as encoding each cell.
        rendered.append("                  " + json.dumps(row, ensure_ascii=False, separators=(", ", ":")))
    if rendered:
        lines.append(",\n".join(rendered))
    lines += ["              ]", "          }", "      ]", "  }"]
    return "\n".join(lines) + "\n"


def _render_basic(fields: list[str], rows: list[dict[str, str]], parsed: Parsed) -> str:
    separator = parsed.last("separator")
    headings = not parsed.has("noheadings")
    if separator is not None:
        lines = [separator.join(HEADINGS.get(f, f) for f in fields)] if headings else []
        lines += [separator.join(row[f] for f in fields) for row in rows]
        return "".join(f"  {line}\n" for line in lines)
    # lvm pads every cell to its column's width (trailing blanks included, headings counted even when
    # they are not printed) and never strips a line.
    widths = {f: max([MIN_WIDTHS.get(f, 0), len(HEADINGS.get(f, f))] + [len(row[f]) for row in rows])
              for f in fields}
    out = []
    if headings and rows:
        out.append(" ".join(_pad(f, HEADINGS.get(f, f), widths[f], heading=True) for f in fields))
    for row in rows:
        out.append(" ".join(_pad(f, row[f], widths[f], heading=False) for f in fields))
    return "".join(f"  {line}\n" for line in out)


def _pad(field: str, text: str, width: int, *, heading: bool) -> str:
    if field in NUMERIC_FIELDS and not heading:
        return text.rjust(width)
    return text.ljust(width)


def _report(ctx: CommandContext, kind: str, argv: list[str]) -> CommandResult:
    program = argv[0].rsplit("/", 1)[-1]

    def body(ns: NodeState, out: list[str]) -> int:
        parsed = _scan(program, argv[1:], _REPORT_SPEC)
        fmt = parsed.last("reportformat", "basic")
        if fmt not in ("basic", "json"):
            raise _cmdline_error(program, _err(f"Invalid argument for --reportformat: {fmt}"))
        units = parsed.last("units", "h") or "h"
        if units not in _SHORT_UNITS and units not in _SI_UNITS and units not in ("h", "H"):
            raise _cmdline_error(program, _err(f"Invalid argument for --units: {units}"))
        suffix = not parsed.has("nosuffix")
        rows, code, errors = _collect_rows(ctx, ns, kind, parsed)
        default = {"lv": LV_DEFAULT, "vg": VG_DEFAULT, "pv": PV_DEFAULT}[kind]
        known = rows[0][1].keys() if rows else _sample_fields(kind)
        try:
            fields = _resolve_fields(program, kind, parsed, default, known)
        except LvmError as exc:
            raise LvmError(exc.code, exc.message) from None
        per_segment = kind == "lv" and (parsed.has("segments") or any(f in SEGMENT_FIELDS for f in fields))
        table: list[dict[str, str]] = []
        for _, row, segments in rows:
            expanded = [row] if not per_segment else list(segments)
            for one in expanded:
                table.append({f: _format_value(f, one[f], units, suffix) for f in fields})
        if fmt == "json":
            out.append(_render_json(kind, table))
        else:
            out.append(_render_basic(fields, table, parsed))
        for line in errors:
            _warn(out, line)
        return code

    return _run(ctx, body)


def _sample_fields(kind: str) -> Iterable[str]:
    sample_vg: dict[str, Any] = {"uuid": "", "extent_size": 4194304,
                                 "pvs": [{"name": "/dev/x", "uuid": "", "pe_count": 1}], "lvs": {}}
    if kind == "vg":
        return _vg_row("x", sample_vg).keys()
    if kind == "pv":
        return _pv_row("x", sample_vg, sample_vg["pvs"][0]).keys()
    lv = {"uuid": "", "segments": [{"start_le": 0, "extents": 1, "type": "linear", "stripe_size": 0,
                                    "areas": [["/dev/x", 0]]}]}
    sample_vg["lvs"]["y"] = lv
    return _lv_row(False, "x", sample_vg, "y", lv, seg=None).keys()


def _collect_rows(ctx: CommandContext, ns: NodeState, kind: str,
                  parsed: Parsed) -> tuple[list[tuple[str, dict[str, Any], list[dict[str, Any]]]], int, list[str]]:
    """(sort key, row, segment rows) for every selected object, the exit code and error lines."""
    selected_vgs: list[str] = []
    selected_lvs: set[tuple[str, str]] = set()
    errors: list[str] = []
    code = EXIT_OK
    for arg in parsed.positionals:
        split = _split_lv_arg(arg) if kind == "lv" else None
        vg_name = split[0] if split else arg.removeprefix("/dev/")
        if kind == "pv":
            continue
        if vg_name not in ns["vgs"]:
            errors += [f'  Volume group "{vg_name}" not found\n', f"  Cannot process volume group {vg_name}\n"]
            code = EXIT_FAILED
            continue
        if split:
            if split[1] not in ns["vgs"][vg_name]["lvs"]:
                errors.append(f'  Failed to find logical volume "{vg_name}/{split[1]}"\n')
                code = EXIT_FAILED
                continue
            selected_lvs.add(split)
        else:
            selected_vgs.append(vg_name)
    wanted_all = not parsed.positionals
    # A report of a few named LVs looks at those only: its cost does not grow with the node's other LVs.
    few = kind == "lv" and not wanted_all and not selected_vgs
    counts = open_counts(ctx.state, ctx.node) if kind == "lv" and not few else {}
    opened = open_counts_of(ctx.state, ctx.node, [f"/dev/{v}/{n}" for v, n in sorted(selected_lvs)]) if few else {}
    rows: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = []
    for vg_name in sorted(ns["vgs"]):
        vg = ns["vgs"][vg_name]
        if few:
            named = sorted(lv_name for v, lv_name in selected_lvs if v == vg_name)
            if not named:
                continue
            vg_extents = (vg_extent_count(vg), vg_free_extents(vg))
            for lv_name in named:
                lv = vg["lvs"][lv_name]
                is_open = opened[f"/dev/{vg_name}/{lv_name}"] > 0
                row = _lv_row(is_open, vg_name, vg, lv_name, lv, seg=None, vg_extents=vg_extents)
                segs = [_lv_row(is_open, vg_name, vg, lv_name, lv, seg=seg, vg_extents=vg_extents)
                        for seg in lv["segments"]]
                rows.append((f"{vg_name}/{lv_name}", row, segs))
            continue
        vg_extents = (vg_extent_count(vg), vg_free_extents(vg))
        if kind == "vg":
            if wanted_all or vg_name in selected_vgs:
                rows.append((vg_name, _vg_row(vg_name, vg), []))
            continue
        if kind == "pv":
            for pv in vg["pvs"]:
                if wanted_all or pv["name"] in parsed.positionals:
                    rows.append((pv["name"], _pv_row(vg_name, vg, pv), []))
            continue
        for lv_name in sorted(vg["lvs"]):
            if not (wanted_all or vg_name in selected_vgs or (vg_name, lv_name) in selected_lvs):
                continue
            lv = vg["lvs"][lv_name]
            is_open = counts.get(f"{DM_MAJOR}:{lv['minor']}", 0) > 0
            row = _lv_row(is_open, vg_name, vg, lv_name, lv, seg=None, vg_extents=vg_extents)
            segs = [_lv_row(is_open, vg_name, vg, lv_name, lv, seg=seg, vg_extents=vg_extents)
                    for seg in lv["segments"]]
            rows.append((f"{vg_name}/{lv_name}", row, segs))
    if kind == "pv":
        rows.sort(key=lambda r: r[0])
    return rows, code, errors


@command("lvs")
def lvs(ctx: CommandContext, argv: list[str]) -> CommandResult:
    return _report(ctx, "lv", argv)


@command("vgs")
def vgs(ctx: CommandContext, argv: list[str]) -> CommandResult:
    return _report(ctx, "vg", argv)


@command("pvs")
def pvs(ctx: CommandContext, argv: list[str]) -> CommandResult:
    return _report(ctx, "pv", argv)


# --- lvcreate ---------------------------------------------------------------------------------

_CREATE_SPEC: dict[str, tuple[str, bool]] = {
    "-L": ("size", True), "--size": ("size", True), "-l": ("extents", True), "--extents": ("extents", True),
    "-n": ("name", True), "--name": ("name", True), "-i": ("stripes", True), "--stripes": ("stripes", True),
    "-I": ("stripesize", True), "--stripesize": ("stripesize", True), "-W": ("wipe", True),
    "--wipesignatures": ("wipe", True), "-Z": ("zero", True), "--zero": ("zero", True), "-y": ("yes", False),
    "--yes": ("yes", False), "-a": ("activate", True), "--activate": ("activate", True),
    "--addtag": ("addtag", True), "-A": ("autobackup", True), "--autobackup": ("autobackup", True),
    "-f": ("force", False), "--force": ("force", False), "--type": ("type", True),
}


def _inherit(state: State, vg: dict[str, Any], lv: dict[str, Any], *, wipe: bool, zero: bool,
             yes: bool, path: str, out: list[str]) -> None:
    """Give a new LV what its first extent still holds, then wipe or zero as asked."""
    first = lv["segments"][0]["areas"][0]
    stale = [s for s in vg.get("stale", []) if s["pv"] == first[0] and int(s["pe"]) == int(first[1])]
    record = content(state, "lv:" + lv["uuid"])
    if stale:
        old = stale[-1]
        signature = old.get("content", {}).get("signature")
        if signature:
            record["signature"] = copy.deepcopy(signature)
        same_extents = int(old.get("extents", -1)) == lv_extents(lv)
        for key, value in old.get("content", {}).items():
            if key not in ("signature", "failed") and same_extents:
                record[key] = copy.deepcopy(value)
    taken = _extent_ranges(lv)
    vg["stale"] = [s for s in vg.get("stale", []) if not _taken(taken, s["pv"], int(s["pe"]))]
    signature = record.get("signature")
    if wipe and signature:
        kind = signature.get("type", "unknown")
        if yes:
            out.append(f"  Wiping {kind} signature on {path}.\n")
            record["signature"] = None
            record.pop("drbd_md", None)
        else:
            out.append(f"WARNING: {kind} signature detected on {path} at offset 0. Wipe it? [y/n]: [n]\n")
            _warn(out, f"  Aborted wiping of {kind}.\n")
            _warn(out, "  1 existing signature left on the device.\n")
    if zero and record.get("signature") and record["signature"].get("type") in ZEROED_SIGNATURES:
        record["signature"] = None


def _extent_ranges(lv: dict[str, Any]) -> list[tuple[str, int, int]]:
    """The LV's areas as (PV, first extent, end): a range each, not a set of every extent it covers."""
    taken: list[tuple[str, int, int]] = []
    for seg in lv["segments"]:
        per_area = int(seg["extents"]) // len(seg["areas"])
        for pv, start in seg["areas"]:
            taken.append((pv, int(start), int(start) + per_area))
    return taken


def _taken(ranges: list[tuple[str, int, int]], pv: str, pe: int) -> bool:
    return any(pv == name and first <= pe < end for name, first, end in ranges)


@command("lvcreate")
def lvcreate(ctx: CommandContext, argv: list[str]) -> CommandResult:
    def body(ns: NodeState, out: list[str]) -> int:
        parsed = _scan("lvcreate", argv[1:], _CREATE_SPEC)
        name = parsed.last("name")
        if not parsed.positionals:
            if name and "/" in name:
                vg_name, _, name = name.partition("/")
            else:
                raise LvmError(EXIT_CMDLINE, _err("Please specify a volume group name or logical volume name.",
                                                  "Run `lvcreate --help' for more information."))
        else:
            vg_name = parsed.positionals[0].removeprefix("/dev/")
        problem = lv_name_problem(name) if name is not None else None
        if problem is not None:
            raise LvmError(EXIT_CMDLINE, _err(problem, "Run `lvcreate --help' for more information."))
        if not parsed.has("size") and not parsed.has("extents"):
            raise LvmError(EXIT_CMDLINE, _err("No command with matching syntax recognised.  Run 'lvcreate --help' "
                                              "for more information."))
        if parsed.has("size") and parsed.has("extents"):
            raise LvmError(EXIT_CMDLINE, _err("Please specify either size or extents (not both).",
                                              "Run `lvcreate --help' for more information."))
        zero = _yes_no(parsed.last("zero") or "y", "--zero", "lvcreate")
        wipe_arg = parsed.last("wipe")
        wipe = _yes_no(wipe_arg, "--wipesignatures", "lvcreate") if wipe_arg is not None else zero
        stripes = int(parsed.last("stripes") or "1") if (parsed.last("stripes") or "1").isdigit() else -1
        if stripes < 1:
            raise _cmdline_error("lvcreate", _err(f"Invalid argument for --stripes: {parsed.last('stripes')}"))
        stripe_size = parse_stripe_size("lvcreate", parsed.last("stripesize") or "64k") if stripes > 1 else 0
        if stripes > 1 and not parsed.has("stripesize"):
            out.append(f"  Using default stripesize {display_size(stripe_size)}.\n")
        if stripes > 1 and (stripe_size < 4096 or stripe_size & (stripe_size - 1)):
            raise LvmError(EXIT_CMDLINE, _err(f"Invalid stripe size {display_size(stripe_size)}.",
                                              "Run `lvcreate --help' for more information."))
        vg = _find_vg(ns, vg_name)
        extent = int(vg["extent_size"])
        if name is None:
            index = 0
            while f"lvol{index}" in vg["lvs"]:
                index += 1
            name = f"lvol{index}"
        if parsed.has("size"):
            _, size = parse_size_arg("lvcreate", parsed.last("size") or "")
            extents = -(-size // extent)
            if extents * extent != size:
                out.append(f"  Rounding up size to full physical extent {display_size(extents * extent)}\n")
        else:
            _, extents = parse_extents_arg("lvcreate", parsed.last("extents") or "", vg)
        if extents < 1:
            raise LvmError(EXIT_FAILED, _err("Unable to create new logical volume with no extents."))
        if name in vg["lvs"]:
            raise LvmError(EXIT_FAILED, _err(f'Logical Volume "{name}" already exists in volume group "{vg_name}"'))
        if stripes > len(vg["pvs"]):
            raise LvmError(EXIT_FAILED, _err(
                f"Number of stripes ({stripes}) must not exceed number of physical volumes ({len(vg['pvs'])})"))
        if stripes > 1 and extents % stripes:
            rounded = extents + stripes - extents % stripes
            out.append(f"  Rounding size {display_size(extents * extent)} ({extents} extents) up to stripe "
                       f"boundary size {display_size(rounded * extent)} ({rounded} extents).\n")
            extents = rounded
        free = vg_free_extents(vg)
        if free < extents:
            raise LvmError(EXIT_FAILED, _err(
                f'Volume group "{vg_name}" has insufficient free space ({free} extents): {extents} required.'))
        if stripes > 1:
            seg = _allocate_striped(vg, extents, stripes, stripe_size, start_le=0)
            segments = [seg] if seg else None
        else:
            segments = _allocate_linear(vg, extents, 0)
        if segments is None:
            raise LvmError(EXIT_FAILED, _err(
                f"Insufficient suitable allocatable extents for logical volume {name}: {extents} more required"))
        order = int(vg.get("next_order", len(vg["lvs"])))
        vg["next_order"] = order + 1
        lv: dict[str, Any] = {"uuid": lvm_uuid(), "segments": segments, "minor": next_minor(ns),
                              "tags": parsed.all("addtag"), "created": ctx.now, "order": order}
        vg["lvs"][name] = lv
        _inherit(ctx.state, vg, lv, wipe=wipe, zero=zero, yes=parsed.has("yes"), path=f"/dev/{vg_name}/{name}",
                 out=out)
        if not zero:
            _warn(out, f"  WARNING: Logical volume {vg_name}/{name} not zeroed.\n")
        out.append(f'  Logical volume "{name}" created.\n')
        return EXIT_OK

    return _run(ctx, body)


# --- lvextend / lvreduce / lvresize -----------------------------------------------------------

_RESIZE_SPEC: dict[str, tuple[str, bool]] = {
    "-L": ("size", True), "--size": ("size", True), "-l": ("extents", True), "--extents": ("extents", True),
    "-f": ("force", False), "--force": ("force", False), "-y": ("yes", False), "--yes": ("yes", False),
    "-r": ("resizefs", False), "--resizefs": ("resizefs", False), "-n": ("nofsck", False),
    "--nofsck": ("nofsck", False), "-i": ("stripes", True), "--stripes": ("stripes", True),
    "-I": ("stripesize", True), "--stripesize": ("stripesize", True), "-A": ("autobackup", True),
}


def _resize(ctx: CommandContext, argv: list[str], program: str) -> CommandResult:
    def body(ns: NodeState, out: list[str]) -> int:
        parsed = _scan(program, argv[1:], _RESIZE_SPEC)
        if not parsed.positionals:
            raise LvmError(EXIT_CMDLINE, _err("Please specify the logical volume to resize.",
                                              f"Run `{program} --help' for more information."))
        if parsed.has("size") == parsed.has("extents"):
            raise LvmError(EXIT_CMDLINE, _err("Please specify either size or extents but not both.",
                                              f"Run `{program} --help' for more information."))
        vg_name, vg, lv_name, lv = _find_lv(ns, parsed.positionals[0])
        extent = int(vg["extent_size"])
        current = lv_extents(lv)
        if parsed.has("size"):
            sign, size = parse_size_arg(program, parsed.last("size") or "")
            delta = -(-size // extent)
            if not sign and delta * extent != size:
                out.append(f"  Rounding size to boundary between physical extents: {display_size(delta * extent)}.\n")
        else:
            sign, delta = parse_extents_arg(program, parsed.last("extents") or "", vg)
        target = current + delta if sign == "+" else current - delta if sign == "-" else delta
        if (program == "lvextend" and sign == "-") or (program == "lvreduce" and sign == "+"):
            option, value = ("--size", parsed.last("size")) if parsed.has("size") else ("--extents",
                                                                                         parsed.last("extents"))
            raise _cmdline_error(program, _err(f"Size may not be {'negative' if sign == '-' else 'positive'}.",
                                               f"Invalid argument for {option}: {value}"))
        if target == current:
            raise LvmError(EXIT_FAILED, _err(f"New size ({target} extents) matches existing size ({current} extents)."))
        if program == "lvextend" and target < current:
            raise LvmError(EXIT_FAILED, _err(
                f"New size given ({target} extents) not larger than existing size ({current} extents)"))
        if program == "lvreduce" and target > current:
            raise LvmError(EXIT_FAILED, _err(
                f"New size given ({target} extents) not less than existing size ({current} extents)"))
        if target < 1:
            raise LvmError(EXIT_FAILED, _err("New size of 0 extents is invalid."))
        path = f"{vg_name}/{lv_name}"
        old_text = f"{display_size(current * extent)} ({current} extents)"
        new_text = f"{display_size(target * extent)} ({target} extents)"
        if target < current:
            is_open = lv_is_open(ctx.state, ctx.node, vg_name, lv_name)
            _warn(out, f"  WARNING: Reducing active{' and open' if is_open else ''} logical volume to "
                       f"{display_size(target * extent)}.\n")
            _warn(out, "  THIS MAY DESTROY YOUR DATA (filesystem etc.)\n")
            if not (parsed.has("force") or parsed.has("yes")):
                out.append(f"Do you really want to reduce {path}? [y/n]: [n]\n")
                raise LvmError(EXIT_FAILED, _err(f"Logical volume {path} NOT reduced."))
            _shrink(lv, target)
        else:
            last = lv["segments"][-1]
            if last["type"] == "striped":
                out.append(f"  Using stripesize of last segment {display_size(int(last['stripe_size']))}\n")
                stripes = len(last["areas"])
                more = target - current
                if more % stripes:
                    more += stripes - more % stripes
                    out.append(f"  Rounding size ({target} extents) up to stripe boundary size for segment "
                               f"({current + more} extents).\n")
                    target = current + more
                    new_text = f"{display_size(target * extent)} ({target} extents)"
            else:
                more = target - current
            free = vg_free_extents(vg)
            if free < more:
                raise LvmError(EXIT_FAILED, _err(f"Insufficient free space: {more} extents needed, but only "
                                                 f"{free} available"))
            if last["type"] == "striped":
                added = _allocate_striped(vg, more, len(last["areas"]), int(last["stripe_size"]), start_le=current)
                new_segments = [added] if added else None
            else:
                new_segments = _allocate_linear(vg, more, current)
            if new_segments is None:
                raise LvmError(EXIT_FAILED, _err(
                    f"Insufficient suitable allocatable extents for logical volume {lv_name}: {more} more required"))
            lv["segments"].extend(new_segments)
            _merge_segments(lv)
        out.append(f"  Size of logical volume {path} changed from {old_text} to {new_text}.\n")
        out.append(f"  Logical volume {path} successfully resized.\n")
        return EXIT_OK

    return _run(ctx, body)


def _shrink(lv: dict[str, Any], target: int) -> None:
    kept: list[dict[str, Any]] = []
    remaining = target
    for seg in lv["segments"]:
        if remaining <= 0:
            break
        kept.append(dict(seg, extents=min(int(seg["extents"]), remaining)))
        remaining -= int(kept[-1]["extents"])
    lv["segments"] = kept


def _merge_segments(lv: dict[str, Any]) -> None:
    """Adjacent linear segments on the same PV become one, as lvm merges them."""
    merged: list[dict[str, Any]] = []
    for seg in lv["segments"]:
        if merged:
            prev = merged[-1]
            if (prev["type"] == seg["type"] == "linear" and prev["areas"][0][0] == seg["areas"][0][0]
                    and int(prev["areas"][0][1]) + int(prev["extents"]) == int(seg["areas"][0][1])):
                prev["extents"] = int(prev["extents"]) + int(seg["extents"])
                continue
            if (prev["type"] == seg["type"] == "striped" and len(prev["areas"]) == len(seg["areas"])
                    and prev["stripe_size"] == seg["stripe_size"]):
                per = int(prev["extents"]) // len(prev["areas"])
                if all(a[0] == b[0] and int(a[1]) + per == int(b[1]) for a, b in
                       zip(prev["areas"], seg["areas"], strict=True)):
                    prev["extents"] = int(prev["extents"]) + int(seg["extents"])
                    continue
        merged.append(dict(seg))
    lv["segments"] = merged


@command("lvextend")
def lvextend(ctx: CommandContext, argv: list[str]) -> CommandResult:
    return _resize(ctx, argv, "lvextend")


@command("lvreduce")
def lvreduce(ctx: CommandContext, argv: list[str]) -> CommandResult:
    return _resize(ctx, argv, "lvreduce")


# --- lvremove ---------------------------------------------------------------------------------

_REMOVE_SPEC: dict[str, tuple[str, bool]] = {
    "-f": ("force", False), "--force": ("force", False), "-y": ("yes", False), "--yes": ("yes", False),
    "-A": ("autobackup", True), "--autobackup": ("autobackup", True),
}


def remove_lv(state: State, ns: NodeState, vg: dict[str, Any], lv_name: str) -> None:
    """Drop an LV; its extents keep what was written on them (see the module docstring)."""
    lv = vg["lvs"].pop(lv_name)
    key = "lv:" + lv["uuid"]
    record = state.get("disks", {}).pop(key, None)
    first = lv["segments"][0]["areas"][0]
    if record and (record.get("signature") or len(record) > 1):
        kept = {k: v for k, v in record.items() if k != "failed"}
        vg.setdefault("stale", []).append({"pv": first[0], "pe": int(first[1]), "extents": lv_extents(lv),
                                           "content": kept})


@command("lvremove")
def lvremove(ctx: CommandContext, argv: list[str]) -> CommandResult:
    def body(ns: NodeState, out: list[str]) -> int:
        parsed = _scan("lvremove", argv[1:], _REMOVE_SPEC)
        if not parsed.positionals:
            raise LvmError(EXIT_CMDLINE, _err("Please enter one or more logical volume paths.",
                                              "Run `lvremove --help' for more information."))
        code = EXIT_OK
        targets: list[str] = []
        for arg in parsed.positionals:
            whole_vg = arg.removeprefix("/dev/")
            if "/" not in whole_vg and whole_vg in ns["vgs"]:
                lvs_in_vg = ns["vgs"][whole_vg]["lvs"]
                # lvm2 walks its metadata, where LVs stand in creation order.
                targets += [f"{whole_vg}/{lv}" for lv in sorted(lvs_in_vg, key=lambda n: lvs_in_vg[n].get("order", 0))]
            else:
                targets.append(arg)
        for arg in targets:
            try:
                vg_name, vg, lv_name, _ = _find_lv(ns, arg)
            except LvmError as exc:
                _warn(out, exc.message)
                code = EXIT_FAILED
                continue
            if lv_is_open(ctx.state, ctx.node, vg_name, lv_name):
                _warn(out, _err(f"Logical volume {vg_name}/{lv_name} in use."))
                code = EXIT_FAILED
                continue
            if not (parsed.has("yes") or parsed.has("force")):
                out.append(f"Do you really want to remove active logical volume {vg_name}/{lv_name}? [y/n]: [n]\n")
                _warn(out, _err(f"Logical volume {lv_name} not removed."))
                code = EXIT_FAILED
                continue
            remove_lv(ctx.state, ns, vg, lv_name)
            out.append(f'  Logical volume "{lv_name}" successfully removed.\n')
        return code

    return _run(ctx, body)


# --- lvchange (tags only) ---------------------------------------------------------------------

_CHANGE_SPEC: dict[str, tuple[str, bool]] = {
    "--addtag": ("addtag", True), "--deltag": ("deltag", True), "-y": ("yes", False), "--yes": ("yes", False),
    "-A": ("autobackup", True), "--autobackup": ("autobackup", True),
}
_TAG_RE = re.compile(r"[A-Za-z0-9_+.\-/=!:&#]{1,1024}")


@command("lvchange")
def lvchange(ctx: CommandContext, argv: list[str]) -> CommandResult:
    """``lvchange --addtag T|--deltag T VG/LV...``: the metadata-only change a takeover makes (a tag on an LV)."""
    def body(ns: NodeState, out: list[str]) -> int:
        parsed = _scan("lvchange", argv[1:], _CHANGE_SPEC)
        adds, dels = parsed.all("addtag"), parsed.all("deltag")
        if not adds and not dels:
            raise LvmError(EXIT_CMDLINE, _err("Need one or more command options.",
                                              "Run `lvchange --help' for more information."))
        for tag in (*adds, *dels):
            if not _TAG_RE.fullmatch(tag):
                raise LvmError(EXIT_CMDLINE, _err(f"Invalid argument for --addtag: {tag}"))
        if not parsed.positionals:
            raise LvmError(EXIT_CMDLINE, _err("Please supply logical volume(s) or use --select for selection.",
                                              "Run `lvchange --help' for more information."))
        for arg in parsed.positionals:
            vg_name, _, lv_name, lv = _find_lv(ns, arg)
            tags = [t for t in lv.get("tags", []) if t not in dels]
            tags += [t for t in adds if t not in tags]
            lv["tags"] = tags
            out.append(f"  Logical volume {vg_name}/{lv_name} changed.\n")
        return EXIT_OK

    return _run(ctx, body)


# --- lvm (the multiplexer) and versions -------------------------------------------------------

LVM_VERSION_TEXT = (
    "  LVM version:     2.03.16(2) (2022-05-18)\n"
    "  Library version: 1.02.185 (2022-05-18)\n"
    "  Driver version:  4.47.0\n"
    "  Configuration:   ./configure --build=x86_64-linux-gnu --prefix=/usr --sbindir=/sbin "
    "--with-default-locking-dir=/run/lock/lvm --enable-udev_sync --enable-udev_rules\n"
)
_LVM_SUBCOMMANDS = {"lvs": lvs, "vgs": vgs, "pvs": pvs, "lvcreate": lvcreate, "lvextend": lvextend,
                    "lvreduce": lvreduce, "lvremove": lvremove, "lvchange": lvchange}


@command("lvm")
def lvm(ctx: CommandContext, argv: list[str]) -> CommandResult:
    """``lvm version`` and ``lvm SUBCOMMAND ...`` as the simulated tools answer them."""
    if len(argv) < 2 or argv[1] in ("version", "--version"):
        return ctx.ok(LVM_VERSION_TEXT)
    handler = _LVM_SUBCOMMANDS.get(argv[1])
    if handler is None:
        return ctx.fail(EXIT_CMDLINE, f"  No such command '{argv[1]}'.  Try 'help'.\n")
    return handler(ctx, argv[1:])
