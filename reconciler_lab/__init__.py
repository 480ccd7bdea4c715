"""A two-node lab of real kernels under QEMU: Xen 4.17 with a PV dom0, DRBD 8.4, device-mapper and LVM.

It runs the reconciler's real host path (no simulator) on every node. ``scripts/lab`` is its entry point;
docs/lab.md says what it proves and what it cannot.
"""
