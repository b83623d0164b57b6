"""The plots of a sweep: what each draws, checked on the figures (their artists, norms and texts)."""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colorbar import Colorbar
from matplotlib.image import AxesImage
from matplotlib.text import Annotation

from qsim.checks import nines
from qsim.checks.metrics import wilson_interval
from qsim.scenario import read_scenario_data
from qsim.sweep import sweep_from_mapping
from qsim.sweep.aggregate import METRICS, pareto
from qsim.sweep.heatmaps import factor_units, text_colour
from qsim.sweep.plots import (
    frontier,
    heatmap,
    label,
    latency_percentiles,
    sweep_figures,
    visibility_curves,
    write_plots,
)
from qsim.sweep.run import plan, run_sweep
from tests.conftest import SCENARIOS

NRW = ["quorum.n", "quorum.r", "quorum.w"]


def small_sweep(tmp_path, block: dict):
    """Run ``block`` over the quickstart scenario, 200 ms per run, serially."""
    data = read_scenario_data(SCENARIOS / "quickstart.yaml", ["duration=200ms", "warmup=0"])
    planned = plan(data, sweep_from_mapping(block), base_dir=SCENARIOS)
    return run_sweep(planned, tmp_path / "sweep", executor_name="serial")


def images(figure) -> list[AxesImage]:
    return [image for axes in figure.axes for image in axes.images]


def colour_bars(figure) -> list[Colorbar]:
    return [axes._colorbar for axes in figure.axes if getattr(axes, "_colorbar", None) is not None]


def legend_labels(axes) -> list[str]:
    """The labels of the lines drawn (a curve shared by several configurations once)."""
    return [line.get_label() for line in axes.lines if not line.get_label().startswith("_")]


def table_of(rows: list[dict], metrics: dict[str, list[float]] | None = None) -> pd.DataFrame:
    """An aggregate-like table: factor columns, runs, then every metric mean (1.0 unless given)."""
    table = pd.DataFrame(rows).assign(runs=1, failed=0)
    for metric in METRICS:
        table[f"{metric}_mean"] = (metrics or {}).get(metric, [1.0] * len(table))
    return table


# --- heat maps ------------------------------------------------------------------------------------


def test_an_r_by_w_sweep_at_fixed_n_gets_heat_maps(tmp_path):
    result = small_sweep(tmp_path, {"quorum.r": [1, 2], "quorum.w": [1, 2, 3]})
    heatmaps = [
        f for f in sweep_figures(result.runs, result.aggregate, result.factors, "rw") if "heatmap" in f
    ]
    assert sorted(heatmaps) == sorted(f"heatmap_{m}.png" for m in
                                      ("read_latency_p99_ms", "write_latency_p99_ms", "stale_fraction",
                                       "availability"))  # fmt: skip
    figure = heatmap(result.aggregate, "read_latency_p99_ms", result.factors)
    (axes,) = [a for a in figure.axes if a.images]
    assert (axes.get_ylabel(), axes.get_xlabel()) == ("quorum.r", "quorum.w")
    grid = axes.images[0].get_array()
    assert grid.shape == (2, 3)
    table = result.aggregate.set_index(["quorum.r", "quorum.w"])["read_latency_p99_ms_mean"]
    for (i, r), (j, w) in itertools.product(enumerate([1, 2]), enumerate([1, 2, 3])):
        assert grid[i, j] == pytest.approx(table[(r, w)])


def test_a_sweep_over_n_and_a_workload_field_gets_heat_maps(tmp_path):
    result = small_sweep(tmp_path, {"quorum.n": [3, 5], "workload.read_fraction": [0.5, 0.9]})
    figures = sweep_figures(result.runs, result.aggregate, result.factors, "n-by-reads")
    assert "heatmap_stale_fraction.png" in figures
    (axes,) = [a for a in figures["heatmap_availability.png"].axes if a.images]
    assert (axes.get_ylabel(), axes.get_xlabel()) == ("quorum.n", "workload.read_fraction")
    assert [t.get_text() for t in axes.get_xticklabels()] == ["0.5", "0.9"]


def test_one_factor_gives_no_heat_map():
    table = table_of([{"quorum.r": r} for r in (1, 2, 3)])
    assert heatmap(table, "availability", ["quorum.r"]) is None


