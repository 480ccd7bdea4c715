"""DRBD resource files as the simulated ``drbdadm`` reads them (``/etc/drbd.d/*.res``).

Only the statements that change the simulated behaviour are interpreted; every other statement is
kept as an option string (so ``-d adjust`` can report that it changed) and otherwise ignored, as a
real ``drbdadm`` passes options it does not need to interpret straight to the kernel.
"""

from __future__ import annotations

import fnmatch
import functools
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

CONFIG_DIR = "/etc/drbd.d/"
TOP_CONFIG = "/etc/drbd.conf"
_INCLUDE_RE = re.compile(r'^\s*include\s+"?([^";\s]+)"?\s*;', re.MULTILINE)
EXIT_CONFIG = 10

_PROTOCOLS = ("A", "B", "C")
_SECTIONS = ("net", "disk", "options", "handlers", "startup")
_TOKEN_RE = re.compile(r'\s+|#[^\n]*|"(?:[^"\\]|\\.)*"|[{};]|[^\s{};"#]+')


class DrbdConfigError(ValueError):
    """A resource file ``drbdadm`` would refuse; ``str()`` is the message it prints."""


@dataclass(frozen=True)
class VolumeConfig:
    number: int
    device: str
    minor: int
    disk: str | None
    meta_disk: str = "internal"


@dataclass(frozen=True)
class HostConfig:
    name: str
    node_id: int
    address: str | None
    port: int | None
    family: str = "ipv4"
    volumes: tuple[VolumeConfig, ...] = ()

    @property
    def diskless(self) -> bool:
        return all(v.disk is None for v in self.volumes)

    def volume(self, number: int) -> VolumeConfig | None:
        return next((v for v in self.volumes if v.number == number), None)


