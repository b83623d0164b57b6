"""The leader protocol's plots: who led when, under the availability timeline, and how long the
cluster went without a leader, as a CDF per cause (of one run, or of several to compare).

Both read the ``leader`` section of summary.json (:mod:`qsim.model.leader.metrics`): the tenures
and the intervals without a leader with their causes. Times on the timeline are in seconds, as on
the other time plots; durations on the CDF in milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec
from matplotlib.patches import Patch
from matplotlib.ticker import AutoLocator

from qsim.output.plot_style import DATA_Z, legend_outside, new_figure, plain_ticks, say, short
from qsim.output.timeline_plots import FAULT_COLOURS, availability_timeline, natural_key, union

CAUSES = ("start", "crash", "step_down", "takeover")  # as qsim.model.leader.metrics records them
OPEN = "open"  # still without a leader when the run ended: its cause is not recorded
CAUSE_COLOURS = {"start": "tab:gray", "crash": "black", "step_down": "tab:cyan", "takeover": "navy",
                 OPEN: "darkgoldenrod"}  # fmt: skip
CAUSE_WORDS = {"start": "the run's first election", "crash": "the leader crashed",
               "step_down": "the leader stepped down", "takeover": "a newer leader took over",
               OPEN: "still none when the run ended"}  # fmt: skip
CAUSE_STYLES = {"start": ":", "crash": "-", "step_down": "--", "takeover": "-."}  # when colour is the run's
TENURE_COLOUR = "tab:green"
ALL_LANES = 12  # a cluster this large or smaller gets a lane per node; a larger one, per node that led
LOG_SPAN = 10.0  # the CDF's axis turns logarithmic when the longest interval is this many times the shortest


def leader_figures(
    summary: dict, timeline: pd.DataFrame, faults: pd.DataFrame, title: str
) -> tuple[Figure, Figure]:
    """The leadership timeline and the election-time CDF of a leader-protocol run, in that order."""
    return (
        leadership_timeline(summary, timeline, faults, f"Leadership and availability - {title}"),
        election_time_cdf({title: summary}, f"Time without a leader (ms), CDF by cause - {title}"),
    )


def leadership_timeline(
    summary: dict, timeline: pd.DataFrame, faults: pd.DataFrame, title: str = ""
) -> Figure:
    """The availability timeline on top and, on the same time axis (s), who led: a lane per node.

    A bar runs while a node serves as leader, labelled with its term where there is room. The
    intervals without a leader are hatched across both panels, coloured by cause; the faults are
    shaded on both as on the availability timeline.
    """
    leader = summary["leader"]
    figure = availability_timeline(timeline, faults, "Availability per window (fraction of operations ok)")
    top = figure.axes[0]
    lanes = lane_names(summary)
    grid = GridSpec(2, 1, figure=figure, height_ratios=[3.0, max(1.4, 0.4 * len(lanes) + 0.4)])
    figure.set_size_inches(10, 5.2 + 0.4 * len(lanes))
    top.set_subplotspec(grid[0])
    axes = figure.add_subplot(grid[1], sharex=top)
    top.set_xlabel("")
    top.tick_params(labelbottom=False)
    right_ms = _right_edge_ms(leader, timeline, faults)
    bars = _tenure_bars(axes, leader["tenures"], lanes, right_ms)
    intervals = no_leader_intervals(leader, right_ms)
    _shade_no_leader(top, intervals)
    causes = _shade_no_leader(axes, intervals)
    _shade_faults(axes, faults, right_ms)
    if timeline.empty:  # no clock: the availability panel blanked the time axis the lanes share with it
        axes.xaxis.set_major_locator(AutoLocator())
        axes.set_xlim(0, max(right_ms / 1000, 1.0))
    else:
        axes.set_xlim(top.get_xlim()[0], max(top.get_xlim()[1], right_ms / 1000))
    _finish_lanes(axes, lanes, bool(bars), causes)
    axes.set_title(_lanes_title(leader, len(lanes) < len(summary.get("nodes") or ())), fontsize=10)
    figure.suptitle(title or "Leadership and availability")
    _label_terms(figure, axes, bars)
    return figure


def _finish_lanes(axes: Axes, lanes: list[str], bars: bool, causes: list[str]) -> None:
    """Name the lanes (the first node on top), and give the bars and each cause drawn a legend entry."""
    axes.set_yticks(range(len(lanes)), lanes)
    axes.set_ylim(max(len(lanes), 1) - 0.5, -0.5)
    if not bars:
        say(axes, "no leader served in this run")
    axes.set(xlabel="time (s)", ylabel="leader")
    axes.grid(True, axis="x", alpha=0.3)
    handles = [Patch(color=TENURE_COLOUR, label="leader serving (its term on the bar)")] if bars else []
    handles += [_cause_patch(cause) for cause in causes]
    if handles:
        axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
                    fontsize=9)  # fmt: skip


def lane_names(summary: dict) -> list[str]:
    """The nodes that get a lane, in natural order: every node of a small cluster, else those that led."""
    led = {str(tenure["node"]) for tenure in summary["leader"]["tenures"]}
    nodes = set(map(str, summary.get("nodes") or ()))
    return sorted(led | nodes if len(led | nodes) <= ALL_LANES else led, key=natural_key)


def no_leader_intervals(leader: dict, right_ms: float) -> list[tuple[float, float, str]]:
    """Each interval without a leader as (from_ms, to_ms, cause); one still open ends at ``right_ms``."""
    without = leader["time_without_leader_ms"]
    intervals = [(i["from_ms"], i["to_ms"], i["cause"]) for i in without["intervals"]]
    if without["open_since"] is not None:
        intervals.append((without["open_since"], right_ms, OPEN))
    return intervals


def _right_edge_ms(leader: dict, timeline: pd.DataFrame, faults: pd.DataFrame) -> float:
    """Where open tenures and intervals end: the end of the time axis, or the latest moment recorded."""
    times = [*timeline["window_end_ms"], *faults["start_ms"], *faults["end_ms"].dropna()]
    times += [t["from_ms"] for t in leader["tenures"]] + [t["to_ms"] or 0.0 for t in leader["tenures"]]
    times += [i["to_ms"] for i in leader["time_without_leader_ms"]["intervals"]]
    times.append(leader["time_without_leader_ms"]["open_since"] or 0.0)
    return float(max(times, default=0.0))


def _tenure_bars(axes: Axes, tenures: list[dict], lanes: list[str], right_ms: float) -> list[tuple]:
    """A bar per tenure on its node's lane, [from, to) in seconds, one collection per lane.

    Returns:
        (lane, from_s, to_s, term) of each bar.
    """
    shown = [t for t in tenures if str(t["node"]) in lanes]
    ends_ms = [right_ms if t["to_ms"] is None else t["to_ms"] for t in shown]
    bars = [(lanes.index(str(t["node"])), t["from_ms"] / 1000, end_ms / 1000, t["term"])
            for t, end_ms in zip(shown, ends_ms, strict=True)]  # fmt: skip
    for row, name in enumerate(lanes):
        spans = [(start, end - start) for lane, start, end, _ in bars if lane == row]
        if spans:
            axes.broken_barh(
                spans, (row - 0.3, 0.6), color=TENURE_COLOUR, zorder=DATA_Z, gid=f"leading:{name}"
            )
    return bars


def _label_terms(figure: Figure, axes: Axes, bars: list[tuple]) -> None:
    """Write each bar's term in it, 'term 3' or '3', where the text fits inside the bar."""
    if not bars:
        return
    figure.draw_without_rendering()  # lay the figure out: bar widths in pixels are known only then
    ends = axes.transData.transform([(x, row) for row, start, end, _ in bars for x in (start, end)])
    widths = ends[1::2, 0] - ends[::2, 0] - 4  # a little margin on each side
    digit = axes.text(0, 0, "0", fontsize=8)
    narrowest = digit.get_window_extent().width  # bars narrower than a digit try no text (1000 bars: fast)
    digit.remove()
    style = {"ha": "center", "va": "center", "color": "white", "fontsize": 8, "zorder": DATA_Z + 1}
    for (row, start, end, term), room in zip(bars, widths, strict=True):
        for text in (f"term {term}", str(term)) if room >= narrowest else ():
            label = axes.text((start + end) / 2, row, text, **style)
            if label.get_window_extent().width <= room:
                break
            label.remove()


