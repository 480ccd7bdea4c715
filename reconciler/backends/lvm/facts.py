"""LVM's part of an observation pass: volume groups and logical volumes, from two reports.

The observer runs this provider in its registered order (:data:`reconciler.backends.providers.FACT_PROVIDERS`);
a missing or failing lvm2 is a tool status, and then no volume is reported (unknown, never none). The last look
before a step reads the LVs it acts on again through :func:`observe_named_lvs`.
"""

from __future__ import annotations

from reconciler.backends.lvm import parse as lvm
from reconciler.core.facts import CommandRunner, FreshContext, NodeFacts, PassContext, VersionProbe, failure, missing
from reconciler.core.parse_error import ParseError
from reconciler.host.base import CommandResult
from reconciler.model.observed import LogicalVolume, ToolStatus


def _read_version(result: CommandResult) -> ToolStatus:
    version = None
    if not (result.not_found or result.timed_out):
        try:
            version = lvm.parse_lvm_version(result.stdout)
        except ParseError:
            version = None
    if version is None:
        return ToolStatus(name="lvm", state="failed", detail=result.describe())
    return ToolStatus(name="lvm", state="available", version=version)


# lvm2's ECMD_FAILED: also the exit of a report that named an LV it could not find.
EXIT_LV_NOT_FOUND = 5

VERSION_PROBE = VersionProbe(name="lvm", binary="lvm", argv=lvm.VERSION_ARGV, read=_read_version)


def observe_lvs(run: CommandRunner, version: str | None) -> tuple[ToolStatus, tuple[LogicalVolume, ...]]:
    """The LVs alone (one ``lvs``), read afresh: the last look before a step on an LV."""
    lvs = run(lvm.LVS_ARGV)
    if lvs.not_found:
        return missing("lvm", lvs, version), ()
    if not lvs.ok:
        return ToolStatus(name="lvm", state="failed", version=version, detail=failure(lvs)), ()
    try:
        volumes = lvm.parse_lvs(lvs.stdout)
    except ParseError as exc:
        return ToolStatus(name="lvm", state="failed", version=version, detail=str(exc)), ()
    return ToolStatus(name="lvm", state="available", version=version), volumes


def observe_named_lvs(run: CommandRunner, version: str | None,
                      names: tuple[tuple[str, str], ...]) -> tuple[ToolStatus, tuple[LogicalVolume, ...]]:
    """The LVs ``names`` ((vg, lv) pairs) alone, read afresh with one ``lvs VG/LV ...``: the last look before a
    step on an LV, at a cost that does not grow with the node's other LVs.

    An LV that does not exist is absent from the answer: lvm2 then exits 5 and names it in a "Failed to find
    logical volume" line. Any other failure, or an exit 5 that does not account for every LV asked for, is a
    failed status (unknown, never "absent")."""
    lvs = run(lvm.lvs_named_argv(names))
    if lvs.not_found:
        return missing("lvm", lvs, version), ()
    wanted = set(names)
    absent = lvm.lvs_not_found(lvs.stderr) if lvs.returncode == EXIT_LV_NOT_FOUND and not lvs.timed_out else set()
    if not lvs.ok and not absent:
        return ToolStatus(name="lvm", state="failed", version=version, detail=failure(lvs)), ()
    try:
        volumes = tuple(v for v in lvm.parse_lvs(lvs.stdout) if (v.vg, v.name) in wanted)
    except ParseError as exc:
        return ToolStatus(name="lvm", state="failed", version=version, detail=str(exc)), ()
    reported = {(v.vg, v.name) for v in volumes}
    if not absent <= wanted or (not lvs.ok and reported | absent != wanted):
        return ToolStatus(name="lvm", state="failed", version=version,
                          detail=f"lvs did not account for every LV asked for ({failure(lvs)})"), ()
    return ToolStatus(name="lvm", state="available", version=version), volumes


class LvmFacts:
    """Volume groups and logical volumes: ``vgs``, then ``lvs``."""

    name = "lvm"

    def read(self, context: PassContext, facts: NodeFacts) -> None:
        version = context.versions.version(VERSION_PROBE.name)
        run = context.run
        vgs = run(lvm.VGS_ARGV)
        if vgs.not_found:
            facts.tools.append(missing("lvm", vgs, version))
            return
        if not vgs.ok:
            facts.tools.append(ToolStatus(name="lvm", state="failed", version=version, detail=failure(vgs)))
            return
        lvs = run(lvm.LVS_ARGV)
        if not lvs.ok:
            facts.tools.append(ToolStatus(name="lvm", state="failed", version=version, detail=failure(lvs)))
            return
        try:
            groups = lvm.parse_vgs(vgs.stdout)
            volumes = lvm.parse_lvs(lvs.stdout)
        except ParseError as exc:
            facts.tools.append(ToolStatus(name="lvm", state="failed", version=version, detail=str(exc)))
            return
        facts.tools.append(ToolStatus(name="lvm", state="available", version=version))
        facts.volume_groups = groups
        facts.logical_volumes = volumes

    def read_fresh(self, context: FreshContext, facts: NodeFacts) -> ToolStatus:
        """The LVs alone (one ``lvs``), before a step on an LV."""
        status, facts.logical_volumes = observe_lvs(context.run, context.versions().version(VERSION_PROBE.name))
        return status

    def read_named(self, context: FreshContext, facts: NodeFacts, names: tuple[str, ...]) -> ToolStatus:
        """The LVs ``names`` (``VG/LV``) alone, with one ``lvs VG/LV ...``."""
        pairs = tuple((vg, lv) for vg, _, lv in (name.partition("/") for name in names))
        status, facts.logical_volumes = observe_named_lvs(context.run, context.versions().version(VERSION_PROBE.name),
                                                          pairs)
        return status
