"""DRBD's part of an observation pass: the kernel's resources, with the split-brain handler's records.

DRBD 9 answers ``drbdsetup status``; DRBD 8.4 needs no command (``/proc/drbd`` and the owned ``.res`` files
name its minors, sysfs their sizes). The observer runs :class:`DrbdFacts` in its registered order
(:data:`reconciler.backends.providers.FACT_PROVIDERS`); the last look reads the resources again through
:func:`observe_drbd_resource` (one resource) or :func:`observe_drbd` and :func:`with_split_brain_markers`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from reconciler.backends.drbd import drbd9, paths, procdrbd, show, utils_version
from reconciler.backends.drbd import splitbrain_markers as splitbrain
from reconciler.backends.drbd.conf import drbd_layout
from reconciler.core.facts import CommandRunner, FreshContext, NodeFacts, PassContext, failure, file_problem, missing
from reconciler.core.parse_error import ParseError
from reconciler.host.base import CommandResult, Host, HostFileError
from reconciler.host.replay import ReplayError
from reconciler.model.observed import DrbdState, OwnedFile, ToolStatus
from reconciler.names import check_name


def observe_drbd(run: CommandRunner, host: Host, files: tuple[OwnedFile, ...]) -> tuple[ToolStatus, DrbdState]:
    """``/proc/drbd``, then on DRBD 9 ``drbdsetup status``; DRBD 8.4 needs no command (see below)."""
    try:
        proc, version = _kernel(host)
    except _NoKernel as exc:
        return exc.status, DrbdState()
    if not version.startswith("9."):
        return _observe_drbd84(proc, version, host, files)
    return _status9(run(drbd9.STATUS_ARGV), version)


def observe_drbd_resource(run: CommandRunner, host: Host, name: str,
                          files: Callable[[], tuple[OwnedFile, ...]]) -> tuple[ToolStatus, DrbdState]:
    """DRBD's state of resource ``name`` alone: the last look before a step on it. DRBD 9 answers
    ``drbdsetup status NAME`` (a resource that is not up is absent from the state, as in a full look); DRBD 8.4
    reads ``/proc/drbd`` and the owned files (``files``, read only then) as a full look does."""
    try:
        proc, version = _kernel(host)
    except _NoKernel as exc:
        return exc.status, DrbdState()
    if not version.startswith("9."):
        status, state = _observe_drbd84(proc, version, host, files())
    else:
        result = run(drbd9.status_argv(name))
        if (result.returncode == drbd9.EXIT_NO_SUCH_RESOURCE and not result.timed_out
                and drbd9.no_such_resource(name, result.stderr)):
            return ToolStatus(name="drbd", state="available", version=version), DrbdState(kernel_version=version)
        status, state = _status9(result, version)
    return status, state.model_copy(update={"resources": tuple(r for r in state.resources if r.name == name)})


def _status9(status: CommandResult, version: str) -> tuple[ToolStatus, DrbdState]:
    if status.not_found:
        return missing("drbd", status, version), DrbdState(kernel_version=version)
    if not status.ok:
        return ToolStatus(name="drbd", state="failed", version=version, detail=failure(status)), \
            DrbdState(kernel_version=version)
    try:
        resources = drbd9.parse_status_json(status.stdout)
    except ParseError as exc:
        return ToolStatus(name="drbd", state="failed", version=version, detail=str(exc)), \
            DrbdState(kernel_version=version)
    return ToolStatus(name="drbd", state="available", version=version), \
        DrbdState(kernel_version=version, resources=tuple(resources))


class _NoKernel(Exception):
    def __init__(self, status: ToolStatus) -> None:
        super().__init__(status.detail)
        self.status = status


def _kernel(host: Host) -> tuple[str, str]:
    """``/proc/drbd`` and the kernel module's version; raises :class:`_NoKernel` with the status that says why not."""
    try:
        proc = host.read_file(procdrbd.PROC_DRBD_PATH)
    except HostFileError as exc:
        raise _NoKernel(ToolStatus(name="drbd", state="failed",
                                   detail=file_problem(exc, "read", procdrbd.PROC_DRBD_PATH))) from exc
    if proc is None:
        raise _NoKernel(ToolStatus(name="drbd", state="missing",
                                   detail=f"no DRBD kernel module loaded ({procdrbd.PROC_DRBD_PATH} is absent)"))
    try:
        version = procdrbd.parse_version(proc)
    except ParseError as exc:
        raise _NoKernel(ToolStatus(name="drbd", state="failed", detail=str(exc))) from exc
    if version is None:
        raise _NoKernel(ToolStatus(name="drbd", state="failed",
                                   detail=f"{procdrbd.PROC_DRBD_PATH} has no 'version:' line"))
    return proc, version


def _observe_drbd84(proc: str, version: str, host: Host,
                    files: tuple[OwnedFile, ...]) -> tuple[ToolStatus, DrbdState]:
    """DRBD 8.4 shows minors only; the owned ``.res`` files name them (no command needed). /proc/drbd has no
    sizes: each device's size comes from sysfs (a file read, not a command)."""
    configs = [(f.path, f.content) for f in files
               if (f.path.endswith(paths.CONFIG_SUFFIX) or f.path == paths.TOP_CONFIG) and f.content is not None]
    try:
        layout = drbd_layout(configs, host.node)
        peers = {resource: ",".join(names) for resource, names in layout.peer_names.items() if names}
        state = procdrbd.to_drbd_state(procdrbd.parse_proc_drbd(proc), layout.minor_to_resource, peers)
    except ParseError as exc:
        return ToolStatus(name="drbd", state="failed", version=version, detail=str(exc)), \
            DrbdState(kernel_version=version)
    problems: list[str] = []
    resources = tuple(res.model_copy(update={"devices": tuple(
        dev.model_copy(update={"size_kib": _drbd84_size_kib(host, dev.minor, problems)}) for dev in res.devices)})
        for res in state.resources)
    status = ToolStatus(name="drbd", state="available", version=version, detail="; ".join(problems) or None)
    return status, state.model_copy(update={"resources": resources})


