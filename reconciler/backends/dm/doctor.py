"""Device-mapper's part of ``reconciler doctor``: dmsetup (:class:`reconciler.core.doctor.BackendDoctor`)."""

from __future__ import annotations

from reconciler.core.doctor import BackendDoctor, ToolCheck

DOCTOR = BackendDoctor(tools=(ToolCheck("dmsetup", ("dmsetup", "--version"), r"Library version:\s*(\S+)"),))
