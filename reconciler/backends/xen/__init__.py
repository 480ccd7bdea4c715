"""Xen: the hypervisor behind the :class:`~reconciler.core.seams.Hypervisor` protocol, through ``xl``.

The meaning of an ``xl`` domain config (for a takeover) and the domains' metrics live here; starting a domain
only after its DRBD resource is promoted, and stopping it before the demotion, stays with the shared ordering.
"""
