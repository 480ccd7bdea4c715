"""What a DRBD resource file or an ``xl`` domain config *means*, so that two texts can be compared by effect.

A takeover replaces a hand-written config with the rendered one only when nothing would change: for DRBD,
when ``drbdadm adjust`` would find no option, host or device different (handlers are read by ``drbdadm``
when the kernel calls them and change nothing in the kernel; values equal to DRBD's defaults are the same
as leaving them out); for Xen, when ``xl create`` would build the same domain. Pure: text in, values out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from reconciler.core.parse_error import ParseError
from reconciler.model.base import Frozen
from reconciler.model.observed import OwnedFile
from reconciler.observe.drbdconf import _parse_sections, _Section

OWN_MARK = "written by the reconciler from"
"""Every file the reconciler renders says so on its first line; any other file there was written by hand."""

# Values equal to DRBD's built-in defaults (8.4 and 9 alike): writing them or not configures the same kernel.
_DRBD_DEFAULTS = {
    ("net", "protocol"): "C",
    ("net", "after-sb-0pri"): "disconnect",
    ("net", "after-sb-1pri"): "disconnect",
    ("net", "after-sb-2pri"): "disconnect",
    ("net", "allow-two-primaries"): "no",
    ("net", "fencing"): "dont-care",
    ("disk", "fencing"): "dont-care",
    ("options", "auto-promote"): "yes",
    ("startup", "wfc-timeout"): "0",
    ("startup", "degr-wfc-timeout"): "0",
    ("startup", "outdated-wfc-timeout"): "0",
}
_SECTIONS = ("net", "disk", "startup", "options")


def is_own(text: str | None) -> bool:
    first = (text or "").split("\n", 1)[0]
    return first.startswith("#") and OWN_MARK in first


def hand_written(text: str, *, drbd_resource: str | None = None, domain: str | None = None) -> bool:
    """A config someone wrote for this resource or domain (no header of ours, and it defines it): a takeover's
    starting point. A file of ours edited by hand, or one that defines nothing readable, is drift instead."""
    if is_own(text):
        return False
    try:
        if drbd_resource is not None:
            return drbd_resource in drbd_meanings(text, "current")
        setting = parse_xl(text, "current").get("name")
    except ParseError:
        return False
    return setting is not None and setting.value == domain


def defined_elsewhere(files: Iterable[OwnedFile], key: str, path: str) -> str:
    """Why ``path`` must not be written for resource ``key`` (``drbd:NAME``): another file drbdadm reads already
    defines it, and a resource defined twice makes every drbdadm call fail. Empty when nothing else does."""
    name = key.split(":", 1)[1]
    pattern = re.compile(rf"^\s*resource\s+{re.escape(name)}\s*\{{", re.MULTILINE)
    for f in files:
        found = pattern.search(f.content) if f.path != path and f.content is not None else None
        if found is not None and f.content is not None:
            line = f.content[:found.start()].count("\n") + 1
            return (f"resource {name} is defined in {f.path}:{line}; writing {path} beside it would define it twice "
                    "and make every drbdadm call fail: move that definition to this path by hand (see docs/import.md), "
                    "then the next pass takes it over")
    return ""


class DrbdHostMeaning(Frozen):
    minor: int | None
    disk: str | None
    meta_disk: str | None
    address: str | None
    node_id: str | None


class DrbdResourceMeaning(Frozen):
    name: str
    line: int
    options: dict[tuple[str, str], str]
    hosts: dict[str, DrbdHostMeaning]
    handlers: dict[str, str]


def _statements(section: _Section) -> dict[str, tuple[list[str], int]]:
    return {c.words[0]: (c.words[1:], c.line_no) for c in section.children if not c.is_block and c.words}


def _minor(words: list[str]) -> int | None:
    if "minor" in words:
        index = words.index("minor")
        if index + 1 < len(words) and words[index + 1].isdigit():
            return int(words[index + 1])
    for word in words:
        match = re.fullmatch(r"/dev/drbd(\d+)", word)
        if match:
            return int(match.group(1))
    return None


def _address(words: list[str]) -> str:
    rest = words[1:] if words and words[0] in ("ipv4", "ipv6") else words
    return " ".join(rest).replace("[", "").replace("]", "")


def drbd_meanings(text: str, source: str) -> dict[str, DrbdResourceMeaning]:
    """Every resource of one file (or of ``drbdadm dump`` output). Raises :class:`ParseError`."""
    found: dict[str, DrbdResourceMeaning] = {}
    for section in _parse_sections(text, source):
        if section.words[:1] != ["resource"] or not section.is_block or len(section.words) < 2:
            continue
        options: dict[tuple[str, str], str] = {}
        hosts: dict[str, DrbdHostMeaning] = {}
        handlers: dict[str, str] = {}
        common = _statements(section)
        if "protocol" in common:  # the 8.3 spelling at resource level
            options[("net", "protocol")] = " ".join(common["protocol"][0])
        for child in section.children:
            if not child.is_block or not child.words:
                continue
            kind = child.words[0]
            if kind in _SECTIONS:
                for key, (words, _) in _statements(child).items():
                    options[(kind, key)] = " ".join(words)
            elif kind == "handlers":
                handlers.update({k: " ".join(w) for k, (w, _) in _statements(child).items()})
            elif kind == "on":
                own = _statements(child)
                for name in child.words[1:]:
                    hosts[name] = DrbdHostMeaning(
                        minor=_minor((own.get("device") or common.get("device") or ([], 0))[0]),
                        disk=" ".join((own.get("disk") or common.get("disk") or ([], 0))[0]) or None,
                        meta_disk=" ".join((own.get("meta-disk") or common.get("meta-disk") or ([], 0))[0]) or None,
                        address=_address(own["address"][0]) if "address" in own else None,
                        node_id=" ".join(own["node-id"][0]) if "node-id" in own else None,
                    )
        for option, default in _DRBD_DEFAULTS.items():
            if options.get(option) == default:
                del options[option]
        found[section.words[1]] = DrbdResourceMeaning(name=section.words[1], line=section.line_no, options=options,
                                                      hosts=hosts, handlers=handlers)
    return found


def drbd_differences(current: str, desired: str, source: str) -> list[str]:
    """What ``drbdadm adjust`` would change if ``desired`` replaced ``current`` (empty: nothing)."""
    try:
        old = drbd_meanings(current, source)
        new = drbd_meanings(desired, "rendered")
    except ParseError as exc:
        return [f"{source} cannot be read ({exc})"]
    out: list[str] = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before is None or after is None:
            out.append(f"resource {name} is defined only in the {'rendered' if before is None else 'current'} file")
            continue
        for key in sorted(set(before.options) | set(after.options)):
            a, b = before.options.get(key), after.options.get(key)
            if a != b:
                out.append(f"{key[0]} {key[1]}: {a or '(default)'} -> {b or '(default)'}")
        for host in sorted(set(before.hosts) | set(after.hosts)):
            x, y = before.hosts.get(host), after.hosts.get(host)
            if x is None or y is None:
                out.append(f"on {host}: only in the {'rendered' if x is None else 'current'} file")
                continue
            for field in ("minor", "disk", "meta_disk", "address", "node_id"):
                a_val, b_val = getattr(x, field), getattr(y, field)
                if field == "node_id" and (a_val is None or b_val is None):
                    continue  # drbdadm numbers hosts in order when the file gives no node-id
                if a_val != b_val:
                    out.append(f"on {host} {field.replace('_', '-')}: {a_val} -> {b_val}")
    return out


# --- xl domain configs -------------------------------------------------------------------------------

_XL_LINE_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_XL_STRING_RE = re.compile(r"""'([^'\\]*)'|"([^"\\]*)\"""")
_XL_DEFAULTS = {"type": "pv", "on_poweroff": "destroy", "on_reboot": "restart", "on_crash": "destroy"}

