"""What every scenario model shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class Model(BaseModel):
    """A frozen scenario section: unknown keys are errors and defaults are validated too."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, validate_default=True)
