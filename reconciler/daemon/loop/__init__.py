"""The pass and the loop that runs it: one pass (guards, load, observe, plan, apply, status), the daemon
that wires its threads around that loop, and what a pass keeps between runs (gates, moves, escalations,
online verify).

Kept apart from the threads that only wake it (:mod:`reconciler.daemon.schedule`), from talking to and
fencing the peer (:mod:`reconciler.daemon.peers`) and from what operators run on a node outside a pass
(:mod:`reconciler.daemon.node`): this package imports those, never the other way round.
"""
