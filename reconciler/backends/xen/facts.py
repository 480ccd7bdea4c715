"""Xen's part of an observation pass: the domains and the hypervisor, from three ``xl`` commands.

The observer runs :class:`XenFacts` in its registered order (:data:`reconciler.backends.providers.FACT_PROVIDERS`);
a missing or failing ``xl`` is a tool status, and then no domain is reported (unknown, never none).
"""

from __future__ import annotations

from reconciler.backends.xen import xl
from reconciler.core.facts import NodeFacts, PassContext, failure, missing
from reconciler.core.parse_error import ParseError
from reconciler.model.observed import ToolStatus


class XenFacts:
    """Domains (``xl list``, ``xl list -l``) and the hypervisor (``xl info``)."""

    name = "xen"

    def read(self, context: PassContext, facts: NodeFacts) -> None:
        run = context.run
        listing = run(xl.XL_LIST_ARGV)
        if listing.not_found:
            facts.tools.append(missing("xl", listing))
            return
        if not listing.ok:
            facts.tools.append(ToolStatus(name="xl", state="failed", detail=failure(listing)))
            return
        long_listing = run(xl.XL_LIST_LONG_ARGV)
        if not long_listing.ok:
            facts.tools.append(ToolStatus(name="xl", state="failed", detail=failure(long_listing)))
            return
        info = run(xl.XL_INFO_ARGV)
        if not info.ok:
            facts.tools.append(ToolStatus(name="xl", state="failed", detail=failure(info)))
            return
        try:
            domains = xl.merge_domains(xl.parse_xl_list(listing.stdout), xl.parse_xl_list_long(long_listing.stdout))
            host_info = xl.parse_xl_info(info.stdout)
        except ParseError as exc:
            facts.tools.append(ToolStatus(name="xl", state="failed", detail=str(exc)))
            return
        facts.tools.append(ToolStatus(name="xl", state="available", version=host_info.xen_version))
        facts.domains = tuple(domains)
        facts.host = host_info
