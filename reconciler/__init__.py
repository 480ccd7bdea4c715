"""GitOps reconciler for Xen + DRBD + LVM clusters."""

__version__ = "0.1.0"
