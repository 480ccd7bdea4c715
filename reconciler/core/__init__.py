"""What every backend and the planner share: the seams, the actions, their gate and their order.

Below the backend packages (:mod:`reconciler.backends`) and above ``host`` and ``model``: the hypervisor and
replicator protocols and the fact-provider protocol (:mod:`~reconciler.core.seams`,
:mod:`~reconciler.core.facts`), the action types, their registry and their order, the safety gate, the plan's
model, the observed index, the peer's view, the VM builder every planner adds its steps through, the parse
error and JSON helper every parser raises and uses, and the metric family builders every module that exports
metrics uses (:mod:`~reconciler.core.metric_families`). A backend imports from here, never from ``plan`` or
``observe``; so the gate and the ordering stay one for all backends.
"""
