"""Curve plots of a sweep: t-visibility and latency by percentile of its Pareto-optimal configurations.

Which configurations: see :func:`chosen`. A configuration has one colour in every curve plot (its
place among the chosen ones). Curves that coincide are drawn once, striped in the colours of every
configuration they stand for, and their legend entry names them all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D

from qsim.checks import nines
from qsim.checks.metrics import wilson_interval
from qsim.output.plots import availability_floor, bin_centre, latency_y_axis, plain, plain_ticks
from qsim.sweep.aggregate import DEFAULT_OBJECTIVES, check_objectives, pareto
from qsim.sweep.heatmaps import metric_label, ordered, value_label

MAX_CURVES = 8  # configurations in one curve plot; more stop being readable
STRIPE_PT = 5.0  # length of one colour's dash in a striped (shared) curve


def label(row, factors: Sequence[str]) -> str:
    """A short label of a configuration: "n5 r1 w5", "r=one w=all", "read_fraction=0.9"."""
    return value_label(row, factors) or "the base scenario"  # a sweep of seeds only


def names(objectives: Sequence[str]) -> str:
    """The objectives as words: "p99 read latency, stale-read fraction"."""
    return ", ".join(metric_label(m).split(" (")[0] for m in objectives)


# --- which configurations ----------------------------------------------------------------------


def chosen(
    table: pd.DataFrame, objectives: Sequence[str], factors: Sequence[str] = (), limit: int = MAX_CURVES
) -> tuple[list[int], int, str]:
    """Row positions of the Pareto-optimal configurations to draw, how many are optimal, and how the
    drawn ones were picked ("" when all are drawn).

    All of them if at most ``limit``. Else, when their objective values differ, ``limit`` spread
    evenly along the frontier (ordered by the objectives, first one first); when every optimal
    configuration has the same objective values, ``limit`` spread over the factors' values.
    """
    optimal = np.flatnonzero(pareto(table, objectives).to_numpy())
    values = table[[f"{m}_mean" for m in objectives]].to_numpy(dtype=float)[optimal]
    order = optimal[np.lexsort(values.T[::-1])]  # the first objective first, the others break ties
    if len(order) <= limit:
        return [int(i) for i in order], len(optimal), ""
    if len(np.unique(values, axis=0)) == 1:
        picked = _spread_over_factors(table, factors, list(optimal), limit)
        return picked, len(optimal), "all tied on the objectives: picked to differ most in factor values"
    spread = [int(i) for i in order[np.unique(np.linspace(0, len(order) - 1, limit).round().astype(int))]]
    return spread, len(optimal), f"spread evenly along the frontier by {names(objectives[:1])}"


def _spread_over_factors(table: pd.DataFrame, factors: Sequence[str], rows: list, limit: int) -> list[int]:
    """``limit`` of ``rows`` that differ most in their factor values (farthest first), in table order.

    Each factor's values are placed evenly on [0, 1] in their natural order; from the first row,
    the next pick is always the row farthest from every pick so far (the first such on a tie).
    """
    places = np.zeros((len(rows), len(factors)))
    for j, factor in enumerate(factors):
        values = ordered(list(table[factor]))
        step = 1 / max(len(values) - 1, 1)
        places[:, j] = [values.index(table[factor].iloc[i]) * step for i in rows]
    picked = [0]
    nearest = np.linalg.norm(places - places[0], axis=1)
    while len(picked) < limit:
        picked.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, np.linalg.norm(places - places[picked[-1]], axis=1))
    return sorted(rows[i] for i in picked)


def which(count: int, optimal: int, objectives: Sequence[str], how: str = "") -> str:
    """What a curve plot shows: "all 5 Pareto-optimal configurations (over ...)", or "8 of 12 ..."."""
    if optimal == 1:
        return f"the one Pareto-optimal configuration (over {names(objectives)})"
    some = f"all {optimal}" if count == optimal else f"{count} of {optimal}"
    return f"{some} Pareto-optimal configurations (over {names(objectives)})" + (f"\n{how}" if how else "")


def runs_of(runs: pd.DataFrame, config: dict, factors: Sequence[str]) -> pd.DataFrame:
    """The runs of one configuration that ran without an error."""
    same = runs["error"].isna().to_numpy().copy()
    for factor in factors:
        same &= (runs[factor] == config[factor]).to_numpy()
    return runs[same]


# --- drawing curves that may coincide -------------------------------------------------------------


def merge_coincident(curves: list[tuple]) -> list[tuple[list[int], int]]:
    """Group curves (label, x, y, ...) that coincide: each group's curve indexes and its first one."""
    groups: list[tuple[list[int], int]] = []
    for index, (_, x, y, *_) in enumerate(curves):
        for members, first in groups:
            _, fx, fy, *_ = curves[first]
            if fx.shape == x.shape and np.allclose([fx, fy], [x, y], equal_nan=True):
                members.append(index)
                break
        else:
            groups.append(([index], index))
    return groups


