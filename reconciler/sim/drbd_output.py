"""What the DRBD tools print, rendered from the simulator's DRBD state.

Formats follow the real tools: ``drbdsetup status --json`` (drbd-utils 9.x keys), ``drbdadm status``,
``drbdsetup events2`` lines, ``/proc/drbd`` of DRBD 8.4 (and the version-only file of DRBD 9),
``show-gi`` (drbdmeta's generation-identifier picture) and the ``-d`` dry-run command lines.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from typing import Any

from reconciler.sim import drbd_machine as m
from reconciler.sim.drbd_config import ResourceConfig
from reconciler.sim.state import State

KERNEL_VERSION = {"9": "9.2.12", "8.4": "8.4.11"}
PROC_HEADER = {
    "9": "version: 9.2.12 (api:2/proto:86-122)\n"
         "GIT-hash: 6d0ef5fb5ed5bd3f4f4e5ff3e3a7ee4fe6f1a8c2 build by root@buildd, 2024-10-15 09:12:44\n"
         "Transports (api:21): tcp (9.2.12)\n",
    "8.4": "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: 2D876214BAAD53B31ADC1D6 \n",
}
UTILS_VERSION = "9.22.0"
UTILS_BUILDTAG = r"GIT-hash:\ 1d4e0d6c7e2c5a4f7c8d3b1f0a9e6d5c4b3a2f1e\ build\ by\ @buildd\,\ 2023-01-13\ 10:12:44"


def version_text(ver: str | None) -> str:
    """``drbdadm --version`` / ``drbdsetup --version``: shell assignments, kernel part from the module."""
    kernel = KERNEL_VERSION.get(ver or "", "0.0.0")
    major, minor, sub = (int(x) for x in kernel.split("."))
    utils = [int(x) for x in UTILS_VERSION.split(".")]
    return (f"DRBDADM_BUILDTAG={UTILS_BUILDTAG}\n"
            f"DRBDADM_API_VERSION={1 if ver == '8.4' else 2}\n"
            f"DRBD_KERNEL_VERSION_CODE=0x{major:02x}{minor:02x}{sub:02x}\n"
            f"DRBD_KERNEL_VERSION={kernel}\n"
            f"DRBDADM_VERSION_CODE=0x{utils[0]:02x}{utils[1]:02x}{utils[2]:02x}\n"
            f"DRBDADM_VERSION={UTILS_VERSION}\n")


_STATS_DEVICE = ("size", "read", "written", "al-writes", "bm-writes", "upper-pending", "lower-pending",
                 "al-suspended", "blocked")
_STATS_CONNECTION = ("congested", "ap-in-flight", "rs-in-flight")
_STATS_PEER = ("received", "sent", "out-of-sync", "pending", "unacked", "dbdt1", "eta")
_STATS_RESOURCE = ("write-ordering",)


def version(state: State, node: str) -> str:
    return str(state["nodes"][node].get("drbd_version", "9"))


def _yn(value: bool) -> str:
    return "yes" if value else "no"


# --- a per-resource view with the peer's side filled in ----------------------------------------


def peer_role(state: State, res: dict[str, Any], peer: str) -> str:
    conn = res["connections"][peer]
    other = m.runtime(state, peer, res["name"])
    if conn["conn"] != "Connected" or other is None:
        return "Unknown"
    return str(other["role"])


def peer_disk(state: State, res: dict[str, Any], peer: str, volume: str) -> str:
    conn = res["connections"][peer]
    other = m.runtime(state, peer, res["name"])
    if conn["conn"] != "Connected" or other is None:
        md = None
        dev = res["devices"].get(volume)
        if dev is not None:
            md = m.device_md(state, dev)
        if md is not None and md["peers"].get(str(conn["node_id"]), {}).get("outdated"):
            return "Outdated"
        return "DUnknown"
    return str(other["devices"].get(volume, {}).get("disk", "DUnknown"))


def peer_client(state: State, res: dict[str, Any], peer: str, volume: str) -> bool:
    """Whether the peer's volume is configured without a disk (a diskless client or tiebreaker)."""
    host = m.config_of(res).host(peer)
    found = host.volume(int(volume)) if host is not None else None
    return found is not None and found.disk is None


