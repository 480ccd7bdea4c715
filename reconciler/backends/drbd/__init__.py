"""DRBD: the replicator behind the :class:`~reconciler.core.seams.Replicator` protocol, and what reads DRBD.

Its config files' parser and their meaning (for a takeover), and its metrics (drbd-reactor's names), live
here; the safety gate that decides whether a promotion or a discard may run stays shared
(:mod:`reconciler.core.safety`).
"""
