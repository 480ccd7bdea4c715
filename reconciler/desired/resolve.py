"""A VM file with the cluster's defaults applied: every setting has one value and a known origin.

The one path of a VM from its file to a node's plan: ``vms/<name>.yaml`` -> :class:`~reconciler.desired.schema.VmFile`
(the file as written, every setting optional) -> :class:`Vm` here (every setting resolved, typed, names derived)
-> per node, :class:`~reconciler.model.desired.DesiredVm` (reconciler.desired.expand), which the planner reads.
Nothing in between is a dictionary: each setting is read off the typed sections of the VM file and of
``defaults`` in ``cluster.yaml``, and the first that gives it wins, else its built-in default (:func:`_setting`).

Sections ``storage``, ``swap``, ``drbd``, ``domain``, ``verify`` and ``failover`` merge key by key (the VM's key
wins over ``defaults``); ``safety`` is taken whole from the VM file when it has one, else from ``defaults``,
because mixing the keys of two mechanisms would produce a setting nobody wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel

from reconciler.desired.errors import Issue
from reconciler.desired.safefs import CLUSTER_FILE
from reconciler.desired.schema import (
    ClusterFile,
    Defaults,
    DomainDefaults,
    DomainSection,
    DomainType,
    DrbdDefaults,
    FailoverSection,
    FencingPolicy,
    FilesystemChoice,
    OnIoError,
    OnNoQuorum,
    ProvisionSection,
    StorageSection,
    SwapSection,
    VmFile,
)
from reconciler.desired.verify import DEFAULT_ALG, VerifySection, parse_schedule
from reconciler.desired.yamlload import Document, KeyPath
from reconciler.model.desired import (
    DEFAULT_ON_DEMOTE_FAILURE,
    DEFAULT_PROTOCOL,
    DemoteFailureAction,
    DesiredFailover,
    DesiredVerify,
    DrbdProtocol,
    Lifecycle,
    SafetyMechanism,
    SplitBrainRecovery,
    StorageLayout,
    derived_data_lv,
    derived_swap_lv,
    derived_vm_name,
)
from reconciler.sizes import MIB, SECTOR

# The built-in defaults of settings neither the VM file nor the cluster's defaults give (and DEFAULT_PROTOCOL,
# DEFAULT_ON_DEMOTE_FAILURE in reconciler.model.desired, whose models need them too).
DEFAULT_LAYOUT: StorageLayout = "dm-striped"
DEFAULT_CHUNK_SECTORS = 64
DEFAULT_ON_IO_ERROR: OnIoError = "detach"
DEFAULT_FILESYSTEM: FilesystemChoice = "xfs"
DEFAULT_DOMAIN_TYPE: DomainType = "pv"
DEFAULT_VCPUS = 1
# xl's own default too: `reconciler import` reads a vif without bridge= as this bridge.
DEFAULT_BRIDGE = "xenbr0"
# Without STONITH nothing can fence a peer that does not answer, so I/O is not frozen waiting for it.
DEFAULT_FENCING_POLICY: FencingPolicy = "resource-only"
DEFAULT_ON_NO_QUORUM: OnNoQuorum = "io-error"

Origin = tuple[str, KeyPath]


@dataclass(frozen=True, slots=True)
class Safety:
    mechanism: SafetyMechanism
    fencing_policy: FencingPolicy = DEFAULT_FENCING_POLICY
    fence_peer_handler: str | None = None
    unfence_peer_handler: str | None = None
    tiebreaker: str | None = None
    on_no_quorum: OnNoQuorum = DEFAULT_ON_NO_QUORUM
    on_demote_failure: DemoteFailureAction = DEFAULT_ON_DEMOTE_FAILURE


@dataclass(frozen=True, slots=True)
class Vif:
    mac: str
    bridge: str


@dataclass(frozen=True, slots=True)
class Domain:
    type: DomainType
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
    memory_bytes: int
    maxmem_bytes: int


@dataclass(frozen=True, slots=True)
class Vm:
    """One VM with defaults applied and names derived from its id: what the rules across files
    (reconciler.desired.validate), the renderers and expansion read. Every setting has its final value and type;
    ``spec`` and ``defaults`` are kept only to say where a setting came from."""

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
    protocol: DrbdProtocol
    al_extents: int | None
    on_io_error: OnIoError
    degr_wfc_timeout: int | None
    wfc_timeout: int | None
    safety: Safety
    filesystem: FilesystemChoice
    domain: Domain
    drbd_options: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    data_lv_name: str | None
    swap_lv_name: str | None
    resource_name: str | None
    verify: DesiredVerify | None
    failover: DesiredFailover
    split_brain_recovery: SplitBrainRecovery | None
    provision: ProvisionSection | None
    # The files' sections it was resolved from, for the origin of a setting (where) and the rules about what a
    # VM file itself says (reconciler.desired.validate).
    spec: VmFile = field(compare=False, repr=False)
    defaults: Defaults = field(compare=False, repr=False)

    @property
    def data_lv(self) -> str:
        return self.data_lv_name or derived_data_lv(self.id)

    @property
    def swap_lv(self) -> str:
        return self.swap_lv_name or derived_swap_lv(self.id)

    @property
    def resource(self) -> str:
        return self.resource_name or self.name

    def where(self, setting: str) -> Origin:
        """The file and key path a setting came from: the VM file, the cluster defaults, or (when it is
        built in) the VM file's section for it. Worked out on demand: only reported problems need it."""
        section, _, key = setting.partition(".")
        own = getattr(self.spec, section, None)
        inherited = getattr(self.defaults, section, None)
        if section == "safety":
            base: Origin = (self.source, ("safety",)) if own is not None or inherited is None else (
                CLUSTER_FILE, ("defaults", "safety"))
            return (base[0], (*base[1], key)) if key else base
        if section == "name":
            return (self.source, ("name",) if self.spec.name else ("id",))
        if not key:
            return (self.source, (section,))
        if isinstance(own, BaseModel) and getattr(own, key, None) is not None:
            return (self.source, (section, key))
        if isinstance(inherited, BaseModel) and getattr(inherited, key, None) is not None:
            return (CLUSTER_FILE, ("defaults", section, key))
        return (self.source, (section,))


