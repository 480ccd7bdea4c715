"""Entry point of the ``reconciler`` command.

Only the module of the command being run is imported: `reconciler --help` and light commands such as
`validate` do not pay for git, HTTP or the simulator. The other commands appear in the parser as stubs
carrying their one-line help, so the top-level help and the "invalid choice" message list them all.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from reconciler import __version__

# Each module defines ``register(subparsers)``; the parser it adds sets ``func(args) -> int``.
# (command, module, one-line help); a test checks these lines against the modules'. The simulator's commands
# live in its own package: named here, they are imported only when run, like every other command.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("validate", "reconciler.cli.cmd_validate",
     "check a desired-state directory; print every problem as path:line:col"),
    ("render", "reconciler.cli.cmd_render", "render the DRBD, Xen and dm files one node would get"),
    ("import", "reconciler.cli.cmd_import",
     "write the desired state that reproduces a node built by hand (read-only on the node)"),
    ("observe", "reconciler.cli.cmd_observe",
     "show what the node has (LVM, device-mapper, DRBD, Xen) from one observation pass"),
    ("plan", "reconciler.cli.cmd_plan",
     "show what apply would change on this node (+ create, ~ change, - delete, ! refused, = waiting)"),
    ("apply", "reconciler.cli.cmd_apply", "converge this node to the desired state (one pass with retries)"),
    ("sim", "reconciler.sim.cli", "a simulated cluster (LVM, device-mapper, DRBD, Xen) for trying the reconciler"),
    ("run", "reconciler.cli.cmd_run", "run the daemon: follow a git repository and keep this node converged"),
    ("status", "reconciler.cli.cmd_status", "show what the daemon last published about this node"),
    ("suspend", "reconciler.cli.cmd_control", "stop acting on this node (or one VM); observing and exporting go on"),
    ("resume", "reconciler.cli.cmd_control", "lift a suspension made with `reconciler suspend`"),
    ("reconcile-now", "reconciler.cli.cmd_control", "fetch and run a pass at once"),
    ("allow-revision", "reconciler.cli.cmd_control",
     "allow one commit that does not descend from the applied revision (force-push)"),
    ("shutdown-node", "reconciler.cli.cmd_control",
     "shut down managed domains, then demote and bring down DRBD (system shutdown)"),
    ("doctor", "reconciler.cli.cmd_doctor",
     "preflight checks of this node (host name, tools, LVM filter, services, ballooning, ...)"),
    ("demo", "reconciler.sim.demo_cli",
     "see it work: a simulated two-node cluster, one daemon per node, following a git repository"),
    ("fence-peer", "reconciler.cli.cmd_fence",
     "DRBD fence-peer handler: ask the peer's daemon to outdate the resource"),
    ("split-brain", "reconciler.cli.cmd_splitbrain",
     "DRBD split-brain handler: record the incident for status, metrics and alerts"),
    ("helper", "reconciler.cli.cmd_helper", "node-side steps of a provisioning, run by the executor (not by hand)"),
    ("migrate-receive", "reconciler.cli.cmd_migrate_receive",
     "receiving end of `xl migrate` (the transport's forced command on the target)"),
)


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command named on the line: the first word that is not an option (the top level has no option
    taking a value, so nothing else can come first)."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the named command's module is imported (all of them without)."""
    parser = argparse.ArgumentParser(
        prog="reconciler",
        description="Keep a Xen + DRBD + LVM node converged to the desired state in a git repository.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = chosen_command(argv) if argv is not None else None
    modules = {module for name, module, _ in COMMANDS if argv is None or name == wanted}
    registered: set[str] = set()
    for name, module, help_text in COMMANDS:
        if name in registered:
            continue
        if module in modules:
            modules.discard(module)
            before = set(subparsers.choices)
            importlib.import_module(module).register(subparsers)
            registered |= set(subparsers.choices) - before
        else:
            subparsers.add_parser(name, help=help_text, add_help=False)
            registered.add(name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words)
    args = parser.parse_args(words)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        result: int = func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`reconciler observe --json | head`): not an error worth a traceback.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141
    return result


if __name__ == "__main__":
    sys.exit(main())
