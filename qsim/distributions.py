"""Probability distributions of times (milliseconds): their scenario specs and batched samplers.

A spec is a frozen pydantic model selected by its ``dist`` field. Every spec takes an optional
constant ``shift`` added to each draw (propagation delay plus noise). A bare number or duration
string where a distribution is expected means a constant. Draws are made in numpy batches and
handed out one at a time by a :class:`Sampler`, because a Python call per draw would cost a large
share of a simulated operation. numpy is imported where a draw is made, not at the top: checking a
scenario (``qsim validate``) loads this module and needs no numpy.
"""

from __future__ import annotations

import csv
import decimal
import io
import math
import os
import re
from array import array
from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from qsim.errors import problems
from qsim.inputs import SAMPLES_BYTES, InputError, decode_text, read_bytes
from qsim.units import MAX_TIME_MS, parse_duration, parse_rate

if TYPE_CHECKING:
    import numpy as np


def reject_bool(value: object) -> object:
    """Refuse true/false where a number goes (pydantic would read them as 1 and 0)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, found {value!r}")
    return value


_NUMBER_RE = re.compile(r"\s*[+-]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")
_WHOLE_DIGITS = 30  # a longer whole number is out of range for every field (and slow to convert)


def whole_number(value: object) -> object:
    """Return ``value`` as an int if it is a whole number, else raise ValueError.

    A whole number is an integer, or a float or number-looking string of integral value:
    ``5.0``, ``"5"`` and ``"1e18"`` are whole numbers; ``2.5``, true, false and null are not.

    Raises:
        ValueError: saying that a whole number was expected, and what was found.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = None
    if isinstance(value, float) and math.isfinite(value):
        number = decimal.Decimal(value)
    elif isinstance(value, str) and len(value) <= 100 and _NUMBER_RE.fullmatch(value):
        number = decimal.Decimal(value.strip().replace("_", ""))
    if number is not None and number == number.to_integral_value():
        if number.adjusted() >= _WHOLE_DIGITS:
            raise ValueError(f"expected a whole number of at most {_WHOLE_DIGITS} digits, found {value!r}")
        return int(number)
    raise ValueError(f"expected a whole number, found {_shown(value)}")


def _shown(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return "binary data (a !!binary value)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


Int = Annotated[int, BeforeValidator(whole_number)]
"""A whole number: an integer, or a float or number-looking string with an integral value."""

Real = Annotated[float, BeforeValidator(reject_bool)]
"""A real number; true and false are refused (models refuse NaN and infinities)."""

Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A time in milliseconds; YAML may say ``5ms``, ``2s`` or a bare number of milliseconds."""

Rate = Annotated[float, BeforeValidator(parse_rate)]
"""A rate in events per second; YAML may say ``2000/s``, ``2/ms`` or a bare number per second."""

BATCH = 4096
MAX_SAMPLES = 10_000_000  # empirical samples from one file


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False)

    shift: Duration = Field(0.0, ge=0, description="constant added to every draw, ms")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Return ``size`` draws in milliseconds, ``shift`` included, at most MAX_TIME_MS each.

        The cap keeps heavy tails (Pareto, Weibull, lognormal with extreme parameters) from
        drawing an infinite time; no realistic distribution ever reaches it.
        """
        import numpy as np

        draws = self._draw(rng, size)
        return np.minimum(draws + self.shift if self.shift else draws, MAX_TIME_MS)

    def _draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        raise NotImplementedError

    def is_zero(self) -> bool:
        """Return True if every draw is exactly zero."""
        return False


class Constant(_Spec):
    """Always ``value`` (+ ``shift``)."""

    dist: Literal["constant"]
    value: Duration = Field(ge=0)

    def _draw(self, rng, size):
        import numpy as np

        return np.full(size, self.value)

    def is_zero(self) -> bool:
        return self.value + self.shift == 0


class Uniform(_Spec):
    """Uniform on [``low``, ``high``]."""

    dist: Literal["uniform"]
    low: Duration = Field(ge=0)
    high: Duration = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self):
        if self.high < self.low:
            raise problems(("high", f"{self.high:g} is smaller than low ({self.low:g})"))
        return self

    def _draw(self, rng, size):
        return rng.uniform(self.low, self.high, size)


class Exponential(_Spec):
    """Exponential with ``mean`` (ms) or ``rate`` (per second, or ``N/ms``); give exactly one."""

    dist: Literal["exponential"]
    mean: Duration | None = Field(None, gt=0)
    rate: Rate | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_parameter(self):
        if (self.mean is None) == (self.rate is None):
            found = "both" if self.mean is not None else "neither"
            raise problems(
                ("mean", f"give exactly one of mean (a duration) or rate (such as 2/ms), found {found}")
            )
        return self

    @property
    def mean_ms(self) -> float:
        """The mean in milliseconds, whichever parameter was given."""
        return self.mean if self.mean is not None else 1e3 / self.rate

    def _draw(self, rng, size):
        return rng.exponential(self.mean_ms, size)


