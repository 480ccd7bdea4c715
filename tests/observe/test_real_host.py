"""Robustness of the real host seam where observation depends on it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from reconciler.host.base import HostFileError
from reconciler.host.real import EXIT_NOT_EXECUTABLE, RealHost


def test_listing_what_is_not_a_directory_is_a_host_file_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(HostFileError, match="cannot list"):
        RealHost("n1").list_dir(str(target))
    assert RealHost("n1").list_dir(str(tmp_path / "absent")) == ()


def test_a_program_that_cannot_be_executed_is_a_result_not_an_exception(tmp_path: Path) -> None:
    program = tmp_path / "tool"
    program.write_text("#!/bin/sh\necho hi\n")
    os.chmod(program, 0o644)
    result = RealHost("n1").run([str(program)])
    assert result.returncode == EXIT_NOT_EXECUTABLE
    assert not result.ok
    assert "Permission denied" in result.stderr or "Exec format error" in result.stderr


def test_output_that_is_not_utf8_is_replaced_not_fatal() -> None:
    result = RealHost("n1").run([sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'LABEL=caf\\xe9\\n')"])
    assert result.ok
    assert result.stdout == "LABEL=caf\ufffd\n"
