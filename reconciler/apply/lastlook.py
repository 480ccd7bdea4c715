"""The gate's last word: right before a step, read afresh what the step depends on and ask the gate again.

A plan may be seconds or minutes old when its step comes up (earlier steps ran, a resync moved on, the peer
changed its role, someone typed a command). The rules are those of :mod:`reconciler.core.safety`; this
module only gathers the fresh facts they need, with a few read-only commands for the few kinds that need
them (``reconciler.core.action_registry`` lists each kind's checks). Signature probes run in the executor, which
combines them with the crash journal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.backends.registry import DEFAULT_BACKENDS
from reconciler.core.action_registry import spec
from reconciler.core.actions import Action
from reconciler.core.facts import file_problem
from reconciler.core.parse_error import ParseError
from reconciler.core.provisioning import unused_argv
from reconciler.core.safety import (
    FENCED_TAKEOVER,
    dm_adoption_refusal,
    dm_ownership_refusal,
    lv_adoption_refusal,
    lv_ownership_refusal,
    parse_generation_ids,
    parse_mounts,
    promotion_verdict,
    split_brain_recovery_refusal,
    start_domain_refusal,
)
from reconciler.core.seams import Hypervisor, ListedDomain, Replicator
from reconciler.host.base import Host, HostFileError
from reconciler.model.observed import DmDevice, DrbdResourceState, LogicalVolume
from reconciler.model.status import ActionResult
from reconciler.names import check_name
from reconciler.observe.observer import Observer
from reconciler.ownership import LV_TAG, dm_uuid

GI_TIMEOUT = 30.0
# `reconciler helper unused` is a Python start: seconds on a real node, over 30 s on an emulated one.
UNUSED_TIMEOUT = 120.0
# /proc/mounts is a symlink (to self/mounts) and the host seam never follows a final symlink.
MOUNTS_FILE = "/proc/self/mounts"


@dataclass(frozen=True)
class Stop:
    """The step must not run now: ``result`` is refused or waiting, ``reason`` says why."""

    result: ActionResult
    reason: str
    attempts: int = 1


def _peer_primaries(resource: DrbdResourceState) -> list[str]:
    """The peers that are Primary for ``resource`` as this node sees them."""
    return [c.peer_name for c in resource.connections if c.peer_role == "Primary"]


def _unproven_mounts(domain: str, problem: str) -> Stop:
    return Stop("refused", f"starting {domain} refused: cannot prove that its disks are not mounted in dom0 "
                           f"({problem})")


class LastLook:
    def __init__(self, host: Host, observer: Observer, replicator: Replicator = DEFAULT_BACKENDS.replicator,
                 hypervisor: Hypervisor = DEFAULT_BACKENDS.hypervisor) -> None:
        self.host = host
        self.observer = observer
        self.replicator = replicator
        self.hypervisor = hypervisor

    def check(self, action: Action) -> Stop | None:
        for check in spec(action.kind).prechecks:
            if check == "forced-promotion":
                stop = self._forced_promotion(action)
            elif check == "promotion":
                stop = self._promotion(action)
            elif check == "not-mounted":
                stop = self._not_mounted(action)
            elif check == "dm-ours":
                stop = self._dm_ours(action)
            elif check == "lv-ours":
                stop = self._lv_ours(action)
            elif check == "dm-adoptable":
                stop = self._dm_adoptable(action)
            elif check == "lv-adoptable":
                stop = self._lv_adoptable(action)
            elif check == "split-brain-incident":
                stop = self._split_brain_incident(action)
            elif check == "quorum-lost":
                stop = self._quorum_lost(action)
            elif check == "provisionable":
                stop = self._provisionable(action)
            elif check == "unused":
                stop = self._unused(action)
            elif check == "migration-window":
                stop = self._migration_window(action)
            elif check == "sole-instance":
                stop = self._sole_instance(action)
            else:  # "signatures": probed by the executor together with the crash journal
                stop = None
            if stop is not None:
                return stop
        return None

    def _resource(self, action: Action) -> tuple[DrbdResourceState | None, str]:
        name = check_name(action.key.split(":", 1)[1], "DRBD resource")
        status, state = self.observer.observe_drbd_resource(name)
        if status.state != "available":
            return None, f"cannot re-read DRBD's state right before the step ({status.state}: {status.detail})"
        resource = state.resource(name)
        return resource, "" if resource is not None else f"DRBD resource {name} is not up any more"

    def _forced_promotion(self, action: Action) -> Stop | None:
        resource, problem = self._resource(action)
        if resource is None:
            return Stop("refused", f"forced promotion refused: {problem}")
        name = resource.name
        shown = self.host.run(self.replicator.generation_ids_argv(name), timeout=GI_TIMEOUT)
        gi = parse_generation_ids(shown.stdout) if shown.ok else None
        if gi is None:
            return Stop("refused", f"forced promotion refused: cannot read generation identifiers ({shown.describe()})")
        verdict = promotion_verdict(resource, quorum_mechanism=action.safety == "quorum", gi=gi, check_gi=True,
                                    diskless=frozenset(action.diskless_peers))
        if verdict.kind != "promote-force-initial":
            why = verdict.waiting or "a normal promotion applies"
            return Stop("refused", f"forced promotion refused: DRBD no longer shows a brand-new pair ({why})")
        if verdict.refused:
            return Stop("refused", verdict.refused)
        if verdict.waiting:
            return Stop("waiting", verdict.waiting)
        return None

    def _promotion(self, action: Action) -> Stop | None:
        resource, problem = self._resource(action)
        if resource is None:
            return Stop("waiting", f"promotion waits: {problem}")
        if resource.role == "Primary":
            return None  # already there; `drbdadm primary` is a no-op
        verdict = promotion_verdict(resource, quorum_mechanism=action.safety == "quorum",
                                    handler_fences=action.safety == FENCED_TAKEOVER,
                                    diskless=frozenset(action.diskless_peers))
        if verdict.kind != "promote":
            return Stop("waiting", "DRBD now shows a brand-new pair; the next pass decides the initial promotion")
        if verdict.waiting:
            return Stop("waiting", verdict.waiting)
        return None

    def _migration_window(self, action: Action) -> Stop | None:
        """A live migration's promotion or ``xl migrate`` runs only with the window still open here and the pair
        still Connected with UpToDate data on both sides (the peer may have aborted, or the link gone); ``xl
        migrate`` also only while the peer is still Primary."""
        status, state = self.observer.observe_drbd()
        if status.state != "available":
            return Stop("waiting", f"cannot re-read DRBD's state right before the step ({status.state})")
        if action.kind == "promote-for-migration":
            resource = state.resource(check_name(action.key.split(":", 1)[1], "DRBD resource"))
        else:  # migrate-domain names the DRBD device of the domain it moves
            minors = {int(d.removeprefix("/dev/drbd")) for d in action.devices
                      if d.startswith("/dev/drbd") and d.removeprefix("/dev/drbd").isdigit()}
            resource = next((r for r in state.resources if {d.minor for d in r.devices} & minors), None)
        if resource is None:
            return Stop("waiting", f"the DRBD resource of {action.key} is not up right before the step")
        opened, why = self.replicator.migration_window_open(self.host, resource.name)
        if not opened:
            return Stop("waiting", f"the live migration window of {resource.name} is not open here any more "
                                   f"({why})")
        if not self.replicator.peer_can_take_over(resource) or any(d.disk_state != "UpToDate"
                                                                   for d in resource.devices):
            return Stop("waiting", f"{resource.name} is no longer Connected with UpToDate data on both sides")
        if action.kind == "migrate-domain" and not any(c.peer_role == "Primary" for c in resource.connections):
            # The target may have given way (an abort, the fence handler) since the plan saw it Primary.
            return Stop("waiting", f"the peer is no longer Primary for {resource.name}: the domain is not moved")
        return None

    def _sole_instance(self, action: Action) -> Stop | None:
        """No peer Primary for the domain's resource (the domain may run there: a live migration's window
        allows two Primaries) and none of xl's live migration names here. Whatever cannot be read refuses:
        a start that cannot prove it makes the only instance is not made."""
        domain = action.key.split(":", 1)[1]
        refused = f"starting {domain} refused"
        if action.resource:
            name = check_name(action.resource, "DRBD resource")
            status, state = self.observer.observe_drbd_resource(name)
            if status.state != "available":
                return Stop("refused", f"{refused}: cannot re-read DRBD's state of {name} to prove that no peer is "
                                       f"Primary ({status.state}: {status.detail}); refused to be safe")
            resource = state.resource(name)
            if resource is None:
                return Stop("refused", f"{refused}: DRBD resource {name} is not up right before the start")
            primaries = _peer_primaries(resource)
            if primaries:
                return Stop("refused", f"{refused}: peer {', '.join(primaries)} is Primary for {name} (the "
                                       "domain may run there)")
        rows = self._domains(refused, proving="list the domains to prove that no live migration of it is under way "
                                              "here", suffix="; refused to be safe")
        if isinstance(rows, Stop):
            return rows
        names = set(self.hypervisor.migration_names(domain))
        shown = sorted(r.name for r in rows if r.name in names)
        if shown:
            return Stop("refused", f"{refused}: xl shows {', '.join(shown)} here (a live migration of it is under "
                                   "way or was left undefined)")
        return None

    def _domains(self, refused: str, *, proving: str, suffix: str = "") -> Sequence[ListedDomain] | Stop:
        """The domains the hypervisor lists here, or a refusal when the listing cannot be run or read: a check that
        cannot see the domains proves nothing. ``refused`` starts the reason, ``proving`` says what the listing
        was to prove, ``suffix`` ends it."""
        listing = self.host.run(self.hypervisor.watch_argv(), timeout=GI_TIMEOUT)
        if not listing.ok:
            return Stop("refused", f"{refused}: cannot {proving} ({listing.describe()}){suffix}")
        try:
            return self.hypervisor.listed_domains(listing.stdout)
        except ParseError as exc:
            return Stop("refused", f"{refused}: cannot read the domain list ({exc}){suffix}")

    def _quorum_lost(self, action: Action) -> Stop | None:
        """The DRBD devices the action names (``devices``: /dev/drbdN) must still lack quorum here; a reboot
        also needs their resource still Primary."""
        what = {"reboot-node": "rebooting the node", "quorum-demote": f"demoting {action.key.split(':', 1)[1]}"}.get(
            action.kind, f"destroying {action.vm}'s domain")
        status, state = self.observer.observe_drbd()
        if status.state != "available":
            return Stop("waiting", f"cannot re-read DRBD's state right before {what} ({status.state}: {status.detail})")
        minors = {int(d.removeprefix("/dev/drbd")) for d in action.devices if d.removeprefix("/dev/drbd").isdigit()}
        held = [(r, d) for r in state.resources for d in r.devices if d.minor in minors]
        if not any(d.quorum is False for _, d in held):
            left = {"reboot-node": "the node is not rebooted", "quorum-demote": "the resource stays Primary"}.get(
                action.kind, "the domain is left running")
            return Stop("waiting", f"DRBD shows quorum on {', '.join(action.devices) or 'no device'} again: {left}")
        if action.kind == "reboot-node" and not any(r.role == "Primary" for r, _ in held):
            return Stop("waiting", f"{action.key.split(':', 1)[1]} is no longer Primary: the node is not rebooted")
        return None

    def _split_brain_incident(self, action: Action) -> Stop | None:
        """The incident is named again from this node's record as DRBD's handler left it now and the peer's
        record the plan saw (which only a new split brain changes, and a new one rewrites this node's record
        too: a record that changed since the plan is a new incident)."""
        what = "discarding this node's changes" if action.kind == "discard-my-data" else "connecting to the survivor"
        resource, problem = self._resource(action)
        if resource is None:
            return Stop("refused", f"{what} refused: {problem}")
        named = self.replicator.split_brain_incident(resource, action.identity)
        refusal = split_brain_recovery_refusal(resource.name, wanted=named.wanted, split=resource.split_brain,
                                               incident=named.incident, redetected=named.redetected)
        return Stop("refused", f"{what} refused right before the step: {refusal}") if refusal else None

    def _not_mounted(self, action: Action) -> Stop | None:
        domain = action.key.split(":", 1)[1]
        # Fail closed: without dom0's mount table nothing proves that none of the domain's disks is mounted.
        try:
            text = self.host.read_file(MOUNTS_FILE)
        except HostFileError as exc:
            return _unproven_mounts(domain, file_problem(exc, "read", MOUNTS_FILE))
        if text is None:
            return _unproven_mounts(domain, f"{MOUNTS_FILE} does not exist")
        refusal = start_domain_refusal(domain, action.devices, parse_mounts(text))
        return Stop("refused", refusal) if refusal else None

    def _provisionable(self, action: Action) -> Stop | None:
        """Primary here, no peer Primary (a domain can run only where its disk is Primary), no domain of the VM
        here: the filesystem is mounted only where nothing else can be using it."""
        device = action.devices[0]
        status, state = self.observer.observe_drbd()
        if status.state != "available":
            return Stop("waiting", f"provisioning waits: cannot re-read DRBD's state ({status.state}: {status.detail})")
        minor = device.removeprefix("/dev/drbd")
        resource = next((r for r in state.resources if any(str(d.minor) == minor for d in r.devices)), None)
        if resource is None:
            return Stop("waiting", f"provisioning waits: {device} is not up")
        if resource.role != "Primary":
            return Stop("refused", f"provisioning {device} refused: this node is {resource.role}, not Primary "
                                   "(a Secondary's device is never mounted)")
        primaries = _peer_primaries(resource)
        if primaries:
            return Stop("refused", f"provisioning {device} refused: peer {', '.join(primaries)} is Primary too "
                                   "(the domain may run there)")
        rows = self._domains(f"provisioning {device} refused", proving=f"prove that {action.vm} is not running")
        if isinstance(rows, Stop):
            return rows
        names = {action.vm, *self.hypervisor.migration_names(action.vm)}
        if any(r.name in names or r.name.startswith(f"{action.vm}--") for r in rows):
            return Stop("refused", f"provisioning {device} refused: the domain {action.vm} exists on this node "
                                   "(provisioning never runs while the domain runs)")
        return None

    def _unused(self, action: Action) -> Stop | None:
        """Each device opens exclusively: mounted in no mount namespace (a private one included), claimed by
        nothing. ``/proc/mounts`` shows only this process's namespace; the kernel's exclusive open sees all."""
        devices = tuple(d for d in action.devices if d.startswith("/dev/"))
        if not devices:
            return None
        if action.kind == "start-domain" and not any(d.startswith("provision-fs@") for d in action.depends_on):
            # Only provisioning mounts where /proc/mounts cannot see; for any other VM the not-mounted check
            # suffices, and the helper's start is not paid (a Python start takes over 30 s on an emulated CPU).
            return None
        checked = self.host.run(unused_argv(devices), timeout=UNUSED_TIMEOUT)
        if checked.ok:
            return None
        what = f"starting {action.vm}" if action.kind == "start-domain" else f"{action.kind} of {action.vm}"
        return Stop("refused", f"{what} refused: cannot prove {', '.join(devices)} unused by an exclusive open "
                               f"({checked.describe()})")

    def _fresh_dm(self) -> tuple[DmDevice, ...] | Stop:
        status, devices = self.observer.observe_dm()
        if status.state != "available":
            return Stop("refused", f"cannot re-read device-mapper right before the step ({status.state}: "
                                   f"{status.detail})")
        return devices

    def _fresh_lv(self, vg: str, name: str) -> LogicalVolume | Stop | None:
        status, lvs = self.observer.observe_named_lvs(((vg, name),))
        if status.state != "available":
            return Stop("refused", f"cannot re-read LVM right before the step ({status.state}: {status.detail})")
        return next((v for v in lvs if v.vg == vg and v.name == name), None)

    def _dm_ours(self, action: Action) -> Stop | None:
        name = action.key.split(":", 1)[1]
        devices = self._fresh_dm()
        if isinstance(devices, Stop):
            return devices
        device = next((d for d in devices if d.name == name), None)
        refusal = dm_ownership_refusal(name, device, dm_uuid(name))
        return Stop("refused", refusal) if refusal else None

    def _lv_ours(self, action: Action) -> Stop | None:
        vg, name = action.key.split(":", 1)[1].split("/", 1)
        lv = self._fresh_lv(vg, name)
        if isinstance(lv, Stop):
            return lv
        refusal = lv_ownership_refusal(vg, name, lv, uuid=action.identity, tag=LV_TAG)
        return Stop("refused", refusal) if refusal else None

    def _dm_adoptable(self, action: Action) -> Stop | None:
        """``identity`` of an adopt-stripe action is the desired table the live one must still equal."""
        name = action.key.split(":", 1)[1]
        devices = self._fresh_dm()
        if isinstance(devices, Stop):
            return devices
        device = next((d for d in devices if d.name == name), None)
        refusal = dm_adoption_refusal(name, device, uuid=dm_uuid(name), table=action.identity, devices=devices)
        return Stop("refused", refusal) if refusal else None

    def _lv_adoptable(self, action: Action) -> Stop | None:
        """``identity`` of an adopt-lv action is ``uuid bytes stripes extent``: what the plan saw and wants."""
        vg, name = action.key.split(":", 1)[1].split("/", 1)
        uuid, size, stripes, extent = action.identity.split()
        lv = self._fresh_lv(vg, name)
        if isinstance(lv, Stop):
            return lv
        refusal = lv_adoption_refusal(vg, name, lv, uuid=uuid if uuid != "-" else "", size_bytes=int(size),
                                      stripes=int(stripes), extent_bytes=int(extent) or None, tag=LV_TAG)
        return Stop("refused", refusal) if refusal else None
