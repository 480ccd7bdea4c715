"""Xen's own step of one VM: its ``xl`` config file, written or rewritten (drift), or taken over.

A config rewritten under a running domain takes effect at its next start; the domain steps themselves go
through the :class:`~reconciler.core.seams.Hypervisor` protocol (:mod:`reconciler.core.domain_steps`).
"""

from __future__ import annotations

from reconciler.core.seams import PlanBuilder
from reconciler.model.desired import DesiredDomain


def plan_xen_config(b: PlanBuilder, domain: DesiredDomain) -> str | None:
    drifted = b.observed.file(domain.config_path) not in (None, domain.config_text)
    written = b.owned_file("write-xen-config", domain.key, domain.config_path, domain.config_text, b.hypervisor)
    if drifted and b.observed.domain(domain.name) is not None:
        b.note("info", domain.key, f"{domain.name} is running: the rewritten config takes effect at its next start")
    return written