def test_panels_share_one_colour_scale_and_one_colour_bar():
    rows = [{"quorum.n": n, "quorum.r": r, "quorum.w": w} for n in (3, 5) for r in (1, 2) for w in (1, 2)]
    latency = [float(n * 10 + r + w) for n in (3, 5) for r in (1, 2) for w in (1, 2)]  # 32..54
    figure = heatmap(table_of(rows, {"read_latency_p99_ms": latency}), "read_latency_p99_ms", NRW)
    shown = images(figure)
    assert len(shown) == 2 and len(colour_bars(figure)) == 1
    assert {(image.norm.vmin, image.norm.vmax) for image in shown} == {(32.0, 54.0)}
    assert [a.get_title() for a in figure.axes if a.images] == ["quorum.n = 3", "quorum.n = 5"]


def test_a_fourth_factor_is_averaged_over_and_the_title_says_so():
    rows = [{"quorum.n": n, "quorum.r": r, "quorum.w": w, "workload.read_fraction": f}
            for n in (3, 5) for r in (1, 2) for w in (1, 2) for f in (0.5, 0.9)]  # fmt: skip
    stale = [f / 10 for n in (3, 5) for r in (1, 2) for w in (1, 2) for f in (0.5, 0.9)]
    figure = heatmap(
        table_of(rows, {"stale_fraction": stale}), "stale_fraction", [*NRW, "workload.read_fraction"]
    )
    assert "mean over workload.read_fraction" in figure.get_suptitle()
    assert images(figure)[0].get_array()[0, 0] == pytest.approx(0.07)


@pytest.mark.parametrize(
    ("metric", "value", "limits"),
    [
        ("availability", 1.0, (0.0, 1.0)),
        ("stale_fraction", 0.0, (0.0, 1.0)),
        ("read_latency_p99_ms", 4.0, (0.0, 4.0)),
    ],
)
def test_equal_values_get_a_sensible_colour_range_and_the_value_is_said(metric, value, limits):
    rows = [{"quorum.r": r, "quorum.w": w} for r in (1, 2) for w in (1, 2)]
    figure = heatmap(table_of(rows, {metric: [value] * 4}), metric, ["quorum.r", "quorum.w"])
    (image,) = images(figure)
    assert (image.norm.vmin, image.norm.vmax) == limits
    assert f"every configuration: {value:g}" in figure.get_suptitle()


def test_cell_text_is_black_on_light_cells_and_white_on_dark_ones():
    rows = [{"quorum.r": r, "quorum.w": w} for r in (1, 2) for w in (1, 2)]
    figure = heatmap(
        table_of(rows, {"availability": [0.5, 0.6, 0.9, 1.0]}), "availability", ["quorum.r", "quorum.w"]
    )
    (axes,) = [a for a in figure.axes if a.images]
    colours = {text.get_text(): text.get_color() for text in axes.texts}
    assert colours == {
        "0.5": "white",
        "0.6": "white",
        "0.9": "black",
        "1": "black",
    }  # viridis: dark to yellow
    image = axes.images[0]
    assert image.cmap(image.norm(1.0))[:3] == pytest.approx((0.993, 0.906, 0.144), abs=0.01)  # best is light
    assert text_colour((1.0, 1.0, 0.0, 1.0)) == "black" and text_colour((0.2, 0.0, 0.3, 1.0)) == "white"


def test_lower_is_better_metrics_are_light_when_low():
    rows = [{"quorum.r": r, "quorum.w": w} for r in (1, 2) for w in (1, 2)]
    figure = heatmap(
        table_of(rows, {"stale_fraction": [0.0, 0.1, 0.2, 0.3]}), "stale_fraction", ["quorum.r", "quorum.w"]
    )
    image = images(figure)[0]
    assert sum(image.cmap(image.norm(0.0))[:3]) > sum(image.cmap(image.norm(0.3))[:3])
    assert "lower is better" in colour_bars(figure)[0].ax.get_ylabel()


# --- the frontier ---------------------------------------------------------------------------------


