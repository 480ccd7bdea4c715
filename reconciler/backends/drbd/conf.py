"""Which resource a DRBD minor belongs to, read from the ``.res`` files the reconciler owns.

DRBD 8.4 reports runtime state per minor only (``/proc/drbd``); the resource names and peers live in
the configuration. This module reads just enough of the configuration grammar (words, quoted strings,
``{ }`` blocks, ``;`` and ``#`` comments) to find, per resource, the minors this node uses and the
names of the other nodes. It is pure: text in, mapping out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from reconciler.backends.drbd import paths
from reconciler.core.parse_error import ParseError
from reconciler.model.base import Frozen
from reconciler.model.observed import OwnedFile
from reconciler.names import name_problem

TOOL = "drbd configuration"

_TOKEN_RE = re.compile(r'#[^\n]*|"(?:[^"\\\n]|\\.)*"|[{};]|[^\s{};"#]+')
_DRBD_DEVICE_RE = re.compile(r"/dev/drbd(\d+)")


@dataclass
class _Section:
    words: list[str]
    line_no: int
    children: list[_Section] = field(default_factory=list)
    is_block: bool = False


class DrbdLayout(Frozen):
    """``minor_to_resource`` and ``peer_names`` (resource -> the other nodes named in its ``on`` sections)."""

    minor_to_resource: dict[int, str]
    peer_names: dict[str, tuple[str, ...]]


def _tokens(text: str) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    line_no = 1
    pos = 0
    for match in _TOKEN_RE.finditer(text):
        line_no += text.count("\n", pos, match.start())
        pos = match.start()
        token = match.group(0)
        if token.startswith("#"):
            continue
        if token.startswith('"'):
            token = token[1:-1]
        found.append((token, line_no))
    return found


def _parse_sections(text: str, source: str) -> list[_Section]:
    root = _Section([], 0, is_block=True)
    stack = [root]
    words: list[str] = []
    start_line = 0
    for piece, line_no in _tokens(text):
        if not words:
            start_line = line_no
        if piece == ";":
            if words:
                stack[-1].children.append(_Section(words, start_line))
            words = []
        elif piece == "{":
            section = _Section(words, start_line, is_block=True)
            stack[-1].children.append(section)
            stack.append(section)
            words = []
        elif piece == "}":
            if words:
                raise ParseError(TOOL, f"{source}: statement {' '.join(words)!r} lacks its ';'", line_no)
            if len(stack) == 1:
                raise ParseError(TOOL, f"{source}: '}}' without a matching '{{'", line_no)
            stack.pop()
        else:
            words.append(piece)
    if len(stack) > 1 or words:
        raise ParseError(TOOL, f"{source}: ends inside {' '.join(stack[-1].words) or 'a statement'!r}",
                         stack[-1].line_no)
    return root.children


def _minors(sections: Iterable[_Section], source: str) -> list[int]:
    found: list[int] = []
    for section in sections:
        if section.words and section.words[0] == "device" and not section.is_block:
            found.append(_device_minor(section, source))
        elif section.words and section.words[0] == "volume" and section.is_block:
            found.extend(_minors(section.children, source))
    return found


def _device_minor(section: _Section, source: str) -> int:
    args = section.words[1:]
    if "minor" in args:
        index = args.index("minor")
        if index + 1 < len(args) and args[index + 1].isdigit():
            return int(args[index + 1])
    for arg in args:
        match = _DRBD_DEVICE_RE.fullmatch(arg)
        if match:
            return int(match.group(1))
    raise ParseError(TOOL, f"{source}: cannot tell the minor of {' '.join(section.words)!r}", section.line_no)


def drbd_layout(files: Iterable[tuple[str, str]], node: str) -> DrbdLayout:
    """Map minors to resources over ``(path, text)`` pairs, as seen from ``node``.

    A minor given in ``on NODE`` wins over one given elsewhere; ``on`` sections of other nodes only
    count when this node has none (the classic layout uses the same minor on both sides).
    Raises :class:`ParseError` for a file whose braces or ``device`` lines cannot be read, and when two
    resources claim the same minor.
    """
    minor_to_resource: dict[int, str] = {}
    peer_names: dict[str, tuple[str, ...]] = {}
    for source, text in files:
        for section in _parse_sections(text, source):
            if section.words[:1] != ["resource"] or not section.is_block or len(section.words) < 2:
                continue
            resource = section.words[1]
            problem = name_problem(resource)
            if problem is not None:
                raise ParseError(TOOL, f"{source}: resource name {resource!r} is not safe: {problem}",
                                 section.line_no)
            on_sections = [c for c in section.children if c.is_block and c.words[:1] == ["on"]]
            own = [c for c in on_sections if node in c.words[1:]]
            minors = _minors(section.children, source)
            if own:
                for chosen in own:
                    minors.extend(_minors(chosen.children, source))
            else:
                per_host = {tuple(sorted(_minors(c.children, source))) for c in on_sections}
                if len(per_host) > 1:
                    raise ParseError(TOOL, f"{source}: node {node!r} has no 'on' section in resource {resource!r} "
                                     "and the other nodes use different minors", section.line_no)
                minors.extend(next(iter(per_host), ()))
            for minor in minors:
                claimed = minor_to_resource.get(minor)
                if claimed is not None and claimed != resource:
                    raise ParseError(TOOL, f"{source}: minor {minor} is used by both {claimed!r} and {resource!r}",
                                     section.line_no)
                minor_to_resource[minor] = resource
            peers = sorted({host for c in on_sections for host in c.words[1:] if host != node})
            peer_names[resource] = tuple(peers)
    return DrbdLayout(minor_to_resource=minor_to_resource, peer_names=peer_names)


class ConfigIdentity(Frozen):
    """What one ``.res`` file on this node says a resource is here: its minor, backing disk and port."""

    resource: str
    source: str
    minor: int | None = None
    disk: str | None = None
    port: int | None = None


_PORT_RE = re.compile(r":(\d+)$")


def _statement(sections: Iterable[_Section], word: str) -> list[str] | None:
    for section in sections:
        if not section.is_block and section.words[:1] == [word]:
            return section.words[1:]
    return None


def config_identities(files: Iterable[tuple[str, str]], node: str) -> dict[str, ConfigIdentity]:
    """Per resource, the identity this node's own ``on NODE`` section (or the resource level) gives it.

    Raises :class:`ParseError` for a file that cannot be read, like :func:`drbd_layout`.
    """
    found: dict[str, ConfigIdentity] = {}
    for source, text in files:
        for section in _parse_sections(text, source):
            if section.words[:1] != ["resource"] or not section.is_block or len(section.words) < 2:
                continue
            own = [c for c in section.children if c.is_block and c.words[:1] == ["on"] and node in c.words[1:]]
            scopes = [*(c.children for c in own), section.children]
            minors = next((m for m in (_minors(s, source) for s in scopes) if m), [])
            disk = next((d for d in (_statement(s, "disk") for s in scopes) if d), None)
            address = next((a for a in (_statement(s, "address") for s in scopes) if a), None)
            port = _PORT_RE.search(address[-1]) if address else None
            found[section.words[1]] = ConfigIdentity(
                resource=section.words[1], source=source, minor=minors[0] if minors else None,
                disk=disk[0] if disk and disk[0] not in ("{", "none") else None,
                port=int(port.group(1)) if port else None)
    return found


def owned_identities(files: Iterable[OwnedFile], node: str) -> tuple[dict[str, ConfigIdentity], str]:
    """The identities every readable ``.res`` file (and ``drbd.conf``) among ``files`` gives, and what could
    not be read."""
    found: dict[str, ConfigIdentity] = {}
    problems: list[str] = []
    for f in files:
        if not (f.path.endswith(paths.CONFIG_SUFFIX) or f.path == paths.TOP_CONFIG) or f.content is None:
            continue
        try:
            found.update(config_identities([(f.path, f.content)], node))
        except ParseError as exc:
            problems.append(str(exc))
    return found, "; ".join(problems)
