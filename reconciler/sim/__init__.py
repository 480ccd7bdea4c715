"""A simulated cluster of Xen + DRBD + LVM nodes behind the host seam.

``reconciler.sim.host.SimHost(directory, node)`` answers the command lines the reconciler runs with what
the real tools print; the state lives in ``directory`` (:mod:`reconciler.sim.state`), the simulated
programs register in :mod:`reconciler.sim.commands`, faults are injected with :mod:`reconciler.sim.faults`.
"""
