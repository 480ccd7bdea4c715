"""External commands of the lab: argv lists with a timeout, failures that name the command and its output."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class LabError(RuntimeError):
    """Something the lab needs did not work; the message says what and what to do."""


@dataclass(frozen=True)
class Done:
    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (f"{' '.join(self.argv)} exited {self.rc}\n--- stdout\n{self.stdout[-4000:]}\n"
                f"--- stderr\n{self.stderr[-4000:]}")


def run(argv: Sequence[str], *, timeout: float, check: bool = True, cwd: Path | None = None,
        stdin: bytes | None = None) -> Done:
    args = tuple(argv)
    try:
        proc = subprocess.run(args, capture_output=True, timeout=timeout, check=False, cwd=cwd, input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(args)} did not finish within {timeout:g}s") from exc
    except FileNotFoundError as exc:
        raise LabError(f"{args[0]} is not installed: run scripts/lab setup") from exc
    done = Done(args, proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))
    if check and proc.returncode != 0:
        raise LabError(done.describe())
    return done
