"""Preflight checks of a node (``reconciler doctor``), each with a clear verdict and what to do.

Every check runs through the host seam, so it works on a real node and, where the simulator knows the
command, on a simulated one. A check that cannot run here (the tool is missing, no desired state is
known) says so with "skip" rather than guessing.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from reconciler.backends.drbd.render import DEFAULT_FENCE_PEER
from reconciler.backends.lvm import parse as lvm
from reconciler.backends.registry import node_backends
from reconciler.backends.xen import paths as xen_paths
from reconciler.core.observed_index import ObservedIndex
from reconciler.core.parse_error import ParseError
from reconciler.daemon.peers.powerfence import power_state, said
from reconciler.desired.schema import PowerFenceSection
from reconciler.host.base import Host
from reconciler.model.desired import DesiredNode
from reconciler.observe.observer import Observer
from reconciler.plan.identity import Holders, identity_refusal

Verdict = Literal["ok", "warn", "fail", "skip"]
TIMEOUT = 20.0


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    detail: str


# (tool, argv, pattern for the version, required)
TOOLS: tuple[tuple[str, tuple[str, ...], str, bool], ...] = (
    ("lvm2", ("lvm", "version"), r"LVM version:\s*(\S+)", True),
    ("dmsetup", ("dmsetup", "--version"), r"Library version:\s*(\S+)", True),
    ("drbd-utils", ("drbdadm", "--version"), r"DRBDADM_VERSION=(\S+)", True),
    ("xl", ("xl", "info"), r"xen_version\s*:\s*(\S+)", True),
    ("blkid", ("blkid", "-V"), r"util-linux\s+(\S+)", True),
    ("mkfs.xfs", ("mkfs.xfs", "-V"), r"version\s+(\S+)", True),
    ("xfs_db", ("xfs_db", "-V"), r"version\s+(\S+)", True),
    ("mkswap", ("mkswap", "-V"), r"util-linux\s+(\S+)", True),
    ("git", ("git", "--version"), r"git version\s+(\S+)", True),
)


def check_hostname(host: Host, node: str, desired: DesiredNode | None) -> Check:
    result = host.run(("uname", "-n"), timeout=TIMEOUT)
    if not result.ok:
        return Check("host name", "skip", f"cannot ask `uname -n`: {result.describe()}")
    uname = result.stdout.strip()
    if desired is not None and desired.hostname != uname:
        return Check("host name", "fail", f"the cluster file names node {node!r} with hostname {desired.hostname!r}, "
                                          f"but `uname -n` says {uname!r}; DRBD would not find its `on` section")
    if node != uname:
        return Check("host name", "fail", f"--node {node!r} differs from `uname -n` {uname!r}")
    return Check("host name", "ok", f"{uname} (matches the node name DRBD uses)")


def check_tools(host: Host) -> list[Check]:
    checks = []
    for name, argv, pattern, required in TOOLS:
        result = host.run(argv, timeout=TIMEOUT)
        said = result.stdout + "\n" + result.stderr
        match = re.search(pattern, said)
        if result.not_found:
            checks.append(Check(f"tool {name}", "fail" if required else "warn", f"`{argv[0]}` is not installed"))
        elif match is None:
            checks.append(Check(f"tool {name}", "fail", f"`{' '.join(argv)}` did not report a version: "
                                                        f"{result.describe()}"))
        else:
            checks.append(Check(f"tool {name}", "ok", f"version {match.group(1)}"))
    return checks


def check_drbd_module(host: Host, desired: DesiredNode | None = None) -> Check:
    text = host.read_file("/proc/drbd")
    if text is None:
        return Check("DRBD kernel module", "warn", "not loaded (/proc/drbd is absent); `drbdadm up` loads it, "
                                                    "but check that the drbd module is installed for this kernel")
    match = re.search(r"version:\s*(\S+)", text)
    version = match.group(1) if match else None
    if desired is not None and version is not None:
        # The rendered resource files follow the declared version: a DRBD 9 file on an 8.4 module (or the
        # reverse) is rejected by drbdadm at the first `up`.
        running = "9" if version.split(".")[0] == "9" else "8.4" if version.startswith("8.") else version
        if running != desired.drbd_version:
            return Check("DRBD kernel module", "fail",
                         f"version {version} runs here, but cluster.yaml declares drbd_version "
                         f"{desired.drbd_version!r} for this node; fix one of them")
    return Check("DRBD kernel module", "ok", f"version {version or 'unknown'}")


USERMODE_HELPER_PATH = "/sys/module/drbd/parameters/usermode_helper"
# The program DRBD runs for every handler; the default is drbdadm, which reads the resource file and runs the
# handler configured there (the reconciler's fence-peer and split-brain commands).
_HANDLER_RUNNERS = frozenset({"drbdadm"})
_NO_HANDLER = frozenset({"true", "false"})


def check_usermode_helper(host: Host) -> Check:
    """DRBD's usermode helper must be drbdadm, or none of the rendered handlers ever runs.

    What DRBD does without it (drbd_nl.c): with the value ``disabled`` (DRBD 9), ``drbd_maybe_khelper()``
    returns DRBD_UMH_DISABLED and ``conn_try_outdate_peer()`` returns true on that: fencing counts as
    succeeded although the peer was never outdated, and the split-brain and before-resync handlers are
    skipped. With ``/bin/true`` (Ganeti's convention) the kernel runs true instead of drbdadm: no handler
    runs, and its exit code 0 is none of fence-peer's answers (3-7), so ``conn_try_outdate_peer()`` logs
    "fence-peer helper broken, returned 0" and fails (a resource-and-stonith primary keeps its I/O frozen).
    An empty value makes the call itself fail, and DRBD ignores that errno the same way (ret 0). Either way the
    reconciler never hears of a split brain and its fence-peer never outdates the peer.
    """
    name = "DRBD usermode helper"
    text = host.read_file(USERMODE_HELPER_PATH)
    if text is None:
        return Check(name, "skip", f"{USERMODE_HELPER_PATH} is absent (the drbd module is not loaded)")
    value = text.strip().strip("\0")
    base = value.rsplit("/", 1)[-1]
    fix = (f"the handlers (fence-peer, split-brain) never run and DRBD treats fencing as done or failed without "
           f"asking the peer; set it back: `echo /sbin/drbdadm > {USERMODE_HELPER_PATH}` and remove "
           "usermode_helper= from the drbd module options (/etc/modprobe.d) and the kernel command line")
    if not value:
        return Check(name, "fail", f"{USERMODE_HELPER_PATH} is empty: {fix}")
    if value == "disabled" or base in _NO_HANDLER:
        return Check(name, "fail", f"{USERMODE_HELPER_PATH} is {value!r}: {fix}")
    if base in _HANDLER_RUNNERS:
        return Check(name, "ok", f"{value} (runs the handlers configured in the resource files)")
    return Check(name, "warn", f"{USERMODE_HELPER_PATH} is {value!r}, not drbdadm: make sure it runs the handler "
                               "drbdadm would (fence-peer and split-brain go to the reconciler)")


def lvm_filter_accepts(patterns: Iterable[str], device: str) -> bool:
    """LVM's rule: the first pattern that matches decides (a=accept, r=reject); no match accepts."""
    for pattern in patterns:
        if len(pattern) < 3 or pattern[0] not in "ar":
            continue
        delimiter = pattern[1]
        regex = pattern[2:pattern.rfind(delimiter)] if pattern.rfind(delimiter) > 1 else pattern[2:]
        try:
            if re.search(regex, device):
                return pattern[0] == "a"
        except re.error:
            continue
    return True


def _lvm_list(text: str, key: str) -> list[str] | None:
    match = re.search(rf"^\s*{key}\s*=\s*\[(.*)\]\s*$", text, re.MULTILINE)
    if match is None:
        return None
    return re.findall(r'"((?:[^"\\]|\\.)*)"', match.group(1))


def check_lvm_filter(host: Host, desired: DesiredNode | None) -> Check:
    result = host.run(("lvmconfig", "--type", "full", "devices/global_filter", "devices/filter",
                       "devices/use_devicesfile"), timeout=TIMEOUT)
    if result.not_found:
        return Check("LVM filter", "skip", "lvmconfig is not installed")
    if not result.ok:
        return Check("LVM filter", "fail", f"cannot read the LVM configuration: {result.describe()}")
    if re.search(r"^\s*use_devicesfile\s*=\s*1", result.stdout, re.MULTILINE):
        return Check("LVM filter", "ok", "LVM uses a devices file: it scans only the devices listed there")
    devices = ["/dev/drbd0"]
    if desired is not None:
        devices += [vm.stripe.path for vm in desired.vms if vm.stripe is not None]
        devices += [vm.drbd.device for vm in desired.vms if vm.drbd is not None]
    else:
        devices.append("/dev/mapper/root100")
    # A device is scanned only when both global_filter and filter accept it.
    filters = [_lvm_list(result.stdout, key) or [] for key in ("global_filter", "filter")]
    scanned = [d for d in dict.fromkeys(devices) if all(lvm_filter_accepts(f, d) for f in filters)]
    if scanned:
        shown = ", ".join(scanned[:4]) + (" ..." if len(scanned) > 4 else "")
        return Check("LVM filter", "fail",
                     f"LVM would scan {shown}: the replicated data (a guest's own PVs) could be activated in dom0. "
                     'Add e.g. global_filter = [ "r|^/dev/drbd|", "r|^/dev/mapper/root|", "a|.*|" ] to lvm.conf')
    return Check("LVM filter", "ok", "DRBD devices and stripe devices are rejected")


def check_services(host: Host) -> list[Check]:
    checks = []
    for unit in ("drbd.service", "xendomains.service"):
        result = host.run(("systemctl", "is-enabled", unit), timeout=TIMEOUT)
        state = result.stdout.strip()
        if result.not_found:
            checks.append(Check(f"service {unit}", "skip", "systemctl is not available"))
        elif state in ("enabled", "enabled-runtime", "static", "alias", "indirect", "generated"):
            checks.append(Check(f"service {unit}", "fail",
                                f"{unit} is {state}: it would also start/stop these resources at boot and shutdown. "
                                f"`systemctl disable {unit}` (reconciler-shutdown.service does the shutdown part)"))
        else:
            checks.append(Check(f"service {unit}", "ok", state or "not installed"))
    return checks


def check_ballooning(host: Host) -> Check:
    info = host.run(("xl", "info"), timeout=TIMEOUT)
    if info.not_found:
        return Check("Xen ballooning", "skip", "xl is not installed")
    conf = host.read_file(xen_paths.XL_CONF) or ""
    autoballoon = re.search(r'^\s*autoballoon\s*=\s*"?(\w+)"?', conf, re.MULTILINE)
    cmdline = re.search(r"^xen_commandline\s*:\s*(.*)$", info.stdout, re.MULTILINE)
    problems = []
    if cmdline is None or "dom0_mem=" not in cmdline.group(1):
        problems.append("Xen's command line has no dom0_mem=, so dom0 owns all memory and `xl info` free_memory "
                        "is misleading")
    if autoballoon is None or autoballoon.group(1).lower() not in ("off", "0"):
        problems.append(f'{xen_paths.XL_CONF} lacks autoballoon="off": starting a domain would shrink dom0')
    if problems:
        return Check("Xen ballooning", "fail", "; ".join(problems))
    return Check("Xen ballooning", "ok", "dom0_mem is fixed and autoballoon is off")


def local_addresses(host: Host) -> set[str] | None:
    result = host.run(("ip", "-j", "addr"), timeout=TIMEOUT)
    if not result.ok:
        return None
    try:
        data = json.loads(result.stdout)
    except ValueError:
        return None
    return {str(a.get("local")) for link in data for a in link.get("addr_info", []) if a.get("local")}


def check_addresses(host: Host, desired: DesiredNode | None) -> Check:
    if desired is None:
        return Check("replication addresses", "skip", "no desired state known (give a directory or --state-dir)")
    local = local_addresses(host)
    if local is None:
        return Check("replication addresses", "skip", "cannot list addresses with `ip -j addr`")
    wanted = {desired.address} | {h.address for vm in desired.vms if vm.drbd is not None
                                  for h in vm.drbd.hosts if h.name == desired.node}
    missing = sorted(wanted - local)
    if missing:
        return Check("replication addresses", "fail", f"{', '.join(missing)} not configured on this host "
                                                      "(DRBD cannot bind its ports)")
    return Check("replication addresses", "ok", ", ".join(sorted(wanted)))


def check_ssh_trust(desired: DesiredNode | None) -> Check:
    """Root ssh between the nodes is what ``xl migrate`` would travel over. Live migration is not built: a VM
    that allows it moves by shutdown and start like any other, so no node needs ssh trust in another, and this
    check does not ask for it (root ssh between the nodes is a cost of its own)."""
    if desired is None:
        return Check("ssh trust", "skip", "no desired state known")
    migrating = sorted(vm.name for vm in desired.vms if vm.domain is not None and vm.domain.live_migration)
    if not migrating:
        return Check("ssh trust", "ok", "no VM allows live migration; ssh between nodes is not needed")
    return Check("ssh trust", "skip", f"{', '.join(migrating)} allow live migration, which is not built yet: they "
                                      "move by shutdown and start, and no ssh between the nodes is needed")


def check_volume_groups(host: Host, desired: DesiredNode | None) -> Check:
    """Each declared volume group exists, with as many PVs as the widest LVM stripe asked of it."""
    if desired is None:
        return Check("volume groups", "skip", "no desired state known (give a directory or --state-dir)")
    result = host.run(lvm.VGS_ARGV, timeout=TIMEOUT)
    if result.not_found:
        return Check("volume groups", "skip", "vgs is not installed")
    try:
        groups = {vg.name: vg for vg in lvm.parse_vgs(result.stdout)} if result.ok else None
    except ParseError as exc:
        return Check("volume groups", "fail", f"cannot read `vgs`: {exc}")
    if groups is None:
        return Check("volume groups", "fail", f"`vgs` failed: {result.describe()}")
    wanted = set(desired.volume_groups) | {lv.vg for vm in desired.vms for lv in vm.lvs}
    problems = [f"{name} does not exist" for name in sorted(wanted - set(groups))]
    for vm in desired.vms:
        for lv in vm.lvs:
            vg = groups.get(lv.vg)
            if vg is not None and lv.stripes > 1 and vg.pv_count is not None and vg.pv_count < lv.stripes:
                problems.append(f"{vm.name} stripes {lv.vg}/{lv.name} over {lv.stripes} PVs, but {lv.vg} has "
                                f"{vg.pv_count}")
    if problems:
        return Check("volume groups", "fail", "; ".join(problems) + " (create them, or fix cluster.yaml)")
    return Check("volume groups", "ok", ", ".join(sorted(wanted)) or "none declared")


def check_foreign_holders(host: Host, desired: DesiredNode | None) -> Check:
    """Nothing made by hand or by another tool holds a name, minor or port the desired state uses (what could be
    taken over, a dm device without uuid and the desired table, is not in the way)."""
    if desired is None:
        return Check("names and minors", "skip", "no desired state known (give a directory or --state-dir)")
    observed = Observer(host).observe()
    blind = [t.name for t in observed.tools if t.state != "available" and t.name in ("lvm", "dmsetup", "drbd")]
    index = ObservedIndex(observed)
    holders = Holders(index, node_backends(desired).replicator)
    refusals = [r for vm in desired.vms if (r := identity_refusal(vm, index, holders))]
    if refusals:
        return Check("names and minors", "fail", "; ".join(refusals))
    if blind:
        return Check("names and minors", "skip", f"{', '.join(blind)} could not be observed here")
    return Check("names and minors", "ok", "no name, minor or port of the desired state is held by anything else")


_HANDLER = re.compile(r'^\s*([a-z][a-z0-9-]*)\s+"([^"]+)"\s*;', re.MULTILINE)


def check_drbd_handlers(host: Host, desired: DesiredNode | None) -> Check:
    """Every program the rendered resources name as a DRBD handler must be executable here. The kernel runs
    handlers as usermode helpers: a missing one fails silently from the daemon's point of view, so a split
    brain is never recorded (the daemon cannot report it, and would treat the StandAlone connection as drift)
    and fencing can prove nothing."""
    if desired is None:
        return Check("DRBD handlers", "skip", "no desired state known (give a directory or --state-dir)")
    programs: dict[str, str] = {}
    for vm in desired.vms:
        if vm.drbd is None:
            continue
        for handler, command in _HANDLER.findall(vm.drbd.config_text.split("handlers", 1)[-1]):
            programs.setdefault(command.split()[0], f"{handler} of {vm.drbd.name}")
    if not programs:
        return Check("DRBD handlers", "skip", "no resource names a handler")
    missing = [f"{program} ({use})" for program, use in sorted(programs.items())
               if not host.run(("test", "-x", program), timeout=10).ok]
    if missing:
        return Check("DRBD handlers", "fail",
                     f"not an executable file here: {', '.join(missing)}; the kernel runs these when DRBD fences or "
                     "detects a split brain (install the package, which provides /usr/bin/reconciler)")
    return Check("DRBD handlers", "ok", ", ".join(sorted(programs)))


def resolve_host(name: str) -> frozenset[str] | None:
    """The addresses ``name`` stands for (itself when it is an address), or None when it does not resolve."""
    try:
        return frozenset({str(ipaddress.ip_address(name))})
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return None
    return frozenset(str(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])) for info in found)


