"""Read a node built by hand: the pass's read-only observation, ``drbdadm dump all`` and the Xen domain configs.

Nothing here changes the node: besides the observation it runs ``drbdadm dump all`` (which resolves includes
and ``common``) and ``systemctl is-enabled``/``is-active`` for the services and cluster managers it checks,
and reads files. What the desired state cannot express is returned as a :class:`Finding` naming the file
and line it came from; nothing is dropped silently.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from reconciler.backends.drbd.config_meaning import DrbdResourceMeaning, drbd_meanings
from reconciler.backends.drbd.paths import config_path as drbd_config_path
from reconciler.backends.xen import paths as xen_paths
from reconciler.backends.xen.config_meaning import XlSetting, parse_xl
from reconciler.core.parse_error import ParseError
from reconciler.desired.resolve import DEFAULT_BRIDGE
from reconciler.desired.schema import RESERVED_DRBD_OPTIONS
from reconciler.host.base import Host, HostFileError
from reconciler.importer.facts import DomainFacts, Finding, NodeFacts, VmFacts
from reconciler.model.observed import DmDevice, LogicalVolume, ObservedNode
from reconciler.names import name_problem

COMMAND_TIMEOUT = 30.0
_DEFINED_AT_RE = re.compile(r"^# defined at (\S+):(\d+)\s*\nresource (\S+)", re.MULTILINE)
_TRAILING_DIGITS_RE = re.compile(r"(\d+)$")
_XEN_KEYS = frozenset({"name", "type", "memory", "maxmem", "vcpus", "maxvcpus", "bootloader", "kernel", "ramdisk",
                       "extra", "disk", "vif", "on_poweroff", "on_reboot", "on_crash"})
_XEN_DEFAULTS = {"on_poweroff": "destroy", "on_reboot": "restart", "on_crash": "destroy"}
_XEN_NOT_CONFIGS = frozenset({"xl.conf", "xend-config.sxp", "xend-pci-quirks.sxp", "xend-pci-permissive.sxp",
                              "README", "README.incompatibilities", "cpupool", "xlexample.hvm", "xlexample.pvlinux",
                              "xlexample.pvhlinux"})
_CLUSTER_FILES = {"/etc/ha.d/ha.cf": "Heartbeat", "/etc/ha.d/haresources": "Heartbeat",
                  "/etc/corosync/corosync.conf": "Corosync/Pacemaker", "/var/lib/pacemaker/cib/cib.xml": "Pacemaker",
                  "/var/lib/heartbeat/crm/cib.xml": "Heartbeat CRM"}
_CLUSTER_UNITS = ("heartbeat", "pacemaker", "corosync")
_BOOT_SCRIPT_DIRS = ("/etc/init.d", "/etc/rc.local.d", "/etc/systemd/system")
_BOOT_SCRIPT_FILES = ("/etc/rc.local",)


def lv_dm_name(vg: str, lv: str) -> str:
    return f"{vg.replace('-', '--')}-{lv.replace('-', '--')}"


@dataclass
class _Context:
    host: Host
    observed: ObservedNode
    findings: list[Finding]

    def find(self, source: str, message: str, kind: str = "unsupported") -> None:
        self.findings.append(Finding(source, message, kind))

    def read(self, path: str) -> str | None:
        try:
            return self.host.read_file(path)
        except HostFileError:
            return None

    def listing(self, path: str) -> tuple[str, ...]:
        try:
            return self.host.list_dir(path)
        except HostFileError:
            return ()


def read_node(host: Host, observed: ObservedNode) -> NodeFacts:
    ctx = _Context(host, observed, [])
    for tool in observed.tools:
        if tool.state != "available":
            ctx.find(tool.name, f"could not be observed ({tool.state}: {tool.detail}); the import is incomplete",
                     "note")
    dump = host.run(("drbdadm", "dump", "all"), timeout=COMMAND_TIMEOUT)
    meanings: dict[str, DrbdResourceMeaning] = {}
    origins: dict[str, tuple[str, int]] = {}
    if not dump.ok:
        ctx.find("drbdadm dump all", f"failed: {dump.describe()}; no DRBD resource was imported", "note")
    else:
        try:
            meanings = drbd_meanings(dump.stdout, "drbdadm dump all")
        except ParseError as exc:
            ctx.find("drbdadm dump all", f"cannot be read: {exc}", "note")
        origins = {m.group(3): (m.group(1), int(m.group(2))) for m in _DEFINED_AT_RE.finditer(dump.stdout)}
    xen = _xen_configs(ctx)
    facts = NodeFacts(node=host.node, address=None, drbd_version=observed.drbd.major,
                      volume_groups=sorted(vg.name for vg in observed.volume_groups))
    for name, meaning in sorted(meanings.items()):
        own = meaning.hosts.get(host.node)
        source, line = origins.get(name, ("drbdadm dump all", meaning.line))
        if own is None:
            ctx.find(f"{source}:{line}", f"resource {name} has no 'on {host.node}' section; not imported here", "note")
            continue
        for peer, peer_host in meaning.hosts.items():
            if peer != host.node and peer_host.address:
                facts.peer_addresses[peer] = peer_host.address.rsplit(":", 1)[0]
        if own.address and facts.address is None:
            facts.address = own.address.rsplit(":", 1)[0]
        vm = _vm(ctx, meaning, source, line, xen)
        if vm is not None:
            facts.vms.append(vm)
    _old_definitions(ctx, meanings, origins)
    _cluster_managers(ctx)
    _services(ctx)
    facts.findings = ctx.findings
    return facts


def _source_line(ctx: _Context, source: str, start: int, word: str) -> str:
    """The line of ``word`` in the file the resource was defined in (drbdadm dump shows only where it starts)."""
    text = ctx.read(source)
    if text is not None:
        for number, line in enumerate(text.splitlines()[start - 1:], start=start):
            if re.search(rf"(^|\s){re.escape(word)}(\s|;|$)", line.split("#", 1)[0]):
                return f"{source}:{number}"
    return f"{source}:{start}"


def _vm(ctx: _Context, meaning: DrbdResourceMeaning, source: str, line: int,
        xen: dict[str, tuple[str, dict[str, XlSetting]]]) -> VmFacts | None:
    here = ctx.host.node
    own = meaning.hosts[here]
    where = f"{source}:{line}"
    if own.minor is None or own.disk is None or own.address is None:
        ctx.find(where, f"resource {meaning.name}: device, disk or address missing for {here}; not imported")
        return None
    if own.meta_disk not in (None, "internal"):
        ctx.find(_source_line(ctx, source, line, "meta-disk"),
                 f"resource {meaning.name}: external metadata ({own.meta_disk}); the schema knows internal only")
    port = int(own.address.rsplit(":", 1)[1])
    vm = VmFacts(resource=meaning.name, name=meaning.name, id=-1, minor=own.minor, port=port, defined_at=where,
                 hosts=sorted(meaning.hosts))
    if not _storage(ctx, vm, own.disk, where):
        return None
    _drbd_options(ctx, vm, meaning, source, line)
    _domain(ctx, vm, xen)
    vm.id = _id(vm)
    state = ctx.observed.drbd.resource(meaning.name)
    vm.drbd_role = state.role if state is not None else None
    if state is None:
        ctx.find(where, f"resource {meaning.name} is not up on {here}", "note")
    return vm


def _id(vm: VmFacts) -> int:
    for name in (vm.name, vm.resource, vm.data_lv):
        match = _TRAILING_DIGITS_RE.search(name)
        if match and int(match.group(1)) <= 999999:
            return int(match.group(1))
    return 900000 + vm.minor  # no number in any name: an id from the minor, far from hand-picked ones


def _lv_by_device(observed: ObservedNode) -> dict[str, LogicalVolume]:
    """``major:minor`` of each active LV's dm device -> the LV."""
    devices = {d.name: d for d in observed.dm_devices}
    found: dict[str, LogicalVolume] = {}
    for lv in observed.logical_volumes:
        dev = devices.get(lv_dm_name(lv.vg, lv.name))
        if dev is not None and dev.major is not None:
            found[f"{dev.major}:{dev.minor}"] = lv
    return found


