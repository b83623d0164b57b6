"""Plots of a sweep, from its tables (never from simulations).

What they show follows what the user asked: the frontier is over the sweep's objectives (see
:func:`qsim.sweep.aggregate.pareto`), and the curve plots (:mod:`qsim.sweep.curves`) draw its
Pareto-optimal configurations. Colours read the same way in every plot: lighter is better,
whichever way the metric improves. Axes stay within what a metric can take.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from qsim.output.files import atomic_write, png_bytes, svg_bytes
from qsim.output.plots import plain_ticks
from qsim.sweep.aggregate import DEFAULT_OBJECTIVES, better, check_objectives, pareto
from qsim.sweep.curves import MAX_CURVES, chosen, label, latency_percentiles, names, visibility_curves
from qsim.sweep.heatmaps import (
    bounds,
    colour_bar,
    colour_scale,
    heatmap,
    heatmap_metrics,
    metric_label,
    number,
)

# The curve plots live in qsim.sweep.curves; they are still importable from here.
__all__ = ["MAX_CURVES", "chosen", "frontier", "heatmap", "label", "latency_percentiles", "place_labels",
           "sweep_figures", "visibility_curves", "write_plots"]  # fmt: skip
_LABEL_OFFSETS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1.4), (0, -1.4), (1.4, 0), (-1.4, 0))
_LABEL_DISTANCES_PT = (5, 12, 22, 34)  # beyond the first ring a thin line leads back to the point


# --- the frontier --------------------------------------------------------------------------------


def frontier(
    table: pd.DataFrame, factors: list[str], title: str = "", objectives: Sequence[str] = DEFAULT_OBJECTIVES
) -> Figure:
    """Each configuration in 2-D (x, y: the first two objectives; colour: the third), all labelled.

    Pareto-optimal configurations (over every objective) are large and outlined. Each marker is
    its own artist with gid ``config:<row position>`` so that an SVG of it can carry tooltips.
    """
    objectives = check_objectives(objectives)
    x, y = (*objectives, *(m for m in DEFAULT_OBJECTIVES if m not in objectives))[:2]
    colour = objectives[2] if len(objectives) > 2 else None
    figure = Figure(figsize=(8.5, 6), layout="constrained")
    FigureCanvasAgg(figure)  # the label placer measures text with its renderer
    axes = figure.add_subplot()
    optimal = pareto(table, objectives).to_numpy()
    xs, ys = (table[f"{m}_mean"].to_numpy(dtype=float) for m in (x, y))
    shown = np.isfinite(xs) & np.isfinite(ys)
    if colour is not None:
        cmap, norm, constant = colour_scale(colour, table[f"{colour}_mean"])
        same = f"; every configuration: {number(constant)}" if constant is not None else ""
        colour_bar(figure, ScalarMappable(norm=norm, cmap=cmap), colour, same, ax=axes)
    for i in np.flatnonzero(shown):
        if colour is None:
            face = "tab:red" if optimal[i] else "lightgray"
        else:
            value = table[f"{colour}_mean"].iloc[i]
            face = cmap(norm(value)) if np.isfinite(value) else "white"
        axes.scatter([xs[i]], [ys[i]], s=90 if optimal[i] else 36, color=face, gid=f"config:{i}",
                     edgecolors="black" if optimal[i] else "0.45", linewidths=1.8 if optimal[i] else 0.6,
                     zorder=3 if optimal[i] else 2)  # fmt: skip
    _frontier_legend(axes, optimal, objectives)
    for axis, metric, values in (("x", x, xs[shown]), ("y", y, ys[shown])):
        constant = fit_axis(axes, axis, metric, values)
        same = f"\nevery configuration: {number(constant)}" if constant is not None else ""
        getattr(axes, f"set_{axis}label")(f"{metric_label(metric)}, {better(metric)} is better{same}")
    axes.grid(True, alpha=0.3)
    hidden = int((~shown).sum())
    note = f"; {hidden} configurations without a value not drawn" if hidden else ""
    axes.set_title(f"{title or 'Trade-off'}\nPareto-optimal over {names(objectives)}{note}", fontsize=10)
    order = [*np.flatnonzero(shown & optimal), *np.flatnonzero(shown & ~optimal)]  # best spots first
    rows = table.to_dict("records")  # iterrows() would turn integer factors into floats
    place_labels(axes, xs[order], ys[order], [label(rows[i], factors) for i in order])
    return figure


def fit_axis(axes, axis: str, metric: str, values: np.ndarray) -> float | None:
    """Fit the ``axis`` ("x" or "y") to ``values`` of ``metric``, never past what it can take.

    The data range gets 5% on each side, cut at the metric's bounds (:func:`heatmaps.bounds`:
    fractions within [0, 1], the rest from 0), then a 3% margin so that a marker on a bound shows
    whole; ticks are plain. Equal values get 5% of their size (0.05 for 0) around them.

    Returns:
        The value when every value is the same, else None.
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return None
    low, high = float(finite.min()), float(finite.max())
    constant = high - low <= 1e-12 * max(abs(high), 1.0)
    pad = 0.05 * ((abs(high) or 1.0) if constant else high - low)
    floor, ceiling = bounds(metric)
    start, end = max(low - pad, floor), min(high + pad, ceiling)
    margin = 0.03 * (end - start)
    getattr(axes, f"set_{axis}lim")(start - margin, end + margin)
    plain_ticks(getattr(axes, f"{axis}axis"))
    return low if constant else None