def check_fence_path(desired: DesiredNode | None, fence_peers: Mapping[str, str], *,
                     resolve: Callable[[str], frozenset[str] | None] = resolve_host) -> Check:
    """The project's fence-peer handler asks each peer's daemon to outdate its replica; over the replication
    link, a cut of that link alone makes a living peer "unreachable" (exit 5), and DRBD then takes it as
    Outdated in its own view while the peer's disk still says UpToDate. ``fence_peers`` is the daemon's
    RECONCILER_PEERS (node -> host), which the handler uses too."""
    name = "fence-peer path"
    if desired is None:
        return Check(name, "skip", "no desired state known (give a directory or --state-dir)")
    replication: dict[str, str] = {}
    for vm in desired.vms:
        if vm.drbd is not None and DEFAULT_FENCE_PEER in vm.drbd.config_text:
            replication.update((h.name, h.address) for h in vm.drbd.hosts if h.name != desired.node)
    if not replication:
        return Check(name, "skip", f"no resource here uses `{DEFAULT_FENCE_PEER}`")
    unresolved = sorted(peer for peer in replication if peer in fence_peers and resolve(fence_peers[peer]) is None)
    if unresolved:
        named = ", ".join(f"{p} as {fence_peers[p]!r}" for p in unresolved)
        return Check(name, "warn", f"RECONCILER_PEERS names {named}, which does not resolve here: the fence-peer "
                                   "handler could not reach it")
    # Compared as addresses: a host name in RECONCILER_PEERS that resolves to the replication address is the
    # same link.
    shared = sorted(peer for peer, address in replication.items()
                    if str(ipaddress.ip_address(address)) in (resolve(fence_peers.get(peer, address)) or ()))
    if shared:
        return Check(name, "warn",
                     f"the fence-peer handler reaches {', '.join(shared)} over the replication link "
                     f"({', '.join(replication[p] for p in shared)}): if only that link fails, the living peer is "
                     "'unreachable' (exit 5) and DRBD takes it as Outdated; set RECONCILER_PEERS (and "
                     "RECONCILER_PEER_LISTEN on every node) to management addresses in /etc/reconciler/reconciler.env")
    return Check(name, "ok", ", ".join(f"{peer} at {fence_peers[peer]}" for peer in sorted(replication)))


