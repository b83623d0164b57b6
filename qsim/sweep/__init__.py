"""Sweeps: factors, ranges, filters and replicate seeds over a base scenario, expanded to runs."""

from qsim.sweep.expand import (
    Factor,
    Point,
    Sweep,
    SweepError,
    describe,
    expand,
    sweep_from_cli,
    sweep_from_mapping,
)
from qsim.sweep.expr import Expression, ExpressionError, parse

__all__ = [
    "Expression",
    "ExpressionError",
    "Factor",
    "Point",
    "Sweep",
    "SweepError",
    "describe",
    "expand",
    "parse",
    "sweep_from_cli",
    "sweep_from_mapping",
]
