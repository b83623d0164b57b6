"""Heat maps of a sweep: a metric over two factors, one panel per value of a third, one colour scale.

Colours read the same way in every sweep plot: lighter is better, whichever way the metric improves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure

from qsim.sweep.aggregate import LABELS, better

FRACTIONS = ("availability", "read_availability", "write_availability", "stale_fraction")


def metric_label(metric: str) -> str:
    """What ``metric`` is, with its unit."""
    return LABELS.get(metric, metric)


def colour_scale(metric: str, values) -> tuple[Colormap, Normalize, float | None]:
    """The colormap (lighter is better), the range of ``values``, and their value if all are equal.

    Equal values get a range that does not invent a spread: [0, 1] for fractions, else from 0 to
    the value.
    """
    cmap = colormaps["viridis" if better(metric) == "higher" else "viridis_r"]
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return cmap, Normalize(0.0, 1.0), None
    low, high = float(finite.min()), float(finite.max())
    if high - low > 1e-12 * max(abs(high), 1.0):
        return cmap, Normalize(low, high), None
    if metric in FRACTIONS or low == 0:
        return cmap, Normalize(min(low, 0.0), max(high, 1.0)), low
    return cmap, Normalize(min(low, 0.0), max(low, 0.0)), low


def text_colour(rgba) -> str:
    """Black on light colours, white on dark ones, by relative luminance (WCAG)."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "black" if luminance > 0.179 else "white"


def number(value: float) -> str:
    text = f"{value:.3g}"
    return f"{value:.6f}".rstrip("0") if text == "1" and value < 1 else text  # 0.99998 is not 1


def heatmap_layout(table: pd.DataFrame, factors: list[str]) -> tuple[str, str, str | None, list[str]] | None:
    """The factors of a heat map: rows, columns, panels (or None), and those averaged over.

    R x W when both vary, else the first two factors with two or more values; panels by N when
    it varies and is not already used, else by the next varying factor. None with fewer than two.
    """
    varying = [f for f in factors if table[f].nunique(dropna=False) >= 2]
    if len(varying) < 2:
        return None
    rows, cols = ("quorum.r", "quorum.w") if {"quorum.r", "quorum.w"} <= set(varying) else varying[:2]
    rest = [f for f in varying if f not in (rows, cols)]
    facet = "quorum.n" if "quorum.n" in rest else (rest[0] if rest else None)
    return rows, cols, facet, [f for f in rest if f != facet]


def heatmap(table: pd.DataFrame, metric: str, factors: list[str] | None = None) -> Figure | None:
    """``metric`` over two factors (see :func:`heatmap_layout`), one panel per value of a third,
    all panels on one colour scale; None with fewer than two varying factors."""
    factors = factors if factors is not None else list(table.columns[: table.columns.get_loc("runs")])
    layout = heatmap_layout(table, factors)
    if layout is None:
        return None
    rows, cols, facet, averaged = layout
    panels = _ordered(table[facet]) if facet else [None]
    parts = [_panel(table if facet is None else table[table[facet] == v], rows, cols, metric) for v in panels]
    cmap, norm, constant = colour_scale(metric, np.concatenate([grid.ravel() for grid, _, _ in parts]))
    columns, lines = min(len(panels), 4), -(-len(panels) // 4)
    figure = Figure(figsize=(1.2 + 3.6 * columns, 1.0 + 3.4 * lines), layout="constrained")
    all_axes = []
    for index, (panel, (grid, row_values, col_values)) in enumerate(zip(panels, parts, strict=True)):
        axes = figure.add_subplot(lines, columns, index + 1)
        image = axes.imshow(grid, origin="lower", cmap=cmap, norm=norm, aspect="auto")
        _cell_texts(axes, grid, cmap, norm)
        axes.set_xticks(range(len(col_values)), [str(v) for v in col_values])
        axes.set_yticks(range(len(row_values)), [str(v) for v in row_values])
        axes.set_xlabel(cols)
        axes.set_ylabel(rows)
        if facet:
            axes.set_title(f"{facet} = {panel}", fontsize=10)
        all_axes.append(axes)
    figure.colorbar(image, ax=all_axes, shrink=0.9,
                    label=f"{metric_label(metric)}\n{better(metric)} is better (lighter)")  # fmt: skip
    mean = f"\nmean over {', '.join(averaged)}" if averaged else ""
    same = f"\nevery configuration: {number(constant)}" if constant is not None else ""
    figure.suptitle(f"{metric_label(metric)} over {rows} x {cols}{mean}{same}", fontsize=11)
    return figure


def _ordered(column: pd.Series) -> list:
    values = list(column.drop_duplicates())
    try:
        return sorted(values)
    except TypeError:  # mixed values keep their order
        return values


def _panel(part: pd.DataFrame, rows: str, cols: str, metric: str) -> tuple[np.ndarray, list, list]:
    """The mean of ``metric`` per (row, column) value of ``part`` (NaN where none ran), and the values."""
    row_values, col_values = _ordered(part[rows]), _ordered(part[cols])
    grid = np.full((len(row_values), len(col_values)), np.nan)
    means = part.groupby([rows, cols], dropna=False, sort=False)[f"{metric}_mean"].mean()
    for (row, col), value in means.items():
        grid[row_values.index(row), col_values.index(col)] = value
    return grid, row_values, col_values


def _cell_texts(axes, grid: np.ndarray, cmap: Colormap, norm: Normalize) -> None:
    fontsize = 8 if grid.shape[1] <= 6 else 6
    for (y, x), value in np.ndenumerate(grid):
        if np.isfinite(value):
            axes.text(x, y, number(value), ha="center", va="center", fontsize=fontsize,
                      color=text_colour(cmap(norm(value))))  # fmt: skip


def heatmap_metrics(objectives: Sequence[str]) -> list[str]:
    """The metrics drawn as heat maps: the objectives, and availability."""
    return list(dict.fromkeys([*objectives, "availability"]))
