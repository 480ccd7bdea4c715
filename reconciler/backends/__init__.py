"""The hypervisor and replicator seams: what the planner and the loop ask of Xen and DRBD, as protocols.

:mod:`reconciler.backends.base` defines :class:`~reconciler.backends.base.Hypervisor` and
:class:`~reconciler.backends.base.Replicator`; :mod:`reconciler.backends.xen` and
:mod:`reconciler.backends.drbd` implement them, and :mod:`reconciler.backends.registry` registers them.
A backend here builds argv lists and reads states; running them stays with apply and the daemon, through
the host seam, behind the shared safety gate and ordering.
"""