def _lv_for_path(observed: ObservedNode, path: str) -> LogicalVolume | None:
    for lv in observed.logical_volumes:
        if path in (lv.path, f"/dev/mapper/{lv_dm_name(lv.vg, lv.name)}"):
            return lv
    return None


def _storage(ctx: _Context, vm: VmFacts, disk: str, where: str) -> bool:
    observed = ctx.observed
    lv = _lv_for_path(observed, disk)
    if lv is not None:
        vm.data_lv, vm.data_vgs, vm.data_size = lv.name, [lv.vg], lv.size_bytes
        if (lv.stripes or 1) > 1:
            vm.layout, vm.stripes = "lvm-striped", lv.stripes or 1
            vm.chunk_sectors = (lv.stripe_size_bytes or 0) // 512 or None
        else:
            vm.layout = "linear"
        if len(lv.devices) > 1 and (lv.stripes or 1) == 1:
            ctx.find(where, f"LV {lv.vg}/{lv.name} has {len(lv.devices)} segments; it is imported as linear")
        return True
    dev = observed.dm(disk.removeprefix("/dev/mapper/")) if disk.startswith("/dev/mapper/") else None
    if dev is None:
        ctx.find(where, f"resource {vm.resource}: backing device {disk} is neither an LV nor a dm device seen here; "
                        "not imported")
        return False
    return _stripe(ctx, vm, dev, where)