def _drbd84_size_kib(host: Host, minor: int, problems: list[str]) -> int | None:
    """The device's size from ``/sys/devices/virtual/block/drbdN/size`` (512-byte sectors); None when unknown.

    The real path, not /sys/block/drbdN: that is a symlink, and the host seam never follows one."""
    path = procdrbd.sysfs_size_path(minor)
    try:
        text = host.read_file(path)
    except HostFileError as exc:
        problems.append(file_problem(exc, "read", path))
        return None
    if text is None:
        return None
    try:
        return procdrbd.parse_sysfs_size(text, path) // 2
    except ParseError as exc:
        problems.append(str(exc))
        return None


def _read_split_brain_markers(host: Host) -> tuple[tuple[splitbrain.SplitBrainMarker, ...], list[str]]:
    """The markers DRBD's split-brain handler left (files, no command); an unreadable one is reported."""
    markers: list[splitbrain.SplitBrainMarker] = []
    problems: list[str] = []
    try:
        names = host.list_dir(splitbrain.MARKER_DIR)
    except HostFileError as exc:
        return (), [file_problem(exc, "list", splitbrain.MARKER_DIR)]
    except ReplayError:
        return (), []  # a capture made before markers were read on a Connecting resource: none, as then
    for name in names:
        if not name.endswith(splitbrain.MARKER_SUFFIX):
            continue
        path = posixpath.join(splitbrain.MARKER_DIR, name)
        try:
            text = host.read_file(path)
            if text is not None:
                markers.append(splitbrain.parse_marker(text, path))
        except (HostFileError, ParseError, ValueError) as exc:
            problems.append(f"unreadable split-brain marker: {exc}")
    return tuple(markers), problems


def with_split_brain_markers(host: Host, status: ToolStatus, state: DrbdState) -> tuple[ToolStatus, DrbdState]:
    """DRBD's state with the split-brain handler's records applied. Markers only matter while a connection is
    down: StandAlone after a split brain, or Connecting again while one is being resolved (the peer's record
    names the incident until both sides connect); a healthy node reads none."""
    if all(c.connection_state == "Connected" for r in state.resources for c in r.connections):
        return status, state
    markers, marker_problems = _read_split_brain_markers(host)
    state = splitbrain.apply_markers(state, markers)
    if marker_problems:
        status = status.model_copy(update={"detail": "; ".join(marker_problems)})
    return status, state


def with_two_primaries(run: CommandRunner, status: ToolStatus, state: DrbdState) -> tuple[ToolStatus, DrbdState]:
    """Each resource's runtime ``allow-two-primaries`` (one ``drbdsetup show`` for all, only when one is up): what
    tells a live migration's open window from a closed one. Unknown (None) when it cannot be read, which is
    reported and holds every step of a migration."""
    if status.state != "available" or not state.resources:
        return status, state
    try:
        result = run(show.SHOW_ARGV)
    except ReplayError:
        return status, state  # a capture made before the option was read: unknown, as then
    problem = ""
    allowed: dict[str, bool] = {}
    if not result.ok:
        problem = f"the runtime allow-two-primaries is unknown: {failure(result)}"
    else:
        try:
            allowed = show.parse_two_primaries(result.stdout)
        except ParseError as exc:
            problem = f"the runtime allow-two-primaries is unknown: {exc}"
    if problem:
        detail = "; ".join(p for p in (status.detail, problem) if p)
        return status.model_copy(update={"detail": detail}), state
    resources = tuple(r.model_copy(update={"two_primaries_allowed": allowed.get(r.name, False)})
                      for r in state.resources)
    return status, state.model_copy(update={"resources": resources})


class DrbdFacts:
    """DRBD's resources (kernel state, split-brain markers), and drbd-utils' probed version as its own tool."""

    name = "drbd"

    def read(self, context: PassContext, facts: NodeFacts) -> None:
        status, state = with_split_brain_markers(context.host, *observe_drbd(context.run, context.host, context.files))
        status, state = with_two_primaries(context.run, status, state)
        facts.tools += [status, context.versions.status(utils_version.VERSION_PROBE.name) or utils_version.NOT_PROBED]
        facts.drbd = state

    def read_fresh(self, context: FreshContext, facts: NodeFacts) -> ToolStatus:
        """The resources alone (the owned files too: DRBD 8.4 names its minors there), with the split-brain
        handler's records; no version is asked."""
        status, facts.drbd = with_split_brain_markers(context.host,
                                                      *observe_drbd(context.run, context.host, context.files()))
        return status

    def read_named(self, context: FreshContext, facts: NodeFacts, names: tuple[str, ...]) -> ToolStatus:
        """One resource (``names``' only entry; more read everything): ``drbdsetup status NAME`` on DRBD 9."""
        if len(names) != 1:
            return self.read_fresh(context, facts)
        status, facts.drbd = with_split_brain_markers(context.host, *observe_drbd_resource(
            context.run, context.host, check_name(names[0], "DRBD resource"), context.files))
        return status
