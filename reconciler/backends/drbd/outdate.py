"""Outdating this node's replica when the peer's fence-peer handler asks, and this node's view of a replica
read without DRBD's netlink: the DRBD side of fencing without Pacemaker
(:mod:`reconciler.daemon.peers.fence` is the channel and the exit codes)."""

from __future__ import annotations

from reconciler.backends.drbd.procdrbd import parse_proc_drbd
from reconciler.backends.drbd.show import SHOW_ARGV, parse_two_primaries
from reconciler.core.parse_error import ParseError
from reconciler.core.seams import OutdateOutcome
from reconciler.host.base import Host
from reconciler.names import check_name
from reconciler.printable import escape

DRBDADM_TIMEOUT = 20.0
# Without word from the daemon's migration records a Primary never gives way (never outdate both sides).
NO_RECORD = (False, "nothing shows that the peer keeps the data")

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


def _still_connected(host: Host, name: str) -> tuple[OutdateOutcome, str] | None:
    links = host.run(("drbdadm", "cstate", name), timeout=DRBDADM_TIMEOUT)
    seen = [line.strip() for line in links.stdout.splitlines() if line.strip()] if links.ok else []
    if any(state in CONNECTED_STATES for state in seen):
        return "connected", f"{name} on {host.node} is still {'/'.join(seen)}: it has not noticed the cut yet"
    return None


def window_open(host: Host, name: str) -> tuple[bool, str]:
    """Whether a live migration's window is open here for ``name`` (the runtime allowance of two primaries, as
    ``drbdsetup show`` prints it now), with why not when it is not; unreadable counts as closed."""
    shown = host.run((*SHOW_ARGV, name), timeout=DRBDADM_TIMEOUT)
    if not shown.ok:
        return False, f"its runtime options could not be read ({shown.describe()})"
    try:
        allowed = parse_two_primaries(shown.stdout).get(name)
    except ParseError as exc:
        return False, f"its runtime options could not be read ({exc})"
    return bool(allowed), "" if allowed else "no live migration window is open"


def _give_way(host: Host, name: str, peer_keeps: tuple[bool, str]) -> tuple[OutdateOutcome, str] | None:
    """A Primary inside a live migration's window tries to become Secondary, so that its peer keeps its disk;
    None when it did, else the answer "primary" with why it stays: the migration's records do not show that
    the peer keeps the data (with the domain running nowhere neither device is held, and both sides would
    give way), or DRBD refuses while the device is open."""
    opened, why = window_open(host, name)
    if not opened:
        return "primary", f"{name} is Primary on {host.node} ({why})"
    keeps, why_not = peer_keeps
    if not keeps:
        return "primary", (f"{name} is Primary on {host.node} inside a live migration window and stays so: "
                           f"{why_not}")
    connected = _still_connected(host, name)
    if connected is not None:
        return connected  # demoted now, it could not be outdated yet: ask again once it has noticed the cut
    demoted = host.run(("drbdadm", "secondary", name), timeout=DRBDADM_TIMEOUT)
    if not demoted.ok:
        return "primary", (f"{name} is Primary on {host.node} inside a live migration window and stays so, its "
                           f"device is in use: {escape(demoted.stderr.strip() or demoted.stdout.strip())[:300]}")
    return None


def outdate(host: Host, resource: str, peer_keeps: tuple[bool, str] = NO_RECORD) -> tuple[OutdateOutcome, str]:
    """Outdate ``resource`` here unless it is Primary; never promote. A Primary is demoted first only inside a
    live migration's window, only if ``peer_keeps`` (from the daemon's migration records) says the peer keeps
    the data, and only if DRBD allows it (nothing holds the device open)."""
    name = check_name(resource, "DRBD resource")
    role = host.run(("drbdadm", "role", name), timeout=DRBDADM_TIMEOUT)
    if role.ok:
        lines = [line for line in role.stdout.splitlines() if line.strip()]
        if any(_first_field(line) == "Primary" for line in lines):
            stays = _give_way(host, name, peer_keeps)
            if stays is not None:
                return stays
        disks = host.run(("drbdadm", "dstate", name), timeout=DRBDADM_TIMEOUT)
        states = [_first_field(line) for line in disks.stdout.splitlines() if line.strip()] if disks.ok else []
        if states and all(state in NOT_UP_TO_DATE for state in states):
            return "already", f"{name} is already {'/'.join(states)}"
        connected = _still_connected(host, name)
        if connected is not None:
            return connected
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
