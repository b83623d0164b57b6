"""Parsing of times and rates written in scenarios.

Simulated time is a float in milliseconds everywhere inside qsim. A duration may be written as a
number (milliseconds) or as a string with a unit; a rate as a number (per second) or ``N/unit``.
"""

from __future__ import annotations

import re

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
        return float(value)
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match and match.group(2) in _TIME_UNITS_MS:
            return float(match.group(1)) * _TIME_UNITS_MS[match.group(2)]
        if match and match.group(2) == "":
            return float(match.group(1))
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
        return float(value)
    if isinstance(value, str):
        match = _RATE_RE.match(value)
        if match and match.group(2) in _TIME_UNITS_MS:
            return float(match.group(1)) / _TIME_UNITS_MS[match.group(2)] * 1e3
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"expected a rate such as 2000/s or 5/ms (a bare number is per second), found {value!r}")
