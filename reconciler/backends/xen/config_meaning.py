"""What an ``xl`` domain config *means*, so that a hand-written file and the rendered one can be compared by effect.

A takeover replaces a hand-written config with the rendered one only when ``xl create`` would build the same
domain from both (values equal to xl's defaults are the same as leaving them out). Pure: text in, values out.
"""

from __future__ import annotations

import re

from reconciler.core.own_mark import is_own
from reconciler.core.parse_error import ParseError
from reconciler.model.base import Frozen

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


def hand_written_domain(text: str, domain: str) -> bool:
    """A config someone wrote for this domain (no header of ours, and it names it): a takeover's starting point.
    A file of ours edited by hand, or one that names nothing readable, is drift instead."""
    if is_own(text):
        return False
    try:
        setting = parse_xl(text, "current").get("name")
    except ParseError:
        return False
    return setting is not None and setting.value == domain
