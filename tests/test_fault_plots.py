"""The fault timeline plots draw what they are given, faults or none."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from qsim.output import plots

NAN = float("nan")


def timeline(availability: list[float], stale_fraction: list[float]) -> pd.DataFrame:
    """One-second windows from 0 (read availability is availability; write availability, reversed)."""
    starts = 1000.0 * np.arange(len(availability))
    return pd.DataFrame(
        {
            "window_start_ms": starts,
            "window_end_ms": starts + 1000.0,
            "read_availability": availability,
            "write_availability": availability[::-1],
            "stale_fraction": stale_fraction,
        }
    )


def fault_table(*rows: tuple) -> pd.DataFrame:
    """Rows are (kind, start_ms, end_ms); fault_id is the row number."""
    return pd.DataFrame(
        {
            "fault_id": np.arange(len(rows), dtype=np.int64),
            "kind": pd.Series([row[0] for row in rows], dtype=object),
            "target": [f"n{i}" for i in range(len(rows))],
            "start_ms": np.array([row[1] for row in rows], dtype=float),
            "end_ms": np.array([row[2] for row in rows], dtype=float),
            "params": ["{}"] * len(rows),
        }
    )


WHY_UNCHECKED = [  # counts of reads and writes, and what a plot without checked reads says
    (0, 5, "no reads in this run"),
    (5, 0, "no writes in this run"),
    (5, 5, "no checked reads: a read is checked when"),
]
FAULTS = fault_table(("crash", 1000.0, 2000.0), ("partition", 2500.0, NAN), ("crash", 3000.0, 3500.0))
TIMELINE = timeline([1.0, 0.5, NAN, 0.9, 1.0], [0.0, 0.2, NAN, 0.1, 0.0])


def saves(figure: Figure) -> bool:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue().startswith(b"\x89PNG")


def test_availability_draws_reads_and_writes_and_a_span_per_fault():
    figure = plots.availability_timeline(TIMELINE, FAULTS, title="run 1")
    [axes] = figure.axes
    assert len(axes.lines) == 2 and len(axes.patches) == 3
    np.testing.assert_array_equal(axes.lines[0].get_xdata(), [0.5, 1.5, 2.5, 3.5, 4.5])  # mid-points, s
    assert axes.get_ylim() == (-0.02, 1.02)  # a line at 0 stays clear of the axis
    assert axes.get_xlim() == (0.0, 5.0)  # the windows' span
    assert axes.get_title() == "run 1"
    assert saves(figure)


def test_a_legend_entry_per_fault_kind_and_spans_in_seconds():
    axes = plots.availability_timeline(TIMELINE, FAULTS).axes[0]
    labels = axes.get_legend_handles_labels()[1]
    assert sorted(labels) == ["crash n0, n2", "partition n1", "reads", "writes"]  # each kind with its targets
    spans = {(p.get_label(), p.get_x(), p.get_x() + p.get_width()) for p in axes.patches}
    assert spans == {("crash n0, n2", 1.0, 2.0), (None, 3.0, 3.5), ("partition n1", 2.5, 5.0)}
    colours = {p.get_x(): p.get_facecolor() for p in axes.patches}  # no end: to the right edge, 5 s
    assert colours[1.0] == colours[3.0] != colours[2.5]


@pytest.mark.parametrize("draw", [plots.availability_timeline, plots.staleness_timeline])
def test_no_faults_means_no_spans(draw):
    axes = draw(TIMELINE, fault_table()).axes[0]
    assert not axes.patches
    assert saves(axes.figure)


def test_staleness_draws_one_line_with_the_same_spans():
    figure = plots.staleness_timeline(TIMELINE, FAULTS)
    [axes] = figure.axes
    assert len(axes.lines) == 1 and len(axes.patches) == 3
    assert not axes.texts
    assert saves(figure)


@pytest.mark.parametrize(("reads", "writes", "reason"), WHY_UNCHECKED)
def test_staleness_without_checked_reads_says_why_on_a_blank_time_axis(reads, writes, reason):
    frame = timeline([1.0, 1.0], [NAN, NAN]).assign(reads=reads, writes=writes, reads_checked=0)
    figure = plots.staleness_timeline(frame, FAULTS)
    [axes] = figure.axes
    assert not axes.lines and not axes.patches  # nothing to set the faults against
    [text] = [text.get_text() for text in axes.texts]
    assert reason in text
    assert not axes.get_xticks().size  # no time axis without data on it
    assert saves(figure)


def test_staleness_with_no_stale_read_says_so_on_a_full_axis():
    frame = timeline([1.0, 1.0, 1.0], [0.0, 0.0, NAN]).assign(reads_checked=[400, 600, 0])
    figure = plots.staleness_timeline(frame, FAULTS)
    [axes] = figure.axes
    assert len(axes.lines) == 1 and axes.get_ylim() == (-0.02, 1.0)
    [note] = [text.get_text() for text in axes.texts]
    assert note.startswith("no stale reads: all 1,000 checked reads")
    assert saves(figure)


@pytest.mark.parametrize("draw", [plots.availability_timeline, plots.staleness_timeline])
def test_an_empty_timeline_still_draws(draw):
    empty = timeline([], [])
    assert saves(draw(empty, fault_table()))
    assert saves(draw(empty, FAULTS))


@pytest.mark.parametrize("draw", [plots.availability_timeline, plots.staleness_timeline])
def test_a_timeline_without_windows_says_there_is_no_clock(draw):
    [axes] = draw(timeline([], []), fault_table()).axes
    assert [text.get_text() for text in axes.texts] == [plots.NO_CLOCK]
    assert not axes.lines and not axes.get_xticks().size and axes.get_legend() is None


@pytest.mark.parametrize(
    ("lowest", "bottom"), [(0.98, 0.95), (0.999, 0.998), (0.96, 0.95), (0.7, 0.5), (0.5, 0.0), (0.3, 0.0)]
)
def test_an_availability_axis_starts_at_a_round_value_below_the_lowest_window(lowest, bottom):
    assert plots.availability_floor(np.array([1.0, lowest, NAN])) == pytest.approx(bottom)
    axes = plots.availability_timeline(timeline([1.0, lowest, 1.0], [0.0] * 3), FAULTS).axes[0]
    assert axes.get_ylim()[0] == pytest.approx(bottom if bottom > 0 else -0.02)  # 0 a little above the edge
    assert ("axis starts at" in axes.get_ylabel()) == (bottom > 0)


def test_an_availability_of_one_everywhere_keeps_the_whole_axis():
    assert plots.availability_floor(np.array([1.0, 1.0])) == 0.0
    assert plots.availability_floor(np.array([NAN])) == 0.0


@pytest.mark.parametrize("draw", [plots.availability_timeline, plots.staleness_timeline])
def test_the_legend_sits_outside_the_data(draw):
    figure = draw(TIMELINE, FAULTS)
    assert saves(figure)  # lays the figure out
    [axes] = figure.axes
    assert axes.get_legend().get_window_extent().x0 >= axes.get_window_extent().x1  # right of the axes


def test_a_node_plot_without_samples_says_why():
    for nodes in (None, pd.DataFrame(columns=["window_start_ms", "node", "messages", "utilization"])):
        [axes] = plots.node_load(nodes, fault_table()).axes
        [text] = axes.texts
        assert "shorter than one window" in text.get_text() and "Monte Carlo" in text.get_text()


# faults of one kind shade once; a line at 0 shows; a kind with no operations has no line


def spans(axes) -> list[tuple[str, float, float]]:
    """Each shaded span of ``axes`` as (colour, start s, end s), in time order."""
    return sorted((str(p.get_facecolor()), p.get_x(), p.get_x() + p.get_width()) for p in axes.patches)


@pytest.mark.parametrize("draw", [plots.availability_timeline, plots.staleness_timeline])
def test_overlapping_faults_of_a_kind_shade_their_union_once(draw):
    every = fault_table(*[("crash", 0.0, NAN)] * 5)  # every node down from the start: a total outage
    assert [(start, end) for _, start, end in spans(draw(TIMELINE, every).axes[0])] == [(0.0, 5.0)]
    faults = fault_table(("crash", 1000.0, 3000.0), ("crash", 2000.0, 4000.0), ("crash", 4000.0, 4500.0),
                         ("partition", 2500.0, 3000.0))  # fmt: skip
    drawn = spans(draw(TIMELINE, faults).axes[0])
    crash = {colour for colour, start, _ in drawn if start == 1.0}
    assert [(start, end) for colour, start, end in drawn if {colour} == crash] == [(1.0, 4.5)]
    assert [(start, end) for colour, start, end in drawn if {colour} != crash] == [(2.5, 3.0)]


@pytest.mark.parametrize("draw", [plots.availability_timeline, plots.staleness_timeline])
def test_a_line_at_zero_under_a_total_outage_is_drawn_above_the_shading_and_the_axis(draw):
    dead = timeline([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]).assign(reads_checked=[10, 10, 10])
    [axes] = draw(dead, fault_table(*[("crash", 0.0, NAN)] * 5)).axes
    assert axes.get_ylim()[0] < 0  # 0 is inside the axis, not on its edge
    assert min(line.zorder for line in axes.lines) > max(patch.zorder for patch in axes.patches)
    assert min(line.zorder for line in axes.lines) > max(spine.zorder for spine in axes.spines.values())


def test_a_staleness_line_with_stale_reads_starts_below_zero():
    [axes] = plots.staleness_timeline(TIMELINE, FAULTS).axes
    low, high = axes.get_ylim()
    assert -0.05 * high < low < 0 and high >= 0.2


@pytest.mark.parametrize(("empty", "kept"), [("write", "read"), ("read", "write")])
def test_a_kind_without_operations_gets_no_line_and_the_legend_says_so(empty, kept):
    frame = TIMELINE.assign(**{f"{empty}_availability": NAN})
    [axes] = plots.availability_timeline(frame, FAULTS).axes
    assert [line.get_label() for line in axes.lines if len(line.get_xdata())] == [f"{kept}s"]
    assert f"no {empty}s" in axes.get_legend_handles_labels()[1]
    assert f"{empty}s" not in axes.get_legend_handles_labels()[1]


@pytest.mark.parametrize(("reads", "writes", "reason"), WHY_UNCHECKED)
def test_an_empty_t_visibility_says_why_on_a_blank_time_axis(reads, writes, reason):
    summary = {"staleness": {"t_visibility": []}, "reads": {"count": reads}, "writes": {"count": writes}}
    [axes] = plots.t_visibility(summary).axes
    [text] = [text.get_text() for text in axes.texts]
    assert reason in text
    assert not axes.get_xticks().size
    assert saves(axes.figure)


# the node heat map names each fault's target and marks the rows it touches

REGIONS = {"use1": "us-east", "use2": "us-east", "usw1": "us-west", "usw2": "us-west",
           "euw1": "eu-west", "euw2": "eu-west"}  # fmt: skip


def node_samples(names: list[str], seconds: int = 4) -> pd.DataFrame:
    """One-second samples, 100 messages per node per window."""
    rows = [(1000.0 * t, name, 100, 0, 0.0) for t in range(seconds) for name in names]
    return pd.DataFrame(rows, columns=["window_start_ms", "node", "messages", "queue_length", "utilization"])


def target_faults(*rows: tuple) -> pd.DataFrame:
    """Rows are (kind, target, start_ms, end_ms)."""
    return fault_table(*[(kind, start, end) for kind, _, start, end in rows]).assign(
        target=[row[1] for row in rows]
    )


def hatched_rows(axes) -> dict[str, set[str]]:
    """The node names whose rows ``axes`` hatches, by the hatch's edge colour."""
    names = [label.get_text() for label in axes.get_yticklabels()]
    rows: dict[str, set[str]] = {}
    for patch in axes.patches:
        if patch.get_hatch():
            rows.setdefault(str(patch.get_edgecolor()), set()).add(names[round(patch.get_y() + 0.5)])
    return rows


