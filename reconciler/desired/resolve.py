"""A VM file with the cluster's defaults applied: every setting has one value and a known origin.

Sections ``storage``, ``swap``, ``drbd`` and ``domain`` merge key by key (the VM's key wins over
``defaults``); ``safety`` is taken whole from the VM file when it has one, else from ``defaults``,
because mixing the keys of two mechanisms would produce a setting nobody wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from reconciler.desired.errors import Issue
from reconciler.desired.schema import ClusterFile, Defaults, VmFile
from reconciler.desired.verify import DEFAULT_ALG, parse_schedule
from reconciler.desired.yamlload import Document, KeyPath
from reconciler.model.desired import (
    DemoteFailureAction,
    DesiredFailover,
    DesiredVerify,
    Lifecycle,
    SafetyMechanism,
    StorageLayout,
)
from reconciler.sizes import SECTOR

CLUSTER_FILE = "cluster.yaml"
MIB = 1024 * 1024
DEFAULT_CHUNK_SECTORS = 64
DEFAULT_BRIDGE = "xenbr0"
# Without STONITH nothing can fence a peer that does not answer, so I/O is not frozen waiting for it.
DEFAULT_FENCING_POLICY = "resource-only"

Origin = tuple[str, KeyPath]


@dataclass(frozen=True, slots=True)
class Safety:
    mechanism: SafetyMechanism
    fencing_policy: str = DEFAULT_FENCING_POLICY
    fence_peer_handler: str | None = None
    unfence_peer_handler: str | None = None
    tiebreaker: str | None = None
    on_no_quorum: str = "io-error"
    on_demote_failure: DemoteFailureAction = "reboot-force"


@dataclass(frozen=True, slots=True)
class Vif:
    mac: str
    bridge: str


@dataclass(frozen=True, slots=True)
class Domain:
    type: str
    memory_mib: int
    maxmem_mib: int
    vcpus: int
    maxvcpus: int
    bootloader: str | None
    kernel: str | None
    ramdisk: str | None
    extra: str | None
    vifs: tuple[Vif, ...]
    live_migration: bool
    allow_restart: bool
    memory_bytes: int = 0
    maxmem_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Vm:
    """One VM with defaults applied and names derived from its id."""

    source: str
    id: int
    name: str
    nodes: tuple[str, ...]
    primary: str
    lifecycle: Lifecycle
    suspended: bool
    layout: StorageLayout
    data_vgs: tuple[str, ...]
    stripes: int
    chunk_sectors: int
    data_size: int
    swap_size: int | None
    swap_vgs: tuple[str, ...]
    minor: int
    port: int
    protocol: Literal["A", "B", "C"]
    al_extents: int | None
    on_io_error: str
    degr_wfc_timeout: int | None
    wfc_timeout: int | None
    safety: Safety
    filesystem: str
    domain: Domain
    spec: VmFile | None = field(default=None, compare=False, repr=False)
    defaults: Defaults | None = field(default=None, compare=False, repr=False)
    drbd_options: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    data_lv_name: str | None = None
    swap_lv_name: str | None = None
    resource_name: str | None = None
    verify: DesiredVerify | None = None
    failover: DesiredFailover = field(default_factory=DesiredFailover)

    @property
    def data_lv(self) -> str:
        return self.data_lv_name or f"root{self.id}"

    @property
    def swap_lv(self) -> str:
        return self.swap_lv_name or f"swap{self.id}"

    @property
    def resource(self) -> str:
        return self.resource_name or self.name

    def where(self, setting: str) -> Origin:
        """The file and key path a setting came from: the VM file, the cluster defaults, or (when it is
        built in) the VM file's section for it. Worked out on demand: only reported problems need it."""
        section, _, key = setting.partition(".")
        own = getattr(self.spec, section, None) if self.spec is not None else None
        inherited = getattr(self.defaults, section, None) if self.defaults is not None else None
        if section == "safety":
            base: Origin = (self.source, ("safety",)) if own is not None or inherited is None else (
                CLUSTER_FILE, ("defaults", "safety"))
            return (base[0], (*base[1], key)) if key else base
        if section == "name":
            return (self.source, ("name",) if self.spec is not None and self.spec.name else ("id",))
        if not key:
            return (self.source, (section,))
        if isinstance(own, BaseModel) and getattr(own, key, None) is not None:
            return (self.source, (section, key))
        if isinstance(inherited, BaseModel) and getattr(inherited, key, None) is not None:
            return (CLUSTER_FILE, ("defaults", section, key))
        return (self.source, (section,))


Bases = dict[str, dict[str, Any]]
_FAILOVER_FIELDS = {"grace": "grace_seconds", "min_interval": "min_interval_seconds"}
_SECTIONS = ("storage", "swap", "drbd", "domain", "verify", "failover")


def default_bases(cluster: ClusterFile) -> Bases:
    """The non-empty settings under ``defaults``, per section; computed once per load, shared by every VM."""
    bases: Bases = {}
    for section in _SECTIONS:
        inherited: BaseModel | None = getattr(cluster.defaults, section)
        bases[section] = {} if inherited is None else {k: v for k, v in inherited.__dict__.items() if v is not None}
    return bases


def _merge(own: BaseModel | None, base: dict[str, Any]) -> dict[str, Any]:
    """Settings of one section: the cluster defaults overlaid with the VM's own non-empty keys."""
    if own is None:
        return base
    merged = base.copy()
    for key, value in own.__dict__.items():
        if value is not None:
            merged[key] = value
    return merged