def choose_like_table() -> pd.DataFrame:
    """Read p99 by (N, R), write p99 by (N, W), stale reads only at R = W = 1, as in choose-nrw."""
    rows = [{"quorum.n": n, "quorum.r": r, "quorum.w": w} for n in (3, 5) for r in range(1, n + 1)
            for w in range(1, n + 1) if r + w > n or r == w == 1]  # fmt: skip
    read = [2.0 + r * (1.5 if row["quorum.n"] == 3 else 1.0) for row in rows for r in [row["quorum.r"]]]
    write = [2.0 + w * (1.4 if row["quorum.n"] == 3 else 1.1) for row in rows for w in [row["quorum.w"]]]
    stale = [0.001 if row["quorum.r"] == row["quorum.w"] == 1 else 0.0 for row in rows]
    return table_of(
        rows, {"read_latency_p99_ms": read, "write_latency_p99_ms": write, "stale_fraction": stale}
    )


def test_the_frontier_draws_every_configuration_labelled_without_overlaps():
    table = choose_like_table()
    figure = frontier(table, NRW, "choose")
    axes = figure.axes[0]
    markers = {c.get_gid(): c for c in axes.collections if (c.get_gid() or "").startswith("config:")}
    assert sorted(markers) == sorted(f"config:{i}" for i in range(len(table)))
    for i, row in enumerate(table.to_dict("records")):
        expected = (row["read_latency_p99_ms_mean"], row["write_latency_p99_ms_mean"])
        assert tuple(markers[f"config:{i}"].get_offsets()[0]) == expected
    optimal = pareto(table)
    big = {gid for gid, c in markers.items() if c.get_sizes()[0] > 50}
    assert big == {f"config:{i}" for i in np.flatnonzero(optimal)}
    labels = [a for a in axes.texts if isinstance(a, Annotation)]
    assert sorted(a.get_text() for a in labels) == sorted(
        f"n{n} r{r} w{w}" for n, r, w in table[NRW].itertuples(index=False)
    )
    figure.canvas.draw()
    boxes = [a.get_window_extent() for a in labels]
    assert not [(a, b) for a, b in itertools.combinations(boxes, 2) if a.overlaps(b)]
    frame = axes.get_window_extent()
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)
    assert "p99 read latency" in axes.get_xlabel() and "p99 write latency" in axes.get_ylabel()
    assert "stale-read fraction" in colour_bars(figure)[0].ax.get_ylabel()
    assert "Pareto-optimal over p99 read latency, p99 write latency, stale-read fraction" in axes.get_title()


def test_the_frontier_follows_the_objectives():
    table = choose_like_table()
    figure = frontier(table, NRW, objectives=["availability", "messages_per_op"])
    axes = figure.axes[0]
    assert "availability" in axes.get_xlabel() and "higher is better" in axes.get_xlabel()
    assert "messages per operation" in axes.get_ylabel()
    assert colour_bars(figure) == []


# --- curves -----------------------------------------------------------------------------------------


def runs_of(table: pd.DataFrame, factors: list[str], curve=None, percentiles=True) -> pd.DataFrame:
    """Two seeds per configuration, with t-visibility points and latency percentiles."""
    rows = []
    for config in table[factors].to_dict("records"):
        for seed in (0, 1):
            points = curve(config) if curve else [{"t_ms": 1.0, "p_consistent": 1.0}]
            row = {**config, "seed": seed, "error": None, "t_visibility": json.dumps(points)}
            if percentiles:
                r = config.get("quorum.r", 1)
                base = 1.0 + (r if isinstance(r, int) else 1)
                values = [base + p / 100 + seed for p in nines.GRID[:-3]]
                row["read_latency_percentiles"] = json.dumps([*values, None, None, None])
                row["write_latency_percentiles"] = json.dumps([*values, None, None, None])
            rows.append(row)
    return pd.DataFrame(rows)


def test_the_curves_are_the_pareto_optimal_configurations_spread_along_the_frontier():
    size = 20
    rows = [{"quorum.r": i} for i in range(size)]
    read = [float(i) for i in range(size)]
    write = [float(size - i) for i in range(size)]  # every configuration is optimal
    table = table_of(rows, {"read_latency_p99_ms": read, "write_latency_p99_ms": write})
    runs = runs_of(
        table, ["quorum.r"], curve=lambda c: [{"t_ms": 1.0, "p_consistent": 0.5 + c["quorum.r"] / 100}]
    )
    figure = visibility_curves(runs, table, ["quorum.r"])
    axes = figure.axes[0]
    drawn = [int(text.removeprefix("r")) for text in legend_labels(axes)]
    assert drawn == [0, 3, 5, 8, 11, 14, 16, 19]
    assert "8 of 20 Pareto-optimal" in figure.get_suptitle()


