from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Immutable value object; unknown fields are a programming error."""

    model_config = ConfigDict(frozen=True, extra="forbid")
