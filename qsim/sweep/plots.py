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
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from qsim import nines
from qsim.plots import availability_floor, bin_centre, plain, plain_ticks
from qsim.results import atomic_write, png_bytes, svg_bytes
from qsim.sweep.aggregate import DEFAULT_OBJECTIVES, better, check_objectives, pareto
from qsim.sweep.heatmaps import colour_scale, heatmap, heatmap_metrics, metric_label, number

MAX_CURVES = 8  # configurations in one curve plot; more stop being readable
_LABEL_OFFSETS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1.4), (0, -1.4), (1.4, 0), (-1.4, 0))
_LABEL_DISTANCES_PT = (5, 12, 22, 34)  # beyond the first ring a thin line leads back to the point


def label(row, factors: list[str]) -> str:
    """A short label of a configuration, such as "n5 r1 w5" (or "read_fraction=0.9" for long names)."""
    parts = []
    for factor in factors:
        name = factor.split(".")[-1]
        parts.append(f"{name}{row[factor]}" if len(name) <= 2 else f"{name}={row[factor]}")
    return " ".join(parts) or "the base scenario"  # a sweep of seeds only


def _names(objectives: Sequence[str]) -> str:
    return ", ".join(metric_label(m).split(" (")[0] for m in objectives)


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
    bottom = 0.0
    if axes.lines:
        if all(line.get_xdata().min() > 0 for line in axes.lines):
            axes.set_xscale("log")
        plain_ticks(axes.xaxis)
        bottom = availability_floor(np.concatenate([line.get_ydata() for line in axes.lines]))
        axes.set_ylim(bottom, 1 + 0.02 * (1 - bottom))
        plain_ticks(axes.yaxis)
        axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        axes.text(0.5, 0.5, "no reads after a committed write", ha="center", va="center",
                  transform=axes.transAxes)  # fmt: skip
    axes.set_xlabel("t since the newest commit (ms)")
    zoomed = f"\naxis starts at {plain(bottom)}, not 0" if bottom > 0 else ""
    axes.set_ylabel("P(consistent), mean over seeds" + zoomed)
    axes.grid(True, alpha=0.3)
    figure.suptitle(f"t-visibility of {_which(len(rows), optimal, objectives)}", fontsize=10)
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
    """Write every sweep plot under ``out/plots`` and return the file names."""
    folder = Path(out) / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    figures = sweep_figures(runs, table, factors, name, objectives)
    for file, figure in figures.items():
        atomic_write(folder / file, png_bytes(figure))
    # The frontier also as SVG: the HTML report inlines it and gives each marker its hover text.
    atomic_write(folder / "frontier.svg", svg_bytes(figures["frontier.png"]))
    return [*figures, "frontier.svg"]
