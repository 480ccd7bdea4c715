"""The data oracle: proves from the simulation that no acknowledged write was lost.

While a domain runs on a node whose DRBD device is Primary, each tick writes sequence-numbered
blocks through DRBD (:func:`reconciler.sim.drbd_machine.write`). A write DRBD acknowledges is added
to the resource's acknowledged set; each disk keeps the sequence numbers it holds in its content
record, so they survive reboots and follow resyncs. The oracle watches role changes and domains and
records violations:

* ``lost-writes``: a node became Primary (with its own disk as the data source) without holding every
  acknowledged write of the resource;
* ``two-primaries``: a resource was Primary on two nodes outside a live migration's window: neither did a
  domain using the resource move between the two nodes, nor was the dual-primary allowance in force on both
  when the second promoted (a window opened for a migration that was then aborted), or a window stayed
  open longer than :data:`MIGRATION_GRACE_S` without a migration;
* ``allowance-left``: the runtime dual-primary allowance (``net-options --allow-two-primaries=yes``) stayed
  in force on a node for longer than :data:`MIGRATION_GRACE_S` (a live migration's window never closed);
  only an allowance opened at run time is such a window (one in the resource file is not);
* ``domain-twice``: one domain running on two nodes at once.

A split brain resolved with ``--discard-my-data`` loses, by the operator's decision, the writes only the
discarding side holds: they leave the acknowledged set (counted as discarded), and every write the
survivor holds must still be there on every node that serves the data afterwards.

Everything lives in ``state["oracle"]``; :func:`check` returns the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.sim import drbd_machine as m
from reconciler.sim.state import State
from reconciler.sim.xen import register_domain_listener

MIGRATION_GRACE_S = 300.0
DEFAULT_WRITES_PER_SECOND = 1.0
_RUNNING = ("running", "blocked")


@dataclass(frozen=True)
class Violation:
    kind: str
    time: float
    message: str

    def __str__(self) -> str:
        return f"[t={self.time:.1f}s] {self.kind}: {self.message}"


def _oracle(state: State) -> dict[str, Any]:
    found: dict[str, Any] = state.setdefault("oracle", {})
    found.setdefault("next_seq", 1)
    found.setdefault("acked", {})
    found.setdefault("primaries", {})
    found.setdefault("dual", {})
    found.setdefault("violations", [])
    found.setdefault("domains", {})
    found.setdefault("history", [])
    return found


def _now(state: State) -> float:
    return float(state.get("time", 0.0))


def _violate(state: State, kind: str, message: str, key: str) -> None:
    oracle = _oracle(state)
    if any(v.get("key") == key for v in oracle["violations"]):
        return
    oracle["violations"].append({"kind": kind, "time": _now(state), "message": message, "key": key})


def _format_ranges(ranges: list[list[int]], limit: int = 4) -> str:
    parts = [f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in ranges[:limit]]
    if len(ranges) > limit:
        parts.append("...")
    return ", ".join(parts)


def _count(ranges: list[list[int]]) -> int:
    return sum(hi - lo + 1 for lo, hi in ranges)


# --- role changes -----------------------------------------------------------------------------


def _on_role(state: State, node: str, resource: str, role: str) -> None:
    oracle = _oracle(state)
    primaries: list[str] = oracle["primaries"].setdefault(resource, [])
    oracle["history"].append({"time": _now(state), "node": node, "resource": resource, "role": role})
    del oracle["history"][:-1000]
    if role == m.PRIMARY:
        if node not in primaries:
            primaries.append(node)
        _check_data(state, node, resource)
        if len(primaries) >= 2 and resource not in oracle["dual"]:
            oracle["dual"][resource] = {"since": _now(state), "nodes": sorted(primaries), "migrated": False,
                                        "allowed": all(_allowed(state, n, resource) for n in primaries)}
        return
    if node in primaries:
        primaries.remove(node)
    window = oracle["dual"].get(resource)
    if window is not None and len(primaries) < 2:
        del oracle["dual"][resource]
        if not window["migrated"] and not window.get("allowed"):
            nodes = " and ".join(window["nodes"])
            _violate(state, "two-primaries",
                     f"{resource} was Primary on {nodes} from t={window['since']:.1f}s to t={_now(state):.1f}s "
                     "without a live migration", f"dual:{resource}:{window['since']}")


m.register_role_listener(_on_role)


def _allowed(state: State, node: str, resource: str) -> bool:
    """Whether ``node`` runs ``resource`` with the dual-primary allowance in force (what DRBD checks)."""
    res = m.runtime(state, node, resource) if state["nodes"][node].get("up", True) else None
    return res is not None and bool(res.get("window")) and m.config_of(res).allow_two_primaries


def _note_allowances(state: State) -> None:
    """When each node's runtime allowance came into force (dropped once it is withdrawn or the node is down)."""
    oracle = _oracle(state)
    seen: dict[str, float] = oracle.setdefault("allowances", {})
    current = set()
    for node, ns in state["nodes"].items():
        if not ns.get("up", True):
            continue
        for name, res in m.resources(state, node).items():
            if res.get("window") and m.config_of(res).allow_two_primaries:
                current.add(f"{node}:{name}")
    for key in current - set(seen):
        seen[key] = _now(state)
    for key in set(seen) - current:
        del seen[key]


