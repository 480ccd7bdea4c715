"""The DRBD state machine of the simulator, over the cluster state's plain data.

Runtime state (what vanishes at reboot) lives in ``state["nodes"][node]["drbd"]["resources"]``; the
on-disk metadata (generation identifiers, flags, per-peer bitmaps) lives in the content record of the
backing device under ``"drbd_md"``, and the sequence numbers of the writes a disk holds under
``"drbd_writes"`` (used by the data oracle). Every function here takes the whole cluster state and
changes it in place; :func:`settle` brings every connection in line with the facts (network, configs,
metadata) and is run after each command and each tick.

The rules follow DRBD's: a brand-new pair is Inconsistent on both sides until one side is forced
primary; the generation identifiers decide at each handshake who syncs from whom, or that the data
diverged (split brain) or is unrelated.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from reconciler.backends.drbd.splitbrain_markers import SplitBrainMarker, marker_path, marker_text
from reconciler.sim import device_index
from reconciler.sim import state as simstate
from reconciler.sim.drbd_config import ResourceConfig
from reconciler.sim.state import State
from reconciler.sim.store import unchanged

UUID_JUST_CREATED = 4
DEFAULT_RESYNC_RATE_KIB = 100 * 1024
WRITE_KIB = 4
# What a crashed primary resyncs from its activity log when it returns (64 extents of 4 MiB).
ACTIVITY_LOG_KIB = 64 * 4096

PRIMARY = "Primary"
SECONDARY = "Secondary"
DATA_DISK_STATES = ("UpToDate", "Consistent", "Outdated", "Inconsistent")

RoleListener = Callable[[State, str, str, str], None]
_role_listeners: list[RoleListener] = []


def register_role_listener(fn: RoleListener) -> RoleListener:
    """``fn(state, node, resource, role)`` is called after every role change (the oracle records them)."""
    if fn not in _role_listeners:
        _role_listeners.append(fn)
    return fn


DiscardListener = Callable[[State, str, str, str], None]
_discard_listeners: list[DiscardListener] = []


def register_discard_listener(fn: DiscardListener) -> DiscardListener:
    """``fn(state, node, resource, survivor)`` is called when a split brain is resolved by ``node``'s
    ``--discard-my-data``, before the resync replaces its data with the survivor's (the oracle records it)."""
    if fn not in _discard_listeners:
        _discard_listeners.append(fn)
    return fn


class StateChangeFailed(Exception):
    """A state change DRBD refuses; ``code`` is the kernel's (negative) return value."""

    MESSAGES = {
        -1: "Multiple primaries not allowed by config",
        -2: "Need access to UpToDate data",
        -6: "Refusing to be Outdated while Connected",
        -7: "Refusing to be Primary while peer is not outdated",
        -11: "Device is diskless, the requested operation requires a disk",
        -8: "Can not start OV/resync since it is already active",
        -12: "Device is held open by someone",
        -14: "Need a verify algorithm to start online verify",
        -15: "Need a connection to start verify or resync",
        -25: "No quorum",
    }

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(f"State change failed: ({code}) {self.MESSAGES.get(code, 'unknown error')}")


# --- where things live -----------------------------------------------------------------------


def node_drbd(state: State, node: str) -> dict[str, Any]:
    ns = simstate.node_state(state, node)
    found: dict[str, Any] | None = ns.get("drbd")
    if found is not None and "resources" in found:  # the usual case, without the tracked setdefault calls
        return found
    found = ns.setdefault("drbd", {})
    found.setdefault("resources", {})
    return found