XlValue = str | int | tuple[str, ...]


class XlSetting(Frozen):
    value: XlValue
    line: int


def _xl_value(raw: str, source: str, line: int) -> XlValue:
    text = raw.strip()
    if text.startswith("["):
        if not text.endswith("]"):
            raise ParseError("xl config", f"{source}: a list must be on one line here", line)
        return tuple(a or b for a, b in _XL_STRING_RE.findall(text))
    match = _XL_STRING_RE.match(text)
    if match:
        return match.group(1) if text.startswith("'") else match.group(2)
    number = text.split("#", 1)[0].strip()
    if re.fullmatch(r"-?\d+", number):
        return int(number)
    raise ParseError("xl config", f"{source}: cannot read the value {text!r}", line)


def parse_xl(text: str, source: str) -> dict[str, XlSetting]:
    """``key = value`` lines of an xl config (strings, numbers, one-line lists). Raises :class:`ParseError`."""
    found: dict[str, XlSetting] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _XL_LINE_RE.match(line)
        if match is None:
            raise ParseError("xl config", f"{source}: not a 'key = value' line: {stripped[:60]!r}", number)
        found[match.group(1)] = XlSetting(value=_xl_value(match.group(2), source, number), line=number)
    return found


def _vif(spec: str) -> str:
    return ",".join(sorted(part.strip() for part in spec.split(",") if part.strip()))


def xl_meaning(settings: dict[str, XlSetting]) -> dict[str, XlValue]:
    values = {k: s.value for k, s in settings.items()}
    for key, default in _XL_DEFAULTS.items():
        values.setdefault(key, default)
    values.setdefault("maxmem", values.get("memory", 0))
    values.setdefault("maxvcpus", values.get("vcpus", 1))
    values.setdefault("vcpus", 1)
    values.setdefault("vif", ())  # no vif line: a domain without network interfaces, as `vif = []`
    if isinstance(values.get("vif"), tuple):
        values["vif"] = tuple(_vif(v) for v in values["vif"])  # type: ignore[union-attr]
    if isinstance(values.get("disk"), tuple):
        values["disk"] = tuple(d.replace(" ", "") for d in values["disk"])  # type: ignore[union-attr]
    return values


def xl_differences(current: str, desired: str, source: str) -> list[str]:
    """Settings in which ``xl create`` would build a different domain from ``desired`` than from ``current``."""
    try:
        old = xl_meaning(parse_xl(current, source))
        new = xl_meaning(parse_xl(desired, "rendered"))
    except ParseError as exc:
        return [f"{source} cannot be read ({exc})"]
    return [f"{key}: {old.get(key, '(unset)')!r} -> {new.get(key, '(unset)')!r}"
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
