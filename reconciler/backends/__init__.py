"""One package per backend: what the reconciler knows of LVM, device-mapper, DRBD and Xen, each in one place.

Each package holds its tool's argv and parsers, its fact provider, its commands and its planning (DRBD and Xen
also their metrics, ``metrics.py``):
:mod:`~reconciler.backends.lvm`, :mod:`~reconciler.backends.dm`, :mod:`~reconciler.backends.drbd` (its
:class:`~reconciler.core.seams.Replicator`) and :mod:`~reconciler.backends.xen` (its
:class:`~reconciler.core.seams.Hypervisor`); :mod:`reconciler.backends.registry` registers them. A backend
builds actions and argv lists and reads states; running them stays with apply and the daemon, through the
host seam, behind the shared safety gate and ordering (:mod:`reconciler.core`). Adding a backend is one new
package here and its registration.
"""
