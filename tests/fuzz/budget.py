"""The fuzzing budget: a fixed number of examples and a deadline per example, so CI time stays bounded.

Each example must also finish within its deadline: a slow input (an expansion bomb, a quadratic parser)
fails the test instead of quietly eating the CI run. In CI (``CI`` set) the examples are derandomised, so
a run is reproducible and costs the same each time; locally each run explores new inputs.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

CI = bool(os.environ.get("CI"))


def budget(examples: int, deadline_ms: int = 2000) -> settings:
    return settings(max_examples=examples, deadline=timedelta(milliseconds=deadline_ms), derandomize=CI,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
                    database=None)
