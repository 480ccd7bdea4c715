"""The manual page reconciler(1), written from the command line's own help (so the two cannot disagree).

    python -m reconciler.cli.manpage > reconciler.1

Each command's section is its ``reconciler COMMAND --help`` text, verbatim; sub-commands (``sim init``
and the like) follow their command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from reconciler import __version__
from reconciler.cli.main import build_parser

WIDTH = 78


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def _roff_text(text: str) -> str:
    """Escape text for a no-fill block: backslashes, and leading dots or quotes that roff reads as requests."""
    lines = []
    for line in text.replace("\\", "\\e").splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _help(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    formatter.add_text(parser.description)
    for group in parser._action_groups:
        formatter.start_section(group.title)
        formatter.add_text(group.description)
        formatter.add_arguments(group._group_actions)
        formatter.end_section()
    formatter.add_text(parser.epilog)
    return formatter.format_help()


def _sections(parser: argparse.ArgumentParser, depth: int) -> Iterator[str]:
    for name, sub in _subparsers(parser):
        macro = ".SS" if depth == 0 else ".TP\n.B"
        yield f"{macro} {sub.prog.removeprefix('reconciler ') if depth else name}"
        yield ".nf"
        yield _roff_text(_help(sub).rstrip())
        yield ".fi"
        yield from _sections(sub, depth + 1)


def render(date: str = "") -> str:
    parser = build_parser()
    header = f'.TH RECONCILER 1 "{date}" "reconciler {__version__}" "User Commands"'
    parts = [
        header,
        ".SH NAME",
        "reconciler \\- keep a Xen + DRBD + LVM node converged to the desired state in a git repository",
        ".SH SYNOPSIS",
        ".B reconciler",
        "[\\fB\\-\\-version\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
        ".SH DESCRIPTION",
        ".nf",
        _roff_text(_help(parser).rstrip()),
        ".fi",
        ".SH COMMANDS",
        *_sections(parser, 0),
        ".SH FILES",
        ".TP",
        ".I /etc/reconciler/reconciler.env",
        "the daemon's settings (RECONCILER_* variables); an example is in "
        "/usr/share/doc/reconciler/examples/reconciler.env.example",
        ".TP",
        ".I /var/lib/reconciler",
        "the daemon's state: mirror of the repository, journal, status, control socket",
        ".SH SEE ALSO",
        "/usr/share/doc/reconciler/operations.md (the runbook), /usr/share/doc/reconciler/README.md",
    ]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="print the manual page reconciler(1)")
    parser.add_argument("--date", default="", help="the date in the page's header (default: none)")
    args = parser.parse_args(argv)
    sys.stdout.write(render(args.date))
    return 0


if __name__ == "__main__":
    sys.exit(main())
