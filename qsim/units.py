"""Parsing of times and rates written in scenarios.

Simulated time is a float in milliseconds everywhere inside qsim. A duration may be written as a
number (milliseconds) or as a string with a unit; a rate as a number (per second) or ``N/unit``.
"""

from __future__ import annotations

import math
import re

MAX_TIME_MS = 1e15  # about 31,700 years: anything longer is a typo, and sums of such times stay exact
MAX_RATE = 1e12  # events per second
_TIME_UNITS_MS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "min": 60e3, "h": 3600e3}
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_DURATION_RE = re.compile(rf"^\s*({_NUMBER})\s*([a-zµ]*)\s*$")
_RATE_RE = re.compile(rf"^\s*({_NUMBER})\s*/\s*([a-zµ]+)\s*$")


def parse_duration(value: object) -> float:
    """Return a duration in milliseconds from a number (ms) or a string such as ``250us`` or ``2s``.

    Raises:
        ValueError: with a message saying what was expected and what was found.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 5ms or 2s, found {value!r}")
    if isinstance(value, int | float):
        return _bounded(value, MAX_TIME_MS, "duration", "ms")
    if isinstance(value, str) and len(value) <= 100:
        match = _DURATION_RE.match(value)
        if match and match.group(2) in _TIME_UNITS_MS:
            return _bounded(
                float(match.group(1)) * _TIME_UNITS_MS[match.group(2)], MAX_TIME_MS, "duration", "ms"
            )
        if match and match.group(2) == "":
            return _bounded(float(match.group(1)), MAX_TIME_MS, "duration", "ms")
    value = _clipped(value)
    units = ", ".join(u for u in _TIME_UNITS_MS if u != "µs")
    raise ValueError(
        f"expected a duration: a number of milliseconds or a number with a unit ({units}), found {value!r}"
    )


def parse_rate(value: object) -> float:
    """Return a rate in events per second from a number (per second) or a string like ``2000/s``.

    Raises:
        ValueError: with a message saying what was expected and what was found.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _bounded(value, MAX_RATE, "rate", "/s")
    if isinstance(value, str) and len(value) <= 100:
        match = _RATE_RE.match(value)
        if match and match.group(2) in _TIME_UNITS_MS:
            return _bounded(
                float(match.group(1)) / _TIME_UNITS_MS[match.group(2)] * 1e3, MAX_RATE, "rate", "/s"
            )
        if re.fullmatch(rf"\s*{_NUMBER}\s*", value):  # not float(): it would take nan and inf
            return _bounded(float(value), MAX_RATE, "rate", "/s")
    value = _clipped(value)
    raise ValueError(f"expected a rate such as 2000/s or 5/ms (a bare number is per second), found {value!r}")


def _bounded(value: float, limit: float, what: str, unit: str) -> float:
    """Return ``value`` as a float if it is finite and at most ``limit`` in size, else raise ValueError."""
    if isinstance(value, int) and abs(value) > limit:  # float() of a huge integer would overflow
        digits = int(value.bit_length() * 0.30103) + 1
        raise ValueError(
            f"expected a {what} of at most {limit:g} {unit}, found an integer of ~{digits} digits"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"expected a finite {what}, found {value}")
    if abs(value) > limit:
        raise ValueError(f"expected a {what} of at most {limit:g} {unit}, found {value:g} {unit}")
    return value


def _clipped(value: object) -> object:
    """A long string cut short for a message (the caller's repr of it stays short)."""
    return value[:37] + "..." if isinstance(value, str) and len(value) > 40 else value


def counted(number: int, noun: str) -> str:
    """``number`` and ``noun``, plural unless it is one: ``1 fault``, ``3 faults``, ``0 faults``."""
    return f"{number} {noun}" + "s" * (number != 1)