class Normal(_Spec):
    """Normal(``mean``, ``sd``) restricted to non-negative values.

    ``below_zero: reject`` (default) redraws negative values, giving a normal truncated at zero;
    ``clip`` replaces them by zero, putting the negative mass on zero.
    """

    dist: Literal["normal"]
    mean: Duration
    sd: Duration = Field(ge=0)
    below_zero: Literal["reject", "clip"] = "reject"

    @model_validator(mode="after")
    def _some_mass_above_zero(self):
        if self.below_zero == "reject" and self.mean < -3 * self.sd:
            raise problems(
                (
                    "mean",
                    f"{self.mean:g} is below -3 sd: under 0.14% of draws would be >= 0; use below_zero: clip",
                )
            )
        return self

    def _draw(self, rng, size):
        import numpy as np

        if self.below_zero == "clip":
            return np.maximum(rng.normal(self.mean, self.sd, size), 0.0)
        accepted = 0.5 * (1 + math.erf(self.mean / (self.sd * math.sqrt(2)))) if self.sd else 1.0
        draws = np.empty(0)
        while draws.size < size:  # oversample so that one or two rounds are enough
            more = rng.normal(self.mean, self.sd, int((size - draws.size) / accepted * 1.1) + 16)
            draws = np.concatenate([draws, more[more >= 0]])
        return draws[:size]


class Lognormal(_Spec):
    """Lognormal with log-space standard deviation ``sigma`` and ``median`` or ``mean`` (ms)."""

    dist: Literal["lognormal"]
    median: Duration | None = Field(None, gt=0)
    mean: Duration | None = Field(None, gt=0)
    sigma: Real = Field(gt=0)

    @model_validator(mode="after")
    def _one_location(self):
        if (self.median is None) == (self.mean is None):
            found = "both" if self.median is not None else "neither"
            raise problems(("median", f"give exactly one of median or mean (durations), found {found}"))
        return self

    @property
    def mu(self) -> float:
        """The log-space mean, log(median)."""
        import numpy as np

        if self.median is not None:
            return float(np.log(self.median))
        return float(np.log(self.mean) - self.sigma**2 / 2)

    def _draw(self, rng, size):
        return rng.lognormal(self.mu, self.sigma, size)


class Pareto(_Spec):
    """Pareto (type I) with minimum ``scale`` (x_m, ms) and shape ``alpha``: P(X > x) = (x_m/x)^alpha."""

    dist: Literal["pareto"]
    scale: Duration = Field(gt=0)
    alpha: Real = Field(gt=0)

    def _draw(self, rng, size):
        return (rng.pareto(self.alpha, size) + 1.0) * self.scale


class Weibull(_Spec):
    """Weibull with ``shape`` k and ``scale`` lambda (ms): P(X > x) = exp(-(x/lambda)^k)."""

    dist: Literal["weibull"]
    shape: Real = Field(gt=0)
    scale: Duration = Field(gt=0)

    def _draw(self, rng, size):
        return rng.weibull(self.shape, size) * self.scale


class Empirical(_Spec):
    """Resampling (with replacement) of observed times: inline ``values`` or a CSV ``file``.

    ``file`` is relative to the scenario file; ``column`` is a header name or a 0-based index.
    """

    dist: Literal["empirical"]
    values: tuple[Real, ...] | None = None
    file: str | None = None
    column: str | Annotated[Int, Field(ge=0)] = 0

    @field_validator("values")
    @classmethod
    def _non_negative(cls, values):
        if values is not None and (not values or min(values) < 0 or max(values) > MAX_TIME_MS):
            raise ValueError(f"expected a non-empty list of non-negative times (ms) up to {MAX_TIME_MS:g}")
        return values

    @field_validator("file")
    @classmethod
    def _resolve(cls, file, info: ValidationInfo):
        if file is None:
            return None
        base = (info.context or {}).get("base_dir")
        path = Path(file) if base is None else Path(base, file)
        return str(path.resolve())

    @model_validator(mode="after")
    def _one_source(self):
        if (self.values is None) == (self.file is None):
            found = "both" if self.values is not None else "neither"
            raise problems(
                ("values", f"give exactly one of values (a list) or file (a CSV path), found {found}")
            )
        if self.file is not None:
            try:
                read_csv_column(self.file, self.column)
            except ValueError as exc:
                raise problems(("file", str(exc))) from None
        return self

    def samples(self) -> np.ndarray:
        """Return the observed times this distribution resamples, in milliseconds."""
        import numpy as np

        if self.values is not None:
            return np.asarray(self.values, dtype=float)
        return read_csv_column(self.file, self.column)

    def _draw(self, rng, size):
        return rng.choice(self.samples(), size)