def _stripe(ctx: _Context, vm: VmFacts, dev: DmDevice, where: str) -> bool:
    source = f"dmsetup table {dev.name}"
    if len(dev.targets) != 1 or dev.targets[0].target != "striped" or dev.targets[0].start != 0:
        ctx.find(source, f"{dev.name} is not one striped target ({dev.table!r}); the schema builds dm stripes only")
        return False
    words = dev.targets[0].args.split()
    stripes, chunk = int(words[0]), int(words[1])
    by_device = _lv_by_device(ctx.observed)
    legs = [by_device.get(w) or _lv_for_path(ctx.observed, w) for w in words[2::2][:stripes]]
    offsets = words[3::2][:stripes]
    if any(leg is None for leg in legs) or any(o != "0" for o in offsets):
        ctx.find(source, f"the legs of {dev.name} are not whole LVs of this node ({dev.table!r}); not imported")
        return False
    lvs = [leg for leg in legs if leg is not None]
    names = {lv.name for lv in lvs}
    if names != {dev.name}:
        ctx.find(source, f"the stripe {dev.name} runs over LVs named {', '.join(sorted(names))}; the schema names the "
                         "stripe and its legs alike (names.data_lv), so it is imported under the legs' name and the "
                         "dm device cannot be taken over as it is")
    sizes = {lv.size_bytes for lv in lvs}
    if len(sizes) > 1:
        ctx.find(source, f"the legs of {dev.name} differ in size ({', '.join(map(str, sorted(sizes)))} bytes); the "
                         "schema gives all legs one size")
    vm.layout, vm.stripes, vm.chunk_sectors = "dm-striped", stripes, chunk
    vm.data_lv, vm.data_vgs, vm.data_size = lvs[0].name, [lv.vg for lv in lvs], min(sizes)
    per_leg = vm.data_size // 512 // chunk * chunk
    if dev.targets[0].length != per_leg * stripes:
        ctx.find(source, f"{dev.name} is {dev.targets[0].length} sectors long, not the {per_leg * stripes} whole "
                         "chunks its legs hold; the rendered table would differ, so it is not taken over")
    if dev.uuid:
        ctx.find(source, f"{dev.name} already carries the uuid {dev.uuid}; device-mapper sets a uuid only once, so "
                         "the reconciler cannot take it over (see docs/import.md)")
    return True


def _drbd_options(ctx: _Context, vm: VmFacts, meaning: DrbdResourceMeaning, source: str, line: int) -> None:
    known = {("net", "protocol"): "protocol", ("disk", "on-io-error"): "on_io_error",
             ("disk", "al-extents"): "al_extents", ("startup", "degr-wfc-timeout"): "degr_wfc_timeout",
             ("startup", "wfc-timeout"): "wfc_timeout"}
    for (section, key), value in sorted(meaning.options.items()):
        where = _source_line(ctx, source, line, key)
        attr = known.get((section, key))
        if attr is not None:
            if attr in ("al_extents", "degr_wfc_timeout", "wfc_timeout"):
                if value.isdigit():
                    setattr(vm, attr, int(value))
                    continue
            elif attr == "on_io_error" and value not in ("detach", "pass_on", "call-local-io-error"):
                ctx.find(where, f"on-io-error {value} is not one the schema offers")
                continue
            else:
                setattr(vm, attr, value)
                continue
        if key == "fencing" and value in ("resource-only", "resource-and-stonith"):
            vm.fencing_policy = value
            continue
        if key in RESERVED_DRBD_OPTIONS or not re.fullmatch(r"[A-Za-z0-9_.:+-]{1,64}", value):
            ctx.find(where, f"{section} {key} {value}: the desired state cannot express it (the reconciler sets "
                            f"{key} itself, or the value is not one word)")
            continue
        vm.options.setdefault(section, {})[key] = value
    for handler, command in sorted(meaning.handlers.items()):
        where = _source_line(ctx, source, line, handler)
        dopd = "drbd-peer-outdater" in command or "outdate-peer" in handler
        what = "the dopd handler of Heartbeat" if dopd else f"handler {handler}"
        ctx.find(where, f"{what} ({command}) is not carried over: the rendered file has the reconciler's own "
                        "fence-peer and split-brain handlers (handlers change nothing in the kernel)", "old-definition")
    if "become-primary-on" in (k for _, k in meaning.options):
        ctx.find(_source_line(ctx, source, line, "become-primary-on"),
                 "become-primary-on promotes at boot behind the reconciler's back; it is dropped", "old-definition")


