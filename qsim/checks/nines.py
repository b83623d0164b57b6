"""The percentile ("nines") axis of latency plots, as HdrHistogram draws them.

A latency tail lives in the top 1% of operations, where a CDF's linear y axis shows nothing. On
the nines axis a percentile p sits at x = -log10(1 - p/100): 0 at p0, 1 at p90, 2 at p99, 3 at
p99.9, so each further nine gets as much room as the first 90%. A sample of n latencies resolves
percentiles up to 100 (1 - 1/n); the axis stops there, never promising a tail it did not see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # matplotlib loads only when a plot is drawn
    from matplotlib.axes import Axes

# The percentiles each run's summary records (latency_ms.percentiles), dense where tails live.
GRID = (0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0, 97.5, 99.0,
        99.5, 99.75, 99.9, 99.95, 99.975, 99.99, 99.995, 99.999)  # fmt: skip


def nines(percent: np.ndarray | float) -> np.ndarray:
    """Position of ``percent`` (0 <= percent < 100) on the nines axis: -log10(1 - percent/100)."""
    return -np.log10(1.0 - np.asarray(percent, dtype=float) / 100.0)


def resolved(count: int) -> float:
    """The highest percentile a sample of ``count`` values resolves: 100 (1 - 1/count) (0 if empty)."""
    return 100.0 * (1.0 - 1.0 / count) if count > 0 else 0.0


def empirical(latency: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every sorted value of ``latency`` with its percentile: the share of values below it, in percent.

    The i-th smallest of n values (from 0) sits at 100 i / n, so the largest sits at the highest
    resolved percentile (finite on the nines axis) and ties draw as a flat step.
    """
    values = np.sort(np.asarray(latency, dtype=float))
    return 100.0 * np.arange(values.size) / max(values.size, 1), values


def drawn(count: int, points: int = 3000, tail: int = 200) -> np.ndarray:
    """Which of ``count`` sorted values to draw on the nines axis: every one of a small sample; of a
    large one, ``points`` spread evenly along the axis, plus the first and the last ``tail`` exactly.

    A million-point line draws the same picture as 3000 well-placed ones (the axis is a few hundred
    pixels wide) and costs a second of rendering per plot; the extreme tail, where single values
    matter, keeps every point.
    """
    if count <= points + tail:
        return np.arange(count)
    along = np.linspace(0.0, float(nines(resolved(count))), points)
    ranks = np.floor(count * (1.0 - 10.0**-along)).astype(np.int64)
    return np.unique(np.concatenate([[0], np.clip(ranks, 0, count - 1), np.arange(count - tail, count)]))


def cdf_ranks(count: int, points: int = 4000, tail: int = 200) -> np.ndarray:
    """Which of ``count`` sorted values a CDF draws: all of a small sample; of a large one, ``points``
    evenly spaced ranks (a step of 1/points in the fraction, finer than a pixel) and the last ``tail``."""
    if count <= points + tail:
        return np.arange(count)
    return np.unique(np.concatenate([np.linspace(0, count - 1, points).astype(np.int64),
                                     np.arange(count - tail, count)]))  # fmt: skip


def percentile_ranks(count: int, percent: np.ndarray) -> np.ndarray:
    """The 0-based ranks of the values ``np.percentile`` of ``count`` values reads for ``percent``."""
    virtual = (count - 1) * (np.asarray(percent, dtype=float) / 100.0)
    low = np.floor(virtual).astype(np.int64)
    return np.unique(np.clip(np.concatenate([low, low + 1]), 0, count - 1))


class Drawn:
    """The order statistics of one latency sample that its plots read, and only those.

    A plot of a large sample reads a few thousand order statistics (:func:`drawn`,
    :func:`cdf_ranks`) and a few percentiles; this holds exactly those, so a sample of any size
    draws in bounded memory.

    Args:
        sample: ``count`` and ``values_at(ranks)`` (:class:`qsim.checks.exact.SortedRuns`).
        percent: the percentiles the plot will ask :meth:`percentile` for.
        decimals: the values are rounded to this many decimals.
    """

    def __init__(self, sample, percent: tuple[float, ...], decimals: int) -> None:
        self.size = int(sample.count)
        ranks = [
            drawn(self.size),
            cdf_ranks(self.size),
            percentile_ranks(self.size, percent),
            [0, self.size - 1],
        ]
        self.ranks = np.unique(np.concatenate(ranks).astype(np.int64))
        self.values = np.round(sample.values_at(self.ranks), decimals)

    def at(self, ranks: np.ndarray) -> np.ndarray:
        """The values of the given ranks (each one held)."""
        return self.values[np.searchsorted(self.ranks, ranks)]

    def percentile(self, percent: np.ndarray) -> np.ndarray:
        """``np.percentile`` of the rounded sample at ``percent`` (among those given at construction)."""
        from qsim.checks.exact import linear

        return linear(self.at, self.size, np.true_divide(np.asarray(percent, dtype=float), 100))


def grid_points(count: int) -> np.ndarray:
    """The GRID percentiles a sample of ``count`` values resolves (for curves built from GRID)."""
    grid = np.asarray(GRID)
    return grid[grid <= resolved(count) + 1e-9]


def set_nines_axis(axes: Axes, top_percent: float) -> None:
    """Put plain percentile ticks (0, 90, 99, 99.9, ...) on ``axes``' x axis, up to ``top_percent``.

    The axis runs from p0 to the first tick at or beyond ``top_percent`` (at least p99), so the
    data's last point is always inside it and the reader sees how far the tail reaches. A sample
    that resolves a hair past a tick (1,000,002 values: p99.99990) ends the axis at that point,
    not a whole nine further.
    """
    last = float(nines(min(top_percent, 99.9999999)))
    top = max(2, int(np.ceil(last - 0.01)))
    ticks = np.arange(top + 1)
    axes.set_xticks(ticks, [_label(k) for k in ticks])
    axes.set_xticks(nines(np.array([50.0, 75.0])), minor=True)
    axes.set_xlim(0, max(top, last))
    axes.set_xlabel("percentile (nines scale: each tick one more nine)")


def _label(k: int) -> str:
    """The percentile at k nines: 0, 90, 99, 99.9, ... written as plain decimals."""
    return "0" if k == 0 else f"{100 - 10.0 ** (2 - k):.{max(k - 2, 0)}f}"