@dataclass(frozen=True)
class ResourceConfig:
    name: str
    hosts: tuple[HostConfig, ...]
    sections: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    source: str = ""
    line: int = 1

    def host(self, name: str) -> HostConfig | None:
        return next((h for h in self.hosts if h.name == name), None)

    def require_host(self, name: str) -> HostConfig:
        found = self.host(name)
        if found is None:
            raise DrbdConfigError(f"'{self.name}' not defined in your config (for this host).")
        return found

    def option(self, section: str, key: str, default: str | None = None) -> str | None:
        return self.sections.get(section, {}).get(key, default)

    @property
    def protocol(self) -> str:
        return self.option("net", "protocol", "C") or "C"

    @property
    def allow_two_primaries(self) -> bool:
        return _yes(self.option("net", "allow-two-primaries"))

    @property
    def fencing(self) -> str:
        # DRBD 9 reads it from "net", 8.4 from "disk"; either place works here.
        return self.option("net", "fencing") or self.option("disk", "fencing") or "dont-care"

    @property
    def on_io_error(self) -> str:
        return self.option("disk", "on-io-error", "detach") or "detach"

    @property
    def quorum(self) -> str:
        return self.option("options", "quorum", "off") or "off"

    @property
    def on_no_quorum(self) -> str:
        return self.option("options", "on-no-quorum", "suspend-io") or "suspend-io"

    @property
    def fence_peer_handler(self) -> str | None:
        return self.option("handlers", "fence-peer")

    @property
    def split_brain_handler(self) -> str | None:
        return self.option("handlers", "split-brain")

    @property
    def resync_rate_kib(self) -> int | None:
        text = self.option("disk", "c-max-rate") or self.option("disk", "resync-rate")
        return None if text is None else parse_kib(text)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "sections": {k: dict(v) for k, v in self.sections.items()},
            "line": self.line,
            "hosts": [
                {"name": h.name, "node_id": h.node_id, "address": h.address, "port": h.port, "family": h.family,
                 "volumes": [{"number": v.number, "device": v.device, "minor": v.minor, "disk": v.disk,
                              "meta_disk": v.meta_disk} for v in h.volumes]}
                for h in self.hosts
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResourceConfig:
        hosts = tuple(
            HostConfig(name=h["name"], node_id=int(h["node_id"]), address=h["address"], port=h["port"],
                       family=h.get("family", "ipv4"),
                       volumes=tuple(VolumeConfig(**v) for v in h["volumes"]))
            for h in data["hosts"]
        )
        return cls(name=data["name"], hosts=hosts, sections=data.get("sections", {}), source=data.get("source", ""),
                   line=int(data.get("line", 1)))


def _yes(value: str | None) -> bool:
    return value is not None and value.lower() in ("yes", "")


def parse_kib(text: str) -> int:
    """A DRBD size option (default unit KiB): ``100M`` -> 102400."""
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", text.strip())
    if not match:
        raise DrbdConfigError(f"'{text}' is not a size")
    factor = {"": 1, "k": 1, "m": 1024, "g": 1024**2}[match.group(2).lower()]
    return int(match.group(1)) * factor


@dataclass
class _Stmt:
    words: list[str]
    line: int
    block: list[_Stmt] | None = None


def _tokens(text: str, source: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    line = 1
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise DrbdConfigError(f"{source}:{line}: Parse error: unexpected character {text[pos]!r}")
        token = match.group(0)
        if not token.isspace() and not token.startswith("#"):
            if token.startswith('"'):
                token = token[1:-1].replace('\\"', '"')
            out.append((token, line))
        line += match.group(0).count("\n")
        pos = match.end()
    return out


def _parse_block(tokens: list[tuple[str, int]], pos: int, source: str, closing: bool) -> tuple[list[_Stmt], int]:
    stmts: list[_Stmt] = []
    words: list[str] = []
    start_line = 0
    while pos < len(tokens):
        token, line = tokens[pos]
        pos += 1
        if token == "}":  # noqa: S105
            if words:
                raise DrbdConfigError(f"{source}:{line}: Parse error: ';' expected,\n\tbut got '}}'")
            if not closing:
                raise DrbdConfigError(f"{source}:{line}: Parse error: unexpected '}}'")
            return stmts, pos
        if token == ";":  # noqa: S105
            if words:
                stmts.append(_Stmt(words, start_line))
            words = []
        elif token == "{":  # noqa: S105
            if not words:
                raise DrbdConfigError(f"{source}:{line}: Parse error: unexpected '{{'")
            block, pos = _parse_block(tokens, pos, source, closing=True)
            stmts.append(_Stmt(words, start_line, block))
            words = []
        else:
            if not words:
                start_line = line
            words.append(token)
    if closing:
        raise DrbdConfigError(f"{source}: Parse error: '}}' expected at end of file")
    if words:
        raise DrbdConfigError(f"{source}:{start_line}: Parse error: ';' expected at end of file")
    return stmts, pos


def _parse_address(words: list[str], source: str, line: int) -> tuple[str, str, int]:
    family = "ipv4"
    rest = words
    if rest and rest[0] in ("ipv4", "ipv6", "ssocks", "sdp", "sci"):
        family, rest = rest[0], rest[1:]
    if len(rest) != 1 or ":" not in rest[0]:
        raise DrbdConfigError(f"{source}:{line}: Parse error: address expected as ADDRESS:PORT")
    host, _, port = rest[0].rpartition(":")
    if not port.isdigit():
        raise DrbdConfigError(f"{source}:{line}: Parse error: '{port}' is not a port number")
    return family, host.strip("[]"), int(port)


def _parse_device(words: list[str], source: str, line: int) -> tuple[str, int]:
    device: str | None = None
    minor: int | None = None
    index = 0
    while index < len(words):
        word = words[index]
        if word == "minor" and index + 1 < len(words):
            minor = int(words[index + 1])
            index += 2
            continue
        device = word
        index += 1
    if minor is None and device is not None:
        match = re.fullmatch(r"/dev/drbd(\d+)", device)
        if match:
            minor = int(match.group(1))
    if minor is None:
        raise DrbdConfigError(f"{source}:{line}: Parse error: device needs a minor number")
    return device or f"/dev/drbd{minor}", minor


@dataclass
class _VolumeDraft:
    device: tuple[str, int] | None = None
    disk: str | None = None
    disk_set: bool = False
    meta_disk: str | None = None

    def merged(self, base: _VolumeDraft) -> _VolumeDraft:
        return _VolumeDraft(
            device=self.device or base.device,
            disk=self.disk if self.disk_set else base.disk,
            disk_set=self.disk_set or base.disk_set,
            meta_disk=self.meta_disk or base.meta_disk,
        )


def _volume_statement(stmt: _Stmt, draft: _VolumeDraft, source: str) -> bool:
    keyword, args = stmt.words[0], stmt.words[1:]
    if keyword == "device":
        draft.device = _parse_device(args, source, stmt.line)
    elif keyword == "disk" and stmt.block is None:
        value = args[0] if args else "none"
        draft.disk = None if value == "none" else value
        draft.disk_set = True
    elif keyword in ("meta-disk", "flexible-meta-disk"):
        draft.meta_disk = " ".join(args)
    else:
        return False
    return True


def _section_options(stmts: Iterable[_Stmt]) -> dict[str, str]:
    return {s.words[0]: " ".join(s.words[1:]) for s in stmts if s.block is None}


def _merge_section(sections: dict[str, dict[str, str]], name: str, stmts: Iterable[_Stmt], source: str) -> None:
    options = _section_options(stmts)
    if name == "net" and "protocol" in options:
        _check_protocol(options["protocol"], source, next(s.line for s in stmts if s.words[0] == "protocol"))
    sections.setdefault(name, {}).update(options)


def _check_protocol(value: str, source: str, line: int) -> None:
    if value not in _PROTOCOLS:
        raise DrbdConfigError(
            f"{source}:{line}: Parse error: while parsing value ('{value}')\n"
            "for protocol. Value is not valid.\nAllowed values are: A | B | C"
        )


def _resource(stmt: _Stmt, source: str, common: Mapping[str, Mapping[str, str]]) -> ResourceConfig:
    if len(stmt.words) != 2 or stmt.block is None:
        raise DrbdConfigError(f"{source}:{stmt.line}: Parse error: resource name expected")
    name = stmt.words[1]
    sections: dict[str, dict[str, str]] = {k: dict(v) for k, v in common.items()}
    base = _VolumeDraft()
    base_volumes: dict[int, _VolumeDraft] = {}
    hosts: list[tuple[str, int | None, tuple[str, str, int] | None, _VolumeDraft, dict[int, _VolumeDraft]]] = []
    for inner in stmt.block:
        keyword = inner.words[0]
        if keyword == "on" and inner.block is not None:
            host_draft = _VolumeDraft()
            host_volumes: dict[int, _VolumeDraft] = {}
            node_id: int | None = None
            address: tuple[str, str, int] | None = None
            for item in inner.block:
                if item.words[0] == "node-id":
                    node_id = int(item.words[1])
                elif item.words[0] == "address":
                    address = _parse_address(item.words[1:], source, item.line)
                elif item.words[0] == "volume" and item.block is not None:
                    draft = host_volumes.setdefault(int(item.words[1]), _VolumeDraft())
                    for v in item.block:
                        _volume_statement(v, draft, source)
                else:
                    _volume_statement(item, host_draft, source)
            for host_name in inner.words[1:]:
                hosts.append((host_name, node_id, address, host_draft, host_volumes))
        elif keyword == "protocol" and inner.block is None:
            _check_protocol(inner.words[1] if len(inner.words) > 1 else "", source, inner.line)
            sections.setdefault("net", {})["protocol"] = inner.words[1]
        elif keyword in _SECTIONS and inner.block is not None:
            _merge_section(sections, keyword, inner.block, source)
        elif keyword == "volume" and inner.block is not None:
            draft = base_volumes.setdefault(int(inner.words[1]), _VolumeDraft())
            for v in inner.block:
                _volume_statement(v, draft, source)
        elif inner.block is None:
            _volume_statement(inner, base, source)
    if not hosts:
        raise DrbdConfigError(f"{source}:{stmt.line}: in resource {name}:\n\tMissing statement 'on <host>'")
    used_ids = {h[1] for h in hosts if h[1] is not None}
    next_id = 0
    built: list[HostConfig] = []
    for host_name, node_id, address, host_draft, host_volumes in hosts:
        assigned = node_id
        if assigned is None:
            while next_id in used_ids:
                next_id += 1
            assigned = next_id
            used_ids.add(assigned)
        numbers = sorted(set(base_volumes) | set(host_volumes)) or [0]
        volumes: list[VolumeConfig] = []
        for number in numbers:
            draft = host_volumes.get(number, _VolumeDraft()).merged(
                base_volumes.get(number, _VolumeDraft())).merged(host_draft).merged(base)
            if draft.device is None:
                raise DrbdConfigError(
                    f"{source}:{stmt.line}: in resource {name}, on {host_name}:\n\tMissing statement 'device'")
            if not draft.disk_set:
                raise DrbdConfigError(
                    f"{source}:{stmt.line}: in resource {name}, on {host_name}:\n\tMissing statement 'disk'")
            volumes.append(VolumeConfig(number=number, device=draft.device[0], minor=draft.device[1],
                                        disk=draft.disk, meta_disk=draft.meta_disk or "internal"))
        family, host, port = address if address is not None else ("ipv4", None, None)
        built.append(HostConfig(name=host_name, node_id=assigned, address=host, port=port, family=family,
                                volumes=tuple(volumes)))
    # Read-only: parse_text hands the same cached object to every caller.
    frozen = MappingProxyType({key: MappingProxyType(values) for key, values in sections.items()})
    return ResourceConfig(name=name, hosts=tuple(built), sections=frozen, source=source, line=stmt.line)


def parse_text(text: str, source: str = "drbd.res",
               common: Mapping[str, Mapping[str, str]] | None = None) -> tuple[list[ResourceConfig],
                                                                           dict[str, dict[str, str]]]:
    """The resources defined in ``text`` and the sections of a ``common`` block found there.

    The resources are shared with every other caller that parsed the same text (their sections are
    read-only mappings); the sections of ``common`` are the caller's own."""
    # drbdadm reads every file under /etc/drbd.d for each command; with a thousand resources, parsing them
    # all again each time made a DRBD command cost as much as the rest of the simulator. Parse each text once.
    # The key keeps the options in file order: a resource's sections are built in that order, and `drbdadm
    # dump` prints them so (sorting here would reorder the dump the importer reads).
    frozen = tuple((key, tuple(values.items())) for key, values in (common or {}).items())
    resources, found = _parse_text_cached(text, source, frozen)
    return list(resources), {key: dict(values) for key, values in found.items()}


@functools.lru_cache(maxsize=8192)
def _parse_text_cached(text: str, source: str, common: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
                       ) -> tuple[tuple[ResourceConfig, ...], dict[str, dict[str, str]]]:
    resources, found = _parse_text(text, source, {key: dict(values) for key, values in common})
    return tuple(resources), found


def _parse_text(text: str, source: str, common: Mapping[str, Mapping[str, str]]
                ) -> tuple[list[ResourceConfig], dict[str, dict[str, str]]]:
    stmts, _ = _parse_block(_tokens(text, source), 0, source, closing=False)
    found_common: dict[str, dict[str, str]] = {}
    for stmt in stmts:
        if stmt.words[0] == "common" and stmt.block is not None:
            for inner in stmt.block:
                if inner.words[0] in _SECTIONS and inner.block is not None:
                    _merge_section(found_common, inner.words[0], inner.block, source)
    merged_common: dict[str, dict[str, str]] = {k: dict(v) for k, v in (common or {}).items()}
    for key, values in found_common.items():
        merged_common.setdefault(key, {}).update(values)
    resources = [_resource(s, source, merged_common) for s in stmts if s.words[0] == "resource"]
    return resources, found_common


def load_files(files: Mapping[str, str]) -> dict[str, ResourceConfig]:
    """Every resource of the given files (path -> text): ``*.conf`` first for ``common``, then ``*.res``."""
    # Every drbdadm call reads every file, as the real one does; the same set of texts gives the same result.
    return dict(_load_files_cached(frozenset(files.items())))


@functools.lru_cache(maxsize=64)
def _load_files_cached(files: frozenset[tuple[str, str]]) -> tuple[tuple[str, ResourceConfig], ...]:
    return tuple(_load_files(dict(files)).items())


def _load_files(files: Mapping[str, str]) -> dict[str, ResourceConfig]:
    common: dict[str, dict[str, str]] = {}
    for path in sorted(p for p in files if p.endswith(".conf")):
        _, found = parse_text(files[path], path)
        for key, values in found.items():
            common.setdefault(key, {}).update(values)
    resources: dict[str, ResourceConfig] = {}
    # /etc/drbd.conf sorts before /etc/drbd.d/: a resource it defines is the first definition, as drbdadm reads it.
    for path in sorted(p for p in files if p.endswith(".res") or p == TOP_CONFIG):
        for resource in parse_text(files[path], path, common)[0]:
            if resource.name in resources:
                raise DrbdConfigError(
                    f"{path}: conflicting use of resource name '{resource.name}' ...\n"
                    f"  resource '{resource.name}' first defined at {resources[resource.name].source}")
            resources[resource.name] = resource
    return resources


def node_config_files(node_files: Mapping[str, Any]) -> dict[str, str]:
    """The DRBD configuration files drbdadm reads on a simulated node (``{path: {"content": ...}}``).

    Without ``/etc/drbd.conf`` the node behaves as with Debian's, which includes ``drbd.d/global_common.conf``
    and ``drbd.d/*.res``. With one, drbdadm reads it (resources defined in it included) and the files under
    ``/etc/drbd.d`` that its ``include`` statements name: an old hand-written drbd.conf without includes hides
    them, and one that defines a resource also defined in ``drbd.d`` makes every drbdadm call fail.
    """
    in_dir = {
        path: str(entry["content"])
        for path, entry in node_files.items()
        if path.startswith(CONFIG_DIR) and "/" not in path[len(CONFIG_DIR):]
        and (path.endswith(".res") or path.endswith(".conf"))
    }
    top = node_files.get(TOP_CONFIG)
    if top is None:
        return in_dir
    text = str(top["content"])
    chosen = {TOP_CONFIG: text}
    for pattern in _INCLUDE_RE.findall(text):
        absolute = pattern if pattern.startswith("/") else posixpath.join("/etc", pattern)
        chosen.update({p: t for p, t in in_dir.items() if fnmatch.fnmatchcase(p, absolute)})
    return chosen
