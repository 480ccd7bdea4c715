"""Power fencing for the fence-peer handler: power a lost peer off and prove that it is off.

Exit 7 ("peer was stonithed") makes DRBD mark the peer Outdated in its own view, so the handler answers 7
only after the peer's fence agent reported the node off in a status query made after the off command.
Both run inside the handler, which DRBD starts when it lost the connection (or when a promotion finds the
peer unknown): every proof it uses is newer than the disconnect. A status answer from before, a record of
an earlier fence, or the peer merely not answering never counts.

The commands are the cluster's own (``nodes.<peer>.power_fence`` in cluster.yaml), run as argv lists with
the configured timeout. Their status convention is fence-agents' ``--action=status``: exit 0 when the node
is on, 2 with ``Status: OFF`` on its output when it is off, anything else when the agent does not know
(ClusterLabs/fence-agents, ``lib/fencing.py.py``, ``fence_action``; 2 is also its code for bad arguments,
so the exit code alone proves nothing).

Every attempt is recorded in the state directory (``power-fence/<peer>.json``, the latest per peer), which
the daemon exports as metrics.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from reconciler.daemon.records import named_records
from reconciler.desired.schema import PowerFenceSection
from reconciler.host.base import CommandResult, Host
from reconciler.printable import escape

RECORD_DIR = "power-fence"
STATUS_ON = 0
STATUS_OFF = 2
# Exit 2 alone is no proof: it is also fence-agents' (and argparse's) code for bad arguments.
STATUS_OFF_LINE = re.compile(r"^\s*Status:\s*OFF\s*$", re.IGNORECASE | re.MULTILINE)
STATUS_INTERVAL = 1.0
OUTCOMES = ("off", "failed")


@dataclass(frozen=True)
class FenceRecord:
    """One power fence of ``peer`` by ``by`` for ``resource``: ``off`` only when a status query proved it."""

    peer: str
    by: str
    resource: str
    outcome: str  # one of OUTCOMES
    started: float  # wall-clock seconds
    finished: float
    detail: str

    @property
    def verified_off(self) -> bool:
        return self.outcome == "off"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"


def said(result: CommandResult) -> str:
    """The last line a command printed (its output, else its errors), for a log line."""
    text = (result.stdout.strip() or result.stderr.strip()).splitlines()
    return escape(text[-1])[:200] if text else "no output"


def power_state(result: CommandResult) -> str:
    """What a status command said: ``on``, ``off`` (exit 2 with a ``Status: OFF`` line) or ``unknown``."""
    if result.returncode == STATUS_ON:
        return "on"
    if result.returncode == STATUS_OFF and STATUS_OFF_LINE.search(result.stdout):
        return "off"
    return "unknown"


def power_fence(host: Host, peer: str, resource: str, spec: PowerFenceSection, *,
                wait: Callable[[float], object] = time.sleep,
                clock: Callable[[], float] = time.monotonic,
                wall: Callable[[], float] = time.time) -> FenceRecord:
    """Run the peer's off command, then its status command until it reports off or the timeout passes."""
    started = wall()
    off = host.run(spec.off, timeout=float(spec.timeout))
    steps = [f"off exited {off.returncode} ({said(off)})"]
    deadline = clock() + spec.timeout
    while True:
        left = deadline - clock()
        status = host.run(spec.status, timeout=max(min(float(spec.timeout), left), 1.0))
        state = power_state(status)
        if state == "off":
            steps.append(f"status exited 2 ({said(status)}): off")
            return FenceRecord(peer, host.node, resource, "off", started, wall(), "; ".join(steps))
        if deadline - clock() <= STATUS_INTERVAL:
            meaning = "still on" if state == "on" else "unknown"
            steps.append(f"status exited {status.returncode} ({said(status)}): {meaning} after {spec.timeout} s")
            return FenceRecord(peer, host.node, resource, "failed", started, wall(), "; ".join(steps))
        wait(STATUS_INTERVAL)


def record_path(state_dir: Path, peer: str) -> Path:
    return named_records.record_path(state_dir / RECORD_DIR, peer, "peer node")


def write_record(state_dir: Path, record: FenceRecord) -> None:
    named_records.write_named(state_dir / RECORD_DIR, record.peer, "peer node", record.to_json())


def _record(data: Mapping[str, object]) -> FenceRecord:
    return FenceRecord(peer=str(data["peer"]), by=str(data["by"]), resource=str(data["resource"]),
                       outcome=str(data["outcome"]), started=named_records.as_float(data["started"]),
                       finished=named_records.as_float(data["finished"]), detail=str(data["detail"]))


def read_records(state_dir: Path) -> list[FenceRecord]:
    """The latest record per peer; unreadable or foreign files are skipped, never trusted."""
    found = named_records.read_named(state_dir / RECORD_DIR, "peer node", _record)
    return [record for peer, record in found.items() if record.peer == peer and record.outcome in OUTCOMES]
