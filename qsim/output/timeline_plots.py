"""The time plots of a run: availability and stale reads per window, and the load per node as a
node x time heat map, each with the run's faults marked (shaded once per kind over the union of
its intervals, labelled with the targets; on a node's row where the fault hits nodes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

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

NO_CLOCK = "no time windows: the run covers no simulated time (a Monte Carlo run has no clock)"
NO_LOAD = "no load samples: the run was shorter than one window, or has no clock (Monte Carlo)"
FAULT_COLOURS = {
    "crash": "tab:red",
    "partition": "tab:purple",
    "degrade": "tab:pink",
    "slow": "tab:brown",
    "clock_skew": "tab:olive",
}


def availability_timeline(timeline: pd.DataFrame, faults: pd.DataFrame, title: str = "") -> Figure:
    """Read and write availability per time window, with the faults shaded.

    When every window is at least 0.5 available and one is below 1, the y axis starts just below
    the lowest window (a 98% dip must show) and its label says where it starts.
    """
    figure, axes = new_figure(9, 4.5)
    bottom = 0.0
    if timeline.empty:
        say(axes, NO_CLOCK, blank_x=True)
    else:
        _availability_lines(axes, timeline)
        _time_span(axes, timeline)
        bottom = availability_floor(timeline[["read_availability", "write_availability"]].to_numpy(float))
    _shade_faults(axes, timeline, faults)
    zoomed = f"\naxis starts at {plain(bottom)}, not 0" if bottom > 0 else ""
    axes.set_ylabel("availability (fraction of operations ok)" + zoomed)
    axes.set_ylim(bottom if bottom > 0 else -BELOW_ZERO, 1 + 0.02 * (1 - bottom))
    plain_ticks(axes.yaxis)
    return _finish_timeline(axes, figure, title or "Availability per window (fraction of operations ok)")


def _availability_lines(axes: Axes, timeline: pd.DataFrame) -> None:
    """A line per kind that has operations; for a kind without any, a legend entry that says so."""
    for kind, colour in COLOURS.items():
        values = timeline[f"{kind}_availability"]
        if values.notna().any():
            mid_s = _window_mid_s(timeline)
            axes.plot(mid_s, values, marker=".", color=colour, label=f"{kind}s", zorder=DATA_Z)
        else:  # an empty line: its legend entry stands where the reader looks for the missing line
            axes.plot([], [], ls="none", label=f"no {kind}s")


def availability_floor(values: np.ndarray) -> float:
    """Where an availability axis starts: 0, or a round value below the data when it sits above 0.5.

    The gap to 1 is widened by a quarter and rounded up to 1, 2 or 5 times a power of ten, so a
    lowest window of 0.98 gives 0.95 and one of 0.999 gives 0.998.
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if not finite.size or not 0.5 <= finite.min() < 1.0:
        return 0.0
    gap = 1.25 * (1.0 - finite.min())
    power = 10.0 ** np.floor(np.log10(gap))
    step = power * next(m for m in (1, 2, 5, 10) if m * power >= gap * (1 - 1e-12))
    return max(0.0, float(f"{1.0 - step:.12g}"))


def staleness_timeline(timeline: pd.DataFrame, faults: pd.DataFrame, title: str = "") -> Figure:
    """Fraction of checked reads that were stale per time window, with the faults shaded."""
    figure, axes = new_figure(9, 4.5)
    fractions = timeline["stale_fraction"].dropna()
    if len(fractions):
        axes.plot(_window_mid_s(timeline), timeline["stale_fraction"], marker=".", color="tab:green",
                  zorder=DATA_Z)  # fmt: skip
        _time_span(axes, timeline)
        _shade_faults(axes, timeline, faults)
    elif timeline.empty:
        say(axes, NO_CLOCK, blank_x=True)
    else:  # no time axis and no faults: there is nothing to set them against
        reason = unchecked_reason(int(timeline["reads"].sum()), int(timeline["writes"].sum()))
        say(axes, reason, blank_x=True)
    axes.set_ylabel("fraction of checked reads that were stale")
    if len(fractions) and (fractions == 0).all():  # a line on the axis says nothing by itself
        checked = int(timeline["reads_checked"].sum())
        say(axes, f"no stale reads: all {checked:,} checked reads returned the newest committed version")
        axes.set_ylim(-BELOW_ZERO, 1)
    else:  # stale fractions are often small: the top follows the data
        top = axes.get_ylim()[1]
        axes.set_ylim(-BELOW_ZERO * top, top)
    plain_ticks(axes.yaxis)
    return _finish_timeline(axes, figure, title or "Stale reads per window (fraction of checked reads)")