def test_the_curves_leave_out_dominated_configurations_and_merge_identical_ones():
    rows = [{"quorum.r": r} for r in (1, 2, 3, 4)]
    table = table_of(
        rows, {"read_latency_p99_ms": [1.0, 1.0, 2.0, 0.5], "stale_fraction": [0.2, 0.2, 0.0, 0.3]}
    )
    runs = runs_of(
        table,
        ["quorum.r"],
        curve=lambda c: [{"t_ms": 1.0, "p_consistent": 0.9 if c["quorum.r"] != 3 else 1.0}],
    )
    axes = visibility_curves(
        runs, table, ["quorum.r"], objectives=["read_latency_p99_ms", "stale_fraction"]
    ).axes[0]
    assert legend_labels(axes) == ["r4, r1, r2  (identical, 3)", "r3"]  # r1 and r2 tie; r4 is the same curve
    striped = [line for line in axes.lines if line.get_gid() in ("r4", "r1", "r2")]
    assert len({line.get_color() for line in striped}) == 3  # drawn once, striped in three colours
    assert "all 4 Pareto-optimal" in axes.figure.get_suptitle()


def test_the_percentile_plot_has_reads_and_writes_on_the_nines_axis_up_to_the_resolved_tail():
    rows = [{"quorum.r": r} for r in (1, 2)]
    table = table_of(rows, {"read_latency_p99_ms": [1.0, 2.0], "stale_fraction": [0.1, 0.0]})
    figure = latency_percentiles(runs_of(table, ["quorum.r"]), table, ["quorum.r"])
    panels = [a for a in figure.axes if a.lines]
    assert [a.get_title() for a in panels] == ["reads", "writes"]
    top = nines.GRID[-4]  # the last percentile every seed resolved
    for axes in panels:
        assert legend_labels(axes) == ["r1", "r2"]
        line = axes.lines[0]
        assert line.get_xdata()[-1] == pytest.approx(nines.nines(top))
        assert axes.get_xlim()[1] >= nines.nines(top)
        assert line.get_ydata()[0] == pytest.approx(2.5)  # mean of the two seeds at p0
        assert "99.9" in [t.get_text() for t in axes.get_xticklabels()]


def test_a_sweep_without_percentile_columns_still_draws():
    rows = [{"quorum.r": r} for r in (1, 2)]
    table = table_of(rows)
    figure = latency_percentiles(runs_of(table, ["quorum.r"], percentiles=False), table, ["quorum.r"])
    assert not any(a.lines for a in figure.axes)
    assert any("no per-run percentiles" in t.get_text() for a in figure.axes for t in a.texts)
    resumed = runs_of(table, ["quorum.r"]).astype({"read_latency_percentiles": object})
    resumed.loc[0, "read_latency_percentiles"] = np.nan  # an old point kept by --resume, next to new ones
    figure = latency_percentiles(resumed, table, ["quorum.r"])
    assert [len(a.lines) for a in figure.axes if a.get_title() in ("reads", "writes")] == [2, 2]


def test_a_real_sweep_records_and_draws_percentiles(tmp_path):
    result = small_sweep(tmp_path, {"quorum.r": [1, 2], "seeds": 2})
    for column in ("read_latency_percentiles", "write_latency_percentiles"):
        for text in result.runs[column]:
            values = [v for v in json.loads(text) if v is not None]
            assert len(json.loads(text)) == len(nines.GRID) and values == sorted(values)
    written = write_plots(result.runs, result.aggregate, result.factors, result.path, "r")
    assert "latency_percentiles.png" in written and "latency_cdf.png" not in written
    assert (result.path / "plots" / "latency_percentiles.png").stat().st_size > 10_000


