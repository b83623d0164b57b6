"""Plots of a sweep, from its tables (never from simulations).

What they show follows what the user asked: the frontier is over the sweep's objectives (see
:func:`qsim.sweep.aggregate.pareto`), and the curve plots draw its Pareto-optimal configurations.
Colours read the same way in every plot: lighter is better, whichever way the metric improves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from qsim import nines
from qsim.plots import bin_centre
from qsim.results import atomic_write, png_bytes, svg_bytes
from qsim.sweep.aggregate import DEFAULT_OBJECTIVES, LABELS, better, check_objectives, pareto

MAX_CURVES = 8  # configurations in one curve plot; more stop being readable
FRACTIONS = ("availability", "read_availability", "write_availability", "stale_fraction")
_LABEL_OFFSETS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1.4), (0, -1.4), (1.4, 0), (-1.4, 0))
_LABEL_DISTANCES_PT = (5, 12, 22, 34)  # beyond the first ring a thin line leads back to the point


def label(row, factors: list[str]) -> str:
    """A short label of a configuration, such as "n5 r1 w5" (or "read_fraction=0.9" for long names)."""
    parts = []
    for factor in factors:
        name = factor.split(".")[-1]
        parts.append(f"{name}{row[factor]}" if len(name) <= 2 else f"{name}={row[factor]}")
    return " ".join(parts) or "the base scenario"  # a sweep of seeds only


def metric_label(metric: str) -> str:
    """What ``metric`` is, with its unit."""
    return LABELS.get(metric, metric)


def _names(objectives: Sequence[str]) -> str:
    return ", ".join(metric_label(m).split(" (")[0] for m in objectives)


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


def _number(value: float) -> str:
    text = f"{value:.3g}"
    return f"{value:.6f}".rstrip("0") if text == "1" and value < 1 else text  # 0.99998 is not 1


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
        same = f"; every configuration: {_number(constant)}" if constant is not None else ""
        figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, label=f"{metric_label(colour)}\n"
                        f"{better(colour)} is better (lighter){same}")  # fmt: skip
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
    axes.set_xlabel(f"{metric_label(x)}, {better(x)} is better")
    axes.set_ylabel(f"{metric_label(y)}, {better(y)} is better")
    axes.grid(True, alpha=0.3)
    hidden = int((~shown).sum())
    note = f"; {hidden} configurations without a value not drawn" if hidden else ""
    axes.set_title(f"{title or 'Trade-off'}\nPareto-optimal over {_names(objectives)}{note}", fontsize=10)
    order = [*np.flatnonzero(shown & optimal), *np.flatnonzero(shown & ~optimal)]  # best spots first
    rows = table.to_dict("records")  # iterrows() would turn integer factors into floats
    place_labels(axes, xs[order], ys[order], [label(rows[i], factors) for i in order])
    return figure


def _frontier_legend(axes, optimal: np.ndarray, objectives: Sequence[str]) -> None:
    kinds = [("Pareto-optimal", 9, "black", 1.8), ("dominated", 6, "0.45", 0.6)]
    counts = [int(optimal.sum()), int((~optimal).sum())]
    handles = [
        Line2D([], [], marker="o", linestyle="", markersize=size, markerfacecolor="lightgray",
               markeredgecolor=edge, markeredgewidth=width, label=f"{name} ({count})")
        for (name, size, edge, width), count in zip(kinds, counts, strict=True)
    ]  # fmt: skip
    axes.legend(handles=handles, fontsize=8, loc="best", title=f"over {len(objectives)} objectives",
                title_fontsize=8)  # fmt: skip


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


# --- curves of the Pareto-optimal configurations -----------------------------------------------------


def chosen(table: pd.DataFrame, objectives: Sequence[str], limit: int = MAX_CURVES) -> tuple[list[int], int]:
    """Row positions of the Pareto-optimal configurations to draw, and how many are optimal.

    All of them if at most ``limit``; else ``limit`` spread evenly along the frontier, ordered
    by the first objective.
    """
    optimal = np.flatnonzero(pareto(table, objectives).to_numpy())
    first = table[f"{objectives[0]}_mean"].to_numpy(dtype=float)[optimal]
    order = optimal[np.argsort(first, kind="stable")]
    if len(order) > limit:
        order = order[np.unique(np.linspace(0, len(order) - 1, limit).round().astype(int))]
    return [int(i) for i in order], len(optimal)


def _which(count: int, optimal: int, objectives: Sequence[str]) -> str:
    if optimal == 1:
        return f"the one Pareto-optimal configuration (over {_names(objectives)})"
    some = f"all {optimal}" if count == optimal else f"{count} of {optimal}"
    return f"{some} Pareto-optimal configurations (over {_names(objectives)})"


def _runs_of(runs: pd.DataFrame, config: dict, factors: list[str]) -> pd.DataFrame:
    """The runs of one configuration that ran without an error."""
    same = runs["error"].isna().to_numpy().copy()
    for factor in factors:
        same &= (runs[factor] == config[factor]).to_numpy()
    return runs[same]


def merge_coincident(curves: list[tuple]) -> list[tuple[list[str], int]]:
    """Group curves (label, x, y, ...) that coincide: each group's labels and its first curve's index."""
    groups: list[tuple[list[str], int]] = []
    for index, (text, x, y, *_) in enumerate(curves):
        for labels, first in groups:
            _, fx, fy, *_ = curves[first]
            if fx.shape == x.shape and np.allclose([fx, fy], [x, y], equal_nan=True):
                labels.append(text)
                break
        else:
            groups.append(([text], index))
    return groups


def _legend_text(labels: list[str]) -> str:
    rows = [", ".join(labels[i : i + 3]) for i in range(0, len(labels), 3)]
    return "\n".join(rows) + (f"  (identical, {len(labels)})" if len(labels) > 1 else "")


def _draw_curves(axes, curves: list[tuple[str, np.ndarray, np.ndarray, str]]) -> None:
    """Draw each distinct curve (label, x, y, colour) once, labelled with every configuration it is."""
    for labels, first in merge_coincident(curves):
        _, x, y, colour = curves[first]
        axes.plot(x, y, marker="o", markersize=3, color=colour, label=_legend_text(labels))


def visibility_curves(
    runs: pd.DataFrame,
    table: pd.DataFrame,
    factors: list[str],
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
    limit: int = MAX_CURVES,
) -> Figure:
    """t-visibility of the Pareto-optimal configurations (see :func:`chosen`), averaged over seeds."""
    figure = Figure(figsize=(8.5, 5.5), layout="constrained")
    axes = figure.add_subplot()
    rows, optimal = chosen(table, check_objectives(objectives), limit)
    curves = []
    for position, config in enumerate(table.to_dict("records")[i] for i in rows):
        points = [p for text in _runs_of(runs, config, factors)["t_visibility"] for p in json.loads(text)]
        if points:
            frame = pd.DataFrame(points).assign(x=[bin_centre(p["t_ms"], p.get("t_hi_ms")) for p in points])
            curve = frame.groupby("x")["p_consistent"].mean()
            curves.append((label(config, factors), curve.index.to_numpy(), curve.to_numpy(), f"C{position}"))
    _draw_curves(axes, curves)
    if axes.lines:
        if all(line.get_xdata().min() > 0 for line in axes.lines):
            axes.set_xscale("log")
        axes.legend(fontsize=7, loc="lower right")
    else:
        axes.text(0.5, 0.5, "no reads after a committed write", ha="center", va="center",
                  transform=axes.transAxes)  # fmt: skip
    axes.set_xlabel("t since the newest commit (ms)")
    axes.set_ylabel("P(consistent), mean over seeds")
    axes.grid(True, alpha=0.3)
    axes.set_title(f"t-visibility of {_which(len(rows), optimal, objectives)}", fontsize=10)
    return figure


def _mean_percentiles(texts) -> tuple[np.ndarray, np.ndarray] | None:
    """The GRID percentiles resolved by every seed, and the seeds' mean latency at each."""
    curves = [json.loads(t) for t in texts if isinstance(t, str)]
    curves = [np.array([np.nan if v is None else v for v in c], dtype=float) for c in curves if c]
    if not curves:
        return None
    mean = np.mean(curves, axis=0)
    keep = np.isfinite(mean)
    return np.asarray(nines.GRID)[keep], mean[keep]