def legend_text(labels: list[str]) -> str:
    """One legend entry for the configurations of a curve: two or three a line, then how many."""
    per_line = 3 if max(map(len, labels)) <= 14 else 2 if max(map(len, labels)) <= 24 else 1
    rows = [", ".join(labels[i : i + per_line]) for i in range(0, len(labels), per_line)]
    return "\n".join(rows) + (f"  (identical, {len(labels)})" if len(labels) > 1 else "")


def draw_curves(axes, curves: list[tuple[str, np.ndarray, np.ndarray, str]]) -> list[tuple[tuple, str]]:
    """Draw each distinct curve (label, x, y, colour) once, striped in its configurations' colours.

    Every stripe has its configuration's label as gid; the first carries the legend label.

    Returns:
        The legend entries: a tuple of handles (one per configuration) and the text.
    """
    entries = []
    for members, first in merge_coincident(curves):
        _, x, y, _ = curves[first]
        count, text = len(members), legend_text([curves[i][0] for i in members])
        for k, index in enumerate(members):
            dashes = (k * STRIPE_PT, (STRIPE_PT, (count - 1) * STRIPE_PT)) if count > 1 else "-"
            axes.plot(x, y, linestyle=dashes, color=curves[index][3], marker="o" if k == 0 else None,
                      markersize=3, gid=curves[index][0], label=text if k == 0 else "_stripe")  # fmt: skip
        handles = tuple(Line2D([], [], color=curves[i][3], marker="o", markersize=3) for i in members)
        entries.append((handles, text))
    return entries


def legend_outside(axes, entries: list[tuple[tuple, str]], fontsize: float = 8) -> None:
    """The legend right of the axes, off the data; a shared curve shows each configuration's colour."""
    axes.legend([h for h, _ in entries], [t for _, t in entries], fontsize=fontsize, loc="upper left",
                bbox_to_anchor=(1.01, 1.0), handler_map={tuple: HandlerTuple(ndivide=None, pad=0.1)},
                handlelength=3)  # fmt: skip


# --- t-visibility ------------------------------------------------------------------------------------


def pooled_visibility(points: list[dict]) -> pd.DataFrame:
    """t-visibility points of several seeds pooled per t: columns x (a bin's centre), p, low, high.

    p = sum(p_consistent * reads) / sum(reads) per t, with its 95% Wilson interval (low, high).
    Points without a read count (older sweeps) give the mean of p over seeds and no interval.
    """
    frame = pd.DataFrame(points)
    frame["x"] = [bin_centre(p["t_ms"], p.get("t_hi_ms")) for p in points]
    if "reads" not in frame or frame["reads"].isna().any():
        p = frame.groupby("x")["p_consistent"].mean()
        return pd.DataFrame({"x": p.index, "p": p.to_numpy(), "low": np.nan, "high": np.nan})
    frame["consistent"] = (frame["p_consistent"] * frame["reads"]).round()
    sums = frame.groupby("x")[["consistent", "reads"]].sum()
    bands = [wilson_interval(int(c), int(n)) for c, n in zip(sums["consistent"], sums["reads"], strict=True)]
    low, high = zip(*bands, strict=True) if bands else ((), ())
    return pd.DataFrame({"x": sums.index, "p": sums["consistent"] / sums["reads"], "low": low, "high": high})