def _xen_configs(ctx: _Context) -> dict[str, tuple[str, dict[str, XlSetting]]]:
    """Domain configs under /etc/xen (with or without .cfg): path -> settings, keyed by the path."""
    found: dict[str, tuple[str, dict[str, XlSetting]]] = {}
    for name in sorted(ctx.listing(xen_paths.CONFIG_DIR)):
        if name in _XEN_NOT_CONFIGS or name.endswith((".sxp", ".xml", ".orig", "~")) or name_problem(name):
            continue
        path = posixpath.join(xen_paths.CONFIG_DIR, name)
        text = ctx.read(path)
        if text is None or "name" not in text or "disk" not in text:
            continue
        try:
            settings = parse_xl(text, path)
        except ParseError as exc:
            ctx.find(path, f"cannot be read as a domain config ({exc}); domains it defines are not imported", "note")
            continue
        if "name" in settings and "disk" in settings:
            found[path] = (text, settings)
    autostart = f"{xen_paths.CONFIG_DIR}/auto"
    for name in ctx.listing(autostart):
        ctx.find(f"{autostart}/{name}", "xendomains starts this domain at boot; the reconciler decides where a "
                                          "domain runs: remove the link when taking over", "old-definition")
    return found


def _domain(ctx: _Context, vm: VmFacts, xen: dict[str, tuple[str, dict[str, XlSetting]]]) -> None:
    device, by_name = f"/dev/drbd{vm.minor}", f"drbd:{vm.resource}"
    chosen = next(((p, s) for p, (_, s) in xen.items()
                   if any(device in d.split(",")[0] or by_name in d for d in _strings(s.get("disk")))), None)
    if chosen is None:
        ctx.find(vm.defined_at, f"no domain config under /etc/xen uses {device}; the VM is imported without domain "
                                "settings and needs them before validation passes", "note")
        return
    path, settings = chosen
    name = str(settings["name"].value)
    domain = DomainFacts(name=name, config_path=path)
    vm.name = name
    for key, setting in settings.items():
        where = f"{path}:{setting.line}"
        value = setting.value
        if key not in _XEN_KEYS:
            ctx.find(where, f"{key} = {value!r}: the desired state has no setting for it")
        elif key in ("memory", "maxmem", "vcpus", "maxvcpus") and isinstance(value, int):
            attr = {"memory": "memory_mib", "maxmem": "maxmem_mib"}.get(key, key)
            setattr(domain, attr, value)
        elif key in ("bootloader", "kernel", "ramdisk", "extra", "type") and isinstance(value, str):
            setattr(domain, key, value)
        elif key in _XEN_DEFAULTS and value != _XEN_DEFAULTS[key]:
            ctx.find(where, f"{key} = {value!r}: the reconciler always writes {_XEN_DEFAULTS[key]!r} (after a crash it "
                            "decides itself whether and where the domain starts)")
    if domain.type not in ("pv", "pvh"):
        ctx.find(f"{path}:{settings['type'].line}", f"type {domain.type!r}: the schema offers pv and pvh")
    _disks(ctx, vm, path, settings, device=device, by_name=by_name)
    for spec in _strings(settings.get("vif")):
        parts = dict(p.strip().split("=", 1) for p in spec.split(",") if "=" in p)
        extra = sorted(set(parts) - {"mac", "bridge"})
        if extra or "mac" not in parts:
            ctx.find(f"{path}:{settings['vif'].line}", f"vif {spec!r}: only mac and bridge can be expressed")
        if "mac" in parts:
            domain.vifs.append({"mac": parts["mac"].lower(), "bridge": parts.get("bridge", DEFAULT_BRIDGE)})
    vm.domain = domain
    vm.running_here = any(d.name == name and d.is_running for d in ctx.observed.domains)
    if path != xen_paths.config_path(name):
        ctx.find(path, f"the reconciler writes {xen_paths.config_path(name)}; this file stays and could start {name} a "
                       "second time (e.g. from xendomains): move it away when taking over", "old-definition")


