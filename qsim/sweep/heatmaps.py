"""Heat maps of a sweep: a metric over two factors, one panel per value of a third, one colour scale.

Factors that vary together (a zip, or a grid a ``where`` filter thinned to a few pairs) count as
one factor here: a heat map of one against the other would draw a mostly empty grid and suggest
a crossed design that was never run. Colours read the same way in every sweep plot: lighter is
better, whichever way the metric improves.
"""

from __future__ import annotations

import itertools
import json
import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from qsim.output.plots import plain
from qsim.sweep.aggregate import LABELS, better
from qsim.units import parse_duration, parse_rate

FRACTIONS = ("availability", "read_availability", "write_availability", "stale_fraction")
TICK_CHARACTERS = 30  # column labels longer than this in all are turned, so that they never overlap


def metric_label(metric: str) -> str:
    """What ``metric`` is, with its unit."""
    return LABELS.get(metric, metric)


def bounds(metric: str) -> tuple[float, float]:
    """The values ``metric`` can take: [0, 1] for fractions, [0, inf) for every other metric."""
    return (0.0, 1.0) if metric in FRACTIONS else (0.0, np.inf)


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


def colour_bar(figure: Figure, mappable, metric: str, note: str = "", **options):
    """A colour bar of ``metric`` labelled in plain decimals (no offset, no 1e-5), lighter is better."""
    label = f"{metric_label(metric)}\n{better(metric)} is better (lighter){note}"
    return figure.colorbar(mappable, label=label, format=FuncFormatter(plain), **options)


