"""Headline metrics of a run: pure functions of the ops DataFrame (see DESIGN.md for definitions).

Each is the one implementation in :mod:`qsim.checks.digest` given the whole table as one chunk, so a run
streamed in chunks gets the same numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from qsim.checks.digest import PERCENTILES, QUANTILE_GRID, KindStats, Latencies, Staleness, Summary, measured

__all__ = [
    "PERCENTILES",
    "QUANTILE_GRID",
    "kind_summary",
    "latency_stats",
    "measured",
    "staleness_summary",
    "summarize",
    "visibility_row",
    "wilson_interval",
]


def latency_stats(latency_ms: np.ndarray) -> dict:
    """Return count, mean, p50, p90, p99, p999, max, quantiles and percentiles of latencies in ms.

    Percentiles interpolate linearly between order statistics (numpy's default); the mean is the
    exact sum over the count, rounded once. Every value is None when there is no latency.
    """
    return Latencies().add(latency_ms).stats()


def kind_summary(ops: pd.DataFrame) -> dict:
    """Return count, ok, availability, latency of ok operations, and failure reasons."""
    stats = KindStats()
    stats.add(ops)
    return stats.result()


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Return the Wilson score interval of a binomial proportion (95% by default)."""
    if trials == 0:
        return (math.nan, math.nan)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # Clamp so the interval always contains p (rounding can put a bound a hair past it).
    return (max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


def visibility_row(t_ms: float, reads: int, stale: int, **extra) -> dict:
    """One point of the t-visibility curve: P(consistent) of ``reads`` checked reads, ``stale`` of them
    stale, with its 95% Wilson interval (``extra`` keys go after ``t_ms``)."""
    consistent = reads - stale
    low, high = wilson_interval(consistent, reads)
    return {
        "t_ms": float(t_ms),
        **extra,
        "p_consistent": consistent / reads,
        "reads": reads,
        "ci_low": low,
        "ci_high": high,
    }


def staleness_summary(reads: pd.DataFrame) -> dict:
    """Return the stale-read counts, the k distribution and t-visibility of checked reads.

    t-visibility is P(read not stale) against t: per configured delay for probe reads, otherwise
    over bins of t_ms ([t_ms, t_hi_ms); t_hi_ms is None for the last, open bin).
    """
    staleness = Staleness()
    staleness.add(reads)
    return staleness.result()


def summarize(ops: pd.DataFrame) -> dict:
    """Return the reads, writes, availability and staleness sections of a run's summary.

    Only the operations :func:`measured` keeps are counted (not those of the warm-up); staleness
    was checked against the whole history, warm-up included.
    """
    return Summary().add(ops).result()