def test_visibility_curves_label_plain_ticks_and_say_where_a_zoomed_axis_starts():
    rows = [{"quorum.r": r} for r in (1, 2)]
    table = table_of(rows, {"read_latency_p99_ms": [1.0, 2.0], "stale_fraction": [0.05, 0.0]})
    curve = [{"t_ms": t, "p_consistent": p} for t, p in ((0.1, 0.92), (1.0, 0.97), (10.0, 1.0))]
    runs = runs_of(table, ["quorum.r"], curve=lambda c: curve)
    figure = visibility_curves(runs, table, ["quorum.r"])
    axes = figure.axes[0]
    FigureCanvasAgg(figure).draw()
    labels = [t.get_text() for t in axes.get_xticklabels() + axes.get_yticklabels() if t.get_text()]
    assert labels and all(re.fullmatch(r"-?\d+(\.\d+)?", text) for text in labels), labels
    low = axes.get_ylim()[0]
    assert 0 < low <= 0.92 and f"axis starts at {low:g}" in axes.get_ylabel()


# --- review findings (issue 10): zips, colours, scales, bands, bounds, order, ties ---------------------


# multi-region-levels' zip: 4 values of r and 4 of w in 5 pairs
LEVELS = [("local_one", "local_quorum"), ("local_quorum", "local_quorum"), ("local_quorum", "each_quorum"),
          ("quorum", "quorum"), ("one", "all")]  # fmt: skip
RW = ["quorum.r", "quorum.w"]


def test_zipped_factors_count_as_one_factor_for_heat_maps():
    table = table_of([{"quorum.r": r, "quorum.w": w} for r, w in LEVELS])
    assert heatmap(table, "availability", RW) is None  # a zip alone gives no r x w grid
    crossed = table_of([{"quorum.r": r, "quorum.w": w, "workload.read_fraction": f}
                        for r, w in LEVELS for f in (0.5, 0.9)])  # fmt: skip
    figure = heatmap(crossed, "availability", [*RW, "workload.read_fraction"])
    (axes,) = [a for a in figure.axes if a.images]
    assert axes.images[0].get_array().shape == (5, 2)  # the five configurations, against the third factor
    assert [t.get_text() for t in axes.get_yticklabels()] == [f"r={r} w={w}" for r, w in LEVELS]
    assert "varied together" in axes.get_ylabel()


def test_a_grid_thinned_by_where_still_crosses():
    table = choose_like_table()  # r + w > n: a triangle of (r, w), not a zip
    assert factor_units(table, NRW) == [("quorum.n",), ("quorum.r",), ("quorum.w",)]
    diagonal = table_of([{"quorum.r": k, "quorum.w": k} for k in (1, 2, 3)])  # where r == w: one factor
    assert factor_units(diagonal, RW) == [("quorum.r", "quorum.w")]


def test_labels_say_name_equals_value_unless_a_short_name_has_a_number():
    assert label({"quorum.r": "one", "quorum.w": "all"}, RW) == "r=one w=all"
    assert label({"quorum.n": 5, "quorum.r": 1, "quorum.w": 5}, NRW) == "n5 r1 w5"
    assert label({"workload.read_fraction": 0.9}, ["workload.read_fraction"]) == "read_fraction=0.9"


def test_long_column_labels_are_turned_so_that_they_do_not_overlap():
    rows = [
        {"workload.read_fraction": f, "quorum.r": r, "quorum.w": w} for f in (0.5, 0.9) for r, w in LEVELS
    ]
    figure = heatmap(table_of(rows), "availability", ["workload.read_fraction", *RW])
    FigureCanvasAgg(figure).draw()
    (axes,) = [a for a in figure.axes if a.images]
    ticks = axes.get_xticklabels()
    assert [t.get_text() for t in ticks] == [f"r={r} w={w}" for r, w in LEVELS]
    assert all(t.get_rotation() == 30 for t in ticks)
    # turned labels are parallel: they stay apart when the ticks' spacing across them beats a line
    spacing = axes.get_window_extent().width / len(ticks) * np.sin(np.radians(30))
    assert spacing > 1.2 * ticks[0].get_fontsize() * figure.dpi / 72