STONITH_POLICY = "fencing resource-and-stonith;"


def check_power_fences(host: Host, desired: DesiredNode | None,
                       power_fences: Mapping[str, PowerFenceSection]) -> list[Check]:
    """Under ``resource-and-stonith`` the fence-peer handler powers off a peer it cannot reach: each such peer
    needs a power fence whose status command works from here (it is only queried, never switched)."""
    if desired is None:
        return [Check("power fence", "skip", "no desired state known (give a directory or --state-dir)")]
    peers = sorted({h.name for vm in desired.vms if vm.drbd is not None and STONITH_POLICY in vm.drbd.config_text
                    for h in vm.drbd.hosts if h.name != desired.node})
    if not peers:
        return [Check("power fence", "skip", "no resource here uses fencing_policy: resource-and-stonith")]
    checks = []
    for peer in peers:
        name = f"power fence {peer}"
        spec = power_fences.get(peer)
        if spec is None:
            checks.append(Check(name, "fail", f"resources here use resource-and-stonith but cluster.yaml has no "
                                              f"nodes.{peer}.power_fence: if {peer} cannot be reached, their I/O "
                                              "stays frozen (the handler cannot prove anything); add one, or use "
                                              "fencing_policy: resource-only"))
            continue
        result = host.run(spec.status, timeout=float(spec.timeout))
        state = power_state(result)
        detail = said(result)
        if state == "on":
            checks.append(Check(name, "ok", f"its status command answers on ({detail})"))
        elif state == "off":
            checks.append(Check(name, "warn", f"its status command answers off ({detail}): is {peer} powered off?"))
        else:
            checks.append(Check(name, "fail", f"its status command does not work from here, so a fence of {peer} "
                                              f"could never be verified: {result.describe()}"))
    return checks


def run_checks(host: Host, node: str, desired: DesiredNode | None, *,
               progress: Callable[[Check], None] = lambda c: None,
               fence_peers: Mapping[str, str] | None = None,
               power_fences: Mapping[str, PowerFenceSection] | None = None) -> list[Check]:
    checks: list[Check] = []

    def add(*found: Check) -> None:
        for check in found:
            checks.append(check)
            progress(check)

    add(check_hostname(host, node, desired))
    add(*check_tools(host))
    add(check_drbd_module(host, desired))
    add(check_drbd_handlers(host, desired))
    add(check_fence_path(desired, fence_peers or {}))
    add(*check_power_fences(host, desired, power_fences or {}))
    add(check_usermode_helper(host))
    add(check_lvm_filter(host, desired))
    add(*check_services(host))
    add(check_ballooning(host))
    add(check_ssh_trust(desired))
    add(check_addresses(host, desired))
    add(check_volume_groups(host, desired))
    add(check_foreign_holders(host, desired))
    return checks
