"""Outdating this node's replica when the peer's fence-peer handler asks, and this node's view of a replica
read without DRBD's netlink: the DRBD side of fencing without Pacemaker
(:mod:`reconciler.daemon.peers.fence` is the channel and the exit codes)."""

from __future__ import annotations

from reconciler.backends.drbd.procdrbd import parse_proc_drbd
from reconciler.core.parse_error import ParseError
from reconciler.core.seams import OutdateOutcome
from reconciler.host.base import Host
from reconciler.names import check_name

DRBDADM_TIMEOUT = 20.0

# Disk states at least as bad as Outdated: such a replica can never become a sync source or Primary.
NOT_UP_TO_DATE = frozenset({"Outdated", "Inconsistent", "Diskless", "Failed"})

# Connection states in which DRBD refuses to outdate the disk: the peer still sees the link as up.
CONNECTED_STATES = frozenset({
    "Connected", "StartingSyncS", "StartingSyncT", "WFBitMapS", "WFBitMapT", "WFSyncUUID", "SyncSource",
    "SyncTarget", "PausedSyncS", "PausedSyncT", "VerifyS", "VerifyT", "Ahead", "Behind",
})


def _first_field(line: str) -> str:
    # 8.4 prints "Secondary/Primary" and "UpToDate/DUnknown"; 9 prints the local state first as well.
    return line.strip().split("/", 1)[0].strip()


def outdate(host: Host, resource: str) -> tuple[OutdateOutcome, str]:
    """Outdate ``resource`` here unless it is Primary; never promote or demote."""
    name = check_name(resource, "DRBD resource")
    role = host.run(("drbdadm", "role", name), timeout=DRBDADM_TIMEOUT)
    if role.ok:
        lines = [line for line in role.stdout.splitlines() if line.strip()]
        if any(_first_field(line) == "Primary" for line in lines):
            return "primary", f"{name} is Primary on {host.node}"
        disks = host.run(("drbdadm", "dstate", name), timeout=DRBDADM_TIMEOUT)
        states = [_first_field(line) for line in disks.stdout.splitlines() if line.strip()] if disks.ok else []
        if states and all(state in NOT_UP_TO_DATE for state in states):
            return "already", f"{name} is already {'/'.join(states)}"
        links = host.run(("drbdadm", "cstate", name), timeout=DRBDADM_TIMEOUT)
        seen = [line.strip() for line in links.stdout.splitlines() if line.strip()] if links.ok else []
        if any(state in CONNECTED_STATES for state in seen):
            return "connected", f"{name} on {host.node} is still {'/'.join(seen)}: it has not noticed the cut yet"
    # Not up here (``drbdadm outdate`` then marks the metadata offline), or Secondary with good data.
    result = host.run(("drbdadm", "outdate", name), timeout=DRBDADM_TIMEOUT)
    if result.ok:
        return "outdated", f"{name} outdated on {host.node}"
    return "failed", result.describe()


def local_view(host: Host, minor: int) -> tuple[str, str]:
    """This node's role and disk state of the resource on ``minor``, read without DRBD's netlink.

    The handler may be running inside ``drbdsetup primary``, which holds the netlink lock while it waits for
    the handler: a ``drbdadm role`` or ``dstate`` from here would wait for it (crm-fence-peer.sh reads
    /proc/drbd for the same reason). DRBD 8.4 lists each minor there; DRBD 9 does not, and its helper
    environment is no substitute (``UP_TO_DATE_NODES`` always has this node's own bit set for fence-peer,
    whatever its disk), so on 9 both stay unknown. Unknown is ``("Unknown", "Unknown")``, which never allows
    a power fence."""
    try:
        proc = parse_proc_drbd(host.read_file("/proc/drbd") or "")
    except (OSError, ParseError):
        return "Unknown", "Unknown"
    found = next((m for m in proc.minors if m.minor == minor and m.configured), None)
    if found is None:
        return "Unknown", "Unknown"
    return found.role or "Unknown", found.disk_state or "Unknown"