def _shade_no_leader(axes: Axes, intervals: list[tuple[float, float, str]]) -> list[str]:
    """Hatch the intervals without a leader across ``axes``, one collection per cause.

    Returns:
        The causes drawn, in CAUSES order (then OPEN, then any other).
    """
    drawn = {cause for _, _, cause in intervals}
    causes = [cause for cause in (*CAUSES, OPEN) if cause in drawn] + sorted(drawn - {*CAUSES, OPEN})
    for cause in causes:
        colour = CAUSE_COLOURS.get(cause, "tab:gray")
        spans = [(start / 1000, (end - start) / 1000) for start, end, c in intervals if c == cause]
        axes.broken_barh(spans, (0, 1), transform=axes.get_xaxis_transform(), hatch="///", hatchcolor=colour,
                         facecolor=(*to_rgb(colour), 0.08), edgecolor="none", zorder=1.5,
                         gid=f"no-leader:{cause}")  # fmt: skip
    return causes


def _cause_patch(cause: str) -> Patch:
    colour = CAUSE_COLOURS.get(cause, "tab:gray")
    words = CAUSE_WORDS.get(cause, cause.replace("_", " "))
    return Patch(facecolor=(*to_rgb(colour), 0.08), hatch="///", hatchcolor=colour, edgecolor=colour, lw=0,
                 label=f"no leader: {words}")  # fmt: skip


def _shade_faults(axes: Axes, faults: pd.DataFrame, right_ms: float) -> None:
    """Shade the union of each kind's fault intervals, as the availability timeline above (legend there)."""
    for kind, group in faults.groupby("kind", sort=False):
        colour = FAULT_COLOURS.get(str(kind), "tab:gray")
        for start_ms, end_ms in union(zip(group["start_ms"], group["end_ms"].fillna(right_ms), strict=True)):
            axes.axvspan(start_ms / 1000, end_ms / 1000, color=colour, alpha=0.15, lw=0, zorder=1)


