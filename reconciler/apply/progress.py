"""What apply shows while it runs: one rewritten status line on a terminal, plain lines otherwise.

Line format (stable, for logs and scripts)::

    apply node=erdbeere vm=vm100 action=create-lv key=lv:vg-sda/root100 result=ok attempts=1 duration=0.012s
    resync node=erdbeere resource=vm100 peer=himbeere percent=42.0
"""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

from reconciler.core.actions import Action
from reconciler.model.status import ActionRecord


class Progress(Protocol):
    def started(self, action: Action, index: int, total: int) -> None: ...

    def finished(self, action: Action, record: ActionRecord) -> None: ...

    def resync(self, resource: str, peer: str, percent: float) -> None: ...

    def close(self) -> None: ...


class SilentProgress:
    def started(self, action: Action, index: int, total: int) -> None:
        return None

    def finished(self, action: Action, record: ActionRecord) -> None:
        return None

    def resync(self, resource: str, peer: str, percent: float) -> None:
        return None

    def close(self) -> None:
        return None


def _quote(value: str) -> str:
    return value if value and " " not in value and '"' not in value else '"' + value.replace('"', "'") + '"'


class LineProgress:
    def __init__(self, node: str, stream: TextIO | None = None) -> None:
        self.node = node
        self.stream = stream or sys.stdout

    def started(self, action: Action, index: int, total: int) -> None:
        return None

    def finished(self, action: Action, record: ActionRecord) -> None:
        extra = f" message={_quote(record.message)}" if record.message else ""
        self.stream.write(f"apply node={self.node} vm={record.vm} action={record.kind} key={record.key} "
                          f"result={record.result} attempts={record.attempts} "
                          f"duration={record.duration_s:.3f}s{extra}\n")
        self.stream.flush()

    def resync(self, resource: str, peer: str, percent: float) -> None:
        self.stream.write(f"resync node={self.node} resource={resource} peer={peer} percent={percent:.1f}\n")
        self.stream.flush()

    def close(self) -> None:
        return None


class TerminalProgress:
    """One status line rewritten in place; finished actions other than ok scroll up so none is lost."""

    def __init__(self, node: str, stream: TextIO | None = None) -> None:
        self.node = node
        self.stream = stream or sys.stderr
        self.width = 100

    def _status(self, text: str) -> None:
        self.stream.write("\r\x1b[K" + text[: self.width])
        self.stream.flush()

    def started(self, action: Action, index: int, total: int) -> None:
        self._status(f"[{index}/{total}] {action.vm}: {action.kind} {action.key} ...")

    def finished(self, action: Action, record: ActionRecord) -> None:
        if record.result not in ("ok", "unchanged"):
            self.stream.write(f"\r\x1b[K{record.result:>8} {record.vm}: {record.kind} {record.key}: {record.message}\n")
            self.stream.flush()

    def resync(self, resource: str, peer: str, percent: float) -> None:
        filled = int(percent / 5)
        self.stream.write(f"\r\x1b[K{resource} -> {peer} resync [{'#' * filled}{'.' * (20 - filled)}] "
                          f"{percent:5.1f}%\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r\x1b[K")
        self.stream.flush()


def progress_for(node: str, stream: TextIO) -> Progress:
    return TerminalProgress(node, stream) if stream.isatty() else LineProgress(node, stream)
