"""After a step failed: clear what it left half-made, where a fresh look proves that nothing is lost.

Through the node's :class:`~reconciler.core.seams.Hypervisor` (its listing); what follows is Xen's case.
``xl create`` destroys the domain it was building when it fails by itself, but not when it is killed: by
its timeout or by systemd's ``TimeoutStartSec`` on the domain's unit. The domain then stays, paused,
holding its disks, and its name makes every later start fail ("already exists"). Right after a failed
start, a domain of that name that is paused and has never had a moment of CPU time is that remnant: its
guest never ran an instruction and wrote nothing, so destroying it is what ``xl`` itself would have done.
It is destroyed by its id, so a domain that takes the name meanwhile is not touched. A domain that ran,
even briefly, is never touched here, and neither is one left by a daemon that died during ``xl create``
(no failed step of its own to clear up after): health reports those instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.core.action_registry import spec
from reconciler.core.actions import Action
from reconciler.core.parse_error import ParseError
from reconciler.core.seams import Hypervisor
from reconciler.host.base import Host
from reconciler.model.observed import never_ran
from reconciler.names import check_name

LIST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Undone:
    message: str  # to append to the failure; "" when there was nothing to undo
    ran: tuple[tuple[str, ...], ...] = ()


def undo_failed(host: Host, action: Action, hypervisor: Hypervisor) -> Undone:
    """Run the failed action's undo commands if its kind's check allows it; ``hypervisor`` lists the domains."""
    if not action.undo or spec(action.kind).undo_check != "unstarted-domain":
        return Undone("")
    name = check_name(action.key.split(":", 1)[1], "domain")
    listing = host.run(hypervisor.watch_argv(), timeout=LIST_TIMEOUT)
    if not listing.ok:
        return Undone(f"; could not look for a half-made {name} afterwards: {listing.describe()}")
    try:
        rows = hypervisor.listed_domains(listing.stdout)
    except ParseError as exc:
        return Undone(f"; could not look for a half-made {name} afterwards ({exc})")
    row = next((r for r in rows if r.name == name), None)
    if row is None or not never_ran(row.state, row.time_s):
        return Undone("")
    ran: list[tuple[str, ...]] = []
    for command in action.undo:
        argv = tuple(str(row.domid) if word == name else word for word in command.argv)
        ran.append(argv)
        result = host.run(argv, timeout=command.timeout_s)
        if not result.ok:
            return Undone(f"; {name} (domain {row.domid}) was left paused and never ran, and {result.describe()} "
                          "failed: the next start fails until it is gone", tuple(ran))
    return Undone(f"; the half-made {name} (domain {row.domid}, paused, never ran) was destroyed, as xl does when "
                  "a start fails: the next pass starts it again", tuple(ran))
