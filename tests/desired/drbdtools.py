"""Running the real drbd-utils against rendered resource files (test helper)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT = 30
# Sets the UTS host name inside the new namespace and execs the command: argv all the way, no shell.
_SET_HOSTNAME_AND_EXEC = "import os, socket, sys; socket.sethostname(sys.argv[1]); os.execvp(sys.argv[2], sys.argv[2:])"


def drbdadm(version: str) -> str:
    """The drbdadm for DRBD ``version``: drbd-utils ships the 8.4 one in its lib folder."""
    if version == "9":
        found = shutil.which("drbdadm") or ("/usr/sbin/drbdadm" if os.path.exists("/usr/sbin/drbdadm") else None)
        if found is None:
            pytest.skip("drbdadm is not installed (Debian package drbd-utils)")
        return found
    candidates = []
    if shutil.which("dpkg"):
        listed = subprocess.run(["dpkg", "-L", "drbd-utils"], capture_output=True, text=True, timeout=TIMEOUT,
                                check=False)
        candidates = [line for line in listed.stdout.splitlines() if line.endswith("/drbdadm-84")]
    candidates += ["/usr/lib/drbd/drbdadm-84", "/lib/drbd/drbdadm-84"]
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    pytest.skip("drbdadm-84 is not installed (drbd-utils ships it for DRBD 8.4 kernels)")


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd, check=False)


def dump(version: str, config: Path) -> str:
    result = run([drbdadm(version), "-c", str(config), "dump", "all"], config.parent)
    assert result.returncode == 0, f"drbdadm rejected the file: {result.stderr}"
    return result.stdout


def dry_run_up(version: str, config: Path, host: str, resource: str) -> str:
    """`drbdadm -d up RESOURCE` as seen on ``host``: in a new UTS namespace whose host name is ``host``."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed")
    if os.geteuid() != 0:
        pytest.skip("setting the host name in a new UTS namespace needs root")
    tool = drbdadm(version)
    argv = [unshare, "-u", sys.executable, "-c", _SET_HOSTNAME_AND_EXEC, host, tool, "-c", str(config), "-d", "up",
            resource]
    result = run(argv, config.parent)
    if result.returncode != 0 and "unshare failed" in result.stderr:
        pytest.skip(f"cannot create a UTS namespace here: {result.stderr.strip()}")
    assert result.returncode == 0, f"dry run failed: {result.stderr}"
    return result.stdout


def signature(line: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """A command line as (program basename + positional arguments, set of --options)."""
    words = line.split()
    positional = (os.path.basename(words[0]), *(w for w in words[1:] if not w.startswith("--")))
    return positional, frozenset(w for w in words[1:] if w.startswith("--"))
