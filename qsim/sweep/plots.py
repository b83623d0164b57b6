"""Plots of a sweep, from its tables (never from simulations)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from qsim.plots import bin_centre
from qsim.results import atomic_write, png_bytes
from qsim.sweep.aggregate import FRONTIER, pareto

HEATMAP_METRICS = {
    "stale_fraction": "stale-read fraction",
    "read_latency_p99_ms": "p99 read latency (ms)",
    "availability": "availability",
}
NRW = ("quorum.n", "quorum.r", "quorum.w")


def label(row, factors: list[str]) -> str:
    """A short label of a configuration: the last component of each factor path and its value."""
    return ", ".join(f"{f.split('.')[-1]}={row[f]}" for f in factors)


def heatmap(table: pd.DataFrame, metric: str) -> Figure | None:
    """``metric`` over R x W, one panel per N (averaged over any other factors); None without N, R, W."""
    if not all(column in table for column in NRW):
        return None
    values = table.groupby(list(NRW))[f"{metric}_mean"].mean().reset_index()
    ns = sorted(values["quorum.n"].unique())
    figure = Figure(figsize=(4.2 * len(ns), 4), layout="constrained")
    for i, n in enumerate(ns):
        axes = figure.add_subplot(1, len(ns), i + 1)
        part = values[values["quorum.n"] == n]
        grid = part.pivot(index="quorum.r", columns="quorum.w", values=f"{metric}_mean")
        image = axes.imshow(grid.to_numpy(dtype=float), origin="lower", cmap="viridis", aspect="auto")
        axes.set_xticks(range(len(grid.columns)), [str(w) for w in grid.columns])
        axes.set_yticks(range(len(grid.index)), [str(r) for r in grid.index])
        for (y, x), value in np.ndenumerate(grid.to_numpy(dtype=float)):
            if not np.isnan(value):
                axes.text(x, y, f"{value:.3g}", ha="center", va="center", color="white", fontsize=8)
        axes.set_xlabel("W")
        axes.set_ylabel("R")
        axes.set_title(f"N = {n}")
        figure.colorbar(image, ax=axes, shrink=0.8)
    figure.suptitle(HEATMAP_METRICS.get(metric, metric))
    return figure


def frontier(table: pd.DataFrame, factors: list[str], title: str = "") -> Figure:
    """p99 read latency against stale-read fraction per configuration; Pareto-optimal ones labelled."""
    x, y = (f"{metric}_mean" for metric in FRONTIER)
    figure = Figure(figsize=(7.5, 5), layout="constrained")
    axes = figure.add_subplot()
    optimal = pareto(table)
    axes.scatter(table[x], table[y], color="lightgray", edgecolor="gray", label="configurations")
    best = table[optimal].sort_values(x)
    axes.plot(best[x], best[y], "o-", color="tab:red", label="Pareto-optimal")
    for row in best.to_dict("records"):  # iterrows() would turn integer factors into floats
        axes.annotate(
            label(row, factors), (row[x], row[y]), textcoords="offset points", xytext=(5, 5), fontsize=8
        )
    axes.set_xlabel("p99 read latency (ms)")
    axes.set_ylabel("stale-read fraction")
    axes.grid(True, alpha=0.3)
    axes.legend()
    axes.set_title(title or "Latency / staleness trade-off")
    return figure


def visibility_curves(runs: pd.DataFrame, table: pd.DataFrame, factors: list[str], limit: int = 8) -> Figure:
    """t-visibility of up to ``limit`` configurations, averaged over seeds.

    The Pareto-optimal configurations come first, then the stalest ones (whose curves say most).
    """
    figure = Figure(figsize=(7.5, 5), layout="constrained")
    axes = figure.add_subplot()
    ranked = table.assign(_best=pareto(table)).sort_values(["_best", "stale_fraction_mean"], ascending=False)
    order = ranked.head(limit)
    for config in order.to_dict("records"):
        same = np.ones(len(runs), dtype=bool)
        for f in factors:
            same &= (runs[f] == config[f]).to_numpy()
        points = [
            p for text in runs.loc[same & runs["error"].isna(), "t_visibility"] for p in json.loads(text)
        ]
        if not points:
            continue
        frame = pd.DataFrame(points)
        frame["x"] = [bin_centre(p["t_ms"], p.get("t_hi_ms")) for p in points]
        curve = frame.groupby("x")["p_consistent"].mean()
        axes.plot(curve.index, curve.to_numpy(), marker="o", label=label(config, factors))
    if axes.lines:
        if all(line.get_xdata().min() > 0 for line in axes.lines):
            axes.set_xscale("log")
        axes.legend(fontsize=8)
    else:
        axes.text(
            0.5, 0.5, "no reads after a committed write", ha="center", va="center", transform=axes.transAxes
        )
    axes.set_xlabel("t since the newest commit (ms)")
    axes.set_ylabel("P(consistent)")
    axes.grid(True, alpha=0.3)
    axes.set_title("t-visibility")
    return figure


def latency_cdfs(runs: pd.DataFrame, table: pd.DataFrame, factors: list[str], limit: int = 8) -> Figure:
    """Read latency CDFs of up to ``limit`` configurations on one axis (quantiles averaged over seeds).

    With a sweep over the replica selection strategy, this compares strategies' tails directly.
    """
    figure = Figure(figsize=(7.5, 5), layout="constrained")
    axes = figure.add_subplot()
    levels = np.linspace(0.0, 1.0, 101)
    for config in table.head(limit).to_dict("records"):
        same = np.ones(len(runs), dtype=bool)
        for f in factors:
            same &= (runs[f] == config[f]).to_numpy()
        curves = [
            json.loads(text) for text in runs.loc[same & runs["error"].isna(), "read_latency_quantiles"]
        ]
        curves = [curve for curve in curves if curve]
        if curves:
            axes.plot(np.mean(curves, axis=0), levels, label=label(config, factors))
    if axes.lines:
        axes.set_xscale("log")
        axes.legend(fontsize=8, loc="lower right")
    axes.set_xlabel("read latency (ms)")
    axes.set_ylabel("fraction of reads")
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title("Read latency CDF per configuration")
    return figure


def sweep_figures(
    runs: pd.DataFrame, table: pd.DataFrame, factors: list[str], name: str
) -> dict[str, Figure]:
    """Every sweep plot by file name."""
    figures = {"frontier.png": frontier(table, factors, f"Trade-off - {name}"),
               "t_visibility.png": visibility_curves(runs, table, factors),
               "latency_cdf.png": latency_cdfs(runs, table, factors)}  # fmt: skip
    for metric in HEATMAP_METRICS:
        figure = heatmap(table, metric)
        if figure is not None:
            figures[f"heatmap_{metric}.png"] = figure
    return figures


def write_plots(runs: pd.DataFrame, table: pd.DataFrame, factors: list[str], out, name: str) -> list[str]:
    """Write every sweep plot under ``out/plots`` and return the file names."""
    folder = Path(out) / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    figures = sweep_figures(runs, table, factors, name)
    for file, figure in figures.items():
        atomic_write(folder / file, png_bytes(figure))
    return list(figures)