def legend_labels(figure) -> list[str]:
    return [text.get_text() for legend in figure.legends for text in legend.get_texts()]


def test_a_link_degrade_between_regions_hatches_the_rows_of_both_regions_and_names_them():
    faults = target_faults(("degrade", "us-east-eu-west", 1000.0, 3000.0))
    figure = plots.node_load(node_samples(list(REGIONS)), faults, regions=REGIONS)
    [axes] = figure.axes[:1]
    assert list(hatched_rows(axes).values()) == [{"use1", "use2", "euw1", "euw2"}]
    assert legend_labels(figure) == ["degrade us-east-eu-west"]


def test_a_region_target_hatches_that_regions_rows_and_a_node_target_its_own_row():
    faults = target_faults(("clock_skew", "us-west", 0.0, NAN), ("crash", "use1", 1000.0, 2000.0),
                           ("crash", "euw2", 2000.0, 3000.0))  # fmt: skip
    figure = plots.node_load(node_samples(list(REGIONS)), faults, regions=REGIONS)
    assert sorted(map(sorted, hatched_rows(figure.axes[0]).values())) == [["euw2", "use1"], ["usw1", "usw2"]]
    assert sorted(legend_labels(figure)) == ["clock skew us-west", "crash euw2, use1"]


@pytest.mark.parametrize("target", ["n1,n2 | n3,n4,n5", "us-east-eu-west"])
def test_a_fault_of_links_or_unknown_regions_is_outlined_on_every_row_and_labelled_with_its_target(target):
    kind = "partition" if "|" in target else "degrade"  # the degrade: no regions given, its nodes unknown
    names = ["n1", "n2", "n3", "n4", "n5"]
    figure = plots.node_load(node_samples(names), target_faults((kind, target, 1000.0, 2000.0)))
    [axes] = figure.axes[:1]
    assert not hatched_rows(axes)
    [outline] = axes.patches
    assert outline.get_linestyle() == "--" and not outline.get_fill()
    assert legend_labels(figure) == [f"{kind} {target}"]  # never "(all nodes)"
