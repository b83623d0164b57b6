"""What every scenario model shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"  # a single safe path component: no '/', never '.' or '..'
NAME_MAX_LENGTH = 100  # file systems refuse components past 255 bytes; results add a run id below it


class Model(BaseModel):
    """A frozen scenario section: unknown keys are errors, defaults are validated, NaN and inf refused."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, validate_default=True, allow_inf_nan=False
    )
