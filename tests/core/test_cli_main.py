"""The `reconciler` entry point: a closed output pipe is not a crash."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from reconciler.sim.state import SimCluster

PROGRAM = "import sys; from reconciler.cli.main import main; sys.exit(main(sys.argv[1:]))"


def test_a_reader_that_went_away_gets_no_traceback(tmp_path: Path) -> None:
    SimCluster.init(tmp_path / "sim", ["erdbeere"], {"vg-sda": 400 << 30})
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` having exited: every write meets a closed pipe
    try:
        proc = subprocess.run(
            [sys.executable, "-c", PROGRAM, "observe", "--json", "--sim", str(tmp_path / "sim"), "--node", "erdbeere"],
            stdout=write_end, stderr=subprocess.PIPE, timeout=60, check=False)
    finally:
        os.close(write_end)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    assert proc.returncode == 141