def _frontier_legend(axes, optimal: np.ndarray, objectives: Sequence[str]) -> None:
    kinds = [("Pareto-optimal", 9, "black", 1.8), ("dominated", 6, "0.45", 0.6)]
    counts = [int(optimal.sum()), int((~optimal).sum())]
    handles = [
        Line2D([], [], marker="o", linestyle="", markersize=size, markerfacecolor="lightgray",
               markeredgecolor=edge, markeredgewidth=width, label=f"{name} ({count})")
        for (name, size, edge, width), count in zip(kinds, counts, strict=True)
    ]  # fmt: skip
    over = f"over {len(objectives)} objective" + ("s" if len(objectives) != 1 else "")
    axes.legend(handles=handles, fontsize=8, loc="best", title=over, title_fontsize=8)


def place_labels(axes, xs: np.ndarray, ys: np.ndarray, texts: list[str], fontsize: float = 7.5) -> list:
    """Label each point (x, y) where the label overlaps no placed label or marker, inside the axes.

    Greedy, in the given order: the nearest free spot of eight directions at growing distances
    (a thin line leads back from the far ones); the least crowded spot when none is free.
    """
    figure = axes.figure
    figure.canvas.draw()  # lay the figure out, so that data and text positions are final
    renderer = figure.canvas.get_renderer()
    frame = axes.get_window_extent(renderer)
    radius = 6 * figure.dpi / 72  # a marker's half-width, in pixels
    pixels = [axes.transData.transform((x, y)) for x, y in zip(xs, ys, strict=True)]
    taken = [(px - radius, py - radius, px + radius, py + radius) for px, py in pixels]
    if axes.get_legend() is not None:  # labels keep off the legend too
        legend = axes.get_legend().get_window_extent(renderer)
        taken.append((legend.x0, legend.y0, legend.x1, legend.y1))
    notes = []
    for x, y, text in zip(xs, ys, texts, strict=True):
        probe = axes.annotate(text, (x, y), xytext=(0, 0), textcoords="offset points", fontsize=fontsize)
        box, offset, align = _best_spot(probe, renderer, frame, taken)
        probe.remove()
        far = max(map(abs, offset)) > 1.5 * _LABEL_DISTANCES_PT[0]
        line = {"arrowstyle": "-", "color": "0.5", "linewidth": 0.5, "shrinkA": 0, "shrinkB": 4}
        note = axes.annotate(text, (x, y), xytext=offset, textcoords="offset points", fontsize=fontsize,
                             ha=align[0], va=align[1], arrowprops=line if far else None)  # fmt: skip
        note.set_in_layout(False)  # the labels fit the axes; they must not move them
        taken.append(box)
        notes.append(note)
    return notes


def _best_spot(note, renderer, frame, taken: list[tuple]) -> tuple[tuple, tuple, tuple]:
    """The first free spot for ``note`` (else the least crowded): its box, offset (pt) and alignment."""
    best = None
    for distance in _LABEL_DISTANCES_PT:
        for ux, uy in _LABEL_OFFSETS:
            offset = (distance * ux, distance * uy)
            align = ("left" if ux > 0 else "right" if ux < 0 else "center",
                     "bottom" if uy > 0 else "top" if uy < 0 else "center")  # fmt: skip
            note.xyann = offset
            note.set_ha(align[0])
            note.set_va(align[1])
            extent = note.get_window_extent(renderer)
            box = (extent.x0, extent.y0, extent.x1, extent.y1)
            inside = frame.x0 <= box[0] and box[2] <= frame.x1 and frame.y0 <= box[1] and box[3] <= frame.y1
            crowding = sum(_overlap(box, other) for other in taken) + (0 if inside else 1e9)
            if crowding == 0:
                return box, offset, align
            if best is None or crowding < best[0]:
                best = (crowding, box, offset, align)
    return best[1:]


def _overlap(a: tuple, b: tuple) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return max(width, 0.0) * max(height, 0.0)


# --- all of them ---------------------------------------------------------------------------------


def sweep_figures(
    runs: pd.DataFrame,
    table: pd.DataFrame,
    factors: list[str],
    name: str,
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
) -> dict[str, Figure]:
    """Every sweep plot by file name."""
    objectives = check_objectives(objectives)
    figures = {
        "frontier.png": frontier(table, factors, f"Trade-off - {name}", objectives),
        "t_visibility.png": visibility_curves(runs, table, factors, objectives),
        "latency_percentiles.png": latency_percentiles(runs, table, factors, objectives),
    }
    for metric in heatmap_metrics(objectives):
        figure = heatmap(table, metric, factors)
        if figure is not None:
            figures[f"heatmap_{metric}.png"] = figure
    return figures


def write_plots(
    runs: pd.DataFrame,
    table: pd.DataFrame,
    factors: list[str],
    out,
    name: str,
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
) -> list[str]:
    """Write every sweep plot under ``out/plots`` and return the file names.

    Heat maps left by an earlier drawing that this one does not draw are removed.
    """
    folder = Path(out) / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    figures = sweep_figures(runs, table, factors, name, objectives)
    for file, figure in figures.items():
        atomic_write(folder / file, png_bytes(figure))
    for old in folder.glob("heatmap_*.png"):  # an earlier drawing's, which this one does not draw
        if old.name not in figures:
            old.unlink()
    # The frontier also as SVG: the HTML report inlines it and gives each marker its hover text.
    atomic_write(folder / "frontier.svg", svg_bytes(figures["frontier.png"]))
    return [*figures, "frontier.svg"]