def test_heat_map_rows_sort_durations_by_value_and_keep_text_as_written():
    rows = [{"network.latency": t, "quorum.r": r} for t in ("1ms", "20ms", "5ms") for r in ("quorum", "one")]
    figure = heatmap(table_of(rows), "availability", ["network.latency", "quorum.r"])
    (axes,) = [a for a in figure.axes if a.images]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["1ms", "5ms", "20ms"]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["quorum", "one"]  # the order written
    figure.canvas.draw()
    title = figure._suptitle.get_window_extent()
    assert title.x0 >= 0 and title.x1 <= figure.bbox.width  # a long title wraps within the figure


def test_every_colour_bar_has_plain_tick_labels():
    rows = [{"quorum.r": r, "quorum.w": w} for r in (1, 2) for w in (1, 2)]
    stale = [0.0, 1e-5, 2e-5, 2.5e-5]
    table = table_of(rows, {"stale_fraction": stale, "read_latency_p99_ms": [1.0, 2.0, 3.0, 4.0]})
    for figure in (frontier(table, RW), heatmap(table, "stale_fraction", RW)):
        FigureCanvasAgg(figure).draw()
        (bar,) = colour_bars(figure)
        labels = [t.get_text() for t in bar.ax.get_yticklabels() if t.get_text()]
        assert labels and all(re.fullmatch(r"\d+(\.\d+)?", text) for text in labels), labels
        assert bar.ax.yaxis.get_offset_text().get_text() == ""
        assert "0.00002" in labels


def test_frontier_axes_stay_within_what_a_metric_can_take_and_say_when_it_is_constant():
    rows = [{"quorum.r": r} for r in (1, 2, 3)]
    table = table_of(rows, {"availability": [1.0, 1.0, 1.0], "k_mean": [0.0, 0.0, 0.0]})
    figure = frontier(table, ["quorum.r"], objectives=["availability", "k_mean"])
    axes = figure.axes[0]
    FigureCanvasAgg(figure).draw()
    low, high = axes.get_xlim()
    shown = [t for t in axes.get_xticks() if low <= t <= high]
    assert shown and max(shown) <= 1.0 and high < 1.01
    low, high = axes.get_ylim()
    assert min(t for t in axes.get_yticks() if low <= t <= high) >= 0 and low > -0.01
    assert "every configuration: 1" in axes.get_xlabel()
    assert "every configuration: 0" in axes.get_ylabel()
    assert axes.get_legend().get_title().get_text() == "over 2 objectives"
    one = frontier(table, ["quorum.r"], objectives=["availability"]).axes[0]
    assert one.get_legend().get_title().get_text() == "over 1 objective"


def test_a_configuration_has_one_colour_in_both_panels_and_in_t_visibility():
    rows = [{"quorum.r": r} for r in (1, 2, 3)]
    table = table_of(rows, {"read_latency_p99_ms": [1.0, 2.0, 3.0], "write_latency_p99_ms": [3.0, 2.0, 1.0]})
    runs = runs_of(table, ["quorum.r"])
    runs.loc[runs["quorum.r"] == 2, "read_latency_percentiles"] = runs.loc[
        runs["quorum.r"] == 1, "read_latency_percentiles"
    ].to_numpy()  # r1 and r2 read alike (one curve in the reads panel), write apart
    figures = [latency_percentiles(runs, table, ["quorum.r"]), visibility_curves(runs, table, ["quorum.r"])]
    colours: dict[str, set] = {}
    for axes in [a for f in figures for a in f.axes if a.lines]:
        for line in axes.lines:
            colours.setdefault(line.get_gid(), set()).add(line.get_color())
    assert sorted(colours) == ["r1", "r2", "r3"]
    assert all(len(found) == 1 for found in colours.values()), colours
    assert len(set.union(*colours.values())) == 3