T = TypeVar("T")


def _setting(own: T | None, inherited: T | None, default: T) -> T:
    """One setting: the VM file's, else the cluster default's, else the built-in default."""
    if own is not None:
        return own
    return inherited if inherited is not None else default


def _optional(own: T | None, inherited: T | None) -> T | None:
    """One setting without a built-in default: the VM file's, else the cluster default's, else none."""
    return own if own is not None else inherited


# A section left out of a file is one with nothing set (built without validation: nothing to validate).
_NO_STORAGE = StorageSection.model_construct()
_NO_SWAP = SwapSection.model_construct()
_NO_DRBD = DrbdDefaults.model_construct()
_NO_DOMAIN_DEFAULTS = DomainDefaults.model_construct()
_NO_DOMAIN = DomainSection.model_construct()
_NO_VERIFY = VerifySection.model_construct()
_NO_FAILOVER = FailoverSection.model_construct()
# The failover defaults live in DesiredFailover alone.
_FAILOVER_DEFAULTS = DesiredFailover()


def resolve_vm(vm: VmFile, source: str, cluster: ClusterFile, doc: Document) -> tuple[Vm | None, list[Issue]]:
    """Apply the defaults to one VM file; report settings that are required but given nowhere."""
    defaults = cluster.defaults
    issues: list[Issue] = []

    def require(value: T | None, section: str, key: str, hint: str) -> T | None:
        if value is None:
            issues.append(doc.issue((section,), f"missing setting {section}.{key}", hint, at_key=True))
        return value

    storage, base_storage = vm.storage or _NO_STORAGE, defaults.storage or _NO_STORAGE
    layout = _setting(storage.layout, base_storage.layout, DEFAULT_LAYOUT)
    data_vgs = require(_optional(storage.volume_groups, base_storage.volume_groups), "storage", "volume_groups",
                       "list the volume groups, e.g. volume_groups: [vg-sda]") or ()
    data_size = require(_optional(storage.size, base_storage.size), "storage", "size",
                        "give the size of each data LV, e.g. size: 100G") or SECTOR
    stripes = _setting(storage.stripes, base_storage.stripes, len(data_vgs) if layout == "dm-striped" else 1)
    swap, base_swap = vm.swap or _NO_SWAP, defaults.swap or _NO_SWAP
    swap_size = _optional(swap.size, base_swap.size)
    swap_vgs = _setting(swap.volume_groups, base_swap.volume_groups, data_vgs) if swap_size is not None else ()

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
            on_no_quorum=safety_spec.on_no_quorum or DEFAULT_ON_NO_QUORUM,
            on_demote_failure=safety_spec.on_demote_failure or DEFAULT_ON_DEMOTE_FAILURE,
        )

    dom, base_dom = vm.domain or _NO_DOMAIN, defaults.domain or _NO_DOMAIN_DEFAULTS
    memory = require(_optional(dom.memory, base_dom.memory), "domain", "memory",
                     "give the domain's memory, e.g. memory: 2G") or MIB
    maxmem = _setting(dom.maxmem, base_dom.maxmem, memory)
    vcpus = _setting(dom.vcpus, base_dom.vcpus, DEFAULT_VCPUS)
    bridge = _setting(dom.bridge, base_dom.bridge, DEFAULT_BRIDGE)
    domain = Domain(
        type=_setting(dom.type, base_dom.type, DEFAULT_DOMAIN_TYPE),
        memory_mib=memory // MIB,
        maxmem_mib=maxmem // MIB,
        vcpus=vcpus,
        maxvcpus=_setting(dom.maxvcpus, base_dom.maxvcpus, vcpus),
        bootloader=_optional(dom.bootloader, base_dom.bootloader),
        kernel=_optional(dom.kernel, base_dom.kernel),
        ramdisk=_optional(dom.ramdisk, base_dom.ramdisk),
        extra=_optional(dom.extra, base_dom.extra),
        vifs=tuple(Vif(v.mac, v.bridge or bridge) for v in dom.vifs or ()),
        live_migration=_setting(dom.live_migration, base_dom.live_migration, False),
        allow_restart=_setting(dom.allow_restart, base_dom.allow_restart, False),
        memory_bytes=memory,
        maxmem_bytes=maxmem,
    )
    if issues:
        return None, issues
    drbd, base_drbd = vm.drbd, defaults.drbd or _NO_DRBD
    options = _setting(drbd.options, base_drbd.options, {})
    names = vm.names
    recovery = vm.split_brain_recovery
    return Vm(
        source=source,
        id=vm.id,
        name=vm.name or derived_vm_name(vm.id),
        nodes=vm.nodes,
        primary=vm.primary,
        lifecycle=vm.lifecycle,
        suspended=vm.suspended,
        layout=layout,
        data_vgs=tuple(data_vgs),
        stripes=stripes,
        chunk_sectors=_setting(storage.chunk_sectors, base_storage.chunk_sectors, DEFAULT_CHUNK_SECTORS),
        data_size=data_size,
        swap_size=swap_size,
        swap_vgs=tuple(swap_vgs),
        minor=drbd.minor,
        port=drbd.port,
        protocol=_setting(drbd.protocol, base_drbd.protocol, DEFAULT_PROTOCOL),
        al_extents=_optional(drbd.al_extents, base_drbd.al_extents),
        on_io_error=_setting(drbd.on_io_error, base_drbd.on_io_error, DEFAULT_ON_IO_ERROR),
        degr_wfc_timeout=_optional(drbd.degr_wfc_timeout, base_drbd.degr_wfc_timeout),
        wfc_timeout=_optional(drbd.wfc_timeout, base_drbd.wfc_timeout),
        safety=safety,
        filesystem=vm.filesystem or DEFAULT_FILESYSTEM,
        domain=domain,
        drbd_options=tuple((section, tuple(sorted(values.items()))) for section, values in sorted(options.items())),
        data_lv_name=names.data_lv if names else None,
        swap_lv_name=names.swap_lv if names else None,
        resource_name=names.resource if names else None,
        verify=_verify(vm.verify or _NO_VERIFY, defaults.verify or _NO_VERIFY),
        failover=_failover(vm.failover or _NO_FAILOVER, defaults.failover or _NO_FAILOVER),
        split_brain_recovery=(SplitBrainRecovery(incident=recovery.incident, discard=recovery.discard)
                              if recovery is not None else None),
        provision=vm.provision,
        spec=vm,
        defaults=defaults,
    ), []