def _data_source(state: State, node: str, resource: str) -> str | None:
    """The content key whose data the new primary serves: its own UpToDate disk, else an UpToDate peer's."""
    res = m.runtime(state, node, resource)
    if res is None:
        return None
    for volume, dev in res["devices"].items():
        if dev["disk"] == "UpToDate" and dev.get("key"):
            return str(dev["key"])
        for _peer, peer_res in m.connected_peers(state, node, res):
            peer_dev = peer_res["devices"].get(volume, {})
            if peer_dev.get("disk") == "UpToDate" and peer_dev.get("key"):
                return str(peer_dev["key"])
        if dev.get("key"):
            return str(dev["key"])
    return None


def _check_data(state: State, node: str, resource: str) -> None:
    acked = _oracle(state)["acked"].get(resource, [])
    if not acked:
        return
    key = _data_source(state, node, resource)
    missing = m.missing_ranges(m.writes_of(state, key), acked) if key else [list(r) for r in acked]
    if missing:
        _violate(state, "lost-writes",
                 f"{node} became Primary of {resource} without {_count(missing)} acknowledged write(s) "
                 f"(sequence {_format_ranges(missing)})", f"lost:{resource}:{node}:{missing[0][0]}")


def _check_primaries(state: State) -> None:
    """A Primary whose readable data (its own UpToDate disk or an UpToDate peer's) lacks acknowledged writes."""
    oracle = _oracle(state)
    for resource, nodes in oracle["primaries"].items():
        acked = oracle["acked"].get(resource, [])
        for node in nodes:
            res = m.runtime(state, node, resource)
            if not acked or res is None or not m.has_uptodate_access(state, node, res):
                continue
            key = _data_source(state, node, resource)
            missing = m.missing_ranges(m.writes_of(state, key), acked) if key else []
            if missing:
                _violate(state, "lost-writes",
                         f"Primary {node} of {resource} serves data without {_count(missing)} acknowledged "
                         f"write(s) (sequence {_format_ranges(missing)})", f"lost:{resource}:{node}:{missing[0][0]}")


# --- domains and writes -----------------------------------------------------------------------


def domain_devices(domain: dict[str, Any]) -> list[str]:
    found = []
    for disk in domain.get("disks", []):
        target = disk.get("target") if isinstance(disk, dict) else disk
        if isinstance(target, str) and target.startswith("/dev/drbd"):
            found.append(target)
    return found


def _running_domains(state: State) -> dict[str, list[str]]:
    where: dict[str, list[str]] = {}
    for node in sorted(state["nodes"]):
        ns = state["nodes"][node]
        if not ns.get("up"):
            continue
        for name, domain in ns.get("domains", {}).items():
            if domain.get("state") in _RUNNING:
                where.setdefault(name, []).append(node)
    return where


def observe(state: State) -> None:
    """Note domains that moved (live migrations), domains running twice and primaries missing data."""
    oracle = _oracle(state)
    _check_primaries(state)
    _note_allowances(state)
    where = _running_domains(state)
    for name, nodes in where.items():
        if len(nodes) > 1:
            _violate(state, "domain-twice", f"domain {name} runs on {' and '.join(nodes)} at once",
                     f"twice:{name}:{','.join(nodes)}")
        previous = oracle["domains"].get(name)
        if previous is not None and previous not in nodes:
            node = nodes[0]
            domain = state["nodes"][node]["domains"][name]
            for device in domain_devices(domain):
                resource = m.resource_of_device(state, node, device)
                if resource is not None:
                    note_migration(state, resource, previous, node)
        oracle["domains"][name] = nodes[0]
    for name in list(oracle["domains"]):
        if name not in where:
            del oracle["domains"][name]


def note_migration(state: State, resource: str, source: str, target: str) -> None:
    """A domain using ``resource`` moved from ``source`` to ``target``: its dual-primary window is legitimate."""
    window = _oracle(state)["dual"].get(resource)
    if window is not None and {source, target} <= set(window["nodes"]):
        window["migrated"] = True


def _on_domain(state: State, node: str, name: str, event: str) -> None:
    """Live migrations as the Xen simulator reports them: out of the source, then into the target."""
    oracle = _oracle(state)
    moving: dict[str, str] = oracle.setdefault("migrating", {})
    if event == "migrate-out":
        moving[name] = node
    elif event == "migrate-in" and name in moving:
        source = moving.pop(name)
        domain = state["nodes"][node].get("domains", {}).get(name, {})
        for device in domain_devices(domain):
            resource = m.resource_of_device(state, node, device)
            if resource is not None:
                note_migration(state, resource, source, node)
        oracle["domains"][name] = node


