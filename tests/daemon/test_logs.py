"""Log lines are one event each, with key=value fields a journal reader can grep."""

from __future__ import annotations

import io
import json
import logging

from reconciler.daemon.records.logs import LOGGER_NAME, event, setup_logging


def test_key_value_lines() -> None:
    stream = io.StringIO()
    setup_logging("kv", stream=stream)
    event("action.end", vm="vm100", resource="lv:vg-sda/root100", action="create-lv", revision="abc123",
          result="ok", message="two words")
    line = stream.getvalue().strip()
    assert "\n" not in line
    assert "event=action.end vm=vm100 resource=lv:vg-sda/root100 action=create-lv revision=abc123 result=ok" in line
    assert 'message="two words"' in line


def test_json_lines() -> None:
    stream = io.StringIO()
    setup_logging("json", stream=stream)
    event("pass.end", revision="abc", result="converged", skipped=None)
    data = json.loads(stream.getvalue())
    assert data["event"] == "pass.end"
    assert data["revision"] == "abc"
    assert "skipped" not in data


def test_values_from_outside_cannot_reach_the_terminal_raw() -> None:
    stream = io.StringIO()
    setup_logging("kv", stream=stream)
    event("revision.invalid", error="vms/\u202eevil\x9b31m.yaml:1:1: bad\nforged=line")
    line = stream.getvalue().strip()
    assert "\n" not in line
    assert line.isascii()
    assert 'error="vms/\\u202eevil\\u009b31m.yaml:1:1: bad\\nforged=line"' in line
    stream = io.StringIO()
    setup_logging("json", stream=stream)
    event("revision.invalid", error="vms/\u202eevil.yaml")
    line = stream.getvalue().strip()
    assert line.isascii()
    assert json.loads(line)["error"] == "vms/\u202eevil.yaml"


def test_a_crash_line_carries_the_error_and_its_traceback_in_one_line() -> None:
    stream = io.StringIO()
    setup_logging("kv", stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger(LOGGER_NAME).exception("pass crashed")
    line = stream.getvalue()
    assert line.count("\n") == 1
    assert 'error="ValueError: boom"' in line
    assert "traceback=" in line
    assert "test_a_crash_line_carries_the_error" in line