def resolve_vm(
    vm: VmFile, source: str, cluster: ClusterFile, doc: Document, bases: Bases | None = None
) -> tuple[Vm | None, list[Issue]]:
    """Apply the defaults to one VM file; report settings that are required but given nowhere."""
    defaults = cluster.defaults
    if bases is None:
        bases = default_bases(cluster)
    issues: list[Issue] = []
    storage = _merge(vm.storage, bases["storage"])
    swap = _merge(vm.swap, bases["swap"])
    drbd = _merge(vm.drbd, bases["drbd"])
    dom = _merge(vm.domain, bases["domain"])
    verify = _merge(vm.verify, bases["verify"])
    failover = _merge(vm.failover, bases["failover"])

    def require(section: str, settings: dict[str, Any], key: str, hint: str) -> Any:
        value = settings.get(key)
        if value is None:
            issues.append(doc.issue((section,), f"missing setting {section}.{key}", hint, at_key=True))
        return value

    layout: StorageLayout = storage.get("layout", "dm-striped")
    data_vgs = require("storage", storage, "volume_groups", "list the volume groups, e.g. volume_groups: [vg-sda]")
    data_vgs = data_vgs or ()
    data_size = require("storage", storage, "size", "give the size of each data LV, e.g. size: 100G") or SECTOR
    stripes: int = storage.get("stripes", len(data_vgs) if layout == "dm-striped" else 1)
    swap_size: int | None = swap.get("size")
    swap_vgs: tuple[str, ...] = swap.get("volume_groups", data_vgs) if swap_size is not None else ()

    safety_spec = vm.safety if vm.safety is not None else defaults.safety
    if safety_spec is None:
        hint = "set safety.mechanism (fencing, quorum or none) here or under defaults in cluster.yaml"
        issues.append(doc.issue((), "no safety mechanism for failover", hint))
        safety = Safety("none")
    else:
        safety = Safety(
            mechanism=safety_spec.mechanism,
            fencing_policy=safety_spec.fencing_policy or DEFAULT_FENCING_POLICY,
            fence_peer_handler=safety_spec.fence_peer_handler,
            unfence_peer_handler=safety_spec.unfence_peer_handler,
            tiebreaker=safety_spec.tiebreaker,
            on_no_quorum=safety_spec.on_no_quorum or "io-error",
            on_demote_failure=safety_spec.on_demote_failure or "reboot-force",
        )

    memory: int = require("domain", dom, "memory", "give the domain's memory, e.g. memory: 2G") or MIB
    maxmem: int = dom.get("maxmem", memory)
    vcpus: int = dom.get("vcpus", 1)
    bridge: str = dom.get("bridge", DEFAULT_BRIDGE)
    domain = Domain(
        type=dom.get("type", "pv"),
        memory_mib=memory // MIB,
        maxmem_mib=maxmem // MIB,
        vcpus=vcpus,
        maxvcpus=dom.get("maxvcpus", vcpus),
        bootloader=dom.get("bootloader"),
        kernel=dom.get("kernel"),
        ramdisk=dom.get("ramdisk"),
        extra=dom.get("extra"),
        vifs=tuple(Vif(v.mac, v.bridge or bridge) for v in dom.get("vifs", ())),
        live_migration=dom.get("live_migration", False),
        allow_restart=dom.get("allow_restart", False),
        memory_bytes=memory,
        maxmem_bytes=maxmem,
    )
    if issues:
        return None, issues
    return Vm(
        source=source,
        id=vm.id,
        name=vm.name or f"vm{vm.id}",
        nodes=vm.nodes,
        primary=vm.primary,
        lifecycle=vm.lifecycle,
        suspended=vm.suspended,
        layout=layout,
        data_vgs=tuple(data_vgs),
        stripes=stripes,
        chunk_sectors=storage.get("chunk_sectors", DEFAULT_CHUNK_SECTORS),
        data_size=data_size,
        swap_size=swap_size,
        swap_vgs=tuple(swap_vgs),
        minor=vm.drbd.minor,
        port=vm.drbd.port,
        protocol=drbd.get("protocol", "C"),
        al_extents=drbd.get("al_extents"),
        on_io_error=drbd.get("on_io_error", "detach"),
        degr_wfc_timeout=drbd.get("degr_wfc_timeout"),
        wfc_timeout=drbd.get("wfc_timeout"),
        safety=safety,
        filesystem=vm.filesystem or "xfs",
        domain=domain,
        spec=vm,
        defaults=defaults,
        drbd_options=tuple((section, tuple(sorted(values.items())))
                           for section, values in sorted((drbd.get("options") or {}).items())),
        data_lv_name=vm.names.data_lv if vm.names else None,
        swap_lv_name=vm.names.swap_lv if vm.names else None,
        resource_name=vm.names.resource if vm.names else None,
        verify=_verify(verify),
        # The defaults live in DesiredFailover alone; only the keys that name seconds are spelt otherwise.
        failover=DesiredFailover(**{_FAILOVER_FIELDS.get(key, key): value for key, value in failover.items()}),
    ), []


def _verify(settings: dict[str, Any]) -> DesiredVerify | None:
    """The merged verify settings; None without a schedule or with ``schedule: off``."""
    schedule = settings.get("schedule")
    interval = parse_schedule(schedule) if schedule is not None else None
    if schedule is None or interval is None:
        return None
    return DesiredVerify(schedule=schedule, interval_seconds=interval, alg=settings.get("alg", DEFAULT_ALG),
                         rate_bytes=settings.get("rate"), resync_found=settings.get("resync_found"))
