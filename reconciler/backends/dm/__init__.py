"""Device-mapper: ``dmsetup``'s report and table parser, the fact provider, the stripe commands and planning.

Everything the reconciler knows of ``dmsetup`` is here; the safety gate that refuses a changed geometry or the
removal of a device without the project's uuid stays shared (:mod:`reconciler.core.safety`).
"""
