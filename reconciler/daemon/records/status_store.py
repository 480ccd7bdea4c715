"""The node status the daemon publishes (``<state>/status.json``, replaced atomically) and the CLI reads."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.model.status import NodeStatus
from reconciler.source.statefile import write_atomic

STATUS_FILE = "status.json"


def publish(state_dir: Path, status: NodeStatus) -> None:
    write_atomic(state_dir / STATUS_FILE, status.model_dump_json(indent=2) + "\n")


def load(state_dir: Path) -> NodeStatus | None:
    """The last published status, or None when there is none (or it cannot be read)."""
    try:
        text = (state_dir / STATUS_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return NodeStatus.model_validate(json.loads(text))
    except ValueError:
        return None
