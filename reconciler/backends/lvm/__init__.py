"""LVM: the report command lines and their parser, the fact provider, the LV commands and their planning.

Everything the reconciler knows of lvm2 is here; the safety gate that refuses a shrink or the removal of an
LV without the project's tag stays shared (:mod:`reconciler.core.safety`).
"""
