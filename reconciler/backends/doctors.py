"""The registered backends' doctor checks (:class:`reconciler.core.doctor.BackendDoctor`), in order: each
slot's checks, and the tools, run in this order.

Apart from :mod:`reconciler.backends.registry` so that what plans or observes does not load the doctor's
checks. A new backend registers its ``DOCTOR`` here.
"""

from __future__ import annotations

from reconciler.backends.dm import doctor as dm_doctor
from reconciler.backends.drbd import doctor as drbd_doctor
from reconciler.backends.lvm import doctor as lvm_doctor
from reconciler.backends.xen import doctor as xen_doctor
from reconciler.core.doctor import BackendDoctor

DOCTORS: tuple[BackendDoctor, ...] = (lvm_doctor.DOCTOR, dm_doctor.DOCTOR, drbd_doctor.DOCTOR, xen_doctor.DOCTOR)