class Mixture(_Spec):
    """A draw from component i with probability weights[i] / sum(weights)."""

    dist: Literal["mixture"]
    components: tuple[Dist, ...] = Field(min_length=1)
    weights: tuple[Real, ...]

    @field_validator("weights")
    @classmethod
    def _positive(cls, weights):
        if any(w <= 0 for w in weights):
            raise ValueError(f"every weight must be positive, found {list(weights)}")
        return weights

    @model_validator(mode="after")
    def _same_length(self):
        if len(self.weights) != len(self.components):
            count = f"{len(self.weights)} weights for {len(self.components)} components"
            raise problems(("weights", f"{count}, found {list(self.weights)}"))
        return self

    def _draw(self, rng, size):
        import numpy as np

        p = np.asarray(self.weights) / sum(self.weights)
        which = rng.choice(len(p), size=size, p=p)
        draws = np.empty(size)
        for i, component in enumerate(self.components):
            mask = which == i
            draws[mask] = component.sample(rng, int(mask.sum()))
        return draws


def _constant_shorthand(value: object) -> object:
    """Let ``latency: 5ms`` or ``latency: 5`` mean a constant distribution."""
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return {"dist": "constant", "value": value}
    return value


Dist = Annotated[
    Constant | Uniform | Exponential | Normal | Lognormal | Pareto | Weibull | Empirical | Mixture,
    Field(discriminator="dist"),
    BeforeValidator(_constant_shorthand),
]
"""Any distribution spec, chosen by its ``dist`` field."""

DIST_NAMES = (
    "constant",
    "uniform",
    "exponential",
    "normal",
    "lognormal",
    "pareto",
    "weibull",
    "empirical",
    "mixture",
)

Mixture.model_rebuild()


def read_csv_column(path: str, column: str | int) -> np.ndarray:
    """Return one column of a CSV file of times (ms), re-read whenever the file changes.

    Raises:
        ValueError: if the file cannot be read or the column holds anything but times >= 0.
    """
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError as exc:
        raise ValueError(f"cannot read empirical samples file {path}: {exc.strerror}") from None
    return _read_csv_column(path, column, stamp)


@lru_cache(maxsize=64)
def _read_csv_column(path: str, column: str | int, _stamp: int) -> np.ndarray:
    try:
        text = decode_text(read_bytes(path, SAMPLES_BYTES, "empirical samples file"), f"samples file {path}")
    except InputError as exc:
        raise ValueError(str(exc)) from None
    rows = csv.reader(io.StringIO(text))
    first = next(rows, None)
    if first is None:
        raise ValueError(f"empirical samples file {path} is empty")
    if isinstance(column, str):
        if column not in first:
            shown = first[:10] + (["..."] if len(first) > 10 else [])
            raise ValueError(f"column {column!r} not in the header of {path}: {shown}")
        index, header = first.index(column), True
    else:
        index, header = column, not _is_number(first[column] if column < len(first) else "")
    values = array("d")
    try:
        for row in rows if header else _chain(first, rows):
            if row:
                values.append(float(row[index]))
                if len(values) > MAX_SAMPLES:
                    break
    except (ValueError, IndexError):
        raise ValueError(f"column {column!r} of {path} must hold numbers (ms) on every row") from None
    if len(values) > MAX_SAMPLES:
        raise ValueError(f"{path} holds more than the limit of {MAX_SAMPLES:,} samples")
    import numpy as np

    found = np.frombuffer(values, dtype=float)
    if found.size == 0 or not np.isfinite(found).all() or found.min() < 0 or found.max() > MAX_TIME_MS:
        raise ValueError(
            f"column {column!r} of {path} must hold finite non-negative times (ms) up to {MAX_TIME_MS:g}"
        )
    return found


def _chain(first: list, rest):
    yield first
    yield from rest


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class Sampler(list):
    """Hand out values one at a time from numpy batches made by ``draw(size)``.

    The sampler is its own buffer: hot paths call ``sampler.pop()`` (a C call) and fall back to
    :meth:`refill` on ``IndexError``; other code simply calls ``sampler()``.
    """

    __slots__ = ("draw",)

    def __init__(self, draw: Callable[[int], np.ndarray]):
        super().__init__()
        self.draw = draw

    def refill(self) -> float:
        """Draw the next batch and return its first value."""
        self.extend(self.draw(BATCH).tolist()[::-1])  # pop() then hands them out in draw order
        return self.pop()

    def __call__(self):
        return self.pop() if self else self.refill()


def spec_sampler(spec: _Spec, rng: np.random.Generator) -> Sampler:
    """Return a sampler of ``spec``'s distribution drawing from ``rng``."""
    return Sampler(partial(spec.sample, rng))


def uniform_sampler(rng: np.random.Generator) -> Sampler:
    """Return a sampler of uniform numbers on [0, 1)."""
    return Sampler(rng.random)


def mean_latency(spec: _Spec, draws: int = 20_000) -> float:
    """The mean of a distribution (ms), estimated from its own fixed stream, never a run's."""
    import numpy as np

    return float(spec.sample(np.random.default_rng(0), draws).mean())