def _lanes_title(leader: dict, some_lanes: bool) -> str:
    """The lanes panel's title, saying what is left out when the summary lists only the first intervals."""
    without = leader["time_without_leader_ms"]
    lanes = "the nodes that led" if some_lanes else "one lane per node"
    title = f"Leader ({lanes}; bars: serving, by term); hatched: no leader, by cause"
    if without["listed"] < without["count"] or len(leader["tenures"]) < leader["leader_changes"]:
        listed = f"{len(leader['tenures'])} tenures and {without['listed']} intervals"
        title += f"\nonly the first {listed} are listed in summary.json"
    return title


def durations_by_cause(leader: dict, causes: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The sorted durations (ms) of the closed intervals without a leader, by cause, in CAUSES order."""
    wanted = list(CAUSES if causes is None else causes)
    intervals = leader["time_without_leader_ms"]["intervals"]
    by_cause = {c: np.sort([i["to_ms"] - i["from_ms"] for i in intervals if i["cause"] == c]) for c in wanted}
    return {cause: values for cause, values in by_cause.items() if values.size}


def election_time_cdf(
    summaries: Mapping[str, dict], title: str = "", *, causes: Iterable[str] | None = None
) -> Figure:
    """Empirical CDF of the time without a leader (ms), one curve per cause of each run.

    A diamond marks each curve's longest interval, and the legend gives its count and that maximum.
    With one run, colour is the cause; with several, colour is the run and the line style the cause.

    Args:
        summaries: summary.json of each run (leader protocol) by the label its curves get.
        causes: only these causes (of CAUSES), such as ``("crash",)`` to compare failovers.

    Raises:
        ValueError: if a summary has no ``leader`` section.
    """
    figure, axes = new_figure(9, 4.5)
    curves = _curves(summaries, causes)
    for label, colour, style, values in curves:
        n = values.size
        axes.step(np.r_[values[0], values], np.arange(n + 1) / n, where="post", color=colour, ls=style,
                  marker="." if n <= 50 else None, markevery=slice(1, None), zorder=DATA_Z,
                  label=f"{label} (n={n}, max {short(values[-1])} ms)")  # fmt: skip
        axes.plot([values[-1]], [1.0], "D", color=colour, markersize=6, clip_on=False, zorder=DATA_Z)
    for note in _notes(summaries):
        axes.plot([], [], ls="none", label=note)
    if curves:
        _duration_axis(axes, np.concatenate([values for *_, values in curves]))
    else:
        say(axes, "no interval without a leader ended in this run", blank_x=True)
    if len(summaries) > 1:  # long labels: below the plot, which grows by a line for each
        figure.set_size_inches(9, 4.5 + 0.2 * len(axes.get_legend_handles_labels()[0]))
        figure.legend(loc="outside lower center", fontsize=9)
    elif axes.get_legend_handles_labels()[0]:
        legend_outside(axes)
    axes.set_xlabel("time without a leader (ms), from the old leader's last moment serving")
    axes.set_ylabel("fraction of intervals")
    axes.set_ylim(0, 1.02)
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(title or "Time without a leader (ms), CDF by cause")
    return figure


def _curves(summaries: Mapping[str, dict], causes: Iterable[str] | None) -> list[tuple]:
    """(label, colour, line style, sorted durations) of each curve to draw."""
    several = len(summaries) > 1
    curves = []
    for i, (run, summary) in enumerate(summaries.items()):
        if not summary.get("leader"):
            raise ValueError(f"{run}: not a leader-protocol run (its summary has no leader section)")
        for cause, values in durations_by_cause(summary["leader"], causes).items():
            words = cause.replace("_", " ")
            if several:
                curves.append((f"{run}: {words}", f"C{i % 10}", CAUSE_STYLES.get(cause, "-"), values))
            else:
                curves.append((words, CAUSE_COLOURS.get(cause, "tab:gray"), "-", values))
    return curves


def _notes(summaries: Mapping[str, dict]) -> list[str]:
    """Legend lines for what the curves leave out: an interval open at the end, intervals not listed."""
    notes = []
    for run, summary in summaries.items():
        without = summary["leader"]["time_without_leader_ms"]
        who = f"{run}: " if len(summaries) > 1 else ""
        if without["open_since"] is not None:
            since = short(without["open_since"])
            notes.append(f"{who}not counted: no leader since {since} ms, still at the end")
        if without["listed"] < without["count"]:
            notes.append(f"{who}only the first {without['listed']} of {without['count']} intervals drawn")
    return notes


def _duration_axis(axes: Axes, values: np.ndarray) -> None:
    """A log axis when the durations span more than LOG_SPAN; else linear from 0. The maximum shows."""
    low, high = float(values.min()), float(values.max())
    if low > 0 and high > LOG_SPAN * low:
        axes.set_xscale("log")
        axes.set_xlim(low / 1.5, high * 1.5)
    else:
        axes.set_xlim(0, 1.08 * high if high > 0 else 1.0)
    plain_ticks(axes.xaxis)
