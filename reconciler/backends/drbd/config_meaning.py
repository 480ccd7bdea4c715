"""What a DRBD resource file *means*, so that a hand-written file and the rendered one can be compared by effect.

A takeover replaces a hand-written config with the rendered one only when nothing would change: when
``drbdadm adjust`` would find no option, host or device different (handlers are read by ``drbdadm`` when the
kernel calls them and change nothing in the kernel; values equal to DRBD's defaults are the same as leaving
them out). Pure: text in, values out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from reconciler.backends.drbd.conf import _parse_sections, _Section
from reconciler.core.own_mark import is_own
from reconciler.core.parse_error import ParseError
from reconciler.model.base import Frozen
from reconciler.model.observed import OwnedFile

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


def hand_written_resource(text: str, resource: str) -> bool:
    """A config someone wrote for this resource (no header of ours, and it defines it): a takeover's starting
    point. A file of ours edited by hand, or one that defines nothing readable, is drift instead."""
    if is_own(text):
        return False
    try:
        return resource in drbd_meanings(text, "current")
    except ParseError:
        return False


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
