"""Xen: ``xl list`` (the table), ``xl list -l`` (JSON configs) and ``xl info``.

``xl list`` state flags: r running, b blocked (idle, waiting for I/O or events), p paused, s shut down,
c crashed, d dying. A domain whose name shows as ``(null)`` is dying: its name is already gone.
A runnable vCPU waiting for a physical CPU shows no flag at all (``------``); that domain is running.
"""

from __future__ import annotations

import re
from typing import Any

from reconciler.core.jsontext import load_json
from reconciler.core.parse_error import ParseError
from reconciler.model.base import Frozen
from reconciler.model.observed import DomainRunState, DomainState, HostInfo

XL_LIST_ARGV: tuple[str, ...] = ("xl", "list")
XL_LIST_LONG_ARGV: tuple[str, ...] = ("xl", "list", "-l")
XL_INFO_ARGV: tuple[str, ...] = ("xl", "info")

DOM0_NAME = "Domain-0"
DYING_NAME = "(null)"
_DIGITS = re.compile(r"[0-9]+")
_FLAGS = re.compile(r"[r-][b-][p-][s-][c-][d-]")
_HEADER = re.compile(r"Name\s+ID\s+Mem\s+VCPUs\s+State\s+Time\(s\)")


class XlListRow(Frozen):
    name: str
    domid: int
    mem_mib: int
    vcpus: int
    flags: str
    time_s: float
    is_dom0: bool = False

    @property
    def dying(self) -> bool:
        return self.name == DYING_NAME or self.flags[5] == "d"

    @property
    def state(self) -> DomainRunState:
        if self.dying:
            return "dying"
        if self.flags[4] == "c":
            return "crashed"
        if self.flags[3] == "s":
            return "shutdown"
        if self.flags[2] == "p":
            return "paused"
        if self.flags[1] == "b" and self.flags[0] != "r":
            return "blocked"
        return "running"


class XlDomainConfig(Frozen):
    domid: int
    name: str
    uuid: str | None = None
    max_memkb: int | None = None
    target_memkb: int | None = None
    max_vcpus: int | None = None
    disks: tuple[str, ...] = ()
    vdevs: tuple[str, ...] = ()
    nics: tuple[str, ...] = ()
    bridges: tuple[str, ...] = ()


def parse_xl_list(text: str) -> tuple[XlListRow, ...]:
    tool = "xl list"
    rows = []
    header_seen = False
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if not header_seen:
            if not _HEADER.fullmatch(line.strip()):
                raise ParseError(tool, "expected the header 'Name ID Mem VCPUs State Time(s)'", line_no, line)
            header_seen = True
            continue
        parts = line.rsplit(None, 5)
        if len(parts) != 6:
            raise ParseError(tool, "expected 6 columns", line_no, line)
        name, domid, mem, vcpus, flags, time_s = (part.strip() for part in parts)
        if not all(_DIGITS.fullmatch(value) for value in (domid, mem, vcpus)):
            raise ParseError(tool, "ID, Mem and VCPUs must be whole numbers", line_no, line)
        if not _FLAGS.fullmatch(flags):
            raise ParseError(tool, f"state {flags!r} is not of the form [r-][b-][p-][s-][c-][d-]", line_no, line)
        if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", time_s):
            raise ParseError(tool, f"time {time_s!r} is not a number of seconds", line_no, line)
        if not name:
            raise ParseError(tool, "empty domain name", line_no, line)
        rows.append(
            XlListRow(
                name=name,
                domid=int(domid),
                mem_mib=int(mem),
                vcpus=int(vcpus),
                flags=flags,
                time_s=float(time_s),
                is_dom0=int(domid) == 0,
            )
        )
    if not header_seen:
        raise ParseError(tool, "empty output; expected at least the header and Domain-0")
    return tuple(rows)


