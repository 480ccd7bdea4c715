"""DRBD through ``drbdadm``: the :class:`~reconciler.core.seams.Replicator` the reconciler has always used."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from reconciler.backends.drbd import (
    conf,
    config_meaning,
    events2,
    fence_handler,
    outdate,
    paths,
    quorum,
    render,
    splitbrain_handler,
)
from reconciler.backends.drbd.drbd9 import VERIFY_STATES
from reconciler.backends.drbd.health import drbd_conditions
from reconciler.backends.drbd.plan import plan_drbd
from reconciler.backends.drbd.plan import plan_role as plan_drbd_role
from reconciler.backends.drbd.quorum import plan_quorum_loss
from reconciler.backends.drbd.splitbrain_markers import current_uuid, incident_id, parse_identity
from reconciler.backends.drbd.splitbrain_plan import plan_split_brain
from reconciler.core.peer_view import PeerView
from reconciler.core.render_settings import ResourceFileSettings
from reconciler.core.seams import (
    Argv,
    EventFolder,
    FenceRequest,
    FenceVerdict,
    OutdateOutcome,
    PlanBuilder,
    ReplicaFencing,
    ReplicaIdentity,
    SplitBrainIncident,
    SplitBrainRecord,
)
from reconciler.host.base import Host
from reconciler.model.desired import DesiredDrbd, DesiredVm, DrbdHost, DrbdVersion
from reconciler.model.observed import DrbdResourceState, DrbdState, OwnedFile
from reconciler.model.status import Condition
from reconciler.names import check_name


def drbdadm(verb: str, resource: str, *options: str) -> Argv:
    # Options follow the verb: drbdadm accepts them there and it reads like the manual.
    return ("drbdadm", verb, *options, check_name(resource, "DRBD resource"))


# How the rendered resource file says that the fence-peer handler may power an unreachable peer off.
STONITH_POLICY = "fencing resource-and-stonith;"


class DrbdReplicator:
    name = "drbd"
    tool = "drbd"

    def config_path(self, resource: str) -> str:
        return paths.config_path(resource)

    def render_config(self, settings: ResourceFileSettings, version: DrbdVersion, hosts: Sequence[DrbdHost],
                      minor: int, backing_device: str, *, allow_two_primaries: bool) -> str:
        return render.render_drbd(settings, version, hosts, minor, backing_device,
                                  allow_two_primaries=allow_two_primaries)

    def create_metadata_argv(self, resource: str) -> Argv:
        # --force answers drbdadm's question only; the gate's signature probe has decided before.
        return drbdadm("create-md", resource, "--force")

    def up_argv(self, resource: str) -> Argv:
        return drbdadm("up", resource)

    def down_argv(self, resource: str) -> Argv:
        return drbdadm("down", resource)

    def adjust_argv(self, resource: str) -> Argv:
        return drbdadm("adjust", resource)

    def resize_argv(self, resource: str) -> Argv:
        return drbdadm("resize", resource)

    def promote_argv(self, resource: str, *, force: bool = False) -> Argv:
        return drbdadm("primary", resource, *(("--force",) if force else ()))

    def demote_argv(self, resource: str) -> Argv:
        return drbdadm("secondary", resource)

    def allow_two_primaries_argv(self, resource: str, *, allow: bool) -> Argv:
        # net-options changes the running connection only; the next `drbdadm adjust` or `up` reads the file (no).
        return drbdadm("net-options", resource, f"--allow-two-primaries={'yes' if allow else 'no'}")

    def force_demote_argv(self, resource: str) -> Argv:
        # drbdsetup, as drbd-reactor's promoter does: DRBD 9.1.7 and later demote an opened device with --force.
        return ("drbdsetup", "secondary", "--force", check_name(resource, "DRBD resource"))

    def connect_argv(self, resource: str, *, discard_my_data: bool = False) -> Argv:
        return drbdadm("connect", resource, *(("--discard-my-data",) if discard_my_data else ()))

    def disconnect_argv(self, resource: str) -> Argv:
        return drbdadm("disconnect", resource)

    def verify_argv(self, resource: str) -> Argv:
        return drbdadm("verify", resource)

    def generation_ids_argv(self, resource: str) -> Argv:
        return drbdadm("show-gi", resource)

    def dry_run_adjust_argv(self, resource: str) -> Argv:
        # drbdadm's -d (print, do not run) goes before the verb: a global option, not one of adjust's.
        return ("drbdadm", "-d", "adjust", check_name(resource, "DRBD resource"))

    def watch_argv(self) -> Argv:
        return events2.EVENTS2_NOW_ARGV

    def follow_argv(self) -> Argv:
        return events2.EVENTS2_STREAM_ARGV

    def state_signature(self, dump: str) -> str:
        return events2.state_signature(dump)

    def read_state(self, dump: str) -> DrbdState | None:
        return events2.read_state(dump)

    def event_folder(self) -> EventFolder:
        return events2.EventFolder()

    def verify_progress(self, state: DrbdResourceState) -> tuple[bool, float | None]:
        verifying = [pd for c in state.connections for pd in c.peer_devices if pd.replication_state in VERIFY_STATES]
        percents = [pd.verify_percent for pd in verifying if pd.verify_percent is not None]
        return bool(verifying), min(percents) if percents else None

    def primary_without_quorum(self, vm: DesiredVm, state: DrbdResourceState | None) -> bool:
        return quorum.primary_without_quorum(vm, state)

    def peer_can_take_over(self, state: DrbdResourceState) -> bool:
        return any(c.connection_state == "Connected" and c.peer_devices
                   and all(p.peer_disk_state == "UpToDate" for p in c.peer_devices)
                   for c in state.connections)

    def hand_written(self, text: str, resource: str) -> bool:
        return config_meaning.hand_written_resource(text, resource)

    def defined_elsewhere(self, files: Iterable[OwnedFile], key: str, path: str) -> str:
        return config_meaning.defined_elsewhere(files, key, path)

    def config_differences(self, current: str, desired: str, source: str) -> list[str]:
        return config_meaning.drbd_differences(current, desired, source)

    def config_identities(self, files: Iterable[OwnedFile], node: str) -> tuple[Mapping[str, ReplicaIdentity], str]:
        return conf.owned_identities(files, node)

    def outdate(self, host: Host, resource: str,
                peer_keeps: tuple[bool, str] = outdate.NO_RECORD) -> tuple[OutdateOutcome, str]:
        return outdate.outdate(host, resource, peer_keeps)

    def migration_window_open(self, host: Host, resource: str) -> tuple[bool, str]:
        return outdate.window_open(host, resource)

    def local_view(self, host: Host, minor: int) -> tuple[str, str]:
        return outdate.local_view(host, minor)

    @property
    def fence_handler(self) -> str:
        return render.DEFAULT_FENCE_PEER

    def fencing(self, desired: DesiredDrbd) -> ReplicaFencing:
        # From the rendered file: a resource whose settings name another fence-peer handler does not run ours.
        return ReplicaFencing(handler=render.DEFAULT_FENCE_PEER in desired.config_text,
                              stonith=STONITH_POLICY in desired.config_text)

    def fence_request(self, env: Mapping[str, str]) -> FenceRequest:
        return fence_handler.request_from_env(env)

    def fence_exit_code(self, verdict: FenceVerdict) -> int:
        return fence_handler.exit_code(verdict)

    def record_split_brain(self, host: Host, env: Mapping[str, str], now: Callable[[], float]) -> SplitBrainRecord:
        return splitbrain_handler.record_split_brain(host, env, now, self.generation_ids_argv)

    def split_brain_incident(self, state: DrbdResourceState, identity: str) -> SplitBrainIncident:
        # The identity is splitbrain_plan's: the incident, the peer's record and this node's record at the plan.
        wanted, peer_record, planned_record = parse_identity(identity)
        record = state.split_brain_record
        incident = incident_id(state.name, record, peer_record) if state.split_brain else None
        return SplitBrainIncident(wanted=wanted, incident=incident,
                                  redetected=current_uuid(record) != current_uuid(planned_record))

    def plan_split_brain(self, b: PlanBuilder, running: bool) -> bool:
        return plan_split_brain(b, running)

    def plan_quorum_loss(self, b: PlanBuilder, state: DrbdResourceState) -> bool:
        return plan_quorum_loss(b, state)

    def plan_resource(self, b: PlanBuilder, desired: DesiredDrbd) -> None:
        plan_drbd(b, desired)

    def plan_role(self, b: PlanBuilder, desired: DesiredDrbd, *, want_primary: bool,
                  domain_running: bool) -> str | None:
        return plan_drbd_role(b, desired, want_primary=want_primary, domain_running=domain_running)

    def health_conditions(self, vm: DesiredVm, state: DrbdResourceState, peer: PeerView | None,
                          hostname: str) -> list[Condition]:
        return drbd_conditions(vm, state, peer, hostname)
