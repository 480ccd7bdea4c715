from __future__ import annotations


class ParseError(ValueError):
    """Output a parser does not understand. Names the tool and the line; never a silent wrong value."""

    def __init__(self, tool: str, message: str, line_no: int | None = None, line: str | None = None) -> None:
        self.tool = tool
        self.message = message
        self.line_no = line_no
        self.line = line
        where = f" line {line_no}" if line_no is not None else ""
        shown = f": {line.strip()[:200]!r}" if line is not None else ""
        super().__init__(f"cannot parse {tool} output{where}: {message}{shown}")