def _expect_dict(value: object, what: str, tool: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(tool, f"{what} is {type(value).__name__}, expected an object")
    return value


def _optional_int(mapping: dict[str, Any], key: str, what: str, tool: str) -> int | None:
    value = mapping.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError(tool, f"{what}.{key} is {value!r}, expected a whole number")
    return value


def _strings(items: object, key: str, what: str, tool: str) -> tuple[str, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ParseError(tool, f"{what} is {type(items).__name__}, expected a list")
    found = []
    for item in items:
        entry = _expect_dict(item, f"an entry of {what}", tool)
        value = entry.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ParseError(tool, f"{what}[].{key} is {value!r}, expected a string")
        found.append(value)
    return tuple(found)


def _config(entry: object, tool: str) -> XlDomainConfig:
    item = _expect_dict(entry, "a domain entry", tool)
    domid = item.get("domid")
    if isinstance(domid, bool) or not isinstance(domid, int):
        raise ParseError(tool, f"domid is {domid!r}, expected a whole number")
    config = _expect_dict(item.get("config"), f"config of domain {domid}", tool)
    c_info = _expect_dict(config.get("c_info"), f"c_info of domain {domid}", tool)
    b_info = _expect_dict(config.get("b_info", {}), f"b_info of domain {domid}", tool)
    name = c_info.get("name")
    if not isinstance(name, str) or not name:
        raise ParseError(tool, f"c_info.name of domain {domid} is {name!r}, expected a name")
    uuid = c_info.get("uuid")
    if uuid is not None and not isinstance(uuid, str):
        raise ParseError(tool, f"c_info.uuid of domain {domid} is {uuid!r}, expected a string")
    disks = config.get("disks")
    nics = config.get("nics")
    return XlDomainConfig(
        domid=domid,
        name=name,
        uuid=uuid,
        max_memkb=_optional_int(b_info, "max_memkb", "b_info", tool),
        target_memkb=_optional_int(b_info, "target_memkb", "b_info", tool),
        max_vcpus=_optional_int(b_info, "max_vcpus", "b_info", tool),
        disks=_strings(disks, "pdev_path", "disks", tool),
        vdevs=_strings(disks, "vdev", "disks", tool),
        nics=_strings(nics, "mac", "nics", tool),
        bridges=_strings(nics, "bridge", "nics", tool),
    )


SExpr = str | list["SExpr"]
_SXP_TOKEN = re.compile(r"\s*(?:(\()|(\))|'([^']*)'|([^\s()']+))")


def _read_sexprs(text: str, tool: str) -> tuple[list[SExpr], int]:
    """S-expressions as xl prints them: bare atoms, 'quoted' atoms, nested lists; nothing else.
    Also returns how many ')' closed nothing (see :func:`_parse_sxp`)."""
    stack: list[list[SExpr]] = [[]]
    stray_closers = 0
    position = 0
    while position < len(text):
        match = _SXP_TOKEN.match(text, position)
        if match is None:
            if not text[position:].strip():
                break
            line_no = text.count("\n", 0, position) + 1
            line = text[text.rfind("\n", 0, position) + 1:].split("\n", 1)[0]
            raise ParseError(tool, "unreadable S-expression (a quote that does not close?)", line_no, line)
        position = match.end()
        opening, closing, quoted, atom = match.groups()
        if opening:
            stack.append([])
        elif closing:
            if len(stack) == 1:
                stray_closers += 1
                continue
            finished = stack.pop()
            stack[-1].append(finished)
        else:
            stack[-1].append(quoted if quoted is not None else atom)
    if len(stack) != 1:
        raise ParseError(tool, "unbalanced '(': the output ends inside an expression")
    return stack[0], stray_closers


def _children(expr: list[SExpr], head: str) -> list[list[SExpr]]:
    return [child for child in expr[1:] if isinstance(child, list) and child and child[0] == head]


def _value(expr: list[SExpr], head: str) -> str | None:
    """The atoms after ``head`` in the first ``(head ...)`` child, joined by spaces."""
    for child in _children(expr, head):
        atoms = [item for item in child[1:] if isinstance(item, str)]
        return " ".join(atoms) if atoms else None
    return None


def _sxp_int(expr: list[SExpr], head: str, tool: str) -> int | None:
    value = _value(expr, head)
    if value is None:
        return None
    if not _DIGITS.fullmatch(value):
        raise ParseError(tool, f"({head} {value}) is not a whole number")
    return int(value)


def _mac(value: str) -> str:
    # libxl's sxp prints the MAC as 12 hex digits without separators.
    if re.fullmatch(r"[0-9a-fA-F]{12}", value):
        return ":".join(value[i:i + 2] for i in range(0, 12, 2)).lower()
    return value


def _sxp_domain(expr: list[SExpr], tool: str) -> XlDomainConfig:
    domid = _sxp_int(expr, "domid", tool)
    name = _value(expr, "name")
    if domid is None or not name:
        raise ParseError(tool, "a (domain ...) without (domid N) and (name NAME)")
    uuid = _value(expr, "uuid")
    # xend-era output gives memory in MiB (maxmem, memory); libxl's sxp gives KiB (max_memkb, target_memkb).
    max_memkb = _sxp_int(expr, "max_memkb", tool)
    target_memkb = _sxp_int(expr, "target_memkb", tool)
    maxmem = _sxp_int(expr, "maxmem", tool)
    memory = _sxp_int(expr, "memory", tool)
    max_vcpus = _sxp_int(expr, "max_vcpus", tool)
    if max_vcpus is None:
        max_vcpus = _sxp_int(expr, "vcpus", tool)
    disks: list[str] = []
    vdevs: list[str] = []
    nics: list[str] = []
    bridges: list[str] = []
    for device in _children(expr, "device"):
        for kind in device[1:]:
            if not isinstance(kind, list) or not kind:
                continue
            if kind[0] == "vbd":
                uname = _value(kind, "uname")
                if uname:
                    disks.append(uname.split(":", 1)[1] if ":" in uname else uname)
                dev = _value(kind, "dev")
                if dev:
                    vdevs.append(dev.split(":", 1)[0])
            elif kind[0] == "tap":
                physpath = _value(kind, "physpath")
                if physpath:
                    disks.append(physpath)
                virtpath = _value(kind, "virtpath")
                if virtpath:
                    vdevs.append(virtpath)
            elif kind[0] == "vif":
                mac = _value(kind, "mac")
                if mac:
                    nics.append(_mac(mac))
                bridge = _value(kind, "bridge")
                if bridge:
                    bridges.append(bridge)
    return XlDomainConfig(
        domid=domid,
        name=name,
        uuid=uuid if uuid and uuid != "<unknown>" else None,
        max_memkb=max_memkb if max_memkb is not None else (maxmem * 1024 if maxmem is not None else None),
        target_memkb=target_memkb if target_memkb is not None else (memory * 1024 if memory is not None else None),
        max_vcpus=max_vcpus,
        disks=tuple(disks),
        vdevs=tuple(vdevs),
        nics=tuple(nics),
        bridges=tuple(bridges),
    )


def _parse_sxp(text: str, tool: str) -> tuple[XlDomainConfig, ...]:
    # libxl's sxp printer closes "(linux 0)" on its own line for PV domains, so the image's closing
    # parenthesis ends the domain early: its (device ...) entries follow at top level and the final ')'
    # closes nothing. Devices are attached to the domain before them, and one such ')' per domain is allowed.
    exprs, stray_closers = _read_sexprs(text, tool)
    domains: list[list[SExpr]] = []
    for expr in exprs:
        if isinstance(expr, list) and expr and expr[0] == "domain":
            domains.append(list(expr))
        elif isinstance(expr, list) and expr and expr[0] == "device" and domains:
            domains[-1].append(expr)
        else:
            raise ParseError(tool, "expected only (domain ...) expressions")
    if stray_closers > len(domains):
        raise ParseError(tool, "unbalanced ')'")
    return tuple(_sxp_domain(domain, tool) for domain in domains)


def parse_xl_list_long(text: str) -> tuple[XlDomainConfig, ...]:
    """``xl list -l``: the JSON array xl prints by default, or the S-expressions of xend-era xl and of
    ``output_format="sxp"`` in xl.conf."""
    tool = "xl list -l"
    if text.lstrip().startswith("("):
        return _parse_sxp(text, tool)
    data = load_json(text, tool)
    if not isinstance(data, list):
        raise ParseError(tool, f"expected a JSON list of domains, got {type(data).__name__}")
    return tuple(_config(entry, tool) for entry in data)


def merge_domains(rows: tuple[XlListRow, ...], configs: tuple[XlDomainConfig, ...]) -> tuple[DomainState, ...]:
    """Domains other than Domain-0, with the config where ``xl list -l`` had one for that domid."""
    by_id = {config.domid: config for config in configs}
    domains = []
    for row in rows:
        if row.is_dom0:
            continue
        config = by_id.get(row.domid)
        if config is not None and not row.dying and config.name != row.name:
            # The domid was reused between the two commands: do not glue one domain's config to another.
            config = None
        domains.append(
            DomainState(
                name=row.name,
                domid=row.domid,
                state=row.state,
                memory_mib=row.mem_mib,
                maxmem_mib=config.max_memkb // 1024 if config and config.max_memkb is not None else None,
                vcpus=row.vcpus,
                uuid=config.uuid if config else None,
                disks=config.disks if config else (),
                nics=config.nics if config else (),
                cpu_time_s=row.time_s,
            )
        )
    return tuple(domains)


_INFO_LINE = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)\s*:\s?(.*)")


def parse_xl_info(text: str) -> HostInfo:
    tool = "xl info"
    values: dict[str, str] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _INFO_LINE.fullmatch(line.rstrip())
        if match is None:
            raise ParseError(tool, "expected 'key : value'", line_no, line)
        values[match.group(1)] = match.group(2).strip()
    if not values:
        raise ParseError(tool, "empty output")

    def mib(key: str) -> int | None:
        value = values.get(key)
        if value is None:
            return None
        if not _DIGITS.fullmatch(value):
            raise ParseError(tool, f"{key} is {value!r}, expected MiB as a whole number")
        return int(value)

    version = values.get("xen_version") or None
    if "xen_major" in values and "xen_minor" in values:
        version = f"{values['xen_major']}.{values['xen_minor']}{values.get('xen_extra', '')}"
    if version is not None and not re.fullmatch(r"[0-9]+\.[0-9]+[0-9A-Za-z._+-]*", version):
        raise ParseError(tool, f"xen version {version!r} is not of the form major.minor[extra]")
    return HostInfo(free_memory_mib=mib("free_memory"), total_memory_mib=mib("total_memory"), xen_version=version)
