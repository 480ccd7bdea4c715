"""A scripted host for apply tests: answers by argv prefix, keeps files in memory, logs every call."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reconciler.host.base import DEFAULT_TIMEOUT, CommandResult
from reconciler.model.observed import DrbdResourceState

Responder = Callable[[tuple[str, ...]], CommandResult | None]

LVS_EMPTY = '{"report": [{"lv": []}]}'


class Killed(BaseException):
    """Stands in for SIGKILL inside one process: nothing after it runs, not even except-blocks for Exception."""


def ok(argv: Sequence[str], stdout: str = "") -> CommandResult:
    return CommandResult(tuple(argv), 0, stdout, "")


def fail(argv: Sequence[str], code: int, stderr: str) -> CommandResult:
    return CommandResult(tuple(argv), code, "", stderr)


def lvs_report(*lvs: tuple[str, str, str], tags: str = "") -> str:
    rows = ",".join(
        f'{{"lv_name":"{name}","vg_name":"{vg}","lv_size":"1073741824","lv_attr":"-wi-a-----","lv_uuid":"{uuid}",'
        f'"segtype":"linear","stripes":"1","stripe_size":"0","devices":"/dev/sda(0)","lv_tags":"{tags}"}}'
        for vg, name, uuid in lvs)
    return f'{{"report": [{{"lv": [{rows}]}}]}}'


def drbd9_status_json(*resources: DrbdResourceState) -> str:
    """What ``drbdsetup status --json`` prints for these states (the keys the parser reads)."""
    return json.dumps([{
        "name": r.name, "role": r.role, "suspended": r.suspended,
        "devices": [{"volume": d.volume, "minor": d.minor, "disk-state": d.disk_state, "client": d.client,
                     **({"quorum": d.quorum} if d.quorum is not None else {}),
                     **({"size": d.size_kib} if d.size_kib is not None else {})} for d in r.devices],
        "connections": [{"name": c.peer_name, "connection-state": c.connection_state, "peer-role": c.peer_role,
                         "peer_devices": [{"volume": p.volume, "replication-state": p.replication_state,
                                           "peer-disk-state": p.peer_disk_state} for p in c.peer_devices]}
                        for c in r.connections],
    } for r in resources])


PROC_DRBD_9 = "version: 9.2.12 (api:2/proto:86-122)\n"
# Every Linux node has a mount table; the last look before starting a domain refuses without one.
PROC_MOUNTS = "/dev/sda1 / ext4 rw,relatime 0 0\nproc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"


XL_LIST_DOM0 = ("Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
                "Domain-0                                     0  2048     2     r-----      50.2\n")


@dataclass
class FakeHost:
    node: str = "erdbeere"
    responders: list[Responder] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    timeouts: list[float] = field(default_factory=list)
    signatures: dict[str, str] = field(default_factory=dict)  # device -> blkid TYPE
    kill_before: tuple[str, ...] | None = None
    kill_after: tuple[str, ...] | None = None
    # DRBD 9 as the executor re-reads it right before a promotion; None: no DRBD module loaded.
    drbd: tuple[DrbdResourceState, ...] | None = None

    def __post_init__(self) -> None:
        self.files.setdefault("/proc/self/mounts", PROC_MOUNTS)
        if self.drbd is not None:
            self.files.setdefault("/proc/drbd", PROC_DRBD_9)

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        args = tuple(argv)
        if self.kill_before is not None and args[: len(self.kill_before)] == self.kill_before:
            raise Killed(args)
        self.calls.append(args)
        self.timeouts.append(timeout)
        result = self._answer(args)
        if self.kill_after is not None and args[: len(self.kill_after)] == self.kill_after:
            raise Killed(args)
        return result

    def _answer(self, args: tuple[str, ...]) -> CommandResult:
        for responder in self.responders:
            answer = responder(args)
            if answer is not None:
                return answer
        if args[:2] == ("drbdsetup", "status") and self.drbd is not None:
            return ok(args, drbd9_status_json(*self.drbd))
        if args == ("xl", "list"):
            # The start's last look lists the domains (no live migration's names may show): dom0 alone.
            return ok(args, XL_LIST_DOM0)
        if args[0] == "blkid":
            device = args[-1]
            kind = self.signatures.get(device)
            if kind is None:
                return CommandResult(args, 2, "", "")
            return ok(args, f"DEVNAME={device}\nTYPE={kind}\n")
        if args[0] == "lvs":
            return ok(args, LVS_EMPTY)
        if args[0] == "mkfs.xfs":
            self.signatures[args[-1]] = "xfs"
        if args[0] == "mkswap":
            self.signatures[args[-1]] = "swap"
        if args[0] == "wipefs":
            self.signatures.pop(args[-1], None)
        return ok(args)

    def read_file(self, path: str) -> str | None:
        return self.files.get(path)

    def list_dir(self, path: str) -> tuple[str, ...]:
        prefix = path.rstrip("/") + "/"
        return tuple(sorted(p[len(prefix):] for p in self.files if p.startswith(prefix) and "/" not in p[len(prefix):]))

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        self.files[path] = content

    def remove_file(self, path: str) -> None:
        self.files.pop(path, None)

    def mutating_calls(self) -> list[tuple[str, ...]]:
        return [c for c in self.calls if c[0] not in ("blkid", "lvs", "drbdadm", "drbdsetup", "xl") or
                (c[0] == "xl" and c[1] != "list") or
                (c[0] == "drbdadm" and c[1] not in ("show-gi", "status"))]