def resources(state: State, node: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = node_drbd(state, node)["resources"]
    return found


def runtime(state: State, node: str, name: str) -> dict[str, Any] | None:
    return resources(state, node).get(name)


def require_runtime(state: State, node: str, name: str) -> dict[str, Any]:
    found = runtime(state, node, name)
    if found is None:
        raise KeyError(f"{name}: No such resource")
    return found


def settings(state: State, node: str) -> dict[str, Any]:
    """Per-node knobs: ``resync_rate_kib`` and ``fence_peer`` (auto, outdate, fail, unreachable,
    stonith: auto with a power fence for an unreachable peer, stonith-always: a power-off whatever the peer is)."""
    found: dict[str, Any] = node_drbd(state, node).setdefault("settings", {})
    return found


def config_of(res: dict[str, Any]) -> ResourceConfig:
    # Every status and event listing asks for the config of every resource: reuse what was built from a
    # config the store says is unchanged (keyed by the object, which is kept alive here with its config).
    data = res["config"]
    if not unchanged(data):
        return ResourceConfig.from_json(data)
    hit = _CONFIGS.get(id(data))
    if hit is not None and hit[0] is data:
        return hit[1]
    built = ResourceConfig.from_json(data)
    if len(_CONFIGS) > 8192:
        _CONFIGS.clear()
    _CONFIGS[id(data)] = (data, built)
    return built


_CONFIGS: dict[int, tuple[dict[str, Any], ResourceConfig]] = {}


def metadata(state: State, key: str | None) -> dict[str, Any] | None:
    if key is None:
        return None
    found = state.get("disks", {}).get(key, {}).get("drbd_md")
    return found if isinstance(found, dict) else None


def device_md(state: State, dev: dict[str, Any]) -> dict[str, Any] | None:
    return metadata(state, dev.get("key")) if dev.get("disk") != "Diskless" else None


def writes_of(state: State, key: str | None) -> list[list[int]]:
    if key is None:
        return []
    record = simstate.content(state, key)
    found: list[list[int]] = record.setdefault("drbd_writes", [])
    return found


def nodes_with(state: State, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for node in sorted(state["nodes"]):
        res = resources(state, node).get(name)
        if res is not None:
            yield node, res


def is_diskful(dev: dict[str, Any]) -> bool:
    return dev.get("disk") not in (None, "Diskless", "Attaching", "Failed")


# --- sequence-number sets (sorted, merged [first, last] ranges) --------------------------------


def add_range(ranges: list[list[int]], first: int, last: int) -> None:
    ranges.append([first, last])
    ranges.sort()
    merged: list[list[int]] = []
    for lo, hi in ranges:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    ranges[:] = merged


def missing_ranges(have: list[list[int]], want: list[list[int]]) -> list[list[int]]:
    """The parts of ``want`` not covered by ``have``."""
    out: list[list[int]] = []
    for lo, hi in want:
        cursor = lo
        for h_lo, h_hi in have:
            if h_hi < cursor or h_lo > hi:
                continue
            if h_lo > cursor:
                out.append([cursor, h_lo - 1])
            cursor = max(cursor, h_hi + 1)
            if cursor > hi:
                break
        if cursor <= hi:
            out.append([cursor, hi])
    return out


# --- metadata ---------------------------------------------------------------------------------


def new_uuid(state: State, node: str, salt: str) -> int:
    """A fresh data generation identifier (deterministic per state, never 0 or JUST_CREATED)."""
    drbd = node_drbd(state, node)
    counter = int(drbd.get("uuid_counter", 0)) + 1
    drbd["uuid_counter"] = counter
    digest = hashlib.sha256(f"{node}:{salt}:{counter}:{state.get('time', 0.0)}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") | 0x10) & ~1


def usable_kib(backing_bytes: int, peers: int) -> int:
    """Space left for data under internal metadata: 4 KiB superblock, 32 KiB activity log, bitmaps."""
    backing_kib = backing_bytes // 1024
    bitmap_kib = -(-backing_kib * max(peers, 1) // (32 * 1024))
    md_kib = 4 + 32 + -(-bitmap_kib // 4) * 4
    return max(0, (backing_kib - md_kib) // 4 * 4)


def new_metadata(config: ResourceConfig, node: str, backing_bytes: int, version: str) -> dict[str, Any]:
    host = config.host(node)
    peers = [h for h in config.hosts if h.name != node]
    return {
        "version": version,
        "resource": config.name,
        "node_id": host.node_id if host else 0,
        "max_peers": max(1, len(peers)),
        "size_kib": usable_kib(backing_bytes, len(peers)),
        "current": UUID_JUST_CREATED,
        "history": [0, 0],
        "flags": {"consistent": False, "was_uptodate": False, "primary": False, "crashed_primary": False,
                  "al_clean": True, "primary_lost_quorum": False},
        "peers": {str(h.node_id): {"bitmap": 0, "oos_kib": 0, "connected": False, "outdated": False,
                                   "fencing": False, "full_sync": False} for h in peers},
    }


def _md_peer(md: dict[str, Any], peer_id: int) -> dict[str, Any]:
    found: dict[str, Any] = md["peers"].setdefault(
        str(peer_id), {"bitmap": 0, "oos_kib": 0, "connected": False, "outdated": False, "fencing": False,
                       "full_sync": False})
    return found


def _push_history(md: dict[str, Any], uuid: int) -> None:
    if uuid and uuid != UUID_JUST_CREATED and uuid not in md["history"]:
        md["history"] = [uuid, md["history"][0]]


def new_data_generation(state: State, node: str, res: dict[str, Any]) -> None:
    """Start tracking changes against every peer that does not receive them (a new current UUID)."""
    for dev in res["devices"].values():
        md = device_md(state, dev)
        if md is None or md["current"] == UUID_JUST_CREATED:
            continue
        rotated = False
        for peer_name, conn in res["connections"].items():
            peer_md = _md_peer(md, conn["node_id"])
            if not _replicating(state, node, res, peer_name, dev) and peer_md["bitmap"] == 0:
                peer_md["bitmap"] = md["current"]
                rotated = True
        if rotated:
            md["current"] = new_uuid(state, node, res["name"])


def disk_state_from_md(md: dict[str, Any], config: ResourceConfig) -> str:
    flags = md["flags"]
    if not flags["consistent"]:
        return "Inconsistent"
    if not flags["was_uptodate"]:
        return "Outdated"
    peers_outdated = all(p.get("outdated") for p in md["peers"].values())
    if config.fencing == "dont-care" or peers_outdated:
        return "UpToDate"
    return "Consistent"


def set_disk(state: State, dev: dict[str, Any], disk: str) -> None:
    """Set a device's disk state and keep its metadata flags in step, as DRBD writes them."""
    dev["disk"] = disk
    md = metadata(state, dev.get("key"))
    if md is None or disk in ("Diskless", "Failed", "Attaching"):
        return
    flags = md["flags"]
    flags["consistent"] = disk in ("UpToDate", "Consistent", "Outdated")
    flags["was_uptodate"] = disk in ("UpToDate", "Consistent")


# --- bring-up and teardown ------------------------------------------------------------------------


def new_runtime(config: ResourceConfig, node: str) -> dict[str, Any]:
    host = config.require_host(node)
    return {
        "name": config.name,
        "node_id": host.node_id,
        "role": SECONDARY,
        "config": config.to_json(),
        "suspended": "",
        "quorum": True,
        "devices": {
            str(v.number): {"minor": v.minor, "backing": v.disk, "key": None, "disk": "Diskless", "size_kib": 0,
                            "read_kib": 0, "written_kib": 0}
            for v in host.volumes
        },
        "connections": {
            h.name: {"node_id": h.node_id, "conn": "Connecting", "discard_my_data": False, "split_brain": False,
                     "peer_devices": {str(v.number): {"repl": "Off", "oos_kib": 0, "total_kib": 0,
                                                      "received_kib": 0, "sent_kib": 0}
                                      for v in host.volumes}}
            for h in config.hosts if h.name != node
        },
    }


def attach(state: State, node: str, res: dict[str, Any], volume: str, key: str) -> None:
    """Attach a backing device whose metadata was found under ``key``."""
    dev = res["devices"][volume]
    md = metadata(state, key)
    if md is None:
        raise KeyError(f"no DRBD metadata under {key}")
    dev["key"] = key
    dev["size_kib"] = int(md["size_kib"])
    dev["disk"] = disk_state_from_md(md, config_of(res))
    md["flags"]["al_clean"] = False
    md["flags"]["primary"] = res["role"] == PRIMARY


def detach(state: State, node: str, res: dict[str, Any], volume: str, failed: bool = False) -> None:
    dev = res["devices"][volume]
    md = metadata(state, dev.get("key"))
    if md is not None and not failed:
        md["flags"]["al_clean"] = True
    dev["disk"] = "Diskless"
    dev["key"] = None


def device_open(state: State, node: str, minor: int) -> bool:
    """Whether ``/dev/drbdMINOR`` is in use on ``node``: by a running domain or a mount."""
    path = f"/dev/drbd{minor}"
    ns = simstate.node_state(state, node)
    for mount in ns.get("mounts", []):
        if mount.get("device") == path:
            return True
    opening = _opened_by_domains(ns)
    if opening is not None:
        return str(minor) in opening
    return any(_mentions(domain, path) for domain in ns.get("domains", {}).values())


def _domain_minors(domain: Any) -> list[str]:
    """The DRBD minors (as text) whose device one domain mentions, as :func:`device_open` compares."""
    found: set[str] = set()
    for text in _strings(domain):
        for match in _DRBD_PATH.finditer(text):
            if _mentions(text, match.group(0)):
                found.add(match.group(1))
    return sorted(found)


def _opened_by_domains(ns: dict[str, Any]) -> Mapping[str, int] | None:
    """Minor (text) -> how many of the node's domains mention its device; None when not indexed (a snapshot)."""
    domains = ns.get("domains")
    if not domains:
        return {}
    return device_index.holder_counts(domains, _domain_minors)


def open_minors(state: State, node: str) -> set[int]:
    """The minors for which :func:`device_open` is true, found in one pass over the node's mounts and domains."""
    ns = simstate.node_state(state, node)
    found: set[int] = set()
    for mount in ns.get("mounts", []):
        device = mount.get("device")
        if isinstance(device, str) and _DRBD_PATH.fullmatch(device):
            found.add(int(device[len("/dev/drbd"):]))
    opening = _opened_by_domains(ns)
    if opening is not None:
        found.update(int(minor) for minor in opening)
        return found
    for domain in ns.get("domains", {}).values():
        found.update(int(minor) for minor in _domain_minors(domain))
    return found


# The names device_open compares with: ASCII digits (\d would take other scripts' digits too), no leading zero.
_DRBD_PATH = re.compile(r"/dev/drbd(0|[1-9][0-9]*)(?![0-9])")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if "/dev/drbd" in value:
            yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


def _mentions(value: Any, path: str) -> bool:
    if isinstance(value, str):
        return value == path or value.startswith(path + ",") or f":{path}," in value or value.endswith(":" + path)
    if isinstance(value, dict):
        return any(_mentions(v, path) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, path) for v in value)
    return False


def resource_open(state: State, node: str, res: dict[str, Any]) -> bool:
    return any(device_open(state, node, int(dev["minor"])) for dev in res["devices"].values())


def down(state: State, node: str, name: str) -> None:
    res = runtime(state, node, name)
    if res is None:
        return
    if resource_open(state, node, res):
        raise StateChangeFailed(-12)
    if res["role"] == PRIMARY:
        set_role(state, node, res, SECONDARY)
    for peer in list(res["connections"]):
        disconnect(state, node, name, peer, graceful=True)
    for volume in res["devices"]:
        detach(state, node, res, volume)
    del resources(state, node)[name]


def drop_runtime(state: State, node: str) -> None:
    """A crash: the runtime vanishes without any goodbye; metadata keeps what was last written."""
    for name, res in list(resources(state, node).items()):
        for dev in res["devices"].values():
            md = metadata(state, dev.get("key"))
            if md is not None and res["role"] == PRIMARY:
                md["flags"]["crashed_primary"] = True
        if res["role"] == PRIMARY:
            for listener in tuple(_role_listeners):
                listener(state, node, name, SECONDARY)
    node_drbd(state, node)["resources"] = {}


def _helper(state: State, node: str, res: dict[str, Any], peer: str, *, helper: str, status: int,
            volume: str | None = None) -> None:
    """A user-mode helper run, as events2 reports it (``call helper`` then ``response helper``)."""
    conn = res["connections"][peer]
    ident = f"name:{res['name']} peer-node-id:{conn['node_id']} conn-name:{peer}"
    if volume is not None:
        ident += f" volume:{volume}"
    pending: list[str] = node_drbd(state, node).setdefault("helper_events", [])
    pending.append(f"call helper {ident} helper:{helper}")
    pending.append(f"response helper {ident} helper:{helper} status:{status}")


def _run_split_brain_handler(state: State, node: str, res: dict[str, Any], peer: str, volume: str) -> None:
    """What the configured ``split-brain`` handler does when it is the reconciler's: it records the incident
    (resource, peer, time, this node's generation identifiers) where the reconciler's observer reads it."""
    handler = config_of(res).split_brain_handler
    if handler is None or not handler.endswith("reconciler split-brain"):
        return
    md = device_md(state, res["devices"][volume])
    peer_md = md["peers"].get(str(res["connections"][peer]["node_id"]), {}) if md is not None else {}
    generation = "" if md is None else ":".join(
        f"{int(u):016X}" for u in (md["current"], peer_md.get("bitmap", 0), *md["history"][:2]))
    marker = SplitBrainMarker(resource=res["name"], peer=peer, detected_at=float(state.get("time", 0.0)),
                              generation=generation)
    simstate.node_state(state, node)["files"][marker_path(res["name"])] = {"content": marker_text(marker),
                                                                           "mode": 0o640}


# --- roles ------------------------------------------------------------------------------------


def set_role(state: State, node: str, res: dict[str, Any], role: str) -> None:
    if res["role"] == role:
        return
    res["role"] = role
    for dev in res["devices"].values():
        md = device_md(state, dev)
        if md is not None:
            md["flags"]["primary"] = role == PRIMARY
            if role != PRIMARY:
                md["flags"]["crashed_primary"] = False
    for listener in tuple(_role_listeners):
        listener(state, node, res["name"], role)


def connected_peers(state: State, node: str, res: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for peer, conn in res["connections"].items():
        if conn["conn"] == "Connected":
            peer_res = runtime(state, peer, res["name"])
            if peer_res is not None:
                yield peer, peer_res


def has_uptodate_access(state: State, node: str, res: dict[str, Any]) -> bool:
    for dev in res["devices"].values():
        if dev["disk"] == "UpToDate":
            continue
        volume = next(k for k, v in res["devices"].items() if v is dev)
        peers = connected_peers(state, node, res)
        if not any(p["devices"].get(volume, {}).get("disk") == "UpToDate" for _, p in peers):
            return False
    return True


def primary(state: State, node: str, name: str, force: bool = False) -> list[str]:
    """Promote; returns the lines DRBD would log (fence-peer outcome). Raises StateChangeFailed, after
    logging what the fence-peer handler answered: the kernel logs that whether or not the promotion succeeds."""
    log: list[str] = []
    try:
        return _primary(state, node, name, force, log)
    except StateChangeFailed:
        node_drbd(state, node).setdefault("log", []).extend(log)
        raise


def _primary(state: State, node: str, name: str, force: bool, log: list[str]) -> list[str]:
    res = require_runtime(state, node, name)
    if res["role"] == PRIMARY:
        return []
    config = config_of(res)
    if not config.allow_two_primaries and any(p["role"] == PRIMARY for _, p in connected_peers(state, node, res)):
        raise StateChangeFailed(-1)
    if not res.get("quorum", True) and not force:
        raise StateChangeFailed(-25)
    if not has_uptodate_access(state, node, res):
        has_data = all(dev["disk"] in DATA_DISK_STATES for dev in res["devices"].values())
        consistent = all(dev["disk"] == "Consistent" for dev in res["devices"].values())
        if consistent and config.fencing != "dont-care":
            log += _fence_all(state, node, res)
        if not has_uptodate_access(state, node, res):
            if not (force and has_data):
                raise StateChangeFailed(-2)
            _force_uptodate(state, node, res)
            log.append(f"{name}: forced into UpToDate by primary --force")
    elif config.fencing != "dont-care":
        unfenced = [p for p, c in res["connections"].items() if c["conn"] != "Connected"
                    and not _peer_known_outdated(state, res, c["node_id"])]
        if unfenced:
            log += _fence_all(state, node, res)
            if any(dev["disk"] != "UpToDate" for dev in res["devices"].values()):
                raise StateChangeFailed(-2)
            still = [p for p in unfenced if not _peer_known_outdated(state, res, res["connections"][p]["node_id"])]
            if still and not force:
                raise StateChangeFailed(-7)
            for peer in still:
                # drbd_set_role(): a failed fence with --force promotes anyway and takes the peer for Outdated.
                log.append(f"{name}: Forced into split brain situation!")
                _mark_peer_outdated(state, res, res["connections"][peer]["node_id"])
    set_role(state, node, res, PRIMARY)
    new_data_generation(state, node, res)
    return log


def _peer_known_outdated(state: State, res: dict[str, Any], peer_id: int) -> bool:
    for dev in res["devices"].values():
        md = device_md(state, dev)
        if md is None or not _md_peer(md, peer_id).get("outdated"):
            return False
    return True


def _force_uptodate(state: State, node: str, res: dict[str, Any]) -> None:
    for dev in res["devices"].values():
        md = device_md(state, dev)
        if md is None:
            continue
        # Forcing only declares the data good. A disk with history keeps its generation: the new current UUID
        # comes from becoming Primary without the peer (new_data_generation), with the old one as the bitmap
        # UUID, as on a real node; so a forced promotion during a partition meets the other side's writes as
        # a split brain on reconnect, not as a sync in either direction.
        if md["current"] == UUID_JUST_CREATED:
            md["current"] = new_uuid(state, node, f"{res['name']}:force")
        set_disk(state, dev, "UpToDate")
    # A forced primary with a connected Inconsistent peer starts a full sync towards it.
    for peer, peer_res in connected_peers(state, node, res):
        for volume, dev in res["devices"].items():
            peer_dev = peer_res["devices"].get(volume)
            if peer_dev is not None and peer_dev["disk"] in ("Inconsistent", "Outdated", "Consistent"):
                md = device_md(state, dev)
                size = int(dev["size_kib"])
                if md is not None:
                    _md_peer(md, peer_res["node_id"])["oos_kib"] = size
                _start_sync(state, node, res, peer, peer_res, volume=volume, amount_kib=size)


def secondary(state: State, node: str, name: str, *, force: bool = False) -> None:
    """``force`` (DRBD 9.1.7's ``secondary --force``): demote although the device is open; its openers get I/O
    errors from then on."""
    res = require_runtime(state, node, name)
    if res["role"] != PRIMARY:
        return
    if resource_open(state, node, res) and not force:
        raise StateChangeFailed(-12)
    set_role(state, node, res, SECONDARY)


def outdate(state: State, node: str, name: str) -> None:
    res = require_runtime(state, node, name)
    if any(c["conn"] == "Connected" for c in res["connections"].values()):
        raise StateChangeFailed(-6)
    if res["role"] == PRIMARY:
        raise StateChangeFailed(-2)
    for dev in res["devices"].values():
        if dev["disk"] in ("UpToDate", "Consistent"):
            set_disk(state, dev, "Outdated")
        elif dev["disk"] == "Diskless":
            raise StateChangeFailed(-11)


def invalidate(state: State, node: str, name: str) -> None:
    """Throw the local data away: a full resync from a connected UpToDate peer, else just Inconsistent."""
    res = require_runtime(state, node, name)
    for volume, dev in res["devices"].items():
        if not is_diskful(dev):
            raise StateChangeFailed(-11)
        source = next(((peer, peer_res) for peer, peer_res in connected_peers(state, node, res)
                       if peer_res["devices"].get(volume, {}).get("disk") == "UpToDate"), None)
        if source is None:
            set_disk(state, dev, "Inconsistent")
            continue
        peer, peer_res = source
        _start_sync(state, peer, peer_res, node, res, volume=volume, amount_kib=int(dev["size_kib"]))


# --- fencing ----------------------------------------------------------------------------------

FENCE_EXIT_MEANING = {
    3: "peer is inconsistent or worse",
    4: "peer was fenced",
    5: "peer is unreachable, assumed to be dead",
    6: "peer is active",
    7: "peer was stonithed",
}


def _fence_all(state: State, node: str, res: dict[str, Any]) -> list[str]:
    config = config_of(res)
    log: list[str] = []
    for peer, conn in res["connections"].items():
        if conn["conn"] == "Connected" or _peer_known_outdated(state, res, conn["node_id"]):
            continue
        handler = config.fence_peer_handler
        if handler is None:
            log.append(f"{res['name']}: fence-peer helper not configured")
            continue
        code = fence_peer_exit(state, node, res["name"], peer)
        _helper(state, node, res, peer, helper="fence-peer", status=code)
        meaning = FENCE_EXIT_MEANING.get(code, f"fence-peer helper broken, returned {code}")
        log.append(f"{res['name']}: helper command: /sbin/drbdadm fence-peer {res['name']} "
                   f"exit code {code} ({meaning})")
        if code == 5 and any(dev["disk"] != "UpToDate" for dev in res["devices"].values()):
            # "peer unreachable, doing nothing since disk != UpToDate" (drbd_nl.c, conn_try_outdate_peer)
            log[-1] = log[-1].replace(FENCE_EXIT_MEANING[5], "peer unreachable, doing nothing since disk != UpToDate")
        elif code in (3, 4, 5, 7):
            _mark_peer_outdated(state, res, conn["node_id"])
            if code == 4:
                _outdate_remote(state, peer, res["name"])
            for dev in res["devices"].values():
                if dev["disk"] == "Consistent":
                    set_disk(state, dev, "UpToDate")
        elif code == 6:
            for dev in res["devices"].values():
                if dev["disk"] in ("UpToDate", "Consistent"):
                    set_disk(state, dev, "Outdated")
    return log


def fence_peer_exit(state: State, node: str, name: str, peer: str) -> int:
    """The exit code the configured fence-peer handler returns, per the node's ``fence_peer`` setting."""
    mode = str(settings(state, node).get("fence_peer", "auto"))
    fixed = {"outdate": 4, "unreachable": 5, "fail": 1}
    if mode in fixed:
        return fixed[mode]
    reachable = simstate.can_talk(state, node, peer, link="management_cut")
    if mode == "stonith-always":
        # A handler that powers the peer off whatever it finds (to show what DRBD makes of exit 7).
        _power_off(state, peer)
        return 7
    if not reachable:
        if mode == "stonith" and _local_uptodate(state, node, name):
            # reconciler fence-peer with a power fence under resource-and-stonith: an unreachable peer is
            # powered off, and the off state is what counts; never for a disk that may lack its last writes.
            _power_off(state, peer)
            return 7
        return 1  # reconciler fence-peer never answers 5: unreachable proves nothing about the peer's writes
    peer_res = runtime(state, peer, name)
    if peer_res is not None and peer_res["role"] == PRIMARY:
        return 4 if _peer_gives_way(state, node, peer, name, peer_res) else 6
    return 4


def _peer_gives_way(state: State, node: str, peer: str, name: str, peer_res: dict[str, Any]) -> bool:
    """reconciler fence-peer's peer inside a live migration's window (its runtime allow-two-primaries): it demotes
    unless its device is open (a domain, ``NAME--incoming`` or ``NAME--migratedaway`` holds it: DRBD refuses,
    "Device is held open by someone"), so that the node running the domain keeps its disk."""
    if not config_of(peer_res).allow_two_primaries:
        return False
    conn = peer_res["connections"].get(node)
    if conn is not None and conn["conn"] == "Connected":
        # The handler asks again until the peer has noticed the cut: the peer loses the link first, as a Primary
        # (a new data generation, its own handler run against this node).
        _lose(state, peer, peer_res, node, None, fence=True)
    if peer_res["role"] != PRIMARY:
        return True
    if resource_open(state, peer, peer_res):
        return False
    set_role(state, peer, peer_res, SECONDARY)
    return True


_power_off_hooks: list[Callable[[State, str], None]] = []


def _power_off(state: State, peer: str) -> None:
    if simstate.node_state(state, peer).get("up"):
        for hook in _power_off_hooks:
            hook(state, peer)


def _local_uptodate(state: State, node: str, name: str) -> bool:
    res = runtime(state, node, name)
    return res is not None and bool(res["devices"]) and all(d["disk"] == "UpToDate" for d in res["devices"].values())


def register_power_off(hook: Callable[[State, str], None]) -> None:
    """How a node loses power (the fault module's crash), without this module importing it."""
    _power_off_hooks.append(hook)


def _mark_peer_outdated(state: State, res: dict[str, Any], peer_id: int) -> None:
    for dev in res["devices"].values():
        md = device_md(state, dev)
        if md is not None:
            _md_peer(md, peer_id)["outdated"] = True


def _outdate_remote(state: State, peer: str, name: str) -> None:
    """The side channel reached the peer: its disk (runtime and metadata) becomes Outdated."""
    peer_res = runtime(state, peer, name)
    if peer_res is not None:
        for dev in peer_res["devices"].values():
            if dev["disk"] in ("UpToDate", "Consistent"):
                set_disk(state, dev, "Outdated")
        return
    for key, record in state.get("disks", {}).items():
        md = record.get("drbd_md")
        if isinstance(md, dict) and md.get("resource") == name and key in _node_keys(state, peer, name):
            md["flags"]["was_uptodate"] = False


def _node_keys(state: State, node: str, name: str) -> set[str]:
    found = node_drbd(state, node).get("last_keys", {}).get(name, [])
    return {str(k) for k in found}


# --- connections ------------------------------------------------------------------------------


def connect(state: State, node: str, name: str, peer: str | None = None, discard_my_data: bool = False) -> None:
    res = require_runtime(state, node, name)
    for peer_name, conn in res["connections"].items():
        if peer is not None and peer_name != peer:
            continue
        if conn["conn"] == "StandAlone":
            conn["conn"] = "Connecting"
            conn["split_brain"] = False
        conn["discard_my_data"] = discard_my_data


def disconnect(state: State, node: str, name: str, peer: str | None = None, graceful: bool = True) -> None:
    res = require_runtime(state, node, name)
    for peer_name, conn in res["connections"].items():
        if peer is not None and peer_name != peer:
            continue
        if conn["conn"] == "Connected":
            peer_res = runtime(state, peer_name, name)
            if graceful and peer_res is not None and res["role"] == SECONDARY and peer_res["role"] == PRIMARY:
                # A secondary leaving a primary on purpose outdates itself, and the primary knows it.
                for dev in res["devices"].values():
                    if dev["disk"] in ("UpToDate", "Consistent"):
                        set_disk(state, dev, "Outdated")
                _mark_peer_outdated(state, peer_res, res["node_id"])
            _lose(state, node, res, peer_name, "StandAlone", fence=False)
            if peer_res is not None:
                _lose(state, peer_name, peer_res, node, None, fence=False)
        else:
            conn["conn"] = "StandAlone"


def _lose(state: State, node: str, res: dict[str, Any], peer: str, new_conn: str | None, *, fence: bool) -> None:
    """One side loses its connection to ``peer`` (network cut, peer down or disconnect)."""
    conn = res["connections"][peer]
    was_connected = conn["conn"] == "Connected"
    conn["conn"] = new_conn or ("StandAlone" if conn["conn"] == "StandAlone" else "Connecting")
    if not was_connected:
        return
    for volume, pd in conn["peer_devices"].items():
        dev = res["devices"].get(volume)
        md = device_md(state, dev) if dev is not None else None
        lost = sum(last - first + 1 for first, last in pd.pop("in_flight", []) or [])
        if lost and md is not None and dev is not None:
            peer_md = _md_peer(md, conn["node_id"])
            peer_md["oos_kib"] = min(int(dev["size_kib"]), int(peer_md["oos_kib"]) + lost * WRITE_KIB)
        if pd["repl"] == "SyncTarget" and dev is not None:
            set_disk(state, dev, "Inconsistent")
        if md is not None:
            peer_md = _md_peer(md, conn["node_id"])
            peer_md["connected"] = False
            if pd["repl"] == "SyncSource":
                peer_md["oos_kib"] = max(int(peer_md["oos_kib"]), int(pd["oos_kib"]))
        pd["repl"] = "Off"
        pd["oos_kib"] = 0
        pd["total_kib"] = 0
        stop_verify_on_loss(pd)
    if res["role"] == PRIMARY:
        # DRBD 9.0.20+: "check if we still have quorum by exchanging a drbd-ping with peers before creating new
        # current UUID after loosing one peer" (LINBIT/drbd, CHANGELOG): a Primary that lost quorum cannot write,
        # so it starts no new data generation and later rejoins as a plain resync target, not a split brain.
        if _quorum_after_ping(state, node, res):
            new_data_generation(state, node, res)
        config = config_of(res)
        if fence and config.fencing != "dont-care":
            log = _fence_all(state, node, res)
            node_drbd(state, node).setdefault("log", []).extend(log)
            if config.fencing == "resource-and-stonith" and not _peer_known_outdated(state, res, conn["node_id"]):
                res["suspended"] = "fencing"


def _compatible(a: ResourceConfig, b: ResourceConfig, node_a: str, node_b: str) -> bool:
    ha, hb = a.host(node_a), b.host(node_b)
    pa, pb = a.host(node_b), b.host(node_a)
    if ha is None or hb is None or pa is None or pb is None:
        return False
    if (pa.address, pa.port) != (hb.address, hb.port) or (pb.address, pb.port) != (ha.address, ha.port):
        return False
    # DRBD refuses a peer whose protocol settings differ (allow-two-primaries among them: "incompatible
    # allow-two-primaries settings"), so a window left open on one side keeps the pair apart until it is closed.
    return (a.protocol == b.protocol and a.allow_two_primaries == b.allow_two_primaries
            and pa.node_id == hb.node_id and pb.node_id == ha.node_id)


def _replicating(state: State, node: str, res: dict[str, Any], peer: str, dev: dict[str, Any]) -> bool:
    """Whether writes on ``node`` reach ``peer``'s disk for this device right now."""
    conn = res["connections"].get(peer)
    if conn is None or conn["conn"] != "Connected":
        return False
    peer_res = runtime(state, peer, res["name"])
    volume = next((k for k, v in res["devices"].items() if v is dev), None)
    if peer_res is None or volume is None:
        return False
    peer_dev = peer_res["devices"].get(volume)
    return peer_dev is not None and is_diskful(peer_dev)


def uuid_compare(a: dict[str, Any], b: dict[str, Any], a_id: int, b_id: int) -> int:
    """DRBD's handshake verdict: >0 ``a`` is sync source, <0 target, 0 no sync, +-2 full sync,
    100 split brain, -1000 unrelated data."""
    ca, cb = int(a["current"]) & ~1, int(b["current"]) & ~1
    if ca == UUID_JUST_CREATED and cb == UUID_JUST_CREATED:
        return 0
    if ca == UUID_JUST_CREATED:
        return -2
    if cb == UUID_JUST_CREATED:
        return 2
    bm_a = int(_md_peer(a, b_id)["bitmap"]) & ~1
    bm_b = int(_md_peer(b, a_id)["bitmap"]) & ~1
    if ca == cb:
        return 0
    if bm_a and bm_b and bm_a == bm_b:
        return 100
    if bm_a and bm_a == cb:
        return 1
    if bm_b and bm_b == ca:
        return -1
    if cb in a["history"] or (bm_a and bm_a in b["history"]):
        return 2
    if ca in b["history"] or (bm_b and bm_b in a["history"]):
        return -2
    return -1000


def _handshake(state: State, a: str, ra: dict[str, Any], b: str, rb: dict[str, Any]) -> None:
    ca, cb = ra["connections"][b], rb["connections"][a]
    log = node_drbd(state, a).setdefault("log", [])
    verdicts: dict[str, int] = {}
    for volume, dev_a in ra["devices"].items():
        dev_b = rb["devices"].get(volume)
        md_a, md_b = device_md(state, dev_a), (device_md(state, dev_b) if dev_b else None)
        if md_a is None or md_b is None:
            verdicts[volume] = 0
            continue
        verdict = uuid_compare(md_a, md_b, ra["node_id"], rb["node_id"])
        if verdict == 0 and dev_a["disk"] == "Inconsistent" and dev_b is not None and dev_b["disk"] in (
                "UpToDate", "Consistent", "Outdated") and md_a["current"] != UUID_JUST_CREATED:
            verdict = -1
        elif verdict == 0 and dev_b is not None and dev_b["disk"] == "Inconsistent" and dev_a["disk"] in (
                "UpToDate", "Consistent", "Outdated") and md_b["current"] != UUID_JUST_CREATED:
            verdict = 1
        if verdict == 0 and dev_b is not None and is_diskful(dev_a) and is_diskful(dev_b):
            verdict = _after_crash(md_a, md_b, ra["node_id"], rb["node_id"], int(dev_a["size_kib"]))
        verdicts[volume] = verdict
    if any(v == -1000 for v in verdicts.values()):
        log.append(f"{ra['name']}: Unrelated data, aborting!")
        ca["conn"] = cb["conn"] = "StandAlone"
        return
    if any(abs(v) == 100 for v in verdicts.values()):
        # An operator's --discard-my-data on exactly one side, a Secondary, settles it: that side becomes
        # SyncTarget (DRBD: "Split-Brain detected, manually solved. Sync from peer node").
        if ca["discard_my_data"] and not cb["discard_my_data"] and ra["role"] != PRIMARY:
            verdicts = {k: (-1 if abs(v) == 100 else v) for k, v in verdicts.items()}
            _solved_manually(state, discarding=(a, ra), survivor=(b, rb))
        elif cb["discard_my_data"] and not ca["discard_my_data"] and rb["role"] != PRIMARY:
            verdicts = {k: (1 if abs(v) == 100 else v) for k, v in verdicts.items()}
            _solved_manually(state, discarding=(b, rb), survivor=(a, ra))
        else:
            for node, res, peer in ((a, ra, b), (b, rb, a)):
                node_drbd(state, node).setdefault("log", []).append(
                    f"{res['name']}: Split-Brain detected but unresolved, dropping connection!")
                for volume, verdict in verdicts.items():
                    if abs(verdict) == 100:
                        _helper(state, node, res, peer, helper="split-brain", status=0, volume=volume)
                        _run_split_brain_handler(state, node, res, peer, volume)
            ca["conn"] = cb["conn"] = "StandAlone"
            ca["split_brain"] = cb["split_brain"] = True
            return
    if (any(v < 0 for v in verdicts.values()) and ra["role"] == PRIMARY) or (
            any(v > 0 for v in verdicts.values()) and rb["role"] == PRIMARY):
        log.append(f"{ra['name']}: I shall become SyncTarget, but I am primary!")
        ca["conn"] = cb["conn"] = "StandAlone"
        return
    if ra["role"] == PRIMARY and rb["role"] == PRIMARY and not config_of(ra).allow_two_primaries:
        ca["conn"] = cb["conn"] = "StandAlone"
        return
    ca["conn"] = cb["conn"] = "Connected"
    ca["discard_my_data"] = cb["discard_my_data"] = False
    ca["split_brain"] = cb["split_brain"] = False
    for volume, verdict in verdicts.items():
        dev_a, dev_b = ra["devices"][volume], rb["devices"].get(volume)
        if dev_b is None:
            continue
        pa, pb = ca["peer_devices"][volume], cb["peer_devices"][volume]
        pa["repl"] = pb["repl"] = "Established"
        md_a, md_b = device_md(state, dev_a), device_md(state, dev_b)
        for md, peer_id in ((md_a, rb["node_id"]), (md_b, ra["node_id"])):
            if md is not None:
                _md_peer(md, peer_id)["connected"] = True
        if md_a is None or md_b is None:
            continue
        if verdict > 0:
            _start_sync(state, a, ra, b, rb, volume=volume,
                        amount_kib=_sync_amount(md_a, rb["node_id"], dev_a, abs(verdict) == 2))
        elif verdict < 0:
            _start_sync(state, b, rb, a, ra, volume=volume,
                        amount_kib=_sync_amount(md_b, ra["node_id"], dev_b, abs(verdict) == 2))
        else:
            _equalize(state, dev_a, dev_b, md_a, md_b, a_id=ra["node_id"], b_id=rb["node_id"])


def _solved_manually(state: State, *, discarding: tuple[str, dict[str, Any]],
                     survivor: tuple[str, dict[str, Any]]) -> None:
    (node, res), (peer, _peer_res) = discarding, survivor
    node_drbd(state, node).setdefault("log", []).append(
        f"{res['name']}: Split-Brain detected, manually solved. Sync from peer node")
    node_drbd(state, peer).setdefault("log", []).append(
        f"{res['name']}: Split-Brain detected, manually solved. Sync from this node")
    for listener in tuple(_discard_listeners):
        listener(state, node, res["name"], peer)


def _after_crash(md_a: dict[str, Any], md_b: dict[str, Any], a_id: int, b_id: int, size_kib: int) -> int:
    """Same generation, but a primary crashed: the extents of its activity log are resynced from it."""
    for md, peer_id, verdict in ((md_a, b_id, 1), (md_b, a_id, -1)):
        if md["flags"].get("crashed_primary") and md["current"] != UUID_JUST_CREATED:
            peer = _md_peer(md, peer_id)
            peer["oos_kib"] = max(int(peer["oos_kib"]), min(size_kib, ACTIVITY_LOG_KIB))
            return verdict
    return 0


def _sync_amount(md: dict[str, Any], peer_id: int, dev: dict[str, Any], full: bool) -> int:
    size = int(dev["size_kib"])
    if full:
        return size
    return min(size, int(_md_peer(md, peer_id)["oos_kib"]))


def _equalize(state: State, dev_a: dict[str, Any], dev_b: dict[str, Any], md_a: dict[str, Any],
              md_b: dict[str, Any], *, a_id: int, b_id: int) -> None:
    """Same data generation on both sides: the better disk state wins, nothing is copied."""
    good = ("UpToDate", "Consistent", "Outdated")
    if dev_a["disk"] in good and dev_b["disk"] in good and (
            "UpToDate" in (dev_a["disk"], dev_b["disk"]) or "Consistent" in (dev_a["disk"], dev_b["disk"])):
        set_disk(state, dev_a, "UpToDate")
        set_disk(state, dev_b, "UpToDate")
    for md, peer_id in ((md_a, b_id), (md_b, a_id)):
        peer = _md_peer(md, peer_id)
        if md["current"] != UUID_JUST_CREATED:
            peer["outdated"] = False
        peer["oos_kib"] = 0
        if peer["bitmap"]:
            _push_history(md, int(peer["bitmap"]))
            peer["bitmap"] = 0


def _start_sync(state: State, source: str, rs: dict[str, Any], target: str, rt: dict[str, Any], *, volume: str,
                amount_kib: int) -> None:
    ps = rs["connections"][target]["peer_devices"][volume]
    pt = rt["connections"][source]["peer_devices"][volume]
    dev_t = rt["devices"][volume]
    ps["repl"], pt["repl"] = "SyncSource", "SyncTarget"
    ps["oos_kib"] = pt["oos_kib"] = amount_kib
    ps["total_kib"] = pt["total_kib"] = max(amount_kib, 1)
    set_disk(state, dev_t, "Inconsistent")
    rs_dev = rs["devices"][volume]
    if rs_dev["disk"] == "Consistent":
        set_disk(state, rs_dev, "UpToDate")
    if amount_kib == 0:
        _finish_sync(state, source, rs, target, rt, volume=volume)


def _finish_sync(state: State, source: str, rs: dict[str, Any], target: str, rt: dict[str, Any], *,
                 volume: str) -> None:
    ps = rs["connections"][target]["peer_devices"][volume]
    pt = rt["connections"][source]["peer_devices"][volume]
    ps["repl"] = pt["repl"] = "Established"
    ps["oos_kib"] = pt["oos_kib"] = 0
    ps["total_kib"] = pt["total_kib"] = 0
    dev_s, dev_t = rs["devices"][volume], rt["devices"][volume]
    md_s, md_t = device_md(state, dev_s), device_md(state, dev_t)
    if md_s is None or md_t is None:
        return
    _push_history(md_t, int(md_t["current"]))
    md_t["current"] = md_s["current"]
    md_t["history"] = list(md_s["history"])
    set_disk(state, dev_t, "UpToDate")
    md_s["flags"]["crashed_primary"] = md_t["flags"]["crashed_primary"] = False
    for md, peer_id in ((md_s, rt["node_id"]), (md_t, rs["node_id"])):
        peer = _md_peer(md, peer_id)
        if peer["bitmap"]:
            _push_history(md, int(peer["bitmap"]))
        peer.update({"bitmap": 0, "oos_kib": 0, "outdated": False, "full_sync": False})
    # The target now holds exactly what the source holds.
    writes_of(state, dev_t["key"])[:] = [list(r) for r in writes_of(state, dev_s["key"])]
    _copy_signature(state, dev_s, dev_t)


# --- the global step --------------------------------------------------------------------------


def settle(state: State, only: Collection[str] | None = None) -> None:
    """Bring connections, quorum and failed disks in line with the current facts: of every resource, or of the
    resources ``only`` (each resource settles on its own, so a command on one need not settle the others; they
    settle when a command or a read looks at them, or at the next tick)."""
    for node in sorted(state["nodes"]):
        found = resources(state, node)
        for name in (found if only is None else [n for n in only if n in found]):
            res = found[name]
            _check_disks(state, node, res)
            keys = node_drbd(state, node).setdefault("last_keys", {})
            now = sorted(str(d["key"]) for d in res["devices"].values() if d.get("key"))
            if keys.get(name) != now:  # an equal list put back would still mark its row for saving
                keys[name] = now
    names = sorted({name for node in state["nodes"] for name in resources(state, node)} if only is None else
                   {name for node in state["nodes"] for name in only if name in resources(state, node)})
    for name in names:
        holders = list(nodes_with(state, name))
        for a, ra in holders:
            for peer, conn in ra["connections"].items():
                rb = runtime(state, peer, name)
                if conn["conn"] != "Connected":
                    continue
                if (rb is None or not simstate.can_talk(state, a, peer)
                        or rb["connections"].get(a, {}).get("conn") != "Connected"):
                    _lose(state, a, ra, peer, None, fence=True)
        for a, ra in holders:
            for peer, conn in ra["connections"].items():
                rb = runtime(state, peer, name)
                if rb is None or a > peer or conn["conn"] != "Connecting":
                    continue
                if rb["connections"].get(a, {}).get("conn") != "Connecting":
                    continue
                if not simstate.can_talk(state, a, peer):
                    continue
                if not _compatible(config_of(ra), config_of(rb), a, peer):
                    continue
                _handshake(state, a, ra, peer, rb)
        for a, ra in holders:
            _update_quorum(state, a, ra)
            _release_fencing_freeze(state, ra)
        _outdate_weakly_connected(state, name, holders)
        replicate_signatures(state, name)


def _outdate_weakly_connected(state: State, name: str, holders: list[tuple[str, dict[str, Any]]]) -> None:
    """DRBD 9: a Secondary that lost its connection to a Primary but still reaches a node connected to that
    Primary is "weakly connected": it knows the Primary writes on without it and marks its disk Outdated
    (LINBIT/drbd 9.0.13: "fix outdating of weakly connected nodes"). This is what keeps the data node on the
    far side of a cut data link, which still sees the tiebreaker (and with it quorum), from being promoted."""
    roles = dict(holders)
    primaries = [node for node, res in holders if res["role"] == PRIMARY]
    for node, res in holders:
        if res["role"] == PRIMARY or simstate.node_state(state, node).get("drbd_version") == "8.4":
            continue
        for primary in primaries:
            if res["connections"].get(primary, {}).get("conn") == "Connected":
                continue
            relayed = any(conn["conn"] == "Connected" and other in roles
                          and roles[other]["connections"].get(primary, {}).get("conn") == "Connected"
                          for other, conn in res["connections"].items() if other != primary)
            if relayed:
                for dev in res["devices"].values():
                    if dev["disk"] in ("UpToDate", "Consistent"):
                        set_disk(state, dev, "Outdated")


def deliver_in_flight(state: State) -> None:
    """Writes sent under protocol A or B reach the peer's disk one tick after they were acknowledged."""
    for node in sorted(state["nodes"]):
        for name, res in resources(state, node).items():
            for peer, conn in res["connections"].items():
                peer_res = runtime(state, peer, name)
                if conn["conn"] == "Connected" and peer_res is not None:
                    _deliver_in_flight(state, res, peer, peer_res)


def _deliver_in_flight(state: State, res: dict[str, Any], peer: str, peer_res: dict[str, Any]) -> None:
    for volume, pd in res["connections"][peer]["peer_devices"].items():
        flying = pd.get("in_flight")
        peer_dev = peer_res["devices"].get(volume)
        if not flying or peer_dev is None or not is_diskful(peer_dev):
            continue
        for first, last in flying:
            add_range(writes_of(state, peer_dev["key"]), first, last)
        pd["in_flight"] = []


def _release_fencing_freeze(state: State, res: dict[str, Any]) -> None:
    """I/O frozen by resource-and-stonith resumes once every peer is connected again or known outdated."""
    if res.get("suspended") != "fencing":
        return
    if all(c["conn"] == "Connected" or _peer_known_outdated(state, res, c["node_id"])
           for c in res["connections"].values()):
        res["suspended"] = ""


def resume_io(state: State, node: str, name: str) -> None:
    res = require_runtime(state, node, name)
    if res.get("suspended") == "fencing":
        res["suspended"] = ""


def key_failed(state: State, key: str) -> bool:
    """Whether the storage behind a content key failed; a stripe fails with any of its legs."""
    if state.get("disks", {}).get(key, {}).get("failed"):
        return True
    if key.startswith("striped:"):
        legs = key.split(":", 2)[2]
        return any(key_failed(state, leg) for leg in legs.split("|"))
    return False


def _check_disks(state: State, node: str, res: dict[str, Any]) -> None:
    for volume, dev in res["devices"].items():
        key = dev.get("key")
        if key is None or not key_failed(state, str(key)):
            continue
        policy = config_of(res).on_io_error
        log = node_drbd(state, node).setdefault("log", [])
        if policy == "detach":
            log.append(f"{res['name']}/{volume} drbd{dev['minor']}: disk( {dev['disk']} -> Failed ) "
                       "local I/O error, detaching")
            detach(state, node, res, volume, failed=True)
        else:
            dev["disk"] = "Failed" if policy == "call-local-io-error" else dev["disk"]
            dev["io_error"] = True


def _votes_needed(state: State, node: str, res: dict[str, Any]) -> int | None:
    """The votes (this node included) the resource needs for quorum; None where there is no quorum (DRBD 8.4,
    ``quorum off``)."""
    config = config_of(res)
    if config.quorum == "off" or simstate.node_state(state, node).get("drbd_version") == "8.4":
        return None
    return int(config.quorum) if config.quorum.isdigit() else len(config.hosts) // 2 + 1


def _quorum_after_ping(state: State, node: str, res: dict[str, Any]) -> bool:
    """Whether the node keeps quorum with the peers that still answer (connected and reachable) right now."""
    need = _votes_needed(state, node, res)
    if need is None:
        return True
    answering = sum(1 for peer, c in res["connections"].items()
                    if c["conn"] == "Connected" and simstate.can_talk(state, node, peer))
    return 1 + answering >= need


def _update_quorum(state: State, node: str, res: dict[str, Any]) -> None:
    config = config_of(res)
    need = _votes_needed(state, node, res)
    if need is None:
        res["quorum"] = True
        return
    visible = 1 + sum(1 for c in res["connections"].values() if c["conn"] == "Connected")
    had = res.get("quorum", True)
    res["quorum"] = visible >= need
    if res["quorum"]:
        if res.get("suspended") == "quorum":
            res["suspended"] = ""
        return
    if res["role"] == PRIMARY:
        if config.on_no_quorum == "suspend-io":
            res["suspended"] = "quorum"
        if had:
            for dev in res["devices"].values():
                md = device_md(state, dev)
                if md is not None:
                    md["flags"]["primary_lost_quorum"] = True
    else:
        for dev in res["devices"].values():
            if dev["disk"] in ("UpToDate", "Consistent"):
                set_disk(state, dev, "Outdated")


def resync_tick(state: State, dt: float) -> None:
    """Advance every running resync by ``dt`` simulated seconds at the source's resync rate."""
    for node in sorted(state["nodes"]):
        if not simstate.node_state(state, node).get("up"):
            continue
        for name, res in resources(state, node).items():
            rate = resync_rate(state, node, res)
            for peer, conn in res["connections"].items():
                if conn["conn"] != "Connected":
                    continue
                peer_res = runtime(state, peer, name)
                if peer_res is None:
                    continue
                for volume, pd in conn["peer_devices"].items():
                    if pd["repl"] != "SyncSource":
                        continue
                    moved = min(int(pd["oos_kib"]), int(rate * dt))
                    left = int(pd["oos_kib"]) - moved
                    pd["oos_kib"] = left
                    pd["sent_kib"] = int(pd["sent_kib"]) + moved
                    pt = peer_res["connections"][node]["peer_devices"][volume]
                    pt["oos_kib"] = left
                    pt["received_kib"] = int(pt["received_kib"]) + moved
                    if left <= 0:
                        _finish_sync(state, node, res, peer, peer_res, volume=volume)


# --- online verify ------------------------------------------------------------------------------

VERIFY_STATES = ("VerifyS", "VerifyT")


def start_verify(state: State, node: str, name: str) -> None:
    """``drbdadm verify``: compare every block with each connected peer, paced like a resync."""
    res = require_runtime(state, node, name)
    if not config_of(res).option("net", "verify-alg"):
        raise StateChangeFailed(-14)
    pairs = []
    for peer, peer_res in connected_peers(state, node, res):
        for volume, ps in res["connections"][peer]["peer_devices"].items():
            pt = peer_res["connections"][node]["peer_devices"].get(volume)
            if pt is None:
                continue
            if ps["repl"] != "Established":
                raise StateChangeFailed(-8)
            pairs.append((ps, pt, int(res["devices"][volume]["size_kib"])))
    if not pairs:
        raise StateChangeFailed(-15)
    for ps, pt, size in pairs:
        ps["repl"], pt["repl"] = "VerifyS", "VerifyT"
        ps["verify_total_kib"] = pt["verify_total_kib"] = max(size, 1)
        ps["verify_left_kib"] = pt["verify_left_kib"] = size


def set_verify_finds(state: State, node: str, kib: int) -> None:
    """What the next verify started on ``node`` finds out of sync (a fault: the replicas differ there)."""
    settings(state, node)["verify_finds_kib"] = int(kib)


def verify_percent(pd: dict[str, Any]) -> float:
    total = max(int(pd.get("verify_total_kib", 1)), 1)
    return round(100.0 * (total - int(pd.get("verify_left_kib", 0))) / total, 2)


def verify_tick(state: State, dt: float) -> None:
    """Advance every running verify by ``dt`` seconds at the verifying node's resync rate."""
    for node in sorted(state["nodes"]):
        if not simstate.node_state(state, node).get("up"):
            continue
        for name, res in resources(state, node).items():
            pds = [ps for c in res["connections"].values() for ps in c["peer_devices"].values()]
            if not any(ps["repl"] == "VerifyS" for ps in pds):
                continue  # the common case, and cheap: the rate needs the parsed config
            rate = resync_rate(state, node, res)
            for peer, conn in res["connections"].items():
                peer_res = runtime(state, peer, name)
                if conn["conn"] != "Connected" or peer_res is None:
                    continue
                for volume, ps in conn["peer_devices"].items():
                    if ps["repl"] != "VerifyS":
                        continue
                    pt = peer_res["connections"][node]["peer_devices"][volume]
                    left = max(0, int(ps["verify_left_kib"]) - int(rate * dt))
                    ps["verify_left_kib"] = pt["verify_left_kib"] = left
                    if left == 0:
                        _finish_verify(state, node, res, peer, peer_res, volume=volume)


def _finish_verify(state: State, node: str, res: dict[str, Any], peer: str, peer_res: dict[str, Any], *,
                   volume: str) -> None:
    """Back to Established; what differed is marked out of sync on both sides (nothing is copied)."""
    ps = res["connections"][peer]["peer_devices"][volume]
    pt = peer_res["connections"][node]["peer_devices"][volume]
    ps["repl"] = pt["repl"] = "Established"
    for pd in (ps, pt):
        pd.pop("verify_total_kib", None)
        pd.pop("verify_left_kib", None)
    dev_s, dev_t = res["devices"][volume], peer_res["devices"].get(volume)
    found = min(int(settings(state, node).pop("verify_finds_kib", 0)), int(dev_s["size_kib"]))
    log = node_drbd(state, node).setdefault("log", [])
    log.append(f"{res['name']}/{volume}: Online verify done")
    if not found or dev_t is None:
        return
    log.append(f"{res['name']}/{volume}: Online verify found {found // 4} 4k blocks out of sync!")
    for dev, peer_id in ((dev_s, peer_res["node_id"]), (dev_t, res["node_id"])):
        md = device_md(state, dev)
        if md is not None:
            peer_md = _md_peer(md, peer_id)
            peer_md["oos_kib"] = max(int(peer_md["oos_kib"]), found)


def stop_verify_on_loss(pd: dict[str, Any]) -> None:
    pd.pop("verify_total_kib", None)
    pd.pop("verify_left_kib", None)


def resync_rate(state: State, node: str, res: dict[str, Any]) -> float:
    configured = config_of(res).resync_rate_kib
    setting = settings(state, node).get("resync_rate_kib")
    if setting is not None:
        return float(setting)
    return float(configured or DEFAULT_RESYNC_RATE_KIB)


# --- writes (driven by the data oracle) ----------------------------------------------------------


def write(state: State, node: str, name: str, first: int, last: int) -> bool:
    """Write sequence numbers ``first..last`` through the primary; True when DRBD acknowledges them."""
    res = runtime(state, node, name)
    if res is None or res["role"] != PRIMARY or res.get("suspended"):
        return False
    config = config_of(res)
    if not res.get("quorum", True) and config.on_no_quorum == "io-error":
        return False
    if not has_uptodate_access(state, node, res):
        # on-no-data-accessible io-error: no good copy of the data is reachable.
        return False
    kib = (last - first + 1) * WRITE_KIB
    stored = False
    for volume, dev in res["devices"].items():
        if is_diskful(dev) and not dev.get("io_error"):
            add_range(writes_of(state, dev["key"]), first, last)
            dev["written_kib"] = int(dev["written_kib"]) + kib
            stored = True
        md = device_md(state, dev)
        for peer, conn in res["connections"].items():
            peer_res = runtime(state, peer, name)
            peer_dev = peer_res["devices"].get(volume) if peer_res is not None else None
            if conn["conn"] == "Connected" and peer_dev is not None and is_diskful(peer_dev):
                pd = conn["peer_devices"][volume]
                if config.protocol == "C":
                    add_range(writes_of(state, peer_dev["key"]), first, last)
                    stored = True
                else:
                    # Protocols A and B acknowledge before the peer's disk has the data.
                    add_range(pd.setdefault("in_flight", []), first, last)
                pd["sent_kib"] = int(pd["sent_kib"]) + kib
            elif md is not None:
                peer_md = _md_peer(md, conn["node_id"])
                peer_md["oos_kib"] = min(int(dev["size_kib"]), int(peer_md["oos_kib"]) + kib)
    return stored


def _copy_signature(state: State, source: dict[str, Any], target: dict[str, Any]) -> None:
    if source.get("key") and target.get("key") and source["key"] != target["key"]:
        signature = simstate.peek_content(state, source["key"]).get("signature")
        copied = None if signature is None else dict(signature)
        # Every resolution of /dev/drbdN comes here: write only what differs, so that a read stays a read.
        if simstate.peek_content(state, target["key"]).get("signature") != copied:
            simstate.content(state, target["key"])["signature"] = copied


def replicate_signatures(state: State, name: str) -> None:
    """What a Primary's device shows (a filesystem, swap) is on its replicating peers' disks too."""
    for node, res in nodes_with(state, name):
        if res["role"] != PRIMARY:
            continue
        for volume, dev in res["devices"].items():
            if not is_diskful(dev) or dev["disk"] != "UpToDate":
                continue
            for _, peer_res in connected_peers(state, node, res):
                peer_dev = peer_res["devices"].get(volume)
                if peer_dev is not None and is_diskful(peer_dev):
                    _copy_signature(state, dev, peer_dev)


def role_of_device(state: State, node: str, device: str) -> str | None:
    """The role of the resource that owns ``/dev/drbdN`` on ``node`` (None when it is not up there)."""
    for res in resources(state, node).values():
        for dev in res["devices"].values():
            if f"/dev/drbd{dev['minor']}" == device:
                return str(res["role"])
    return None


def resource_of_device(state: State, node: str, device: str) -> str | None:
    for name, res in resources(state, node).items():
        for dev in res["devices"].values():
            if f"/dev/drbd{dev['minor']}" == device:
                return name
    return None