register_domain_listener(_on_domain)


def _on_discard(state: State, node: str, resource: str, survivor: str) -> None:
    oracle = _oracle(state)
    res, kept_res = m.runtime(state, node, resource), m.runtime(state, survivor, resource)
    if res is None or kept_res is None:
        return
    acked: list[list[int]] = oracle["acked"].setdefault(resource, [])
    for volume, dev in res["devices"].items():
        kept = kept_res["devices"].get(volume, {})
        # missing_ranges(have, want) is want minus have: the acknowledged writes only the discarding side holds.
        only_here = m.missing_ranges(m.writes_of(state, kept.get("key")), m.writes_of(state, dev.get("key")))
        lost = m.missing_ranges(m.missing_ranges(acked, only_here), only_here)
        acked[:] = m.missing_ranges(lost, acked)
        discarded: dict[str, int] = oracle.setdefault("discarded", {})
        discarded[resource] = int(discarded.get(resource, 0)) + _count(lost)


m.register_discard_listener(_on_discard)


def write_by_hand(state: State, node: str, resource: str, count: int) -> bool:
    """Writes through ``node``'s DRBD device from dom0 (an operator who mounted it), acknowledged like a
    domain's; True when DRBD acknowledged them."""
    oracle = _oracle(state)
    first = int(oracle["next_seq"])
    last = first + count - 1
    oracle["next_seq"] = last + 1
    if m.write(state, node, resource, first, last):
        m.add_range(oracle["acked"].setdefault(resource, []), first, last)
        return True
    return False


def write_tick(state: State, dt: float) -> None:
    """Each running domain writes to its DRBD devices for ``dt`` simulated seconds."""
    if dt <= 0:
        return
    oracle = _oracle(state)
    rate = float(oracle.get("writes_per_second", DEFAULT_WRITES_PER_SECOND))
    count = max(1, round(dt * rate))
    for node in sorted(state["nodes"]):
        ns = state["nodes"][node]
        if not ns.get("up"):
            continue
        for name in sorted(ns.get("domains", {})):
            domain = ns["domains"][name]
            if domain.get("state") not in _RUNNING:
                continue
            for device in domain_devices(domain):
                resource = m.resource_of_device(state, node, device)
                if resource is None:
                    continue
                first = int(oracle["next_seq"])
                last = first + count - 1
                oracle["next_seq"] = last + 1
                if m.write(state, node, resource, first, last):
                    m.add_range(oracle["acked"].setdefault(resource, []), first, last)
                else:
                    oracle["failed_writes"] = int(oracle.get("failed_writes", 0)) + count


def acknowledged(state: State, resource: str) -> int:
    return _count(_oracle(state)["acked"].get(resource, []))


# --- the verdict ------------------------------------------------------------------------------


def check(state: State) -> list[Violation]:
    """Every violation recorded so far plus those visible now (open dual-primary windows past the grace)."""
    oracle = _oracle(state)
    found = [Violation(v["kind"], float(v["time"]), v["message"]) for v in oracle["violations"]]
    now = _now(state)
    for resource, window in sorted(oracle["dual"].items()):
        if not window["migrated"] and now - float(window["since"]) > MIGRATION_GRACE_S:
            # An aborted migration demotes its target within the grace; one that stays past it is no window.
            found.append(Violation("two-primaries", now,
                                   f"{resource} has been Primary on {' and '.join(window['nodes'])} since "
                                   f"t={window['since']:.1f}s without a live migration"))
    for key, since in sorted(oracle.get("allowances", {}).items()):
        if now - float(since) > MIGRATION_GRACE_S:
            node, _, resource = key.partition(":")
            found.append(Violation("allowance-left", now, f"{resource} has allowed two primaries on {node} since "
                                                          f"t={since:.1f}s (a live migration's window left open)"))
    for name, nodes in sorted(_running_domains(state).items()):
        if len(nodes) > 1 and not any(v.kind == "domain-twice" and name in v.message for v in found):
            found.append(Violation("domain-twice", now, f"domain {name} runs on {' and '.join(nodes)} at once"))
    return found


def summary(state: State) -> dict[str, Any]:
    """Counts for ``reconciler sim check``: acknowledged writes per resource and failed writes."""
    oracle = _oracle(state)
    return {
        "acknowledged": {r: _count(v) for r, v in sorted(oracle["acked"].items())},
        "failed_writes": int(oracle.get("failed_writes", 0)),
        "discarded": {r: int(n) for r, n in sorted(oracle.get("discarded", {}).items())},
        "primaries": {r: list(v) for r, v in sorted(oracle["primaries"].items()) if v},
    }
