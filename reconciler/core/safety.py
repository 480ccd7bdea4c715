"""The safety gate: the only place that decides whether a destructive or role-changing step may run.

The planner calls these rules with the observation it plans from, and the executor calls the same rules
again right before the step with what it has just read from the node (a signature, DRBD's state,
generation identifiers, mounts, a device's owner); no rule has a copy elsewhere. Every function returns a
reason (a sentence for the operator) or None, or a verdict. A refused action is never run and the
resource is left alone; other resources still converge.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from reconciler.core.provisioning import LABEL_DONE, LABEL_NEW, tried_attempt
from reconciler.model.base import Frozen
from reconciler.model.observed import DmDevice, DrbdResourceState, LogicalVolume, Signature
from reconciler.sizes import format_size

DEFAULT_EXTENT = 4 * 1024 * 1024


def lv_shrink_refusal(name: str, desired_bytes: int, observed_bytes: int, extent_bytes: int | None,
                      stripes: int = 1) -> str | None:
    """LVM rounds sizes up to whole extents (times the stripe count); anything below that is a shrink."""
    granule = (extent_bytes or DEFAULT_EXTENT) * max(stripes, 1)
    rounded = -(-desired_bytes // granule) * granule
    if observed_bytes > rounded:
        return (f"shrinking {name} from {format_size(observed_bytes)} to {format_size(desired_bytes)} is refused: "
                "lvreduce destroys whatever lives past the new end (and shrinks an inactive LV without asking)")
    return None


def stripe_shrink_refusal(name: str, desired_sectors: int, observed_sectors: int) -> str | None:
    if desired_sectors < observed_sectors:
        return (f"shrinking the stripe {name} from {observed_sectors} to {desired_sectors} sectors is refused: "
                "DRBD metadata and data past the new end would be cut off")
    return None


SignatureVerdict = Literal["run", "done", "refuse", "redo"]


class Verdict(Frozen):
    decision: SignatureVerdict
    reason: str


_WANTED = {"make-fs": "xfs", "make-swap": "swap", "create-md": "drbd"}


def signature_verdict(kind: str, device: str, signature: Signature | None, *, journal_names_device: bool,
                      unfinished: bool | None = None) -> Verdict:
    """Decide from a fresh ``blkid -p`` probe whether mkfs, mkswap or create-md may write to ``device``.

    ``signature`` None means the probe itself failed (ambiguous result, unreadable device): refuse.
    A device showing exactly what the action would have made is done, unless it is an XFS filesystem whose
    creation never finished. Anything else is someone's data: refuse.

    ``mkfs.xfs`` writes its superblock first with ``sb_inprogress`` set and clears it with its last write; the
    kernel refuses to mount it meanwhile, so such a filesystem never held anything and is made again, whoever
    started it. ``unfinished`` is that flag as ``xfs_db`` read it, None when it could not be read. The crash
    journal alone proves nothing: a daemon killed right after its mkfs returned leaves the same entry as one
    killed midway, and the finished filesystem may have been used since (a failover ran the VM on the peer).
    Where the journal names the device and the flag cannot be read, the step is refused rather than guessed.
    ``mkswap`` writes its whole header in one write after wiping the old signatures, so a swap signature means
    it finished, and its journal entry changes nothing.
    """
    wanted = _WANTED[kind]
    if signature is None:
        return Verdict(decision="refuse",
                       reason=f"blkid -p could not tell what {device} holds; refusing to write over it")
    if signature.type is None:
        return Verdict(decision="run", reason=f"{device} carries no signature")
    if kind == "make-fs" and signature.type == wanted:
        if unfinished:
            whose = "our own interrupted make-fs" if journal_names_device else "an mkfs.xfs that never finished"
            return Verdict(decision="redo", reason=f"{device} shows xfs from {whose} (sb_inprogress set: it was "
                                                   "never mountable); redoing it")
        if unfinished is None and journal_names_device:
            return Verdict(decision="refuse", reason=f"{device} shows xfs from our own make-fs, and xfs_db could not "
                                                     "tell whether mkfs.xfs finished; refusing to write over it")
    if signature.type == wanted:
        what = "DRBD metadata (never recreated)" if kind == "create-md" else f"a {wanted} signature"
        return Verdict(decision="done", reason=f"{device} already carries {what}")
    verb = {"make-fs": "mkfs.xfs", "make-swap": "mkswap", "create-md": "drbdadm create-md"}[kind]
    return Verdict(decision="refuse", reason=f"{device} carries a {signature.type} signature; {verb} would destroy it "
                                             "(wipe it by hand if it is really unwanted)")


def beneath_verdict(kind: str, target_decision: SignatureVerdict, device: str, signature: Signature | None,
                    above: str) -> Verdict | None:
    """A device beneath the one being written (a leg of a stripe): never written itself, but a signature on it
    is someone's data that the write through the layers above would destroy. ``blkid`` cannot see it through
    the stripe (only leg 0's start lines up with the stripe's start), so every leg is probed on its own.

    Legs may carry only what this project's own layers put there: pieces of the DRBD metadata above them,
    and, while an interrupted mkfs of ours is redone, that filesystem's start. Returns a refusal or None.
    """
    if target_decision not in ("run", "redo"):
        return None
    if signature is None:
        return Verdict(decision="refuse", reason=f"blkid -p could not tell what {device} (beneath {above}) holds; "
                                                 "refusing to write over it")
    if signature.type is None:
        return None
    expected = {"make-fs": {"drbd"} | ({"xfs"} if target_decision == "redo" else set())}.get(kind, set())
    if signature.type in expected:
        return None
    verb = {"make-fs": "mkfs.xfs", "make-swap": "mkswap", "create-md": "drbdadm create-md"}[kind]
    return Verdict(decision="refuse", reason=f"{device} beneath {above} carries a {signature.type} signature; "
                                             f"{verb} on {above} would destroy it (wipe it by hand if it is really "
                                             "unwanted)")


ProvisionDecision = Literal["run", "done", "failed", "leave", "refuse"]


class ProvisionVerdict(Frozen):
    decision: ProvisionDecision
    reason: str
    tried: int | None = None  # the attempt the label records as started, when it records one


def provision_verdict(device: str, signature: Signature | None, attempt: int, *,
                      journal_names_device: bool = False, made_here: bool = True) -> ProvisionVerdict:
    """Whether provisioning may fill the filesystem on ``device`` now, from a fresh ``blkid -p`` (its label is
    the record, see :mod:`reconciler.core.provisioning`). Emptiness is checked once it is mounted, by the helper.

    Only a filesystem this project made for provisioning (``rprov-new``) or one whose earlier attempt is
    superseded by the desired state's higher ``attempt`` is filled; a finished one never again; one whose
    attempt is the current one (or a later one) failed or was interrupted and waits for a new statement. A
    filesystem without one of these labels is the guest's (it owns the device and may relabel or remake it,
    or it was made before ``provision`` was added): it is left alone ("leave"), provisioning does not apply,
    and the domain starts. Only a device whose contents cannot be read, or that holds no filesystem, is
    refused. ``journal_names_device``: the crash journal names
    our own provisioning of this device as unfinished (it only changes the words). ``made_here``: this
    node's record says it made this filesystem for provisioning and has not seen its label move on since;
    without it, ``rprov-new`` (within the guest's reach, or made on the peer before a failover) is filled only
    when the desired state states an attempt above 1.
    """
    if signature is None:
        return ProvisionVerdict(decision="refuse", reason=f"blkid -p could not tell what {device} holds; "
                                                          "not provisioning it")
    if not signature.type:
        return ProvisionVerdict(decision="refuse", reason=f"{device} carries no filesystem; provisioning fills only "
                                                          "an XFS filesystem this project made for it")
    if signature.type != "xfs":
        return ProvisionVerdict(decision="leave", reason=(
            f"{device} carries a signature of type {signature.type}, not a filesystem this project made for "
            "provisioning: it is the guest's, left alone; provisioning does not apply"))
    label = signature.label
    if label == LABEL_DONE:
        return ProvisionVerdict(decision="done", reason=f"{device} is provisioned already (label {LABEL_DONE})")
    if label == LABEL_NEW:
        if not made_here and attempt <= 1:
            return ProvisionVerdict(decision="failed", reason=(
                f"{device} is labelled {LABEL_NEW} but this node has no record of making it for provisioning (made "
                "on the peer before a failover, or labelled so by the guest): not filled until the desired state "
                "names a new attempt (provision: attempt: 2)"))
        return ProvisionVerdict(decision="run", reason=f"{device} was made for provisioning and never filled")
    tried = tried_attempt(label)
    if tried is None:
        return ProvisionVerdict(decision="leave", reason=(
            f"the filesystem on {device} was not made for provisioning (label {label or '(none)'}): it is the "
            "guest's (relabelled by it, or made before provisioning was asked for), left alone, nothing copied "
            f"into it; provisioning does not apply (it fills only a filesystem this project made for it, labelled "
            f"{LABEL_NEW})"))
    if tried >= attempt:
        how = "was interrupted (the crash journal names it)" if journal_names_device else "failed or was interrupted"
        return ProvisionVerdict(decision="failed", tried=tried, reason=(
            f"provisioning attempt {tried} of {device} {how}; it is not retried until the desired state names a "
            f"new attempt (provision: attempt: {tried + 1})"))
    return ProvisionVerdict(decision="run", tried=tried, reason=(
        f"attempt {tried} of {device} failed; the desired state asks for attempt {attempt} (the filesystem must "
        "still be empty)"))


class GenerationIds(Frozen):
    current: int
    bitmap: int
    history: tuple[int, ...]

    @property
    def has_history(self) -> bool:
        # A fresh create-md writes the "just created" UUID (4); bit 0 only records the primary role.
        return (self.current & ~1) not in (0, 4) or self.bitmap != 0 or any(self.history)


_GI_RE = re.compile(r"^\s*([0-9A-Fa-f]{16})((?::[0-9A-Fa-f]{16})+)")


def parse_generation_ids(text: str) -> GenerationIds | None:
    """The first ``current:bitmap:history...`` line of ``drbdadm show-gi``/``get-gi`` output."""
    for line in text.splitlines():
        match = _GI_RE.match(line)
        if match:
            rest = [int(x, 16) for x in match.group(2).split(":")[1:]]
            return GenerationIds(current=int(match.group(1), 16), bitmap=rest[0], history=tuple(rest[1:]))
    return None


def forced_promotion_refusal(resource: DrbdResourceState | None, *, designated_primary: bool,
                             gi: GenerationIds | None = None, check_gi: bool = True,
                             diskless: frozenset[str] = frozenset()) -> str | None:
    """``primary --force`` only for a brand-new pair: connected, both Inconsistent, no history, our node.
    ``diskless``: peers that hold no data by design (a quorum tiebreaker); their disk state says nothing."""
    if not designated_primary:
        return "forced promotion refused: this node is not the designated primary"
    if resource is None:
        return "forced promotion refused: the DRBD resource is not up"
    if not resource.connections or any(c.connection_state != "Connected" for c in resource.connections):
        return "forced promotion refused: the peer is not connected (never forced while disconnected)"
    local = [d.disk_state for d in resource.devices]
    peers = [p.peer_disk_state for c in resource.connections if c.peer_name not in diskless for p in c.peer_devices]
    if not local or any(s != "Inconsistent" for s in local) or not peers or any(s != "Inconsistent" for s in peers):
        return (f"forced promotion refused: both disks must be Inconsistent (local {'/'.join(local) or '?'}, "
                f"peer {'/'.join(peers) or '?'})")
    if check_gi:
        if gi is None:
            return "forced promotion refused: generation identifiers could not be read"
        if gi.has_history:
            return "forced promotion refused: generation identifiers show history; this is not a new pair"
    return None


def promotion_waiting(resource: DrbdResourceState, *, live_migration: bool) -> str | None:
    """Why a normal promotion must wait, or None when the peer is known not to write."""
    for conn in resource.connections:
        if conn.peer_role == "Primary" and not live_migration:
            return f"peer {conn.peer_name} is Primary; promotion waits until it demotes (two primaries are refused)"
    return None


def peer_cannot_write(resource: DrbdResourceState, *, quorum_mechanism: bool) -> bool:
    """True when DRBD itself shows the peer cannot write: connected Secondary, Outdated, or we hold quorum."""
    if not resource.connections:
        return quorum_mechanism and all(d.quorum for d in resource.devices)
    for conn in resource.connections:
        if conn.connection_state == "Connected" and conn.peer_role == "Secondary":
            continue
        if conn.peer_devices and all(p.peer_disk_state == "Outdated" for p in conn.peer_devices):
            continue
        if quorum_mechanism and resource.devices and all(d.quorum for d in resource.devices):
            continue
        return False
    return True


PromotionKind = Literal["promote", "promote-force-initial"]


class PromotionVerdict(Frozen):
    """How the designated primary may become Primary now: ``waiting`` and ``refused`` are reasons ("" = go)."""

    kind: PromotionKind
    waiting: str = ""
    refused: str = ""


_NEVER_FORCED = "brand-new pair: waiting for the peer to connect (never forced while disconnected)"


# The Action.safety of a promotion after an automatic failover under fencing: DRBD itself asks the fence-peer
# handler, and promotes only if it outdated or powered off the lost peer.
FENCED_TAKEOVER = "fencing-takeover"


def promotion_verdict(resource: DrbdResourceState, *, quorum_mechanism: bool,
                      gi: GenerationIds | None = None, check_gi: bool = False,
                      handler_fences: bool = False, diskless: frozenset[str] = frozenset()) -> PromotionVerdict:
    """The one rule for promoting the designated primary, planned and re-checked right before the step.

    A brand-new pair (both disks Inconsistent, connected, no history in the generation identifiers) is
    promoted with ``--force``, which starts the first full sync. Anything else is a normal promotion that
    needs UpToDate data here and proof that the peer is not writing; otherwise it waits.

    ``handler_fences``: an automatic failover under ``resource-and-stonith`` with a power fence. A disconnected
    peer is then no reason to wait: ``drbdadm primary`` (never ``--force``) makes DRBD run the fence-peer handler,
    which answers 7 only after it powered the peer off and saw it off, and DRBD refuses the promotion otherwise.
    """
    local = [d.disk_state for d in resource.devices]
    peers = [p.peer_disk_state for c in resource.connections if c.peer_name not in diskless for p in c.peer_devices]
    connected = bool(resource.connections) and all(c.connection_state == "Connected" for c in resource.connections)
    all_local_inconsistent = bool(local) and all(s == "Inconsistent" for s in local)
    if all_local_inconsistent and (not connected or (peers and all(s == "Inconsistent" for s in peers))):
        if not connected:
            return PromotionVerdict(kind="promote-force-initial", waiting=_NEVER_FORCED)
        refusal = forced_promotion_refusal(resource, designated_primary=True, gi=gi, check_gi=check_gi,
                                           diskless=diskless)
        return PromotionVerdict(kind="promote-force-initial", refused=refusal or "")
    if not local or any(s != "UpToDate" for s in local):
        pct = [p.resync_percent for c in resource.connections for p in c.peer_devices if p.resync_percent is not None]
        detail = f" (resync {pct[0]:.1f}%)" if pct else ""
        return PromotionVerdict(kind="promote", waiting=f"local disk is {'/'.join(local) or 'missing'}{detail}; "
                                                        "promotion needs UpToDate data")
    # Moves are made by shutdown, demote, promote, start: a Primary peer always means waiting here, even
    # where the configuration would allow two primaries (only a live-migration window opens that).
    waiting = promotion_waiting(resource, live_migration=False) or ""
    if not waiting and handler_fences and resource.connections \
            and all(c.connection_state != "Connected" for c in resource.connections):
        return PromotionVerdict(kind="promote")
    if not waiting and not peer_cannot_write(resource, quorum_mechanism=quorum_mechanism):
        states = ", ".join(f"{c.peer_name} {c.connection_state}/{c.peer_role}" for c in resource.connections) or "none"
        waiting = (f"cannot prove the peer is not writing (peer: {states}); unreachable proves nothing: waiting for "
                   "the peer to show Secondary, for fencing to outdate it, or for quorum")
    return PromotionVerdict(kind="promote", waiting=waiting)


def dm_ownership_refusal(name: str, device: DmDevice | None, uuid: str) -> str | None:
    """A dm device is changed or removed only while it carries the project's uuid for that name."""
    if device is None:
        return f"dm device {name} is gone; nothing to change"
    if device.uuid != uuid:
        return (f"dm device {name} has uuid {device.uuid or '(none)'}, not {uuid}: it was not made by this project "
                "and is left alone")
    return None


def lv_ownership_refusal(vg: str, name: str, lv: LogicalVolume | None, *, uuid: str, tag: str) -> str | None:
    """An LV is removed only while it is the very LV the plan saw (same uuid) and carries the project's tag."""
    if lv is None:
        return f"LV {vg}/{name} is gone; nothing to remove"
    if uuid and lv.uuid != uuid:
        return (f"LV {vg}/{name} is now a different LV (uuid {lv.uuid}, planned for {uuid}); refusing to remove "
                "what was not planned")
    if tag not in lv.tags:
        return (f"LV {vg}/{name} does not carry the tag {tag!r}: it was not created by this project and is not "
                f"removed (lvchange --addtag {tag} {vg}/{name} hands it over, if it really should go)")
    return None


def lvm_dm_name(path: str) -> str | None:
    """The dm device name of an LV path (``/dev/vg-a/lv`` -> ``vg--a-lv``) or of ``/dev/mapper/NAME``; None for
    any other word (``/dev/drbd0``, ``/dev/disk/by-id/X``, a relative path, a table's numbers)."""
    parts = path.split("/")
    if len(parts) != 4 or parts[0] or parts[1] != "dev":
        return None
    if parts[2] == "mapper":
        return parts[3]
    return f"{parts[2].replace('-', '--')}-{parts[3].replace('-', '--')}"


def _resolved_table(table: str, devices: Iterable[DmDevice]) -> str:
    """A table with device paths written as ``major:minor``, as the kernel shows it."""
    numbers = {d.name: f"{d.major}:{d.minor}" for d in devices if d.major is not None}
    words = []
    for word in table.split():
        name = lvm_dm_name(word)
        words.append(numbers.get(name, word) if name else word)
    return " ".join(words)


def dm_adoption_refusal(name: str, device: DmDevice | None, *, uuid: str, table: str,
                        devices: Iterable[DmDevice]) -> str | None:
    """A dm device made by hand is taken over (given the project's uuid, its name kept) only while it has no uuid
    at all (device-mapper sets one only once) and its live table is exactly the desired one. Returns a refusal."""
    if device is None:
        return f"dm device {name} is gone; nothing to take over"
    if device.uuid:
        return (f"dm device {name} has uuid {device.uuid}; device-mapper sets a uuid only once, so it cannot become "
                f"{uuid} (it was made by another tool; see docs/import.md)")
    if device.suspended or device.inactive_table:
        return f"dm device {name} is suspended or has an inactive table loaded; it is taken over only when idle"
    known = tuple(devices)
    if _resolved_table(device.table, known) != _resolved_table(table, known):
        return (f"dm device {name} shows the table {device.table!r}, not the desired {table!r}: it is taken over only "
                "when both are equal; change the desired state to match (a difference to resolve by commit)")
    return None


def lv_adoption_refusal(vg: str, name: str, lv: LogicalVolume | None, *, uuid: str, size_bytes: int, stripes: int,
                        extent_bytes: int | None, tag: str) -> str | None:
    """An LV made by hand gets the project's tag only while it is the LV the plan saw, untagged, and of the desired
    size (rounded up to whole extents as lvcreate would) and stripe count. Returns a refusal."""
    if lv is None:
        return f"LV {vg}/{name} is gone; nothing to take over"
    if uuid and lv.uuid != uuid:
        return f"LV {vg}/{name} is now a different LV (uuid {lv.uuid}, planned for {uuid}); not taken over"
    if tag in lv.tags:
        return f"LV {vg}/{name} already carries the tag {tag!r}"
    granule = (extent_bytes or DEFAULT_EXTENT) * max(stripes, 1)
    rounded = -(-size_bytes // granule) * granule
    if lv.size_bytes != rounded:
        return (f"LV {vg}/{name} is {format_size(lv.size_bytes)}, not the desired {format_size(size_bytes)}: it is "
                "taken over only when the sizes match; change the desired size (a difference to resolve by commit)")
    if (lv.stripes or 1) != stripes:
        return f"LV {vg}/{name} has {lv.stripes} stripes, not {stripes}: not taken over"
    return None


def parse_mounts(text: str) -> tuple[str, ...]:
    """Mounted source devices from /proc/mounts (octal escapes such as ``\\040`` decoded)."""
    devices = []
    for line in text.splitlines():
        fields = line.split()
        if fields:
            devices.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[0]))
    return tuple(devices)