def _strings(setting: XlSetting | None) -> tuple[str, ...]:
    if setting is None or not isinstance(setting.value, tuple):
        return ()
    return setting.value


def _disks(ctx: _Context, vm: VmFacts, path: str, settings: dict[str, XlSetting], *, device: str,
           by_name: str) -> None:
    where = f"{path}:{settings['disk'].line}"
    disks = _strings(settings.get("disk"))
    targets = []
    swaps: list[LogicalVolume] = []
    for index, spec in enumerate(disks):
        fields = [f.strip() for f in spec.split(",")]
        target = fields[1] if len(fields) > 1 else ""
        targets.append(target)
        dev = fields[0].removeprefix("phy:")
        mode = fields[2] if len(fields) > 2 else "w"
        if mode not in ("w", "rw"):
            ctx.find(where, f"disk {spec!r} is not writable ({mode}); the reconciler attaches every disk writable")
        if index == 0:
            if dev != device and fields[0] != by_name:
                ctx.find(where, f"the first disk is {spec!r}; the reconciler puts {device} first")
            continue
        lv = _lv_for_path(ctx.observed, dev)
        if lv is None:
            ctx.find(where, f"disk {spec!r} is not a local LV; only the DRBD device and swap LVs can be expressed")
            continue
        swaps.append(lv)
    expected = [f"xvd{chr(ord('a') + i)}" for i in range(len(disks))]
    if targets != expected:
        ctx.find(where, f"disk targets {', '.join(targets)}: the reconciler names them {', '.join(expected)} in order; "
                        "the rendered config would differ (the guest's fstab may name them)")
    if swaps:
        names = {lv.name for lv in swaps}
        sizes = {lv.size_bytes for lv in swaps}
        if len(names) > 1 or len(sizes) > 1:
            ctx.find(where, f"swap LVs {', '.join(lv.path for lv in swaps)} differ in name or size; the schema gives "
                            "them one name and one size")
        vm.swap_lv, vm.swap_vgs, vm.swap_size = swaps[0].name, [lv.vg for lv in swaps], min(sizes)


def _old_definitions(ctx: _Context, meanings: dict[str, DrbdResourceMeaning],
                     origins: dict[str, tuple[str, int]]) -> None:
    for name in sorted(meanings):
        source, line = origins.get(name, ("", 0))
        if source and source != drbd_config_path(name):
            ctx.find(f"{source}:{line}", f"resource {name} is defined here; the reconciler writes "
                                         f"{drbd_config_path(name)}, and a resource defined twice breaks every drbdadm "
                                         "call (the fence handler's too): remove this definition in the same step",
                     "old-definition")
    for path in _boot_scripts(ctx):
        ctx.find(path, "runs `dmsetup create` at boot; the reconciler recreates its stripes itself: disable it when "
                       "taking over", "old-definition")


def _boot_scripts(ctx: _Context) -> list[str]:
    paths = list(_BOOT_SCRIPT_FILES)
    for directory in _BOOT_SCRIPT_DIRS:
        paths += [posixpath.join(directory, n) for n in sorted(ctx.listing(directory)) if not name_problem(n)]
    return [p for p in paths if "dmsetup create" in (ctx.read(p) or "")]


def _cluster_managers(ctx: _Context) -> None:
    for path, manager in _CLUSTER_FILES.items():
        if ctx.read(path) is not None:
            ctx.find(path, f"{manager} is configured on this node: stopping it stops its VMs and killing it makes "
                           "the peer take over; detach it as docs/import.md says before the takeover",
                     "cluster-manager")
    for unit in _CLUSTER_UNITS:
        active = ctx.host.run(("systemctl", "is-active", unit), timeout=COMMAND_TIMEOUT)
        if active.ok and active.stdout.strip() == "active":
            ctx.find(f"systemctl is-active {unit}", f"{unit} is running: it is still in charge of resources",
                     "cluster-manager")


def _services(ctx: _Context) -> None:
    for unit in ("drbd", "xendomains"):
        enabled = ctx.host.run(("systemctl", "is-enabled", unit), timeout=COMMAND_TIMEOUT)
        if enabled.ok and enabled.stdout.strip() in ("enabled", "enabled-runtime", "static", "generated"):
            ctx.find(f"systemctl is-enabled {unit}", f"{unit}.service is enabled: it would bring resources up at boot "
                     f"beside the reconciler; `systemctl disable {unit}` when taking over", "service")
