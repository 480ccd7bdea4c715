"""What a failed provisioning said, kept on the node that ran it.

The failure itself is recorded in the filesystem's label (both nodes see it); the command's output is too
long for a label, so the node that ran the attempt keeps it in its state directory, beside the crash journal,
and every later pass that reports the attempt as failed repeats it. The other node, after a failover, reports
the failure without it and says where it is.

It also keeps the proof that this node made a VM's filesystem for provisioning (``mkfs.xfs -L rprov-new``):
the label alone is within the guest's reach, so a filesystem labelled ``rprov-new`` is filled at the
desired state's first attempt only if this node made it and has not seen it labelled otherwise since.
"""

from __future__ import annotations

import contextlib
import json
import posixpath

from reconciler.host.base import Host, HostFileError
from reconciler.names import check_name

MAX_OUTPUT_CHARS = 2000


def _tail(text: str) -> str:
    shown = "".join(c if c.isprintable() or c == "\n" else "?" for c in text.strip())
    return shown if len(shown) <= MAX_OUTPUT_CHARS else "[...]" + shown[-MAX_OUTPUT_CHARS:]


class ProvisionRecords:
    def __init__(self, host: Host, journal_path: str) -> None:
        self.host = host
        self.directory = posixpath.join(posixpath.dirname(journal_path), "provision")

    def path(self, vm: str) -> str:
        return posixpath.join(self.directory, f"{check_name(vm, 'VM')}.json")

    def write(self, vm: str, attempt: int, message: str, output: str) -> None:
        body = {"vm": vm, "attempt": attempt, "message": message, "output": _tail(output)}
        # The failure is in the label and in this pass's outcome; a write that fails loses only its repetition.
        with contextlib.suppress(HostFileError, OSError):
            self.host.write_file(self.path(vm), json.dumps(body, sort_keys=True) + "\n", 0o600)

    def read(self, vm: str, attempt: int | None) -> str:
        """The output of ``attempt``'s failure here; otherwise a note that it is kept where the attempt ran."""
        elsewhere = f"not kept on this node (see {self.path(vm)} on the node that ran the attempt)"
        try:
            text = self.host.read_file(self.path(vm))
            data = json.loads(text) if text else None
        except (HostFileError, OSError, ValueError):
            return elsewhere
        if not isinstance(data, dict) or data.get("attempt") != attempt:
            return elsewhere
        return _tail(str(data.get("output", "")))

    def made_path(self, vm: str) -> str:
        return posixpath.join(self.directory, f"{check_name(vm, 'VM')}.made")

    def mark_made(self, vm: str, device: str) -> None:
        """This node just made ``device``'s filesystem for ``vm``'s provisioning (labelled rprov-new)."""
        # A lost mark only asks for a raised attempt (the safe side), never for a fill without one.
        with contextlib.suppress(HostFileError, OSError):
            self.host.write_file(self.made_path(vm), json.dumps({"vm": vm, "device": device}) + "\n", 0o600)

    def made_here(self, vm: str, device: str) -> bool:
        try:
            text = self.host.read_file(self.made_path(vm))
            data = json.loads(text) if text else None
        except (HostFileError, OSError, ValueError):
            return False
        return isinstance(data, dict) and data.get("vm") == vm and data.get("device") == device

    def forget_made(self, vm: str) -> None:
        """Once the label moved on (an attempt started, done, or the guest's), rprov-new is never trusted again."""
        with contextlib.suppress(HostFileError, OSError):
            if self.host.read_file(self.made_path(vm)) is not None:
                self.host.remove_file(self.made_path(vm))
