"""Metric names used by PromQL expressions, and a promtool-backed syntax check."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

_SELECTOR_BODY = re.compile(r"\{[^}]*\}")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_STRINGS = re.compile(r'"[^"]*"')
_IDENT = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
OWN_PREFIXES = ("reconciler_", "drbd_")


def metric_names(expr: str) -> set[str]:
    """Names of our metrics an expression selects (label names and functions excluded)."""
    text = _SELECTOR_BODY.sub("", expr)
    text = _LABEL_LISTS.sub("", text)
    text = _STRINGS.sub("", text)
    return {m for m in _IDENT.findall(text) if m.startswith(OWN_PREFIXES)}


def promtool_parses(exprs: list[str], tmp: Path) -> tuple[bool, str]:
    """Check the syntax of each expression by loading them as recording rules with promtool."""
    promtool = shutil.which("promtool")
    assert promtool is not None
    rules = {"groups": [{"name": "syntax", "rules": [{"record": f"check:expr{i}", "expr": e}
                                                      for i, e in enumerate(exprs)]}]}
    path = tmp / "syntax-rules.yaml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60,
                          check=False)
    return done.returncode == 0, done.stdout + done.stderr
