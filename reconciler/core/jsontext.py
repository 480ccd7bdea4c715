"""JSON output of a tool, with decoding errors turned into a ParseError that names the line."""

from __future__ import annotations

import json
from typing import Any

from reconciler.core.parse_error import ParseError


def load_json(text: str, tool: str, what: str = "JSON") -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.split("\n")  # JSON line numbers count only newlines
        line = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else None
        raise ParseError(tool, f"not {what}: {exc.msg}", exc.lineno, line) from None
    except RecursionError:
        raise ParseError(tool, "JSON nested too deeply") from None