def resync_percent(pd: dict[str, Any]) -> float:
    total = max(int(pd.get("total_kib", 0)), 1)
    return round(100.0 * (total - int(pd.get("oos_kib", 0))) / total, 2)


def resync_eta(state: State, node: str, res: dict[str, Any], pd: dict[str, Any]) -> int:
    rate = m.resync_rate(state, node, res)
    return int(-(-int(pd.get("oos_kib", 0)) // max(int(rate), 1)))


def percent_in_sync(res: dict[str, Any], volume: str, pd: dict[str, Any]) -> float:
    size = max(int(res["devices"].get(volume, {}).get("size_kib", 0)), 1)
    return round(100.0 * (size - min(int(pd.get("oos_kib", 0)), size)) / size, 2)


def may_promote(state: State, node: str, res: dict[str, Any]) -> bool:
    if res["role"] == m.PRIMARY or not res.get("quorum", True):
        return False
    config = m.config_of(res)
    peers = list(m.connected_peers(state, node, res))
    if not config.allow_two_primaries and any(p["role"] == m.PRIMARY for _, p in peers):
        return False
    return m.has_uptodate_access(state, node, res)


def promotion_score(state: State, node: str, res: dict[str, Any]) -> int:
    uptodate = sum(1 for d in res["devices"].values() if d["disk"] == "UpToDate")
    if uptodate == 0:
        return 0
    connected = sum(1 for c in res["connections"].values() if c["conn"] == "Connected")
    return 10000 + 100 * uptodate + 1 + connected


def _sorted_resources(state: State, node: str, name: str | None = None) -> list[dict[str, Any]]:
    found = m.resources(state, node)
    return [found[n] for n in sorted(found) if name is None or n == name]


# --- drbdsetup status --json ------------------------------------------------------------------


def status_json(state: State, node: str, name: str | None = None) -> str:
    return _dump([status_object(state, node, res) for res in _sorted_resources(state, node, name)]) + "\n"


def status_object(state: State, node: str, res: dict[str, Any]) -> dict[str, Any]:
    devices = []
    for volume in sorted(res["devices"], key=int):
        dev = res["devices"][volume]
        devices.append({
            "volume": int(volume), "minor": int(dev["minor"]), "disk-state": dev["disk"],
            "client": dev.get("backing") is None, "quorum": bool(res.get("quorum", True)),
            "size": int(dev["size_kib"]), "read": int(dev.get("read_kib", 0)),
            "written": int(dev.get("written_kib", 0)),
            "al-writes": 0, "bm-writes": 0, "upper-pending": 0, "lower-pending": 0,
        })
    connections = []
    for peer in sorted(res["connections"]):
        conn = res["connections"][peer]
        peer_devices = []
        for volume in sorted(conn["peer_devices"], key=int):
            pd = conn["peer_devices"][volume]
            syncing = pd["repl"] in ("SyncSource", "SyncTarget")
            oos = _oos_kib(state, res, conn, volume, pd)
            item: dict[str, Any] = {
                "volume": int(volume), "replication-state": pd["repl"] if conn["conn"] == "Connected" else "Off",
                "peer-disk-state": peer_disk(state, res, peer, volume),
                "peer-client": peer_client(state, res, peer, volume),
                "resync-suspended": "no", "received": int(pd.get("received_kib", 0)),
                "sent": int(pd.get("sent_kib", 0)), "out-of-sync": oos, "pending": 0, "unacked": 0,
                "has-sync-details": syncing, "has-online-verify-details": False,
                "percent-in-sync": _Fixed(percent_in_sync(res, volume, {"oos_kib": oos})),
            }
            if pd["repl"] in m.VERIFY_STATES:
                total, left = int(pd.get("verify_total_kib", 1)), int(pd.get("verify_left_kib", 0))
                item.update({
                    "has-sync-details": True, "has-online-verify-details": True, "rs-total": total * 2,
                    "ov-left": left * 2, "want": _Fixed(m.resync_rate(state, node, res) / 1024),
                    "percent-resync-done": _Fixed(m.verify_percent(pd)),
                })
            if syncing:
                item.update({
                    "rs-total": int(pd["total_kib"]), "rs-dt-start-ms": 0, "rs-paused-ms": 0,
                    "rs-dt0-ms": 0, "rs-db0-sectors": 0, "rs-dt1-ms": 0, "rs-db1-sectors": 0,
                    "rs-failed": 0, "rs-same-csum": 0,
                    "percent-resync-done": _Fixed(resync_percent(pd)),
                    "want": _Fixed(m.resync_rate(state, node, res) / 1024),
                    "db/dt [MiB/s]": _Fixed(m.resync_rate(state, node, res) / 1024),
                    "estimated-seconds-to-finish": resync_eta(state, node, res, pd),
                })
            peer_devices.append(item)
        connections.append({
            "peer-node-id": int(conn["node_id"]), "name": peer, "connection-state": conn["conn"], "congested": False,
            "peer-role": peer_role(state, res, peer), "ap-in-flight": 0, "rs-in-flight": 0,
            "peer_devices": peer_devices,
        })
    return {
        "name": res["name"], "node-id": int(res["node_id"]), "role": res["role"],
        "suspended": bool(res.get("suspended")), "write-ordering": "flush",
        "devices": devices, "connections": connections,
    }


def _oos_kib(state: State, res: dict[str, Any], conn: dict[str, Any], volume: str, pd: dict[str, Any]) -> int:
    if pd["repl"] in ("SyncSource", "SyncTarget"):
        return int(pd["oos_kib"])
    dev = res["devices"].get(volume)
    md = m.device_md(state, dev) if dev is not None else None
    if md is None:
        return 0
    return int(md["peers"].get(str(conn["node_id"]), {}).get("oos_kib", 0))


class _Fixed(float):
    """A number drbdsetup prints with two decimals (``100.00``)."""


def _dump(value: Any, indent: int = 0) -> str:
    pad = "  " * indent
    inner = "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {_dump(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + ",\n".join(inner + _dump(v, indent + 1) for v in value) + "\n" + pad + "]"
    if isinstance(value, _Fixed):
        return f"{float(value):.2f}"
    return json.dumps(value)


# --- drbdadm status ---------------------------------------------------------------------------


def status_text(state: State, node: str, name: str | None = None) -> str:
    out: list[str] = []
    for res in _sorted_resources(state, node, name):
        head = f"{res['name']} role:{res['role']}"
        if res.get("suspended"):
            head += f" suspended:{res['suspended']}"
        out.append(head)
        multi = len(res["devices"]) > 1
        for volume in sorted(res["devices"], key=int):
            dev = res["devices"][volume]
            line = f"  {'volume:' + volume + ' ' if multi else ''}disk:{dev['disk']}"
            if dev["disk"] == "Diskless" and dev.get("backing") is None:
                line += " client:yes"
            if not res.get("quorum", True):
                line += " quorum:no"
            line += f" open:{_yn(m.device_open(state, node, int(dev['minor'])))}"
            out.append(line)
        for peer in sorted(res["connections"]):
            conn = res["connections"][peer]
            if conn["conn"] != "Connected":
                out.append(f"  {peer} connection:{conn['conn']}")
                continue
            out.append(f"  {peer} role:{peer_role(state, res, peer)}")
            for volume in sorted(conn["peer_devices"], key=int):
                pd = conn["peer_devices"][volume]
                prefix = f"volume:{volume} " if multi else ""
                line = f"    {prefix}"
                if pd["repl"] != "Established":
                    line += f"replication:{pd['repl']} "
                line += f"peer-disk:{peer_disk(state, res, peer, volume)}"
                if pd["repl"] in ("SyncSource", "SyncTarget"):
                    line += f" done:{resync_percent(pd):.2f}"
                out.append(line)
        out.append("")
    return "\n".join(out) + ("\n" if out else "")


# --- events2 ----------------------------------------------------------------------------------

EventObject = tuple[str, tuple[tuple[str, str], ...], dict[str, str], dict[str, str]]


def event_objects(state: State, node: str, names: Collection[str] | None = None) -> list[EventObject]:
    """Every object events2 reports (of the resources ``names`` only, when given): (kind, identity, state
    fields, statistics fields)."""
    out: list[EventObject] = []
    opened = m.open_minors(state, node)  # once, not a scan of every domain per device
    found = m.resources(state, node)
    for res in (found[n] for n in sorted(found if names is None else set(names) & found.keys())):
        name = res["name"]
        can = may_promote(state, node, res)
        out.append(("resource", (("name", name),), {
            "role": res["role"], "suspended": _yn(bool(res.get("suspended"))), "force-io-failures": "no",
            "may_promote": _yn(can), "promotion_score": str(promotion_score(state, node, res)),
        }, {"write-ordering": "flush"}))
        for volume in sorted(res["devices"], key=int):
            dev = res["devices"][volume]
            out.append(("device", (("name", name), ("volume", volume), ("minor", str(dev["minor"]))), {
                "backing_dev": dev["backing"] if dev["disk"] != "Diskless" and dev.get("backing") else "none",
                "disk": dev["disk"], "client": _yn(dev.get("backing") is None),
                "open": _yn(int(dev["minor"]) in opened),
                "quorum": _yn(bool(res.get("quorum", True))),
            }, {"size": str(dev["size_kib"]), "read": str(dev.get("read_kib", 0)),
                "written": str(dev.get("written_kib", 0)), "al-writes": "0", "bm-writes": "0",
                "upper-pending": "0", "lower-pending": "0", "al-suspended": "no", "blocked": "no"}))
        config = m.config_of(res)
        me = config.host(node)
        for peer in sorted(res["connections"]):
            conn = res["connections"][peer]
            ident = (("name", name), ("peer-node-id", str(conn["node_id"])), ("conn-name", peer))
            out.append(("connection", ident, {"connection": conn["conn"], "role": peer_role(state, res, peer)},
                        {"congested": "no", "ap-in-flight": "0", "rs-in-flight": "0"}))
            for volume in sorted(conn["peer_devices"], key=int):
                pd = conn["peer_devices"][volume]
                repl = pd["repl"] if conn["conn"] == "Connected" else "Off"
                fields = {"replication": repl, "peer-disk": peer_disk(state, res, peer, volume),
                          "peer-client": _yn(peer_client(state, res, peer, volume)), "resync-suspended": "no"}
                stats = {"received": str(pd.get("received_kib", 0)), "sent": str(pd.get("sent_kib", 0)),
                         "out-of-sync": str(_oos_kib(state, res, conn, volume, pd)), "pending": "0", "unacked": "0"}
                if repl in m.VERIFY_STATES:
                    fields["done"] = f"{m.verify_percent(pd):.2f}"
                if repl in ("SyncSource", "SyncTarget"):
                    fields["done"] = f"{resync_percent(pd):.2f}"
                    stats["dbdt1"] = f"{m.resync_rate(state, node, res) / 1024:.2f}"
                    stats["eta"] = str(resync_eta(state, node, res, pd))
                out.append(("peer-device", (*ident, ("volume", volume)), fields, stats))
            other = config.host(peer)
            if me is not None and other is not None and me.address and other.address:
                out.append(("path", (*ident, ("local", f"{me.family}:{me.address}:{me.port}"),
                                     ("peer", f"{other.family}:{other.address}:{other.port}")),
                            {"established": _yn(conn["conn"] == "Connected")}, {}))
    return out


def _line(action: str, obj: EventObject, statistics: bool, fields: dict[str, str] | None = None) -> str:
    kind, ident, state_fields, stats = obj
    shown = dict(state_fields if fields is None else fields)
    parts = [f"{k}:{v}" for k, v in ident]
    parts += [f"{k}:{v}" for k, v in shown.items()]
    if statistics:
        parts += [f"{k}:{v}" for k, v in stats.items()]
    return f"{action} {kind} " + " ".join(parts)


def events_now(state: State, node: str, statistics: bool = False) -> str:
    lines = []
    for obj in event_objects(state, node):
        kind, ident, fields, stats = obj
        if kind == "resource" and statistics:
            fields = {**fields}
            stats = {"write-ordering": stats["write-ordering"]}
            ordered = {"role": fields["role"], "suspended": fields["suspended"],
                       "force-io-failures": fields["force-io-failures"], "write-ordering": stats["write-ordering"],
                       "may_promote": fields["may_promote"], "promotion_score": fields["promotion_score"]}
            lines.append(_line("exists", (kind, ident, ordered, {}), False))
            continue
        lines.append(_line("exists", obj, statistics))
    lines.append("exists -")
    return "\n".join(lines) + "\n"


def _without_progress(fields: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in fields.items() if k != "done"}


def event_changes(before: list[EventObject], after: list[EventObject]) -> list[str]:
    """The create/change/destroy lines that turn ``before`` into ``after``."""
    old = {(o[0], o[1]): o for o in before}
    new = {(o[0], o[1]): o for o in after}
    lines: list[str] = []
    for key, obj in new.items():
        previous = old.get(key)
        if previous is None:
            lines.append(_line("create", obj, False))
            continue
        # Resync progress alone is no state change: the kernel reports it with the next real change.
        if _without_progress(previous[2]) == _without_progress(obj[2]):
            continue
        if obj[0] == "resource":
            changed = {k: v for k, v in obj[2].items()
                       if k in ("role", "suspended") and previous[2].get(k) != v}
            changed["may_promote"] = obj[2]["may_promote"]
            changed["promotion_score"] = obj[2]["promotion_score"]
            lines.append(_line("change", obj, False, changed))
        elif obj[0] == "peer-device":
            fields = {k: v for k, v in obj[2].items() if k != "resync-suspended"}
            lines.append(_line("change", obj, False, fields))
        else:
            lines.append(_line("change", obj, False))
    for key in reversed(list(old)):
        if key not in new:
            kind, ident, _, _ = old[key]
            lines.append(f"destroy {kind} " + " ".join(f"{k}:{v}" for k, v in ident))
    return lines


# --- /proc/drbd -------------------------------------------------------------------------------

_PROC_CS = {"Connecting": "WFConnection", "StandAlone": "StandAlone"}


def proc_drbd(state: State, node: str) -> str:
    ver = version(state, node)
    out = [PROC_HEADER[ver].rstrip("\n")]
    if ver != "8.4":
        return "\n".join(out) + "\n"
    devices: list[tuple[int, dict[str, Any], str, dict[str, Any]]] = []
    for res in _sorted_resources(state, node):
        for volume, dev in res["devices"].items():
            devices.append((int(dev["minor"]), res, volume, dev))
    for minor, res, volume, dev in sorted(devices, key=lambda item: item[0]):
        out.extend(_proc_minor(state, node, minor, res, volume, dev))
    return "\n".join(out) + "\n"


def _proc_minor(state: State, node: str, minor: int, res: dict[str, Any], volume: str,  # noqa: PLR0917
                dev: dict[str, Any]) -> Iterator[str]:
    peer = next(iter(sorted(res["connections"])), None)
    conn = res["connections"][peer] if peer is not None else None
    pd = conn["peer_devices"].get(volume) if conn is not None else None
    if conn is None:
        cs, prole, pdisk = "StandAlone", "Unknown", "DUnknown"
    elif conn["conn"] == "Connected" and pd is not None:
        cs = "Connected" if pd["repl"] == "Established" else pd["repl"]
        prole, pdisk = peer_role(state, res, peer or ""), peer_disk(state, res, peer or "", volume)
    else:
        cs = _PROC_CS.get(conn["conn"], conn["conn"])
        prole, pdisk = "Unknown", peer_disk(state, res, peer or "", volume)
    protocol = " " if cs == "StandAlone" else m.config_of(res).protocol
    susp = "s" if res.get("suspended") else "r"
    yield f"{minor:2d}: cs:{cs} ro:{res['role']}/{prole} ds:{dev['disk']}/{pdisk} {protocol} {susp}-----"
    oos = _oos_kib(state, res, conn, volume, pd) if conn is not None and pd is not None else 0
    sent = int(pd.get("sent_kib", 0)) if pd else 0
    received = int(pd.get("received_kib", 0)) if pd else 0
    yield (f"    ns:{sent} nr:{received} dw:{int(dev.get('written_kib', 0))} dr:{int(dev.get('read_kib', 0))} "
           f"al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:{oos}")
    if pd is not None and cs in ("SyncSource", "SyncTarget"):
        yield from _proc_progress(state, node, res, pd)
    if pd is not None and cs in m.VERIFY_STATES:
        yield from _proc_verify_progress(state, node, res, pd)


def _proc_verify_progress(state: State, node: str, res: dict[str, Any], pd: dict[str, Any]) -> Iterator[str]:
    # drbd_syncer_progress() prints a verify like a resync, with "verified:" and the blocks left to compare.
    total = max(int(pd.get("verify_total_kib", 1)), 1)
    left = int(pd.get("verify_left_kib", 0))
    permille = (total - left) * 1000 // total
    filled = permille // 50
    bar = "=" * max(filled - 1, 0) + ">" + "." * (20 - filled)
    amount = f"({left // 1024}/{total // 1024})M" if left > 4 * 1024 * 1024 else f"({left}/{total})K"
    yield f"\t[{bar}] verified:{permille // 10:3d}.{permille % 10}% {amount}"
    rate = int(m.resync_rate(state, node, res))
    eta = -(-left // max(rate, 1))
    yield f"\tfinish: {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d} speed: {rate:,} ({rate:,}) K/sec"


def _proc_progress(state: State, node: str, res: dict[str, Any], pd: dict[str, Any]) -> Iterator[str]:
    total = max(int(pd["total_kib"]), 1)
    left = int(pd["oos_kib"])
    permille = (total - left) * 1000 // total
    filled = permille // 50
    bar = "=" * max(filled - 1, 0) + ">" + "." * (20 - filled)
    # The kernel switches to MiB above 4 GiB left.
    amount = f"({left // 1024}/{total // 1024})M" if left > 4 * 1024 * 1024 else f"({left}/{total})K"
    yield f"\t[{bar}] sync'ed:{permille // 10:3d}.{permille % 10}% {amount}"
    eta = resync_eta(state, node, res, pd)
    rate = int(m.resync_rate(state, node, res))
    yield f"\tfinish: {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d} speed: {rate:,} ({rate:,}) K/sec"


# --- show-gi ----------------------------------------------------------------------------------

_GI_HEAD = (
    "\n"
    "       +--<  Current data generation UUID  >-\n"
    "       |               +--<  Bitmap's base data generation UUID  >-\n"
    "       |               |                 +--<  younger history UUID  >-\n"
    "       |               |                 |         +-<  older history  >-\n"
    "       V               V                 V         V\n"
)
_GI_LEGEND_9 = (
    "                                                                    ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^\n"
    "                                      -<  Data consistency flag  >--+ | | | | | | | | | | |\n"
    "                             -<  Data was/is currently up-to-date  >--+ | | | | | | | | | |\n"
    "                                  -<  Node was/is currently primary  >--+ | | | | | | | | |\n"
    " -<  This node was a crashed primary, and has not seen its peer since  >--+ | | | | | | | |\n"
    "             -<  The activity-log was applied, the disk can be attached  >--+ | | | | | | |\n"
    "        -<  The activity-log was disabled, peer is completely out of sync  >--+ | | | | | |\n"
    "                              -<  This node was primary when it lost quorum  >--+ | | | | |\n"
    "                                          -<  Node was/is currently connected  >--+ | | | |\n"
    "                              -<  The peer's disk was out-dated or inconsistent  >--+ | | |\n"
    "                                 -<   A fence policy other the dont-care was used  >--+ | |\n"
    "                  -<  Node was in the progress of marking all blocks as out of sync  >--+ |\n"
    "                     -<  At least once we saw this node with a backing device attached >--+\n"
    "\n"
)
_GI_LEGEND_84 = (
    "                                                                    ^ ^ ^ ^ ^ ^ ^\n"
    "                                      -<  Data consistency flag  >--+ | | | | | |\n"
    "                             -<  Data was/is currently up-to-date  >--+ | | | | |\n"
    "                                  -<  Node was/is currently primary  >--+ | | | |\n"
    "                                  -<  Node was/is currently connected  >--+ | | |\n"
    "         -<  Node was in the progress of setting all bits in the bitmap  >--+ | |\n"
    "                        -<  The peer's disk was out-dated or inconsistent  >--+ |\n"
    "      -<  This node was a crashed primary, and has not seen its peer since   >--+\n"
    "\n"
)


def gi_line(md: dict[str, Any], peer_id: int, ver: str) -> str:
    peer = md["peers"].get(str(peer_id), {})
    flags = md["flags"]
    uuids = [int(md["current"]), int(peer.get("bitmap", 0)), int(md["history"][0]), int(md["history"][1])]
    head = ":".join(f"{u:016X}" for u in uuids) + ":"
    if ver == "8.4":
        bits = [flags["consistent"], flags["was_uptodate"], flags["primary"], peer.get("connected"),
                peer.get("full_sync"), peer.get("outdated"), flags["crashed_primary"]]
    else:
        bits = [flags["consistent"], flags["was_uptodate"], flags["primary"], flags["crashed_primary"],
                flags["al_clean"], False, flags.get("primary_lost_quorum"), peer.get("connected"),
                peer.get("outdated"), peer.get("fencing"), peer.get("full_sync"), True]
    return head + ":".join("1" if bit else "0" for bit in bits)


def show_gi(md: dict[str, Any], peer_id: int, ver: str) -> str:
    return _GI_HEAD + gi_line(md, peer_id, ver) + "\n" + (_GI_LEGEND_84 if ver == "8.4" else _GI_LEGEND_9)


# --- dry-run command lines --------------------------------------------------------------------


def _setup(ver: str) -> str:
    return "/lib/drbd/drbdsetup-84" if ver == "8.4" else "drbdsetup"


def options_args(section: dict[str, str] | Any, skip: tuple[str, ...] = ()) -> list[str]:
    """``--key=value`` arguments in drbdadm's order (alphabetical, as in its dry runs)."""
    out = []
    for key, value in sorted(section.items()):
        if key in skip:
            continue
        out.append(f"--{key}" if value == "" else f"--{key}={value}")
    return out


def up_commands(config: ResourceConfig, node: str, ver: str) -> list[str]:
    host = config.require_host(node)
    setup = _setup(ver)
    meta = "v08" if ver == "8.4" else "v09"
    res_opts = " ".join(options_args(config.sections.get("options", {})))
    lines = [f"{setup} new-resource {config.name}" + ("" if ver == "8.4" else f" {host.node_id}")
             + (f" {res_opts}" if res_opts else "")]
    for v in host.volumes:
        lines.append(f"{setup} new-minor {config.name} {v.minor} {v.number}")
    peers = [h for h in config.hosts if h.name != node]
    net = dict(config.sections.get("net", {}))
    net.setdefault("protocol", "C")
    if ver != "8.4":
        for peer in peers:
            opts = " ".join([f"--_name={peer.name}", *options_args({"protocol": net["protocol"]}),
                             *options_args(net, ("protocol",))])
            lines.append(f"{setup} new-peer {config.name} {peer.node_id} {opts}")
            lines.append(f"{setup} new-path {config.name} {peer.node_id} "
                         f"{host.family}:{host.address}:{host.port} {peer.family}:{peer.address}:{peer.port}")
    disk_opts = " ".join(options_args(config.sections.get("disk", {})))
    for v in host.volumes:
        if v.disk is None:
            continue
        lines.append(f"drbdmeta {v.minor} {meta} {v.disk} {v.meta_disk} apply-al")
        lines.append(f"{setup} attach {v.minor} {v.disk} {v.disk} {v.meta_disk}"
                     + (f" {disk_opts}" if disk_opts else ""))
    for peer in peers:
        if ver == "8.4":
            opts = " ".join(options_args({"protocol": net["protocol"]}) + options_args(net, ("protocol",)))
            lines.append(f"{setup} connect {config.name} {host.family}:{host.address}:{host.port} "
                         f"{peer.family}:{peer.address}:{peer.port} {opts}")
        else:
            lines.append(f"{setup} connect {config.name} {peer.node_id}")
    return lines


def create_md_command(config: ResourceConfig, node: str, volume: int, ver: str) -> str:
    host = config.require_host(node)
    v = host.volume(volume)
    if v is None:
        raise ValueError(f"{config.name} has no volume {volume}")
    if ver == "8.4":
        return f"drbdmeta {v.minor} v08 {v.disk} {v.meta_disk} create-md"
    return f"drbdmeta {v.minor} v09 {v.disk} {v.meta_disk} create-md {max(1, len(config.hosts) - 1)}"


# --- drbdadm dump -----------------------------------------------------------------------------

_DUMP_SECTIONS = ("options", "net", "disk", "startup", "handlers")


def _dump_option(key: str, value: str) -> str:
    width = 18 if key == "protocol" else 16
    if value == "":
        return f"        {key};"
    return f"        {key:<{width}} {value};"


def dump_text(config: ResourceConfig, node: str, ver: str) -> str:
    """``drbdadm dump``: the resource as drbdadm understood it (node ids and minors filled in)."""
    source = config.source
    state = "not ignored" if config.host(node) is not None else "ignored"
    lines = [f"# {source}", f"# resource {config.name} on {node}: {state}, not stacked",
             f"# defined at {source}:{config.line}", f"resource {config.name} {{"]
    for host in config.hosts:
        lines.append(f"    on {host.name} {{")
        if ver != "8.4":
            lines.append(f"        node-id {host.node_id};")
        for volume in host.volumes:
            indent = "        "
            if len(host.volumes) > 1:
                lines.append(f"        volume {volume.number} {{")
                indent = "            "
            lines.append(f"{indent}{'device':<16} {volume.device} minor {volume.minor};")
            lines.append(f"{indent}{'disk':<16} {volume.disk or 'none'};")
            lines.append(f"{indent}{'meta-disk':<16} {volume.meta_disk};")
            if len(host.volumes) > 1:
                lines.append("        }")
        if host.address is not None:
            lines.append(f"        {'address':<16} {host.family} {host.address}:{host.port};")
        lines.append("    }")
    for section in _DUMP_SECTIONS:
        options = config.sections.get(section, {})
        if not options:
            continue
        lines.append(f"    {section} {{")
        for key, value in options.items():
            shown = f'"{value}"' if section == "handlers" else value
            lines.append(_dump_option(key, shown))
        lines.append("    }")
    lines.append("}")
    return "\n".join(lines) + "\n\n"


# --- drbdsetup show ---------------------------------------------------------------------------

# Options drbdsetup show leaves out because the kernel runs them at these values (it prints only what differs).
_NET_DEFAULTS = {"protocol": "C", "after-sb-0pri": "disconnect", "after-sb-1pri": "disconnect",
                 "after-sb-2pri": "disconnect", "allow-two-primaries": "no", "fencing": "dont-care"}


def _show_net(net: dict[str, str], indent: str) -> list[str]:
    lines = [f"{indent}net {{"]
    for key, value in sorted(net.items()):
        if _NET_DEFAULTS.get(key) != value:
            lines.append(f"{indent}    {key:<16}\t{value};")
    return [*lines, f"{indent}}}"]


def show_text(state: State, node: str, name: str | None = None) -> str:
    """``drbdsetup show [RES]``: the running configuration as the kernel reports it, in DRBD 9's layout (a net
    section per connection) or drbdsetup-84's (one per resource), only options away from their default."""
    ver = version(state, node)
    out: list[str] = []
    for res in _sorted_resources(state, node, name):
        config = m.config_of(res)
        net = {k: str(v) for k, v in dict(res["config"]["sections"].get("net", {})).items()}
        me = config.require_host(node)
        volumes = []
        for number, dev in sorted(res["devices"].items()):
            volumes += [f"        volume {number} {{", f"            device\t\t\tminor {dev['minor']};",
                        f"            disk\t\t\t\"{dev.get('backing') or 'none'}\";",
                        "            meta-disk\t\t\tinternal;", "        }"]
        if ver == "8.4":
            peer = next((h for h in config.hosts if h.name != node), None)
            out += [f"resource {config.name} {{", "    options {", "    }", *_show_net(net, "    ")]
            if peer is not None:
                out += ["    _remote_host {", f"        address\t\t\t{peer.family} {peer.address}:{peer.port};",
                        "    }"]
            out += ["    _this_host {", f"        address\t\t\t{me.family} {me.address}:{me.port};", *volumes,
                    "    }", "}", ""]
            continue
        out += [f'resource "{config.name}" {{', "    options {", "    }", "    _this_host {",
                f"        node-id\t\t\t{me.node_id};", *volumes, "    }"]
        for peer in (h for h in config.hosts if h.name != node):
            out += ["    connection {", f"        _peer_node_id {peer.node_id};", "        path {",
                    f"            _this_host {me.family} {me.address}:{me.port};",
                    f"            _remote_host {peer.family} {peer.address}:{peer.port};", "        }",
                    *_show_net({**net, "_name": f'"{peer.name}"'}, "        "), "    }"]
        out += ["}", ""]
    return "\n".join(out) + ("\n" if out else "")
