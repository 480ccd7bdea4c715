"""DRBD resource files for DRBD 9 and 8.4, explicit wherever a default could lose data or split the brain.

- No automatic promotion on DRBD 9 (``auto-promote no``): only the reconciler decides who is primary.
- Split-brain recovery never discards data: ``after-sb-0pri/1pri/2pri disconnect``.
- Fencing lives in the ``disk`` section on 8.4 and in ``net`` on 9. The default fence-peer handler is
  the reconciler's own (``reconciler fence-peer`` asks the peer's daemon to outdate its replica; no
  Pacemaker). It leaves nothing to undo, so no unfence handler is rendered unless one is configured
  (``after-resync-target`` on 8.4, ``unfence-peer`` on 9). Quorum exists on DRBD 9 only.

The settings come as a :class:`~reconciler.core.render_settings.ResourceFileSettings` the desired state's
expansion fills from the VM and hands to the node's replicator (``DrbdReplicator.render_config``), so this
backend knows nothing of the files the desired state is read from.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from reconciler.core.render_settings import ResourceFileSettings
from reconciler.model.desired import DrbdHost, DrbdVersion
from reconciler.sizes import KIB

# The console script's path in the systemd units; drbdadm runs handler strings through /bin/sh.
DEFAULT_FENCE_PEER = "/usr/bin/reconciler fence-peer"
SPLIT_BRAIN_HANDLER = "/usr/bin/reconciler split-brain"
INDENT = "    "

def kib(rate: int) -> str:
    """A rate in DRBD's unit suffix (KiB/s)."""
    return f"{rate // KIB}k"


def handlers(settings: ResourceFileSettings) -> tuple[str, str | None]:
    """The fence-peer command and the unfence command (None: none configured, none needed)."""
    return settings.fence_peer_handler or DEFAULT_FENCE_PEER, settings.unfence_peer_handler


def _address(host: DrbdHost) -> str:
    ip = ipaddress.ip_address(host.address)
    if ip.version == 6:
        return f"ipv6 [{ip}]:{host.port}"
    return f"ipv4 {ip}:{host.port}"


def _section(name: str, lines: Sequence[str]) -> list[str]:
    if not lines:
        return []
    return [f"{INDENT}{name} {{", *(f"{INDENT * 2}{line}" for line in lines), f"{INDENT}}}"]


def render_drbd(
    settings: ResourceFileSettings,
    version: DrbdVersion,
    hosts: Sequence[DrbdHost],
    minor: int,
    backing_device: str,
    *,
    allow_two_primaries: bool,
) -> str:
    """The text of ``/etc/drbd.d/<resource>.res`` for nodes running DRBD ``version``."""
    nine = version == "9"
    options: list[str] = []
    net = [f"protocol {settings.protocol};"]
    disk = [f"on-io-error {settings.on_io_error};"]
    if settings.al_extents is not None:
        disk.append(f"al-extents {settings.al_extents};")
    if nine:
        options.append("auto-promote no;")
    net += ["after-sb-0pri disconnect;", "after-sb-1pri disconnect;", "after-sb-2pri disconnect;"]
    net.append(f"allow-two-primaries {'yes' if allow_two_primaries else 'no'};")
    handler_lines: list[str] = []
    if settings.mechanism == "fencing":
        fence, unfence = handlers(settings)
        (net if nine else disk).append(f"fencing {settings.fencing_policy};")
        handler_lines.append(f'fence-peer "{fence}";')
        if unfence is not None:
            handler_lines.append(f'{"unfence-peer" if nine else "after-resync-target"} "{unfence}";')
    elif settings.mechanism == "quorum":
        options += ["quorum majority;", f"on-no-quorum {settings.on_no_quorum};"]
    # Neither status nor /proc/drbd says "split brain"; this handler is how DRBD tells the reconciler.
    handler_lines.append(f'split-brain "{SPLIT_BRAIN_HANDLER}";')
    if settings.verify is not None:
        # Online verification (reconciler.desired.verify): the hash in net, the pace in disk (8.4 and 9 alike).
        net.append(f"verify-alg {settings.verify.alg};")
        if settings.verify.rate_bytes is not None:
            rate = kib(settings.verify.rate_bytes)
            disk += [f"c-max-rate {rate};", f"resync-rate {rate};"]
    extra = dict(settings.extra_options)
    for section, target in (("options", options), ("net", net), ("disk", disk)):
        target += [f"{key} {value};" for key, value in extra.get(section, ())]
    startup: list[str] = []
    if settings.wfc_timeout is not None:
        startup.append(f"wfc-timeout {settings.wfc_timeout};")
    if settings.degr_wfc_timeout is not None:
        startup.append(f"degr-wfc-timeout {settings.degr_wfc_timeout};")
    startup += [f"{key} {value};" for key, value in extra.get("startup", ())]

    lines = [
        f"# {settings.vm}: written by the reconciler from {settings.source}; local changes are overwritten.",
        f"resource {settings.resource} {{",
        *_section("options", options),
        *_section("net", net),
        *_section("disk", disk),
        *_section("startup", startup),
        *_section("handlers", handler_lines),
    ]
    for host in hosts:
        body = [f"node-id {host.node_id};"] if nine else []
        body.append(f"device /dev/drbd{minor};")
        if host.diskless:
            body.append("disk none;")
        else:
            body += [f"disk {backing_device};", "meta-disk internal;"]
        body.append(f"address {_address(host)};")
        lines += _section(f"on {host.name}", body)
    if nine and len(hosts) > 2:
        lines += _section("connection-mesh", ["hosts " + " ".join(h.name for h in hosts) + ";"])
    lines.append("}")
    return "\n".join(lines) + "\n"
