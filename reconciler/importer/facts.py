"""What `reconciler import` learned from one node: plain values, stored as JSON beside the written repository
so that importing the second node merges with the first."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass
class Finding:
    """Something the desired state cannot express, or must be done by hand, and where it came from."""

    source: str  # file:line, or the command that showed it
    message: str
    kind: str = "unsupported"  # unsupported | old-definition | cluster-manager | service | note

    def format(self) -> str:
        return f"{self.source}: [{self.kind}] {self.message}"


@dataclass
class DomainFacts:
    name: str
    config_path: str
    type: str = "pv"
    memory_mib: int = 0
    maxmem_mib: int | None = None
    vcpus: int = 1
    maxvcpus: int | None = None
    bootloader: str | None = None
    kernel: str | None = None
    ramdisk: str | None = None
    extra: str | None = None
    vifs: list[dict[str, str]] = field(default_factory=list)


@dataclass
class VmFacts:
    resource: str
    name: str
    id: int
    minor: int
    port: int
    defined_at: str
    hosts: list[str] = field(default_factory=list)
    layout: str = "dm-striped"
    data_lv: str = ""
    data_vgs: list[str] = field(default_factory=list)
    stripes: int = 1
    chunk_sectors: int | None = None
    data_size: int = 0
    swap_lv: str | None = None
    swap_vgs: list[str] = field(default_factory=list)
    swap_size: int | None = None
    protocol: str | None = None
    al_extents: int | None = None
    on_io_error: str | None = None
    degr_wfc_timeout: int | None = None
    wfc_timeout: int | None = None
    fencing_policy: str | None = None
    options: dict[str, dict[str, str]] = field(default_factory=dict)
    domain: DomainFacts | None = None
    running_here: bool = False
    drbd_role: str | None = None

    def comparable(self) -> dict[str, object]:
        """Everything both nodes must agree on (what differs per node left out)."""
        values = asdict(self)
        for key in ("running_here", "drbd_role", "defined_at"):
            values.pop(key)
        if values["domain"] is not None:
            values["domain"].pop("config_path")
        return values


@dataclass
class NodeFacts:
    node: str
    address: str | None
    drbd_version: str | None
    volume_groups: list[str]
    peer_addresses: dict[str, str] = field(default_factory=dict)
    vms: list[VmFacts] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> NodeFacts:
        data = json.loads(text)
        vms = []
        for vm in data.pop("vms"):
            domain = vm.pop("domain")
            vms.append(VmFacts(**vm, domain=DomainFacts(**domain) if domain else None))
        findings = [Finding(**f) for f in data.pop("findings")]
        return cls(**data, vms=vms, findings=findings)
