"""The hypervisor and replicator seams: what the planner and the loop ask of Xen and DRBD, as protocols.

:mod:`reconciler.core.seams` defines :class:`~reconciler.core.seams.Hypervisor` and
:class:`~reconciler.core.seams.Replicator`; :mod:`reconciler.backends.xen.hypervisor` and
:mod:`reconciler.backends.drbd.replicator` implement them, and :mod:`reconciler.backends.registry` registers them.
A backend here builds argv lists and reads states; running them stays with apply and the daemon, through
the host seam, behind the shared safety gate and ordering.
"""