def latency_percentiles(
    runs: pd.DataFrame,
    table: pd.DataFrame,
    factors: list[str],
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
    limit: int = MAX_CURVES,
) -> Figure:
    """Read and write latency by percentile (nines axis) of the Pareto-optimal configurations.

    Each curve is the mean over seeds, at each percentile every seed resolves.
    """
    figure = Figure(figsize=(12, 5.5), layout="constrained")
    rows, optimal = chosen(table, check_objectives(objectives), limit)
    configs = [table.to_dict("records")[i] for i in rows]
    for index, kind in enumerate(("read", "write")):
        axes = figure.add_subplot(1, 2, index + 1)
        column = f"{kind}_latency_percentiles"
        curves = []
        for position, config in enumerate(configs if column in runs else []):
            mean = _mean_percentiles(_runs_of(runs, config, factors)[column])
            if mean is not None:
                curves.append((label(config, factors), *mean, f"C{position}"))  # one colour per configuration
        _draw_percentiles(axes, curves, kind, column in runs)
    figure.suptitle(f"Latency by percentile of {_which(len(rows), optimal, objectives)}", fontsize=10)
    return figure


def _draw_percentiles(axes, curves: list, kind: str, recorded: bool) -> None:
    top = max((float(p[-1]) for _, p, _, _ in curves), default=99.0)
    _draw_curves(axes, [(text, nines.nines(p), v, colour) for text, p, v, colour in curves])
    nines.set_nines_axis(axes, top)
    if axes.lines:
        axes.legend(fontsize=7, loc="upper left")
    else:
        why = "no ok " + kind + "s" if recorded else "this sweep has no per-run percentiles\n(run it again)"
        axes.text(0.5, 0.5, why, ha="center", va="center", transform=axes.transAxes)
    axes.set_ylim(bottom=0)
    axes.set_ylabel(f"{kind} latency (ms), mean over seeds")
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(f"{kind}s")


# --- heat maps -----------------------------------------------------------------------------------


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
    same = f"\nevery configuration: {_number(constant)}" if constant is not None else ""
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
            axes.text(x, y, _number(value), ha="center", va="center", fontsize=fontsize,
                      color=text_colour(cmap(norm(value))))  # fmt: skip


# --- all of them ---------------------------------------------------------------------------------


def heatmap_metrics(objectives: Sequence[str]) -> list[str]:
    """The metrics drawn as heat maps: the objectives, and availability."""
    return list(dict.fromkeys([*objectives, "availability"]))


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
    """Write every sweep plot under ``out/plots`` and return the file names."""
    folder = Path(out) / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    figures = sweep_figures(runs, table, factors, name, objectives)
    for file, figure in figures.items():
        atomic_write(folder / file, png_bytes(figure))
    # The frontier also as SVG: the HTML report inlines it and gives each marker its hover text.
    atomic_write(folder / "frontier.svg", svg_bytes(figures["frontier.png"]))
    return [*figures, "frontier.svg"]