def _verify(own: VerifySection, inherited: VerifySection) -> DesiredVerify | None:
    """The merged verify settings; None without a schedule or with ``schedule: off``."""
    schedule = _optional(own.schedule, inherited.schedule)
    interval = parse_schedule(schedule) if schedule is not None else None
    if schedule is None or interval is None:
        return None
    return DesiredVerify(
        schedule=schedule,
        interval_seconds=interval,
        alg=_setting(own.alg, inherited.alg, DEFAULT_ALG),
        rate_bytes=_optional(own.rate, inherited.rate),
        resync_found=_optional(own.resync_found, inherited.resync_found),
    )


def _failover(own: FailoverSection, inherited: FailoverSection) -> DesiredFailover:
    """The merged failover settings (the promotion's time budget is expansion's: it needs the nodes' fences)."""
    base = _FAILOVER_DEFAULTS
    return DesiredFailover(
        mode=_setting(own.mode, inherited.mode, base.mode),
        grace_seconds=_setting(own.grace, inherited.grace, base.grace_seconds),
        min_interval_seconds=_setting(own.min_interval, inherited.min_interval, base.min_interval_seconds),
        failback=_setting(own.failback, inherited.failback, base.failback),
        hold=_setting(own.hold, inherited.hold, base.hold),
    )
