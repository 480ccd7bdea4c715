"""``python -m reconciler.sim DIR NODE PROGRAM ARGS...``: one simulated tool, for the PATH wrappers.

The same as ``reconciler sim exec DIR NODE -- PROGRAM ARGS...`` without loading the rest of the command
line interface, so that a wrapped ``lvs`` starts quickly. Stdin is passed to the tool when it is a pipe.
"""

from __future__ import annotations

import os
import sys

from reconciler.names import UnsafeNameError, check_name
from reconciler.sim.host import SimHost
from reconciler.sim.state import SimStateError

USAGE = "usage: python -m reconciler.sim DIR NODE PROGRAM [ARGS...]"


def stdin_text() -> str | None:
    """What a pipe feeds the tool (``dmsetup create`` reads its table there); nothing from a terminal."""
    try:
        if sys.stdin is None or sys.stdin.isatty():
            return None
        return sys.stdin.read()
    except (OSError, ValueError):
        return None


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(USAGE, file=sys.stderr)
        return 2
    directory, node, *command = argv
    try:
        host = SimHost(os.path.abspath(directory), check_name(node, "node"))
    except (SimStateError, UnsafeNameError) as exc:
        print(f"reconciler sim: {exc}", file=sys.stderr)
        return 2
    timeout = float(os.environ.get("RECONCILER_SIM_TIMEOUT", "60"))
    result = host.run(command, timeout=timeout, stdin=stdin_text())
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
