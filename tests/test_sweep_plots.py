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

from qsim import nines
from qsim.scenario import read_scenario_data
from qsim.sweep import sweep_from_mapping
from qsim.sweep.aggregate import METRICS, pareto
from qsim.sweep.heatmaps import text_colour
from qsim.sweep.plots import (
    frontier,
    heatmap,
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
                values = [1.0 + config.get("quorum.r", 1) + p / 100 + seed for p in nines.GRID[:-3]]
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
    drawn = [int(line.get_label().removeprefix("r")) for line in axes.lines]
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
    labels = [line.get_label() for line in axes.lines]
    assert labels == ["r4, r1, r2  (identical, 3)", "r3"]  # r1 and r2 tie; r4 draws the same curve
    assert "all 4 Pareto-optimal" in axes.figure.get_suptitle()


def test_the_percentile_plot_has_reads_and_writes_on_the_nines_axis_up_to_the_resolved_tail():
    rows = [{"quorum.r": r} for r in (1, 2)]
    table = table_of(rows, {"read_latency_p99_ms": [1.0, 2.0], "stale_fraction": [0.1, 0.0]})
    figure = latency_percentiles(runs_of(table, ["quorum.r"]), table, ["quorum.r"])
    panels = [a for a in figure.axes if a.lines]
    assert [a.get_title() for a in panels] == ["reads", "writes"]
    top = nines.GRID[-4]  # the last percentile every seed resolved
    for axes in panels:
        assert [line.get_label() for line in axes.lines] == ["r1", "r2"]
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
