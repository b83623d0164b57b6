"""Plots of one run, built from its results (DataFrames and summary), never from a simulation.

Figures are made with ``matplotlib.figure.Figure`` directly: no pyplot state, no GUI backend.
Every axis is labelled in plain decimals (never 2x10^0), and legends sit outside the data. The
latency and t-visibility plots are here; the time plots (availability, stale reads, node load) are
in :mod:`qsim.output.timeline_plots`, the leader protocol's in :mod:`qsim.output.leader_plots` and the shared
pieces in :mod:`qsim.output.plot_style`; this module names them all, so ``qsim.output.plots`` is the one place
to find a run's plots.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from qsim.checks import nines
from qsim.checks.metrics import measured
from qsim.output.leader_plots import election_time_cdf, leader_figures, leadership_timeline
from qsim.output.plot_style import (
    BELOW_ZERO,
    COLOURS,
    DATA_Z,
    legend_outside,
    new_figure,
    plain,
    plain_ticks,
    say,
    short,
    unchecked_reason,
)
from qsim.output.timeline_plots import (
    FAULT_COLOURS,
    NO_CLOCK,
    NO_LOAD,
    availability_floor,
    availability_timeline,
    fault_label,
    fault_rows,
    natural_key,
    node_load,
    staleness_timeline,
    union,
)

DECIMALS = 9  # latencies are rounded to 1e-9 ms: the float noise of end - start lies far below it
LOG_RATIO = 10.0  # a latency axis turns logarithmic when its largest value is this many medians
MARKED = {"p50": 50.0, "p99": 99.0, "p99.9": 99.9}  # the percentiles a percentile plot marks


def ok_latency(ops: pd.DataFrame, *, include_warmup: bool = False) -> dict[str, np.ndarray]:
    """Sorted latencies (ms, rounded to DECIMALS places) of the ok reads and the ok writes, warm-up left out.

    Returns:
        ``{"read": ..., "write": ...}``, without a kind that has no ok operation.
    """
    ops = measured(ops, include_warmup=include_warmup)
    samples = {}
    for kind in COLOURS:
        latency = ops.loc[(ops["kind"] == kind) & ops["ok"], "latency_ms"].to_numpy(dtype=float)
        if latency.size:
            samples[kind] = np.sort(np.round(latency, DECIMALS))
    return samples


_READ_PERCENTILES = (1.0, 50.0, *MARKED.values())  # what the plots ask of a sample


def drawn_latency(latency: pd.DataFrame | dict, *, include_warmup: bool = False) -> dict[str, nines.Drawn]:
    """What the latency plots draw of each kind's ok latencies (ms, rounded to DECIMALS places).

    Args:
        latency: the ops table (warm-up left out unless ``include_warmup``), or the latencies of the
            counted ok operations by kind (:class:`qsim.checks.digest.Latencies`), as a run keeps them.
    """
    from qsim.checks.digest import Latencies

    if isinstance(latency, pd.DataFrame):
        latency = {
            kind: Latencies().add(values)
            for kind, values in ok_latency(latency, include_warmup=include_warmup).items()
        }
    return {
        kind: nines.Drawn(latency[kind].runs, _READ_PERCENTILES, DECIMALS)
        for kind in COLOURS
        if kind in latency and latency[kind].size
    }


def latency_percentiles(
    latency: pd.DataFrame | dict, title: str = "", *, include_warmup: bool = False
) -> Figure:
    """Latency (ms) against percentile on the nines axis (HdrHistogram style), ok reads and ok writes.

    Each line runs to the highest percentile its sample resolves; dots mark p50, p99 and p99.9 where
    resolved, and the legend gives their values. The y axis is logarithmic only when the tail
    reaches LOG_RATIO times the median, so that the body stays readable.

    Args:
        latency: the ops table, or the latencies by kind (see :func:`drawn_latency`).
    """
    figure, axes = new_figure(9, 5)
    samples = drawn_latency(latency, include_warmup=include_warmup)
    for kind, sample in samples.items():
        marked = {name: p for name, p in MARKED.items() if p <= nines.resolved(sample.size)}
        at = sample.percentile(list(marked.values()))
        label = f"{kind}s (n={sample.size})" + "".join(
            f"\n  {name} {short(value)} ms" for name, value in zip(marked, at, strict=True)
        )
        shown = nines.drawn(sample.size)  # a large sample: a few thousand points draw the same line
        percent = 100.0 * shown / sample.size  # the i-th smallest of n sits at 100 i / n (nines.empirical)
        axes.step(nines.nines(percent), sample.at(shown), where="post", color=COLOURS[kind], label=label)
        axes.plot(nines.nines(list(marked.values())), at, "o", color=COLOURS[kind], markersize=5)
    nines.set_nines_axis(axes, max((nines.resolved(s.size) for s in samples.values()), default=99.0))
    if samples:
        _latency_y_axis(axes, samples)
        legend_outside(axes)
    else:
        say(axes, "no completed operations")
    axes.set_ylabel("latency (ms)")
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(title or "Latency by percentile (ms), ok operations")
    return figure


def latency_cdf(latency: pd.DataFrame | dict, title: str = "", *, include_warmup: bool = False) -> Figure:
    """Empirical CDF of the latency (ms) of ok reads and ok writes, warm-up left out.

    The time axis is logarithmic when latencies span LOG_RATIO or more; a near-constant latency gets
    a linear axis around its value, so float noise never draws as a staircase.

    Args:
        latency: the ops table, or the latencies by kind (see :func:`drawn_latency`).
    """
    figure, axes = new_figure(8.5, 4.5)
    samples = drawn_latency(latency, include_warmup=include_warmup)
    for kind, sample in samples.items():
        shown = nines.cdf_ranks(sample.size)
        axes.step(sample.at(shown), (shown + 1) / sample.size, where="post", color=COLOURS[kind],
                  label=f"{kind}s (n={sample.size})")  # fmt: skip
    if samples:
        ends = [sample.at(np.array([0, sample.size - 1])) for sample in samples.values()]
        _latency_x_axis(axes, np.concatenate(ends))
        legend_outside(axes)
    else:
        say(axes, "no completed operations")
    axes.set_xlabel("latency (ms)")
    axes.set_ylabel("fraction of operations")
    axes.set_ylim(0, 1.01)
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(title or "Latency CDF (ms), ok operations")
    return figure


def _latency_x_axis(axes: Axes, values: np.ndarray) -> None:
    """Log scale for a wide spread, a margin around a near-constant value, plain ticks either way."""
    low, high = float(values.min()), float(values.max())
    if low > 0 and high / low >= LOG_RATIO:
        axes.set_xscale("log")
    elif high - low < 0.01 * abs(high):  # 1% at most: show where the value is, not its noise
        pad = max(0.02 * abs(high), 10.0 ** (1 - DECIMALS))
        axes.set_xlim(low - pad, high + pad)
    plain_ticks(axes.xaxis)


def _latency_y_axis(axes: Axes, samples: dict[str, nines.Drawn]) -> None:
    """The y axis of latency ``samples`` (ms) by :func:`latency_y_axis`."""
    latency_y_axis(
        axes,
        lowest=min(float(s.at(np.array([0]))[0]) for s in samples.values()),
        p1=min(float(s.percentile([1.0])[0]) for s in samples.values()),
        median=min(float(s.percentile([50.0])[0]) for s in samples.values()),
        high=max(float(s.at(np.array([s.size - 1]))[0]) for s in samples.values()),
    )


def latency_y_axis(axes: Axes, *, lowest: float, p1: float, median: float, high: float) -> None:
    """Log scale when the tail ``high`` is LOG_RATIO medians or more above the body; else linear from 0.

    Args:
        lowest, p1, median, high: the smallest latency (ms), the lowest p1, the smallest median and
            the largest latency of the curves drawn.

    A log axis starts below the lowest p1: what lies under it fills the first 1% of the nines axis,
    a sliver at its left edge, and would otherwise take decades of height.
    """
    if lowest > 0 and high >= LOG_RATIO * median:
        axes.set_yscale("log")
        axes.set_ylim(p1 / 1.5, 1.5 * high)
    else:
        axes.set_ylim(0, 1.05 * high if high > 0 else 1.0)
    plain_ticks(axes.yaxis)


def t_visibility(summary: dict, title: str = "") -> Figure:
    """P(read is consistent) against t since the newest commit, with 95% Wilson intervals."""
    figure, axes = new_figure(8.5, 4.5)
    points = summary["staleness"]["t_visibility"]
    if points:
        t = np.array([p["t_ms"] for p in points])
        p = np.array([p["p_consistent"] for p in points])
        low = np.array([q["ci_low"] for q in points])
        high = np.array([q["ci_high"] for q in points])
        binned = "t_hi_ms" in points[0]
        x = np.array([bin_centre(q["t_ms"], q["t_hi_ms"]) for q in points]) if binned else t
        axes.errorbar(x, p, yerr=[p - low, high - p], marker="o", capsize=3, color="tab:green")
        if (x > 0).all():
            axes.set_xscale("log")
        plain_ticks(axes.xaxis)
        axes.set_xlabel("t: time since the newest commit (ms)" + (", bin centres" if binned else ""))
    else:
        say(axes, unchecked_reason(summary["reads"]["count"], summary["writes"]["count"]), blank_x=True)
        axes.set_xlabel("t (ms)")
    axes.set_ylabel("P(read returns the newest committed version)")
    axes.set_ylim(min(0.0, axes.get_ylim()[0]), 1.02)
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(title or "t-visibility: P(consistent read) against t (ms)")
    return figure


def bin_centre(low: float, high: float | None) -> float:
    """Where to draw a t-visibility bin [low, high): its middle (its low edge if it is open)."""
    return low if high is None else (low + high) / 2


__all__ = [
    "BELOW_ZERO", "COLOURS", "DATA_Z", "DECIMALS", "FAULT_COLOURS", "LOG_RATIO", "MARKED", "NO_CLOCK",
    "NO_LOAD", "availability_floor", "availability_timeline", "bin_centre", "election_time_cdf",
    "fault_label", "fault_rows", "latency_cdf", "latency_percentiles", "latency_y_axis", "leader_figures",
    "leadership_timeline", "legend_outside", "natural_key", "new_figure", "node_load", "ok_latency", "plain",
    "plain_ticks", "say", "short", "staleness_timeline", "t_visibility", "unchecked_reason", "union",
]  # fmt: skip
