"""Plots of one run, built from its results (DataFrames and summary), never from a simulation.

Figures are made with ``matplotlib.figure.Figure`` directly: no pyplot state, no GUI backend.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from qsim.metrics import measured

NO_CLOCK = "no time windows: the run covers no simulated time (a Monte Carlo run has no clock)"


def latency_cdf(ops: pd.DataFrame, title: str = "", *, include_warmup: bool = False) -> Figure:
    """Empirical CDF of the latency of ok reads and ok writes (log time axis), warm-up left out."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    ops = measured(ops, include_warmup=include_warmup)
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
        _say(axes, "no completed operations")
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
        x = np.array([bin_centre(q["t_ms"], q["t_hi_ms"]) for q in points]) if binned else t
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


def bin_centre(low: float, high: float | None) -> float:
    """Where to draw a t-visibility bin [low, high): its middle (its low edge if it is open)."""
    return low if high is None else (low + high) / 2


FAULT_COLOURS = {
    "crash": "tab:red",
    "partition": "tab:purple",
    "degrade": "tab:pink",
    "slow": "tab:brown",
    "clock_skew": "tab:olive",
}


def availability_timeline(timeline: pd.DataFrame, faults: pd.DataFrame, title: str = "") -> Figure:
    """Read and write availability per time window, with the faults shaded."""
    figure = Figure(figsize=(9, 4.5), layout="constrained")
    axes = figure.add_subplot()
    if timeline.empty:
        _say(axes, NO_CLOCK, blank_x=True)
    else:
        mid_s = _window_mid_s(timeline)
        for kind, colour in (("read", "tab:blue"), ("write", "tab:orange")):
            axes.plot(mid_s, timeline[f"{kind}_availability"], marker=".", color=colour, label=f"{kind}s")
    _shade_faults(axes, timeline, faults)
    axes.set_ylabel("availability (fraction of operations ok)")
    axes.set_ylim(0, 1.02)
    return _finish_timeline(axes, figure, title or "Availability over time")


def staleness_timeline(timeline: pd.DataFrame, faults: pd.DataFrame, title: str = "") -> Figure:
    """Fraction of checked reads that were stale per time window, with the faults shaded."""
    figure = Figure(figsize=(9, 4.5), layout="constrained")
    axes = figure.add_subplot()
    if timeline["stale_fraction"].notna().any():
        axes.plot(_window_mid_s(timeline), timeline["stale_fraction"], marker=".", color="tab:green")
    else:
        _say(axes, NO_CLOCK if timeline.empty else "no checked reads", blank_x=timeline.empty)
    _shade_faults(axes, timeline, faults)
    axes.set_ylabel("fraction of checked reads that were stale")
    axes.set_ylim(bottom=0)  # stale fractions are often small: let the top follow the data
    return _finish_timeline(axes, figure, title or "Stale reads over time")


def _say(axes: Axes, text: str, *, blank_x: bool = False) -> None:
    """Write ``text`` in the middle of an empty plot; ``blank_x``: its time axis has nothing to show."""
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)
    if blank_x:
        axes.set_xticks([])


def _window_mid_s(timeline: pd.DataFrame) -> np.ndarray:
    return (timeline["window_start_ms"] + timeline["window_end_ms"]).to_numpy(dtype=float) / 2000


def _shade_faults(axes: Axes, timeline: pd.DataFrame, faults: pd.DataFrame) -> None:
    """Shade each fault's interval, one colour and one legend entry per kind; NaN end: to the right edge."""
    right_ms = max([*timeline["window_end_ms"], *faults["start_ms"], *faults["end_ms"].dropna()], default=0)
    labelled = set()
    for fault in faults.itertuples():
        end_ms = right_ms if np.isnan(fault.end_ms) else fault.end_ms
        label = None if fault.kind in labelled else fault.kind.replace("_", " ")
        labelled.add(fault.kind)
        colour = FAULT_COLOURS.get(fault.kind, "tab:gray")
        axes.axvspan(fault.start_ms / 1000, end_ms / 1000, color=colour, alpha=0.15, lw=0, label=label)


def _finish_timeline(axes: Axes, figure: Figure, title: str) -> Figure:
    axes.set_xlabel("time (s)")
    axes.grid(True, alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="best")
    axes.set_title(title)
    return figure


def node_utilization(nodes: pd.DataFrame, faults: pd.DataFrame, title: str = "") -> Figure:
    """Utilization of each node per window (messages received when there is no service time)."""
    figure = Figure(figsize=(9, 4.5), layout="constrained")
    axes = figure.add_subplot()
    busy = nodes is not None and not nodes.empty and nodes["utilization"].max() > 0
    column, label = ("utilization", "utilization") if busy else ("messages", "messages received per window")
    if nodes is not None and not nodes.empty:
        for node, rows in nodes.groupby("node", sort=False):
            axes.plot(rows["window_start_ms"] / 1e3, rows[column], marker=".", label=str(node))
        ends = pd.DataFrame(
            {"window_end_ms": nodes["window_start_ms"] + nodes["window_start_ms"].diff().max()}
        )
        _shade_faults(axes, ends.fillna(0.0), faults)
        axes.legend(ncol=min(6, nodes["node"].nunique() + 1), fontsize=8, loc="upper right")
    else:
        _say(axes, "no load samples: the run was shorter than one window, or has no clock (Monte Carlo)",
             blank_x=True)  # fmt: skip
    axes.set_xlabel("time (s)")
    axes.set_ylabel(label)
    axes.grid(True, alpha=0.3)
    axes.set_title(title or "Load per node")
    return figure
