"""Sweeps: factors, ranges, filters and replicate seeds over a base scenario, expanded to runs."""

from qsim.sweep.expand import Point, describe, expand
from qsim.sweep.expr import Expression, ExpressionError, parse
from qsim.sweep.spec import Factor, Sweep, SweepError, sweep_from_cli, sweep_from_mapping

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
