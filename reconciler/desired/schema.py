"""The desired-state file formats: ``cluster.yaml`` and one ``vms/<name>.yaml`` per VM.

Field names are the YAML keys. Every model forbids unknown keys so that a typo is an error, not a silently
ignored setting. Scalars are strict (``"5"`` is not a number, ``"yes"`` is not a boolean); sizes go through
:func:`reconciler.sizes.parse_size` and names through :func:`reconciler.names.check_name`.
"""

from __future__ import annotations

import ipaddress
import re
import typing
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from reconciler.desired.verify import VerifySection
from reconciler.model.desired import (
    INCIDENT_RE,
    MAX_PROVISION_ATTEMPT,
    DemoteFailureAction,
    DrbdProtocol,
    DrbdVersion,
    FailoverMode,
    Lifecycle,
    NodeBackends,
    SafetyMechanism,
    StorageLayout,
)
from reconciler.names import check_name
from reconciler.sizes import PIB, TIB, format_size, parse_size


class SettingError(ValueError):
    """A value the schema refuses, with a hint how to write it instead."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


class Section(BaseModel):
    # Built on first use, like the models (see reconciler.model.base.Frozen).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _safe_name(value: str) -> str:
    return check_name(value, "name")


def _size(value: object) -> int:
    return parse_size(value)


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise SettingError(f"{value!r} is not an IPv4 or IPv6 address",
                           "write an address like 192.168.2.1 or fd00::1, without a port") from None


def _drbd_version(value: object) -> object:
    # YAML reads 9 as an integer and 8.4 as a float; both are meant as version labels.
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return {9: "9", 8.4: "8.4"}.get(value, str(value))
    return value


def _absolute_path(value: str) -> str:
    # Handlers end up in a file that drbdadm hands to a shell: every component must be a safe name.
    if not value.startswith("/"):
        raise SettingError(f"{value!r} is not an absolute path", "write the full path, e.g. /usr/lib/drbd/x.sh")
    for part in value[1:].split("/"):
        check_name(part, "path component")
    return value


def _program(value: str) -> str:
    # A bootloader is either a program xl finds itself (pygrub) or an absolute path to one.
    return _absolute_path(value) if value.startswith("/") else check_name(value, "name")


_MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


def _mac(value: str) -> str:
    lowered = value.lower()
    if not _MAC_RE.fullmatch(lowered):
        raise SettingError(f"{value!r} is not a MAC address like 00:16:3e:00:01:00",
                           "write six hex pairs separated by ':', in quotes")
    if int(lowered[:2], 16) & 1:
        raise SettingError(f"{value!r} is a multicast address; a NIC needs a unicast MAC",
                           "use an even first byte, e.g. the Xen prefix 00:16:3e")
    return lowered


_CMDLINE_RE = re.compile(r"[A-Za-z0-9_.,:=/+@ -]*")


def _cmdline(value: str) -> str:
    if not _CMDLINE_RE.fullmatch(value):
        raise SettingError(f"{value!r} contains characters that cannot be written safely into the domain config",
                           "use letters, digits, spaces and _ . , : = / + @ - only")
    return value


def _at_most(limit: int, reason: str, hint: str, *, size: bool = False) -> AfterValidator:
    """A bound whose error says why the limit is where it is."""

    def check(value: int) -> int:
        if value > limit:
            shown = format_size(value) if size else str(value)
            most = format_size(limit) if size else str(limit)
            raise SettingError(f"{shown} is more than {most}: {reason}", hint)
        return value

    return AfterValidator(check)


def _within(low: int, high: int, reason: str, hint: str) -> AfterValidator:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise SettingError(f"{value} is outside {low}-{high}: {reason}", hint)
        return value

    return AfterValidator(check)


def _length_at_most(limit: int, reason: str) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) > limit:
            raise SettingError(f"{len(value)} characters are more than {limit}: {reason}", "shorten it")
        return value

    return AfterValidator(check)


# What the tools at the other end can take; beyond these a value is a typo or an attack, never a plan.
MAX_LV_BYTES = 8191 * PIB  # LVM addresses less than 8 EiB (2^63 bytes) on 64-bit kernels
MAX_MEMORY_BYTES = 16 * TIB  # Xen on x86-64 supports at most 16 TiB of host memory
MAX_VCPUS = 512
MAX_STRIPES = 128  # lvcreate: "Number of stripes must be between 1 and 128"
MAX_CHUNK_SECTORS = 2**31  # dm-stripe keeps the chunk size in a 32-bit sector count
MAX_WFC_TIMEOUT = 300_000  # DRBD's limit for wfc-timeout and degr-wfc-timeout (seconds)
MAX_CMDLINE = 2048  # Linux's COMMAND_LINE_SIZE on x86

DrbdMinor = Annotated[StrictInt, _within(0, 1048575, "DRBD minor numbers have 20 bits",
                                          "use the next free minor, e.g. the VM's index")]
TcpPort = Annotated[StrictInt, _within(1, 65535, "a TCP port number",
                                       "use a free port, e.g. 7788 plus the minor")]
Name = Annotated[StrictStr, AfterValidator(_safe_name)]
Size = Annotated[int, BeforeValidator(_size)]
LvSize = Annotated[Size, _at_most(MAX_LV_BYTES, "LVM cannot address 8 EiB or more",
                                  "give the size in G or T, e.g. 100G", size=True)]
MemorySize = Annotated[Size, _at_most(MAX_MEMORY_BYTES, "Xen supports at most 16 TiB of memory on a host",
                                      "give the domain's memory in M or G, e.g. 4G", size=True)]
Vcpus = Annotated[StrictInt, Field(ge=1), _at_most(MAX_VCPUS, "Xen gives one guest at most a few hundred vCPUs "
                                                              "(PVH and HVM guests: 128)", "use at most 128 vCPUs")]
Stripes = Annotated[StrictInt, Field(ge=1), _at_most(MAX_STRIPES, "LVM stripes over at most 128 devices",
                                                     "use one stripe per volume group")]
ChunkSectors = Annotated[StrictInt, Field(ge=1), _at_most(MAX_CHUNK_SECTORS, "dm-stripe keeps the chunk in 32 bits",
                                                          "use a power of two like 64 or 128")]
WfcTimeout = Annotated[StrictInt, Field(ge=0), _at_most(MAX_WFC_TIMEOUT, "DRBD refuses longer timeouts",
                                                        "give seconds, e.g. 120")]
Address = Annotated[StrictStr, AfterValidator(_address)]
Path = Annotated[StrictStr, AfterValidator(_absolute_path)]
Mac = Annotated[StrictStr, AfterValidator(_mac)]
Program = Annotated[StrictStr, AfterValidator(_program)]
Cmdline = Annotated[StrictStr, _length_at_most(MAX_CMDLINE, "Linux truncates a longer kernel command line"),
                    AfterValidator(_cmdline)]
DrbdVersionField = Annotated[DrbdVersion, BeforeValidator(_drbd_version)]


_FENCE_ARG_RE = re.compile(r"[A-Za-z0-9_@%+=:,./-]{1,256}")
MAX_FENCE_ARGS = 64
MAX_FENCE_TIMEOUT = 600
MAX_FENCE_DELAY = 300
MIN_FENCE_DELAY = 5


def _fence_arg(value: str) -> str:
    # An argv item, never through a shell; still one plain word, so that it reads the same in a log line.
    if not _FENCE_ARG_RE.fullmatch(value):
        raise SettingError(f"{value!r} is not a fence command argument this project runs",
                           "one word of letters, digits and _ @ % + = : , . / - (no spaces, no quotes)")
    if value == "reboot" or value.endswith("=reboot"):
        raise SettingError("a power fence powers the node off, never reboots it",
                           "use the agent's off action (e.g. --action=off) and status action")
    return value


def _fence_argv(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value[0].startswith("/"):
        raise SettingError(f"{value[0]!r} is not an absolute path",
                           "name the fence agent by its full path, e.g. /usr/sbin/fence_ipmilan")
    _absolute_path(value[0])
    return value


FenceArgv = Annotated[tuple[Annotated[StrictStr, AfterValidator(_fence_arg)], ...],
                      Field(min_length=1, max_length=MAX_FENCE_ARGS), AfterValidator(_fence_argv)]


class PowerFenceSection(Section):
    """How the other nodes power this node off (a fence agent's argv), and how they see that it is off.

    ``status`` follows fence-agents' ``--action=status``: exit 0 for on, 2 for off, anything else unknown."""

    off: FenceArgv
    status: FenceArgv
    timeout: Annotated[StrictInt, Field(ge=1), _at_most(MAX_FENCE_TIMEOUT, "a fence that takes longer keeps "
                                                        "I/O frozen for as long", "give seconds, e.g. 60")] = 60
    # The stagger between the two nodes, so that when both links fail only one node fences (the larger of the
    # two nodes' values counts): a Primary whose name sorts first waits 0, a Primary that sorts second this
    # delay, a node that is not Primary twice. At least MIN_FENCE_DELAY: with 0, two Primaries fence each other.
    delay: Annotated[StrictInt, _within(MIN_FENCE_DELAY, MAX_FENCE_DELAY,
                                        "it staggers the two nodes' fences (with 0 two Primaries power each other "
                                        "off) and DRBD's I/O stays frozen meanwhile",
                                        "give seconds, e.g. 15: more than DRBD's ping-int plus the off command")] = 15


class BackendsSection(Section):
    """The hypervisor and the replicator the node runs, by their names in reconciler.backends.registry (checked
    against it by reconciler.desired.validate); the defaults are the registry's."""

    hypervisor: Name = NodeBackends().hypervisor
    replicator: Name = NodeBackends().replicator


class NodeSpec(Section):
    hostname: Name | None = None
    address: Address
    volume_groups: tuple[Name, ...] = Field(min_length=1)
    drbd_version: DrbdVersionField
    power_fence: PowerFenceSection | None = None
    backends: BackendsSection = Field(default_factory=BackendsSection)


class StorageSection(Section):
    layout: StorageLayout | None = None
    volume_groups: tuple[Name, ...] | None = None
    stripes: Stripes | None = None
    chunk_sectors: ChunkSectors | None = None
    size: LvSize | None = None


class SwapSection(Section):
    size: LvSize | None = None
    volume_groups: tuple[Name, ...] | None = None


_DRBD_OPTION_RE = re.compile(r"[a-z][a-z0-9-]{0,62}")
_DRBD_VALUE_RE = re.compile(r"[A-Za-z0-9_.:+-]{1,64}")
# What the renderer writes itself (or refuses to leave to a pass-through): set through the schema's own keys.
RESERVED_DRBD_OPTIONS = frozenset({
    "protocol", "on-io-error", "al-extents", "wfc-timeout", "degr-wfc-timeout", "fencing", "quorum", "on-no-quorum",
    "auto-promote", "after-sb-0pri", "after-sb-1pri", "after-sb-2pri", "allow-two-primaries", "become-primary-on",
    "outdated-wfc-timeout", "wait-after-sb", "stacked-timeouts", "node-id", "device", "disk", "meta-disk", "address",
})


def _drbd_option(value: str) -> str:
    if not _DRBD_OPTION_RE.fullmatch(value):
        raise SettingError(f"{value!r} is not a DRBD option name", "write it as in drbd.conf, e.g. sndbuf-size")
    if value in RESERVED_DRBD_OPTIONS:
        raise SettingError(f"{value!r} is set by the schema's own settings or never passed through",
                           "use the drbd/safety keys of the desired state for it, or leave it out")
    return value


def _drbd_value(value: object) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _DRBD_VALUE_RE.fullmatch(text):
        raise SettingError(f"{value!r} is not a DRBD option value this project passes through",
                           "one word of letters, digits and _ . : + - (e.g. 512k), in quotes")
    return text


DrbdOptionName = Annotated[StrictStr, AfterValidator(_drbd_option)]
DrbdOptionValue = Annotated[str, BeforeValidator(_drbd_value)]
DrbdOptionSection = Literal["net", "disk", "startup", "options"]
OnIoError = Literal["detach", "pass_on", "call-local-io-error"]


class DrbdDefaults(Section):
    protocol: DrbdProtocol | None = None
    al_extents: Annotated[StrictInt, Field(ge=7, le=65534)] | None = None
    on_io_error: OnIoError | None = None
    degr_wfc_timeout: WfcTimeout | None = None
    wfc_timeout: WfcTimeout | None = None
    # Options the schema has no key for, written as given into the resource file's section of that name
    # (e.g. net: {sndbuf-size: 512k}); `reconciler import` fills it from what `drbdadm dump` showed.
    options: dict[DrbdOptionSection, dict[DrbdOptionName, DrbdOptionValue]] | None = None


class NamesSection(Section):
    """Names that do not follow the id pattern (root<id>, swap<id>, resource = VM name), for VMs built by hand."""

    data_lv: Name | None = None
    swap_lv: Name | None = None
    resource: Name | None = None


class DrbdSection(DrbdDefaults):
    minor: DrbdMinor
    port: TcpPort


FencingPolicy = Literal["resource-only", "resource-and-stonith"]
OnNoQuorum = Literal["io-error", "suspend-io"]


class SafetySection(Section):
    mechanism: SafetyMechanism
    fencing_policy: FencingPolicy | None = None
    fence_peer_handler: Path | None = None
    unfence_peer_handler: Path | None = None
    tiebreaker: Name | None = None
    on_no_quorum: OnNoQuorum | None = None
    on_demote_failure: DemoteFailureAction | None = None


class Vif(Section):
    mac: Mac
    bridge: Name | None = None


DomainType = Literal["pv", "pvh"]
FilesystemChoice = Literal["xfs", "none"]


class DomainDefaults(Section):
    type: DomainType | None = None
    memory: MemorySize | None = None
    maxmem: MemorySize | None = None
    vcpus: Vcpus | None = None
    maxvcpus: Vcpus | None = None
    bootloader: Program | None = None
    kernel: Path | None = None
    ramdisk: Path | None = None
    extra: Cmdline | None = None
    bridge: Name | None = None
    live_migration: StrictBool | None = None
    allow_restart: StrictBool | None = None


class DomainSection(DomainDefaults):
    vifs: tuple[Vif, ...] | None = None


MIN_FAILOVER_GRACE = 20
MAX_FAILOVER_GRACE = 3600
MIN_FAILOVER_INTERVAL = 300
MAX_FAILOVER_INTERVAL = 30 * 24 * 3600


def _failover_shorthand(value: object) -> object:
    # `failover: automatic` is the short form of `failover: {mode: automatic}`.
    if not isinstance(value, str):
        return value
    if value not in typing.get_args(FailoverMode):
        raise SettingError(f"{value!r} is not a failover mode",
                           "write manual or automatic, or a section like {mode: automatic, grace: 30}")
    return {"mode": value}


class FailoverSection(Section):
    """Whether the standby takes a VM over by itself when the node running it is lost (docs/failover.md)."""

    mode: FailoverMode | None = None
    # Seconds both DRBD's connection and the peer's daemon must have been silent before the standby acts.
    grace: Annotated[StrictInt, _within(MIN_FAILOVER_GRACE, MAX_FAILOVER_GRACE,
                                        "it must outlast DRBD's own timeouts (ping-int 10 s, timeout 6 s) and a "
                                        "daemon restart", "give seconds, e.g. 30")] | None = None
    # Seconds after one automatic failover of a VM before another may happen (flapping links, a crash loop).
    min_interval: Annotated[StrictInt, _within(MIN_FAILOVER_INTERVAL, MAX_FAILOVER_INTERVAL,
                                               "a VM that fails over more often is flapping",
                                               "give seconds, e.g. 3600")] | None = None
    failback: FailoverMode | None = None
    # The maintenance switch: true holds every automatic failover it covers (commit it before planned work).
    hold: StrictBool | None = None


Failover = Annotated[FailoverSection | None, BeforeValidator(_failover_shorthand)]


class Defaults(Section):
    storage: StorageSection | None = None
    swap: SwapSection | None = None
    drbd: DrbdDefaults | None = None
    safety: SafetySection | None = None
    domain: DomainDefaults | None = None
    verify: VerifySection | None = None
    failover: Failover = None


class Guards(Section):
    max_removals_per_revision: Annotated[StrictInt, Field(ge=0, le=1_000_000)] = 1
    allow_mass_delete: StrictBool = False


class ClusterFile(Section):
    cluster: Name
    nodes: dict[Name, NodeSpec] = Field(min_length=1)
    defaults: Defaults = Defaults()
    guards: Guards = Guards()


def _incident(value: str) -> str:
    if not INCIDENT_RE.fullmatch(value):
        raise SettingError(f"{value!r} is not a split-brain incident id",
                           "copy it from `reconciler status` or the log, e.g. sb-0123456789ab")
    return value


Incident = Annotated[StrictStr, AfterValidator(_incident)]


class SplitBrainRecoverySection(Section):
    """Resolve one split brain of this VM: the node named ``discard`` drops its changes and takes the other's."""

    incident: Incident
    discard: Name


MAX_PROVISION_TIMEOUT = 24 * 3600


class ProvisionSection(Section):
    """How the VM's filesystem is filled once before its domain first starts (docs/desired-state.md).

    ``provisioner`` names a command configured on the node (never a command from the repository: that would
    be root code in dom0 for everyone who can push); ``image`` is a tar archive or a directory on the node,
    under an image root the node allows. ``attempt`` is raised to retry after a failed attempt."""

    provisioner: Name | None = None
    image: Path | None = None
    attempt: Annotated[StrictInt, _within(1, MAX_PROVISION_ATTEMPT, "the attempt is recorded in the XFS label, which "
                                          "holds 12 characters", "count attempts from 1")] = 1
    timeout: Annotated[StrictInt, _within(60, MAX_PROVISION_TIMEOUT, "a provisioning is killed after this many "
                                          "seconds", "give seconds, e.g. 1800")] = 1800


class VmFile(Section):
    id: Annotated[StrictInt, Field(ge=0, le=999999)]
    name: Name | None = None
    names: NamesSection | None = None
    nodes: tuple[Name, ...]
    primary: Name
    lifecycle: Lifecycle = "present"
    confirm_delete: Annotated[StrictStr, _length_at_most(255, "it must equal the VM's name")] | None = None
    suspended: StrictBool = False
    storage: StorageSection | None = None
    swap: SwapSection | None = None
    drbd: DrbdSection
    safety: SafetySection | None = None
    filesystem: FilesystemChoice | None = None
    provision: ProvisionSection | None = None
    domain: DomainSection | None = None
    split_brain_recovery: SplitBrainRecoverySection | None = None
    verify: VerifySection | None = None
    failover: Failover = None
