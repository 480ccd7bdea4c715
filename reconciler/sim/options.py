"""A getopt-like option scanner for the simulated tools (short clusters, ``--long=value``, ``--``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


class OptionError(ValueError):
    """An option the tool does not know, or one that lacks its value."""

    def __init__(self, option: str, reason: str) -> None:
        super().__init__(f"{reason} '{option}'")
        self.option = option
        self.reason = reason


@dataclass
class Parsed:
    values: dict[str, list[str]] = field(default_factory=dict)
    positionals: list[str] = field(default_factory=list)

    def has(self, name: str) -> bool:
        return name in self.values

    def last(self, name: str, default: str | None = None) -> str | None:
        found = self.values.get(name)
        return found[-1] if found else default

    def all(self, name: str) -> list[str]:
        return list(self.values.get(name, []))

    def count(self, name: str) -> int:
        return len(self.values.get(name, []))


def scan(args: list[str], spec: Mapping[str, tuple[str, bool]], *, permute: bool = True) -> Parsed:
    """Scan ``args`` (without the program name).

    ``spec`` maps every spelling (``-L``, ``--size``) to (canonical name, takes a value). Values of
    flags are recorded as ``""``. With ``permute`` positionals may appear between options, as GNU
    getopt allows; ``--`` ends the options.
    """
    parsed = Parsed()
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            parsed.positionals.extend(args[index:])
            break
        if arg.startswith("--"):
            name, eq, inline = arg.partition("=")
            entry = spec.get(name)
            if entry is None:
                raise OptionError(arg, "unrecognized option")
            canonical, takes = entry
            if takes:
                if eq:
                    value = inline
                elif index < len(args):
                    value = args[index]
                    index += 1
                else:
                    raise OptionError(name, "option requires an argument")
            else:
                if eq:
                    raise OptionError(name, "option doesn't allow an argument")
                value = ""
            parsed.values.setdefault(canonical, []).append(value)
            continue
        if arg.startswith("-") and len(arg) > 1 and not _is_number(arg):
            position = 1
            while position < len(arg):
                flag = "-" + arg[position]
                entry = spec.get(flag)
                if entry is None:
                    raise OptionError(flag, "invalid option")
                canonical, takes = entry
                position += 1
                if takes:
                    if position < len(arg):
                        value = arg[position:]
                    elif index < len(args):
                        value = args[index]
                        index += 1
                    else:
                        raise OptionError(flag, "option requires an argument")
                    parsed.values.setdefault(canonical, []).append(value)
                    break
                parsed.values.setdefault(canonical, []).append("")
            continue
        if not permute:
            parsed.positionals.append(arg)
            parsed.positionals.extend(args[index:])
            break
        parsed.positionals.append(arg)
    return parsed


def _is_number(arg: str) -> bool:
    return arg[1:].replace(".", "", 1).isdigit()
