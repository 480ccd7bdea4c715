from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Immutable value object; unknown fields are a programming error.

    Each model's validator is built on its first use, not when its class is defined: a one-shot command
    loads every model its modules name (the daemon's status, DRBD and Xen states, ...) but validates only
    some. Validation is the same either way; tests/core/test_models_build.py builds every model."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