def _window_mid_s(timeline: pd.DataFrame) -> np.ndarray:
    return (timeline["window_start_ms"] + timeline["window_end_ms"]).to_numpy(dtype=float) / 2000


def _shade_faults(axes: Axes, timeline: pd.DataFrame, faults: pd.DataFrame) -> None:
    """Shade the union of each kind's fault intervals once, labelled with the kind and its targets.

    Overlapping faults of one kind (five crashes at once) shade no darker than one; a NaN end
    reaches the right edge.
    """
    right_ms = max([*timeline["window_end_ms"], *faults["start_ms"], *faults["end_ms"].dropna()], default=0)
    for kind, group in faults.groupby("kind", sort=False):
        label = fault_label(str(kind), group["target"])
        colour = FAULT_COLOURS.get(str(kind), "tab:gray")
        for start_ms, end_ms in union(zip(group["start_ms"], group["end_ms"].fillna(right_ms), strict=True)):
            axes.axvspan(
                start_ms / 1000, end_ms / 1000, color=colour, alpha=0.15, lw=0, label=label, zorder=1
            )
            label = None  # one legend entry per kind


def union(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The union of the intervals [start, end) as disjoint intervals in time order (empty ones dropped)."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def fault_label(kind: str, targets: Iterable[str]) -> str:
    """``kind`` and its distinct targets: 'crash n1, n3', 'degrade us-east-eu-west', 'partition a | b'."""
    distinct = sorted(set(map(str, targets)), key=natural_key)
    if len(distinct) > 6:  # a legend entry, not a paragraph
        return f"{kind.replace('_', ' ')} ({len(distinct)} targets)"
    separator = "; " if any("," in t or " " in t for t in distinct) else ", "
    return f"{kind.replace('_', ' ')} {separator.join(distinct)}"


def _time_span(axes: Axes, timeline: pd.DataFrame) -> None:
    """Draw the time axis (s) over the windows' span: [0, duration] for a plain run."""
    axes.set_xlim(timeline["window_start_ms"].min() / 1000, timeline["window_end_ms"].max() / 1000)


def _finish_timeline(axes: Axes, figure: Figure, title: str) -> Figure:
    axes.set_xlabel("time (s)")
    axes.grid(True, alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        legend_outside(axes)
    axes.set_title(title)
    return figure


def node_load(
    nodes: pd.DataFrame | None,
    faults: pd.DataFrame,
    title: str = "",
    *,
    window_ms: float | None = None,
    regions: Mapping[str, str] | None = None,
) -> Figure:
    """Messages each node received per second, per window, as a node x time heat map.

    Nodes are rows in natural name order (n2 before n10), windows are columns, and the colour scale
    starts at 0. A fault is hatched on the rows of the nodes it hits (see :func:`fault_rows`) and
    outlined across every row otherwise; the legend names each kind with its targets. When the
    replicas have a service time (some utilization above 0), a second panel shows utilization
    (0-100 %) with the same rows and columns.

    Args:
        window_ms: the width of a window; by default the spacing of the samples (1 s if only one).
        regions: each node's region, so that a fault of a region marks that region's rows.
    """
    if nodes is None or nodes.empty:
        figure, axes = new_figure(9, 3)
        say(axes, NO_LOAD, blank_x=True)
        axes.set_yticks([])
        axes.set_title(title or "Load per node")
        return figure
    names = sorted(nodes["node"].unique(), key=natural_key)
    starts = np.sort(nodes["window_start_ms"].unique())
    width = window_ms or (float(np.diff(starts).min()) if starts.size > 1 else 1000.0)
    panels = [(f"Messages received per node (messages/s, {plain(width / 1000)} s windows)", "messages/s",
               _node_grid(nodes, "messages", names, starts) * (1000 / width), "Blues", None)]  # fmt: skip
    peak = float(nodes["utilization"].max())
    if peak > 0:  # the colour scale is the whole 0-100 %: the title gives the busiest window's value
        panels.append((f"Utilization per node (% of servers busy; busiest window {short(100 * peak)} %)",
                       "utilization (%)",
                       100 * _node_grid(nodes, "utilization", names, starts), "Oranges", 100.0))  # fmt: skip
    figure = Figure(figsize=(10, 0.9 + len(panels) * (1.2 + 0.27 * len(names))), layout="constrained")
    x_edges = np.append(starts, starts[-1] + width) / 1000
    kinds: dict[str, Patch] = {}
    for i, (heading, unit, values, cmap, top) in enumerate(panels):
        axes = figure.add_subplot(len(panels), 1, i + 1)
        top = top or max(float(np.nanmax(values)), 1.0)
        mesh = axes.pcolormesh(x_edges, np.arange(len(names) + 1) - 0.5, values, cmap=cmap, vmin=0, vmax=top)
        figure.colorbar(mesh, ax=axes, label=unit, pad=0.01)
        axes.set_yticks(np.arange(len(names)), names, fontsize=8 if len(names) > 20 else None)
        axes.set_ylim(len(names) - 0.5, -0.5)  # the first node on top
        kinds |= _mark_node_faults(axes, faults, names, x_edges[-1], regions or {})
        axes.set(title=heading, xlabel="time (s)", ylabel="node")
    figure.suptitle(title or "Load per node")
    if kinds:
        figure.legend(handles=list(kinds.values()), loc="outside lower center", ncols=min(len(kinds), 3),
                      fontsize=9)  # fmt: skip
    return figure


def natural_key(name: str) -> list:
    """Sort key that puts n2 before n10: runs of digits compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(name))]


def _node_grid(nodes: pd.DataFrame, column: str, names: list, starts: np.ndarray) -> np.ndarray:
    """``column`` as a node x window array, rows in ``names`` order and columns in ``starts`` order."""
    grid = nodes.pivot(index="node", columns="window_start_ms", values=column)
    return grid.reindex(index=names, columns=starts).to_numpy(dtype=float)


def _mark_node_faults(axes: Axes, faults: pd.DataFrame, names: list, right_s: float,
                      regions: Mapping[str, str]) -> dict[str, Patch]:  # fmt: skip
    """Hatch each fault on the rows it hits, outline the others across every row.

    Returns:
        Legend handles by kind and style, each labelled with the kind and its targets.
    """
    targets: dict[tuple[str, bool], list[str]] = {}
    for fault in faults.itertuples():
        start = fault.start_ms / 1000
        end = right_s if np.isnan(fault.end_ms) else fault.end_ms / 1000
        colour = FAULT_COLOURS.get(fault.kind, "tab:gray")
        rows = fault_rows(fault.kind, fault.target, names, regions)
        if rows is None:
            axes.axvspan(start, end, fill=False, edgecolor=colour, lw=2, ls="--")
        for row in rows or ():
            axes.add_patch(Rectangle((start, row - 0.5), end - start, 1.0, fill=False, edgecolor=colour,
                                     hatch="///", lw=1.2))  # fmt: skip
        targets.setdefault((fault.kind, rows is None), []).append(fault.target)
    style = {True: {"lw": 2, "ls": "--"}, False: {"hatch": "///"}}  # outlined, hatched
    return {
        f"{kind} {outlined}": Patch(
            fill=False,
            edgecolor=FAULT_COLOURS.get(kind, "tab:gray"),
            label=fault_label(kind, hit),
            **style[outlined],
        )
        for (kind, outlined), hit in targets.items()
    }


def fault_rows(kind: str, target: str, names: list, regions: Mapping[str, str]) -> list[int] | None:
    """The rows (indices into ``names``) of the nodes a fault hits; None for a fault of every link.

    A partition cuts links between all its groups (the nodes it leaves out form one), and a degrade
    of ``all`` every link: None, as for a target naming no known node or region. A target is a node,
    a region (its nodes, by ``regions``), or two such ends joined by '-' (a degraded link: the nodes
    of both ends); names may hold '-' themselves, so every split is tried.
    """
    if kind == "partition" or target == "all":
        return None
    whole = _nodes_of(target, names, regions)
    if whole:
        return whole
    for i in (i for i, char in enumerate(target) if char == "-"):
        first, second = _nodes_of(target[:i], names, regions), _nodes_of(target[i + 1 :], names, regions)
        if first and second:
            return sorted(set(first + second))
    return None


def _nodes_of(name: str, names: list, regions: Mapping[str, str]) -> list[int]:
    """The rows of node ``name``, or of the nodes of region ``name``; [] if it names neither."""
    if name in names:
        return [names.index(name)]
    return [i for i, node in enumerate(names) if regions.get(node) == name]