def visibility_curves(
    runs: pd.DataFrame,
    table: pd.DataFrame,
    factors: list[str],
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
    limit: int = MAX_CURVES,
) -> Figure:
    """t-visibility of the chosen configurations (see :func:`chosen`): reads pooled over seeds per t,
    with 95% Wilson bands."""
    figure = Figure(figsize=(10, 5.5), layout="constrained")
    axes = figure.add_subplot()
    rows, optimal, how = chosen(table, check_objectives(objectives), factors, limit)
    curves, bands, binned = [], [], False
    for position, config in enumerate(table.to_dict("records")[i] for i in rows):
        points = [p for text in runs_of(runs, config, factors)["t_visibility"] for p in json.loads(text)]
        if points:
            binned |= any("t_hi_ms" in p for p in points)
            pooled = pooled_visibility(points)
            x, p = pooled["x"].to_numpy(), pooled["p"].to_numpy()
            curves.append((label(config, factors), x, p, f"C{position}"))
            bands.append(pooled)
    entries = draw_curves(axes, curves)
    for _, first in merge_coincident(curves):  # a shared curve's band once, in its first colour
        band = bands[first]
        axes.fill_between(
            band["x"], band["low"], band["high"], color=curves[first][3], alpha=0.15, linewidth=0
        )
    bottom = _visibility_axes(axes, curves, entries)
    axes.set_xlabel("t since the newest commit (ms)" + (", bin centres" if binned else ""))
    banded = any(np.isfinite(b["low"]).any() for b in bands)
    zoomed = f"\naxis starts at {plain(bottom)}, not 0" if bottom > 0 else ""
    axes.set_ylabel(f"P(consistent), reads pooled over seeds{', 95% Wilson band' if banded else ''}{zoomed}")
    axes.grid(True, alpha=0.3)
    figure.suptitle(f"t-visibility of {which(len(rows), optimal, objectives, how)}", fontsize=10)
    return figure


def _visibility_axes(axes, curves: list[tuple], entries: list) -> float:
    """Scales, limits (y up to 1.02 at most) and the legend; returns where the y axis starts."""
    if not curves:
        axes.text(0.5, 0.5, "no reads after a committed write", ha="center", va="center",
                  transform=axes.transAxes)  # fmt: skip
        return 0.0
    if all(x.min() > 0 for _, x, _, _ in curves):
        axes.set_xscale("log")
    plain_ticks(axes.xaxis)
    bottom = availability_floor(np.concatenate([y for _, _, y, _ in curves]))
    axes.set_ylim(bottom, 1 + 0.02 * (1 - bottom))
    plain_ticks(axes.yaxis)
    legend_outside(axes, entries)
    return bottom


# --- latency by percentile ------------------------------------------------------------------------


def mean_percentiles(texts) -> tuple[np.ndarray, np.ndarray] | None:
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
    """Read and write latency by percentile (nines axis) of the chosen configurations (:func:`chosen`).

    Each curve is the mean over seeds, at each percentile every seed resolves. A configuration has
    the same colour in both panels; each panel's y axis is logarithmic when its tail reaches
    qsim.output.plots.LOG_RATIO times the smallest median (:func:`qsim.output.plots.latency_y_axis`).
    """
    figure = Figure(figsize=(14, 5.5), layout="constrained")
    rows, optimal, how = chosen(table, check_objectives(objectives), factors, limit)
    configs = [table.to_dict("records")[i] for i in rows]
    for index, kind in enumerate(("read", "write")):
        axes = figure.add_subplot(1, 2, index + 1)
        column = f"{kind}_latency_percentiles"
        curves = []
        for position, config in enumerate(configs if column in runs else []):
            mean = mean_percentiles(runs_of(runs, config, factors)[column])
            if mean is not None:
                curves.append((label(config, factors), *mean, f"C{position}"))  # one colour per configuration
        _draw_percentiles(axes, curves, kind, column in runs)
    figure.suptitle(f"Latency by percentile of {which(len(rows), optimal, objectives, how)}", fontsize=10)
    return figure


def _draw_percentiles(axes, curves: list, kind: str, recorded: bool) -> None:
    top = max((float(p[-1]) for _, p, _, _ in curves), default=99.0)
    entries = draw_curves(axes, [(text, nines.nines(p), v, colour) for text, p, v, colour in curves])
    nines.set_nines_axis(axes, top)
    if curves:
        median = [np.interp(50.0, p, v) for _, p, v, _ in curves if p[-1] >= 50.0]
        # GRID has no p1: its first percentile above 0 (p10) stands for it, so that the minimum
        # (p0) does not stretch a log axis over decades for the first sliver of the nines axis
        latency_y_axis(axes, lowest=min(float(v[0]) for _, _, v, _ in curves),
                       p1=min(float(v[min(1, len(v) - 1)]) for _, _, v, _ in curves),
                       median=min(median, default=max(float(v[-1]) for _, _, v, _ in curves)),
                       high=max(float(v[-1]) for _, _, v, _ in curves))  # fmt: skip
        legend_outside(axes, entries, fontsize=7)
    else:
        why = "no ok " + kind + "s" if recorded else "this sweep has no per-run percentiles\n(run it again)"
        axes.text(0.5, 0.5, why, ha="center", va="center", transform=axes.transAxes)
        axes.set_ylim(bottom=0)
    log = " (log scale)" if axes.get_yscale() == "log" else ""
    axes.set_ylabel(f"{kind} latency (ms), mean over seeds{log}")
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(f"{kind}s")
