"""The fault timeline plots draw what they are given, faults or none."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from qsim import plots

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
    assert axes.get_ylim() == (0, 1.02)
    assert axes.get_title() == "run 1"
    assert saves(figure)


def test_a_legend_entry_per_fault_kind_and_spans_in_seconds():
    axes = plots.availability_timeline(TIMELINE, FAULTS).axes[0]
    labels = axes.get_legend_handles_labels()[1]
    assert sorted(labels) == ["crash", "partition", "reads", "writes"]
    spans = [(p.get_x(), p.get_x() + p.get_width()) for p in axes.patches]
    assert spans[0] == pytest.approx((1.0, 2.0)) and spans[2] == pytest.approx((3.0, 3.5))
    assert spans[1] == pytest.approx((2.5, 5.0))  # no end: drawn to the right edge of the data
    colours = [p.get_facecolor() for p in axes.patches]
    assert colours[0] == colours[2] != colours[1]


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


def test_staleness_without_checked_reads_says_so():
    figure = plots.staleness_timeline(timeline([1.0, 1.0], [NAN, NAN]), FAULTS)
    [axes] = figure.axes
    assert not axes.lines and len(axes.patches) == 3
    assert [text.get_text() for text in axes.texts] == ["no checked reads"]
    assert saves(figure)


def test_staleness_with_no_stale_read_says_so_on_a_full_axis():
    frame = timeline([1.0, 1.0, 1.0], [0.0, 0.0, NAN]).assign(reads_checked=[400, 600, 0])
    figure = plots.staleness_timeline(frame, FAULTS)
    [axes] = figure.axes
    assert len(axes.lines) == 1 and axes.get_ylim() == (0.0, 1.0)
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
    assert axes.get_ylim()[0] == pytest.approx(bottom)
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