def test_the_percentile_plot_keeps_its_legend_off_the_data_and_logs_a_wide_range():
    rows = [{"quorum.r": r} for r in (1, 2)]
    table = table_of(rows, {"read_latency_p99_ms": [1.0, 2.0], "write_latency_p99_ms": [2.0, 1.0]})
    runs = runs_of(table, ["quorum.r"])
    slow = [
        json.dumps([None if v is None else 20 * v for v in json.loads(t)])
        for t in runs["read_latency_percentiles"]
    ]
    runs.loc[runs["quorum.r"] == 2, "read_latency_percentiles"] = slow[2:]  # about 2 ms against 40 ms
    figure = latency_percentiles(runs, table, ["quorum.r"])
    FigureCanvasAgg(figure).draw()
    reads, writes = [a for a in figure.axes if a.lines]
    assert reads.get_yscale() == "log" and writes.get_yscale() == "linear"  # 40 >= 10 x 2; 5 < 10 x 2.5
    for axes in (reads, writes):
        legend, frame = axes.get_legend().get_window_extent(), axes.get_window_extent()
        assert legend.x0 >= frame.x1


def test_t_visibility_pools_reads_over_seeds_with_wilson_bands():
    rows = [{"quorum.r": r} for r in (1, 2)]
    table = table_of(rows, {"read_latency_p99_ms": [1.0, 2.0], "stale_fraction": [0.05, 0.0]})
    runs = runs_of(table, ["quorum.r"])
    seeds = {0: {"t_ms": 1.0, "t_hi_ms": 2.0, "p_consistent": 0.0, "reads": 1},
             1: {"t_ms": 1.0, "t_hi_ms": 2.0, "p_consistent": 1.0, "reads": 99}}  # fmt: skip
    runs["t_visibility"] = [json.dumps([seeds[seed]]) for seed in runs["seed"]]
    figure = visibility_curves(runs, table, ["quorum.r"])
    axes = figure.axes[0]
    (line,) = [line for line in axes.lines if not line.get_label().startswith("_")]  # r1 and r2 alike
    assert line.get_ydata()[0] == pytest.approx(0.99)  # 99 of 100 reads, not the seeds' mean 0.5
    assert line.get_xdata()[0] == pytest.approx(1.5) and "bin centres" in axes.get_xlabel()
    (band,) = axes.collections
    low, high = wilson_interval(99, 100)
    assert band.get_paths()[0].vertices[:, 1].min() == pytest.approx(low)
    assert band.get_paths()[0].vertices[:, 1].max() == pytest.approx(high)
    assert "95% Wilson" in axes.get_ylabel()


def test_t_visibility_of_consistent_reads_only_tops_out_at_1_02():
    rows = [{"quorum.r": r} for r in (1, 2)]
    table = table_of(rows, {"read_latency_p99_ms": [1.0, 2.0], "stale_fraction": [0.0, 0.0]})
    curve = [{"t_ms": t, "p_consistent": 1.0, "reads": 3} for t in (0.5, 1.0, 5.0)]
    axes = visibility_curves(runs_of(table, ["quorum.r"], curve=lambda c: curve), table, ["quorum.r"]).axes[0]
    assert axes.get_ylim()[1] <= 1.02


def test_tied_optimal_configurations_are_picked_to_cover_the_factors_values():
    factors = ["workload.read_fraction", "network.latency"]
    rows = [{"workload.read_fraction": f, "network.latency": t}
            for f in (0.1, 0.5, 0.9, 0.99) for t in ("1ms", "5ms", "20ms")]  # fmt: skip
    table = table_of(rows)  # every objective 1.0 everywhere: all 12 optimal, all tied
    figure = latency_percentiles(runs_of(table, factors), table, factors, objectives=["availability"])
    drawn = {line.get_gid() for a in figure.axes for line in a.lines}
    assert len(drawn) == 8
    for factor, values in (
        ("read_fraction", ("0.1", "0.5", "0.9", "0.99")),
        ("latency", ("1ms", "5ms", "20ms")),
    ):
        assert all(any(f"{factor}={v} " in f"{d} " for d in drawn) for v in values), (factor, drawn)
    assert "8 of 12" in figure.get_suptitle() and "tied" in figure.get_suptitle()


def test_redrawing_removes_heat_maps_that_no_longer_apply(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "heatmap_availability.png").write_bytes(b"an earlier r x w drawing")
    zipped = table_of([{"quorum.r": r, "quorum.w": w} for r, w in LEVELS])
    written = write_plots(runs_of(zipped, RW), zipped, RW, tmp_path, "rw")
    assert not list((tmp_path / "plots").glob("heatmap_*.png")) and not [f for f in written if "heatmap" in f]
    assert (tmp_path / "plots" / "frontier.png").exists()