def text_colour(rgba) -> str:
    """Black on light colours, white on dark ones, by relative luminance (WCAG)."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "black" if luminance > 0.179 else "white"


def number(value: float) -> str:
    text = f"{value:.3g}"
    return f"{value:.6f}".rstrip("0") if text == "1" and value < 1 else text  # 0.99998 is not 1


def is_number(value: object) -> bool:
    """True for an int or float (numpy's too), not a bool."""
    numeric = isinstance(value, int | float | np.integer | np.floating)
    return numeric and not isinstance(value, bool | np.bool_)


def value_label(row, factors: Sequence[str]) -> str:
    """A short label of ``row``'s values of ``factors``: "n5 r1 w5", or "r=one w=all".

    A factor reads glued ("r1") when its last path component has at most two letters and its value
    is a number; otherwise as ``name=value``.
    """
    parts = []
    for factor in factors:
        name, value = factor.split(".")[-1], compact(row[factor])
        parts.append(f"{name}{value}" if len(name) <= 2 and is_number(value) else f"{name}={value}")
    return " ".join(parts)


COMPACT_CHARS = 40  # a factor value given as a mapping, shortened to this in a label


def compact(value: object) -> object:
    """A factor value given as a mapping (a JSON object in the table), shortened for a label.

    ``{"kind": "grid", "rows": 3, "cols": 3, "strategy": "uniform"}`` reads ``grid
    strategy=uniform rows=3 cols=3``: the kind bare, then its strategy, the other plain fields as
    name=value, nested ones left out, and the whole cut at :data:`COMPACT_CHARS`. Any other value
    is returned as it is.
    """
    if isinstance(value, str) and value.startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if not isinstance(value, dict):
        return value
    first = [key for key in ("kind", "strategy") if key in value]
    words = [str(value["kind"])] if "kind" in value else []
    words += [f"{k}={v}" for k, v in value.items() if k != "kind" and k in first]
    words += [f"{k}={v}" for k, v in value.items() if k not in first and not isinstance(v, dict | list)]
    text = " ".join(words) or "{...}"
    return text if len(text) <= COMPACT_CHARS else text[: COMPACT_CHARS - 1] + "…"


# --- which factors a heat map is over ----------------------------------------------------------------


def vary_together(table: pd.DataFrame, a: str, b: str) -> bool:
    """True when factors ``a`` and ``b`` do not cross: their value pairs are too few to form a grid.

    Pairs of a zip number at most the values of either; a crossed design (even thinned by a
    ``where``) has at least as many pairs as one full row plus one full column of its grid,
    values(a) + values(b) - 1. Fewer pairs leave every row or column with one value at most
    once the grid is walked (the pairs form a forest), so the grid compares nothing.
    """
    pairs = len(table[[a, b]].drop_duplicates())
    return pairs < table[a].nunique(dropna=False) + table[b].nunique(dropna=False) - 1


def factor_units(table: pd.DataFrame, factors: Sequence[str]) -> list[tuple[str, ...]]:
    """The factors with two or more values, those that vary together grouped, in the order written."""
    varying = [f for f in factors if table[f].nunique(dropna=False) >= 2]
    group = {f: i for i, f in enumerate(varying)}
    for a, b in itertools.combinations(varying, 2):
        if group[a] != group[b] and vary_together(table, a, b):
            old = group[b]
            group = {f: group[a] if g == old else g for f, g in group.items()}
    units: dict[int, list[str]] = {}
    for factor in varying:
        units.setdefault(group[factor], []).append(factor)
    return [tuple(unit) for unit in units.values()]


def unit_name(unit: tuple[str, ...]) -> str:
    """An axis label of a unit: the factor's path, or "quorum.r with quorum.w (varied together)"."""
    return unit[0] if len(unit) == 1 else " with ".join(unit) + " (varied together)"


def short_name(unit: tuple[str, ...]) -> str:
    """The last path components of a unit's factors: "r", "r+w"."""
    return "+".join(f.split(".")[-1] for f in unit)


def heatmap_layout(
    table: pd.DataFrame, factors: list[str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...] | None, list[tuple[str, ...]]] | None:
    """The units (see :func:`factor_units`) of a heat map: rows, columns, panels (or None), averaged.

    R x W when both vary on their own, else the first two units; panels by N when it varies on its
    own and is not already used, else by the next unit. None with fewer than two units.
    """
    units = factor_units(table, factors)
    if len(units) < 2:
        return None
    r, w = ("quorum.r",), ("quorum.w",)
    rows, cols = (r, w) if {r, w} <= set(units) else units[:2]
    rest = [u for u in units if u not in (rows, cols)]
    facet = ("quorum.n",) if ("quorum.n",) in rest else (rest[0] if rest else None)
    return rows, cols, facet, [u for u in rest if u != facet]


def ordered(values: Sequence) -> list:
    """The distinct ``values`` in their natural order: numbers, durations and rates by value, any
    other text in the order first seen (the order written in the sweep)."""
    distinct = list(dict.fromkeys(values))
    if all(is_number(v) for v in distinct):
        return sorted(distinct)
    for parse in (parse_duration, parse_rate):
        try:
            return sorted(distinct, key=parse)
        except (TypeError, ValueError):
            continue
    return distinct


def _keyed(table: pd.DataFrame, units: list[tuple[str, ...]]) -> tuple[pd.DataFrame, dict, dict]:
    """``table`` with one column per unit (a unit of several factors holds their value label), the
    column of each unit, and the order of each unit's values."""
    keyed, column, order = table.copy(), {}, {}
    for unit in units:
        column[unit] = "unit:" + "+".join(unit)
        if len(unit) == 1:
            keyed[column[unit]] = table[unit[0]]
        else:  # the configurations of a zip, in the order written
            keyed[column[unit]] = [value_label(row, unit) for row in table[list(unit)].to_dict("records")]
        order[unit] = ordered(list(keyed[column[unit]]))
    return keyed, column, order


# --- the heat map ------------------------------------------------------------------------------------


def heatmap(table: pd.DataFrame, metric: str, factors: list[str] | None = None) -> Figure | None:
    """``metric`` over two factors (see :func:`heatmap_layout`), one panel per value of a third,
    all panels on one colour scale; None with fewer than two factors that cross."""
    factors = factors if factors is not None else list(table.columns[: table.columns.get_loc("runs")])
    layout = heatmap_layout(table, factors)
    if layout is None:
        return None
    rows, cols, facet, averaged = layout
    keyed, column, order = _keyed(table, [u for u in (rows, cols, facet) if u is not None])
    panels = order[facet] if facet else [None]
    axes_of = (column[rows], column[cols], order[rows], order[cols])
    parts = [_panel(keyed if facet is None else keyed[keyed[column[facet]] == v], metric, *axes_of)
             for v in panels]  # fmt: skip
    cmap, norm, constant = colour_scale(metric, np.concatenate([grid.ravel() for grid, _, _ in parts]))
    columns, lines = min(len(panels), 4), -(-len(panels) // 4)
    width = 1.2 + 3.6 * columns
    figure = Figure(figsize=(width, 1.3 + 3.4 * lines), layout="constrained")
    all_axes = []
    for index, (panel, (grid, row_values, col_values)) in enumerate(zip(panels, parts, strict=True)):
        axes = figure.add_subplot(lines, columns, index + 1)
        image = axes.imshow(grid, origin="lower", cmap=cmap, norm=norm, aspect="auto")
        _cell_texts(axes, grid, cmap, norm)
        _ticks(axes, row_values, col_values)
        axes.set_xlabel(unit_name(cols))
        axes.set_ylabel(unit_name(rows))
        if facet:
            axes.set_title(f"{unit_name(facet)} = {panel}", fontsize=10)
        all_axes.append(axes)
    colour_bar(figure, image, metric, ax=all_axes, shrink=0.9)
    title = f"{metric_label(metric)} over {short_name(rows)} x {short_name(cols)}"
    if averaged:  # on no axis, so by their full paths
        title += f"\nmean over {', '.join(unit_name(u) for u in averaged)}"
    if constant is not None:
        title += f"\nevery configuration: {number(constant)}"
    # about 9 characters an inch at 11 pt: a long line wraps instead of running off the figure
    wrapped = [textwrap.fill(line, int(9 * width)) for line in title.split("\n")]
    figure.suptitle("\n".join(wrapped), fontsize=11)
    return figure


def _panel(part: pd.DataFrame, metric: str, rows: str, cols: str, row_order: list, col_order: list):
    """The mean of ``metric`` per (row, column) value of ``part`` (NaN where none ran), and the row
    and column values ``part`` holds, in the given orders."""
    row_values = [v for v in row_order if v in set(part[rows])]
    col_values = [v for v in col_order if v in set(part[cols])]
    grid = np.full((len(row_values), len(col_values)), np.nan)
    means = part.groupby([rows, cols], dropna=False, sort=False)[f"{metric}_mean"].mean()
    for (row, col), value in means.items():
        grid[row_values.index(row), col_values.index(col)] = value
    return grid, row_values, col_values


def _ticks(axes, row_values: list, col_values: list) -> None:
    """Tick labels of every value; column labels turned when they would run into each other."""
    texts = [str(v) for v in col_values]
    turned = sum(len(t) + 2 for t in texts) > TICK_CHARACTERS
    turn = {"rotation": 30, "ha": "right", "rotation_mode": "anchor"} if turned else {}
    axes.set_xticks(range(len(texts)), texts, **turn)
    axes.set_yticks(range(len(row_values)), [str(v) for v in row_values])


def _cell_texts(axes, grid: np.ndarray, cmap: Colormap, norm: Normalize) -> None:
    fontsize = 8 if grid.shape[1] <= 6 else 6
    for (y, x), value in np.ndenumerate(grid):
        if np.isfinite(value):
            text = number(value)  # a long one (0.000695) a size smaller, so that it stays in its cell
            axes.text(x, y, text, ha="center", va="center", fontsize=fontsize - (len(text) > 6),
                      color=text_colour(cmap(norm(value))))  # fmt: skip


def heatmap_metrics(objectives: Sequence[str]) -> list[str]:
    """The metrics drawn as heat maps: the objectives, and availability."""
    return list(dict.fromkeys([*objectives, "availability"]))
