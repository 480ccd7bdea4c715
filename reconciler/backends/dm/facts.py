"""Device-mapper's part of an observation pass: every device with its table, from two commands.

The observer runs this provider in its registered order (:data:`reconciler.backends.providers.FACT_PROVIDERS`);
the last look before a step reads the devices again through :func:`observe_dm`.
"""

from __future__ import annotations

from reconciler.backends.dm import parse as dmsetup
from reconciler.core.facts import CommandRunner, FreshContext, NodeFacts, PassContext, VersionProbe, failure, missing
from reconciler.core.parse_error import ParseError
from reconciler.host.base import CommandResult
from reconciler.model.observed import DmDevice, ToolStatus


def _read_version(result: CommandResult) -> ToolStatus:
    # Without device-mapper in the kernel `dmsetup version` exits 1 yet still names its library.
    version = None if result.not_found else dmsetup.parse_dmsetup_version(result.stdout)
    if version is None:
        return ToolStatus(name="dmsetup", state="failed", detail=result.describe())
    return ToolStatus(name="dmsetup", state="available", version=version)


VERSION_PROBE = VersionProbe(name="dmsetup", binary="dmsetup", argv=dmsetup.VERSION_ARGV, read=_read_version)


def observe_dm(run: CommandRunner, version: str | None) -> tuple[ToolStatus, tuple[DmDevice, ...]]:
    """``dmsetup info``, then ``dmsetup table``, merged per device."""
    info = run(dmsetup.INFO_ARGV)
    if info.not_found:
        return missing("dmsetup", info, version), ()
    if not info.ok:
        return ToolStatus(name="dmsetup", state="failed", version=version, detail=failure(info)), ()
    table = run(dmsetup.TABLE_ARGV)
    if not table.ok:
        return ToolStatus(name="dmsetup", state="failed", version=version, detail=failure(table)), ()
    try:
        devices = dmsetup.merge(dmsetup.parse_info(info.stdout), dmsetup.parse_table(table.stdout))
    except ParseError as exc:
        return ToolStatus(name="dmsetup", state="failed", version=version, detail=str(exc)), ()
    return ToolStatus(name="dmsetup", state="available", version=version), tuple(devices)


class DmFacts:
    """Device-mapper devices with their tables."""

    name = "dm"

    def read(self, context: PassContext, facts: NodeFacts) -> None:
        status, devices = observe_dm(context.run, context.versions.version(VERSION_PROBE.name))
        facts.tools.append(status)
        facts.dm_devices = devices

    def read_fresh(self, context: FreshContext, facts: NodeFacts) -> ToolStatus:
        """The devices with their tables (the same two commands), before a step on a stripe."""
        status, facts.dm_devices = observe_dm(context.run, context.versions().version(VERSION_PROBE.name))
        return status

    def read_named(self, context: FreshContext, facts: NodeFacts, names: tuple[str, ...]) -> ToolStatus:
        """All devices: a stripe's step needs its legs' holders too, which only the whole table shows."""
        return self.read_fresh(context, facts)