def start_domain_refusal(domain: str, disks: Iterable[str], mounted: Iterable[str]) -> str | None:
    """A domain must not start on a device dom0 has mounted: two kernels writing one filesystem."""
    busy = sorted(set(disks) & set(mounted))
    if busy:
        return f"starting {domain} refused: {', '.join(busy)} is mounted in dom0"
    return None


def mass_delete_refusal(count: int, limit: int, *, allowed: bool) -> str | None:
    if count > limit and not allowed:
        return (f"{count} VMs would be removed in this revision, more than the limit of {limit}; "
                "allow it explicitly (--allow-mass-delete, or allow_mass_delete in the repository)")
    return None


def split_brain_recovery_refusal(resource: str, *, wanted: str, split: bool, incident: str | None,
                                 redetected: bool = False) -> str | None:
    """A statement resolving a split brain (``split_brain_recovery``) acts only while the very incident it names
    persists: this node still shows the split brain (StandAlone after DRBD reported it) and both sides' records
    name the same incident. A statement written for one split brain never applies to a later one.
    ``redetected``: right before the step, this node's own record differs from the one the plan saw."""
    if not split:
        return (f"{resource} is not in split brain on this node now: the split_brain_recovery for incident {wanted} "
                "does nothing here")
    if redetected:
        return (f"DRBD reported a split brain of {resource} again since the plan (this node's generation identifiers "
                f"changed): it is no longer incident {wanted}; the next pass names it afresh")
    if incident is None:
        return (f"the split brain of {resource} cannot be named: the peer's record of it is unknown (no peer status, "
                f"or its split-brain handler did not run); the split_brain_recovery for {wanted} waits for it")
    if incident != wanted:
        return (f"{resource} is in split brain incident {incident}, not {wanted}: a statement written for one split "
                f"brain never applies to another (write split_brain_recovery for {incident} to resolve this one)")
    return None
