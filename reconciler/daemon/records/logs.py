"""Structured, journald-friendly logging: one event per line, ``key=value`` (or JSON) fields.

Every line starts with ``event=<name>`` and carries the fields that matter for that event (``vm``,
``resource``, ``action``, ``revision``, ``result`` ...), so ``journalctl -u reconciler | grep vm=vm100``
or a log shipper can follow one VM or one revision without parsing prose.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import TextIO

LOGGER_NAME = "reconciler"


def _quote(value: object) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "-_.:/@+," for c in text):
        return text
    # JSON escapes the C0 controls only; a C1 control or a bidirectional override in a value (a file name,
    # a tool's output) would reach the terminal raw, so such a value is written as ASCII throughout.
    return json.dumps(text, ensure_ascii=not text.isprintable())


class KeyValueFormatter(logging.Formatter):
    def __init__(self, *, with_time: bool) -> None:
        super().__init__()
        self._with_time = with_time

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        parts = []
        if self._with_time:
            parts.append("ts=" + time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                         + f".{int(record.msecs):03d}Z")
        parts.append(f"level={record.levelname.lower()}")
        parts.append(f"event={_quote(record.getMessage())}")
        parts.extend(f"{key}={_quote(value)}" for key, value in fields.items())
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {"ts": record.created, "level": record.levelname.lower(),
                                   "event": record.getMessage()}
        data.update(_fields(record))
        text = json.dumps(data, default=str, ensure_ascii=False)
        # As in key=value lines: a value with a C1 control or a bidirectional override is written as ASCII.
        return text if text.isprintable() else json.dumps(data, default=str)


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields = getattr(record, "fields", None)
    found = {k: v for k, v in fields.items() if v is not None} if isinstance(fields, dict) else {}
    if record.exc_info and record.exc_info[1] is not None:
        # A crash must say what and where in its own line: journald keeps one line per event.
        exc = record.exc_info[1]
        found["error"] = f"{type(exc).__name__}: {exc}"
        found["traceback"] = "".join(traceback.format_exception(exc)).rstrip()
    return found


def setup_logging(fmt: str = "kv", *, stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Log to stderr (journald captures it). No timestamps in kv format under systemd: journald adds them."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        import os  # noqa: PLC0415

        handler.setFormatter(KeyValueFormatter(with_time="JOURNAL_STREAM" not in os.environ))
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def event(name: str, /, *, level: int = logging.INFO, **fields: object) -> None:
    """Log one event with its fields (any names; ``None`` values are left out)."""
    logging.getLogger(LOGGER_NAME).log(level, name, extra={"fields": fields})
