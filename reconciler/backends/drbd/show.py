"""``drbdsetup show``: the kernel's running configuration, read for one option, ``allow-two-primaries``.

The resource files never allow two primaries; only a live migration's window turns the allowance on at run time
(``drbdadm net-options``), so the file says nothing about whether it is in force. ``drbdsetup show`` prints what the
kernel runs, leaving out options at their default: ``allow-two-primaries yes;`` appears only while it is allowed.
DRBD 9 prints it in each ``connection``'s ``net`` section and quotes the resource name; drbdsetup-84 (which
drbd-utils 9's drbdsetup runs on an 8.4 kernel) in the resource's ``net`` section, unquoted. Both are read the
same way: any ``allow-two-primaries`` statement inside a resource's block.
"""

from __future__ import annotations

import re

from reconciler.core.parse_error import ParseError

SHOW_ARGV: tuple[str, ...] = ("drbdsetup", "show")
TOOL = "drbdsetup show"

_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\\n]|\\.)*")|([{};])|([^\s{};"#]+))')
_YES = frozenset({"yes", "on", "true"})
_NO = frozenset({"no", "off", "false"})


def _tokens(text: str) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    position, line = 0, 1
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if not text[position:].strip():
                break
            bad = text[position:].splitlines()[0] if text[position:] else ""
            raise ParseError(TOOL, "unexpected text", line, bad)
        line += text.count("\n", position, match.start(0) + len(match.group(0)) - len(match.group(0).lstrip()))
        comment, quoted, punct, word = match.groups()
        position = match.end()
        if comment is None:
            found.append((quoted[1:-1] if quoted is not None else punct or word, line))
        line += match.group(0).lstrip().count("\n")
    return found


def parse_two_primaries(text: str) -> dict[str, bool]:
    """Resource -> whether ``allow-two-primaries`` is in force; raises :class:`ParseError` on a malformed answer."""
    tokens = _tokens(text)
    allowed: dict[str, bool] = {}
    depth = 0
    resource: str | None = None
    index = 0
    while index < len(tokens):
        word, line = tokens[index]
        if word == "{":
            depth += 1
        elif word == "}":
            depth -= 1
            if depth < 0:
                raise ParseError(TOOL, "unbalanced '}'", line, word)
            if depth == 0:
                resource = None
        elif depth == 0 and word == "resource":
            if index + 2 >= len(tokens) or tokens[index + 2][0] != "{":
                raise ParseError(TOOL, "a resource without its block", line, word)
            resource = tokens[index + 1][0]
            allowed[resource] = False
            index += 1
        elif word == "allow-two-primaries" and resource is not None:
            value = tokens[index + 1][0] if index + 1 < len(tokens) else ""
            if value not in _YES | _NO:
                raise ParseError(TOOL, f"allow-two-primaries has the value {value!r}", line, word)
            allowed[resource] = allowed[resource] or value in _YES
            index += 1
        index += 1
    if depth != 0:
        raise ParseError(TOOL, "unbalanced braces at the end")
    return allowed
