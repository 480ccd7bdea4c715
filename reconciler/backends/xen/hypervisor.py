"""Xen through ``xl``: the :class:`~reconciler.core.seams.Hypervisor` the reconciler has always used."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from reconciler.backends.xen import config_meaning, migrate, paths, render, xl
from reconciler.backends.xen.plan import plan_xen_config
from reconciler.core.render_settings import DomainFileSettings
from reconciler.core.seams import Argv, ListedDomain, PlanBuilder
from reconciler.model.desired import DesiredDomain
from reconciler.model.observed import OwnedFile
from reconciler.names import check_name


class XenHypervisor:
    name = "xen"
    tool = "xl"

    def config_path(self, domain: str) -> str:
        return paths.config_path(domain)

    def render_config(self, settings: DomainFileSettings, disks: Sequence[str]) -> str:
        return render.render_xen(settings, disks)

    def start_argv(self, domain: str) -> Argv:
        return ("xl", "create", self.config_path(domain))

    def shutdown_argv(self, domain: str) -> Argv:
        return ("xl", "shutdown", "-w", check_name(domain, "domain"))

    def destroy_argv(self, domain: str) -> Argv:
        return ("xl", "destroy", check_name(domain, "domain"))

    def set_memory_argv(self, domain: str, mib: int) -> Argv:
        return ("xl", "mem-set", check_name(domain, "domain"), f"{mib}m")

    def set_vcpus_argv(self, domain: str, vcpus: int) -> Argv:
        return ("xl", "vcpu-set", check_name(domain, "domain"), str(vcpus))

    def migrate_argv(self, domain: str, target: str, transport: str) -> Argv:
        return migrate.migrate_argv(domain, target, transport)

    def migration_names(self, domain: str) -> tuple[str, str]:
        return migrate.migration_names(domain)

    def migration_undefined(self, output: str) -> bool:
        return migrate.undefined_state(output)

    def defined_elsewhere(self, files: Iterable[OwnedFile], key: str, path: str) -> str:
        # `xl create` reads the one file it is given: no other file can define the domain for it.
        return ""

    def watch_argv(self) -> Argv:
        # Xen has no event stream the daemon can follow without a library: `xl list` is polled.
        return ("xl", "list")

    def listed_domains(self, listing: str) -> Sequence[ListedDomain]:
        return xl.parse_xl_list(listing)

    def state_signature(self, listing: str) -> str:
        """Name and state of each domain from ``xl list`` (ids, memory, vcpus and CPU time left out)."""
        rows = []
        for line in listing.splitlines()[1:]:
            words = line.split()
            if len(words) >= 6:
                rows.append(f"{' '.join(words[:-5])} {words[-2]}")
        return "\n".join(sorted(rows))

    def hand_written(self, text: str, domain: str) -> bool:
        return config_meaning.hand_written_domain(text, domain)

    def config_differences(self, current: str, desired: str, source: str) -> list[str]:
        return config_meaning.xl_differences(current, desired, source)

    def plan_config(self, b: PlanBuilder, domain: DesiredDomain) -> str | None:
        return plan_xen_config(b, domain)
