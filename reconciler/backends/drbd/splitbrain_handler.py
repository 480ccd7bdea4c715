"""DRBD's ``split-brain`` handler: record the incident where the observer sees it.

DRBD runs the handler on both nodes when it finds that both sides wrote while disconnected and the
``after-sb-*`` policies (``disconnect`` in every rendered config) leave the decision to an operator. The
record names the resource, the peer, the time and this node's generation identifiers at detection, which
together name the incident; the observer flags the resource as split brain while its connection stays
StandAlone (:mod:`reconciler.backends.drbd.splitbrain_markers`). Run through the replicator
(:meth:`reconciler.core.seams.Replicator.record_split_brain`) by ``reconciler split-brain``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from reconciler.backends.drbd.splitbrain_markers import SplitBrainMarker, marker_path, marker_text
from reconciler.core.safety import parse_generation_ids
from reconciler.core.seams import Argv
from reconciler.host.base import Host
from reconciler.names import check_name, name_problem

SHOW_GI_TIMEOUT = 10.0
_GI_LINE = re.compile(r"^\s*[0-9A-Fa-f]{16}(?::[0-9A-Fa-f]{16})+")


def peer_from_env(env: Mapping[str, str]) -> str:
    """The peer's name: DRBD 9 gives its node id and a name per id; 8.4 gives the names of the peers."""
    node_id = env.get("DRBD_PEER_NODE_ID", "")
    candidates = [env.get(f"DRBD_NODE_ID_{node_id}", "") if node_id.isdigit() else "",
                  env.get("DRBD_PEER", ""), *env.get("DRBD_PEERS", "").split()[:1]]
    return next((c for c in candidates if c and name_problem(c) is None), "")


def record_split_brain(host: Host, env: Mapping[str, str], now: Callable[[], float],
                       generation_ids_argv: Callable[[str], Argv]) -> SplitBrainMarker:
    resource = check_name(env.get("DRBD_RESOURCE", ""), "DRBD resource (DRBD_RESOURCE)")
    shown = host.run(generation_ids_argv(resource), timeout=SHOW_GI_TIMEOUT)
    generation = ""
    if shown.ok and parse_generation_ids(shown.stdout) is not None:
        generation = next((m.group(0).strip() for m in map(_GI_LINE.match, shown.stdout.splitlines()) if m), "")
    marker = SplitBrainMarker(resource=resource, peer=peer_from_env(env), detected_at=now(), generation=generation)
    host.write_file(marker_path(resource), marker_text(marker), 0o640)
    return marker
