"""Plots of one run, built from its results (DataFrames and summary), never from a simulation.

Figures are made with ``matplotlib.figure.Figure`` directly: no pyplot state, no GUI backend.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def latency_cdf(ops: pd.DataFrame, title: str = "") -> Figure:
    """Empirical CDF of the latency of ok reads and ok writes (log time axis)."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    for kind, colour in (("read", "tab:blue"), ("write", "tab:orange")):
        latency = np.sort(ops.loc[(ops["kind"] == kind) & ops["ok"], "latency_ms"].to_numpy())
        if latency.size:
            fraction = np.arange(1, latency.size + 1) / latency.size
            axes.step(latency, fraction, where="post", color=colour, label=f"{kind}s (n={latency.size})")
    if axes.lines:
        positive = [line.get_xdata()[line.get_xdata() > 0] for line in axes.lines]
        if all(p.size for p in positive):
            axes.set_xscale("log")
        axes.legend(loc="lower right")
    else:
        axes.text(0.5, 0.5, "no completed operations", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("latency (ms)")
    axes.set_ylabel("fraction of operations")
    axes.set_ylim(0, 1.01)
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(title or "Latency CDF (ok operations)")
    return figure


def t_visibility(summary: dict, title: str = "") -> Figure:
    """P(read is consistent) against t since the newest commit, with 95% Wilson intervals."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    points = summary["staleness"]["t_visibility"]
    if points:
        t = np.array([p["t_ms"] for p in points])
        p = np.array([p["p_consistent"] for p in points])
        low = np.array([q["ci_low"] for q in points])
        high = np.array([q["ci_high"] for q in points])
        binned = "t_hi_ms" in points[0]
        x = np.array([_bin_centre(q["t_ms"], q["t_hi_ms"]) for q in points]) if binned else t
        axes.errorbar(x, p, yerr=[p - low, high - p], marker="o", capsize=3, color="tab:green")
        if (x > 0).all():
            axes.set_xscale("log")
        axes.set_xlabel("t: time since the newest commit (ms)" + (", bin centres" if binned else ""))
    else:
        axes.text(
            0.5, 0.5, "no reads after a committed write", ha="center", va="center", transform=axes.transAxes
        )
        axes.set_xlabel("t (ms)")
    axes.set_ylabel("P(read returns the newest committed version)")
    axes.set_ylim(min(0.0, axes.get_ylim()[0]), 1.02)
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(title or "t-visibility")
    return figure


def _bin_centre(low: float, high: float | None) -> float:
    return low if high is None else (low + high) / 2
