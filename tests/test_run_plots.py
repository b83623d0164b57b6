"""The plots of one run answer their question: real runs, checked on the drawn figures."""

from __future__ import annotations

import io

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure

import qsim
from qsim.analysis import montecarlo
from qsim.checks import nines
from qsim.cli import main
from qsim.output import plots, results
from qsim.output.results import run_figures

from .conftest import SCENARIOS


def scenario(name: str, *overrides: str):
    return qsim.load_scenario(SCENARIOS / f"{name}.yaml", overrides)


@pytest.fixture(scope="module")
def quick():
    """Quickstart cut to 1.5 s: over 2000 ok reads (p99.9 resolved), a few hundred writes (not)."""
    return qsim.simulate(scenario("quickstart", "duration=1500ms", "warmup=200ms"))


@pytest.fixture(scope="module")
def probe():
    """The Monte Carlo engine on pbs-probe: 6000 reads and writes whose latency spans decades."""
    return montecarlo.run(scenario("pbs-probe", "workload.arrival.trials=1000"), table=True)


@pytest.fixture(scope="module")
def constant():
    """random-failures cut down: every ok latency is 0.02 ms up to float noise (a 10 us network)."""
    return qsim.simulate(scenario("random-failures", "duration=5s", "warmup=200ms"))


@pytest.fixture(scope="module")
def lossy():
    """R = W = N = 3 on a network that loses 0.2% of messages: every window 95-99.9% available."""
    return qsim.simulate(
        scenario(
            "quickstart", "duration=3s", "warmup=200ms", "quorum.r=3", "quorum.w=3", "network.loss=0.002"
        )
    )


@pytest.fixture(scope="module")
def twelve():
    """Quickstart on 12 nodes with n10 down from 0.5 s to 1.2 s."""
    crash = "faults=[{at: 500ms, crash: n10, recover_at: 1200ms}]"
    return qsim.simulate(scenario("quickstart", "duration=2s", "warmup=200ms", "cluster.nodes=12", crash))


def ok_latency(ops, kind: str) -> np.ndarray:
    """The latencies a latency plot must draw, taken from the ops table directly."""
    chosen = ops[(ops["kind"] == kind) & ops["ok"] & ~ops["warmup"]]
    return chosen["latency_ms"].to_numpy(dtype=float)


def drawn(figure: Figure) -> Figure:
    figure.savefig(io.BytesIO(), format="png")  # tick labels are made when the figure is drawn
    return figure


def tick_labels(axes, which: str) -> list[str]:
    """The labels of the ticks (major, then minor) inside the view of ``axes``' x or y axis, after a draw."""
    axis, (low, high) = (axes.xaxis, axes.get_xlim()) if which == "x" else (axes.yaxis, axes.get_ylim())
    low, high = sorted((low, high))
    slack = 1e-9 * (high - low)
    ticks = [*zip(axis.get_major_ticks(), axis.get_majorticklocs(), strict=False),
             *zip(axis.get_minor_ticks(), axis.get_minorticklocs(), strict=False)]  # fmt: skip
    return [
        tick.label1.get_text()
        for tick, at in ticks
        if low - slack <= at <= high + slack and tick.label1.get_text()
    ]


def heat_maps(figure: Figure) -> list:
    """The panels of a node plot (its colour bars left out)."""
    return [axes for axes in figure.axes if axes.collections and axes.get_label() != "<colorbar>"]


def assert_plain(labels: list[str]) -> None:
    """Each label is a plain decimal number: no 2x10^0, no offset, no e-notation."""
    assert labels
    for label in labels:
        assert "\\times" not in label and "10^" not in label and "e" not in label.lower(), label
        float(label.replace("\N{MINUS SIGN}", "-"))


@pytest.mark.parametrize("run", ["quick", "probe"])
def test_the_percentile_plot_reaches_the_p999_of_the_data(run, request):
    ops = request.getfixturevalue(run).ops
    figure = drawn(plots.latency_percentiles(ops))
    [axes] = figure.axes
    right = axes.get_xlim()[1]
    for kind in ("read", "write"):
        latency = ok_latency(ops, kind)
        top = nines.resolved(latency.size)
        [line] = [ln for ln in axes.lines if ln.get_label().startswith(f"{kind}s (n={latency.size})")]
        assert line.get_xdata().max() == pytest.approx(float(nines.nines(top)))  # the highest resolved
        assert line.get_ydata().max() == pytest.approx(latency.max())
        assert right >= line.get_xdata().max()
        if top >= 99.9:
            assert right >= nines.nines(99.9)
            [dots] = [
                ln for ln in axes.lines if ln.get_marker() == "o" and ln.get_color() == line.get_color()
            ]
            at = dict(zip(np.round(dots.get_xdata(), 9), dots.get_ydata(), strict=True))
            assert at[round(float(nines.nines(99.9)), 9)] == pytest.approx(np.percentile(latency, 99.9))
    assert nines.resolved(ok_latency(ops, "read").size) >= 99.9  # the test means something


def test_a_percentile_plot_stops_where_its_sample_does(quick):
    latency = ok_latency(quick.ops, "write")
    assert nines.resolved(latency.size) < 99.9  # a few hundred writes: p99.9 is not resolved
    [axes] = plots.latency_percentiles(quick.ops).axes
    [line] = [ln for ln in axes.lines if ln.get_label().startswith("writes")]
    assert "p99.9" not in line.get_label() and "p99 " in line.get_label()
    assert line.get_xdata().max() < nines.nines(99.9)


@pytest.mark.parametrize("run", ["quick", "probe", "constant"])
def test_every_number_on_a_run_plot_is_a_plain_decimal(run, request):
    result = request.getfixturevalue(run)
    figures = run_figures(result.ops, result.summary, result.faults, result.timeline, result.nodes, "t")
    for name, figure in figures.items():
        axes = drawn(figure).axes[0]
        if name.endswith(("latency_percentiles.png", "latency_cdf.png", "t_visibility.png")):
            assert_plain(tick_labels(axes, "x"))
        if not name.endswith(("node_utilization.png", "t_visibility.png")) and not axes.texts:
            assert_plain(tick_labels(axes, "y"))
    assert figures["plots/latency_percentiles.png"].axes[0].get_yscale() == (
        "log" if run == "probe" else "linear"
    )  # both scales were checked


def test_a_near_constant_latency_draws_one_step_with_distinct_ticks(constant):
    latency = np.concatenate([ok_latency(constant.ops, kind) for kind in ("read", "write")])
    assert np.unique(latency).size > 1 and np.ptp(latency) < 1e-6  # float noise, nothing more
    [axes] = drawn(plots.latency_cdf(constant.ops)).axes
    labels = tick_labels(axes, "x")
    assert len(labels) >= 3 and len(set(labels)) == len(labels)
    assert_plain(labels)
    for line in axes.lines:
        assert np.unique(line.get_xdata()).size == 1  # one vertical step, not a staircase of noise
    low, high = axes.get_xlim()
    assert low < latency.min() and latency.max() < high and high - low < 0.5 * latency.max()


def test_the_availability_axis_zooms_on_a_run_that_stays_above_095(lossy):
    windows = lossy.timeline[["read_availability", "write_availability"]].to_numpy(dtype=float)
    lowest = np.nanmin(windows)
    assert 0.95 <= lowest < 0.999  # the run dips, but never below 0.95
    [axes] = drawn(plots.availability_timeline(lossy.timeline, lossy.faults)).axes
    bottom, top = axes.get_ylim()
    assert 0 < bottom <= lowest and top >= 1.0
    assert (1 - lowest) / (top - bottom) >= 0.2  # the dip takes a fifth of the height at least
    assert f"axis starts at {tick_labels(axes, 'y')[0]}" in axes.get_ylabel()


def test_the_node_heat_map_has_a_row_per_node_in_natural_order_from_0(twelve):
    nodes = twelve.nodes
    figure = plots.node_load(nodes, twelve.faults, window_ms=1000.0)
    messages = figure.axes[0]
    names = [label.get_text() for label in messages.get_yticklabels()]
    assert names == [f"n{i}" for i in range(1, 13)]
    [mesh] = messages.collections
    assert mesh.norm.vmin == 0
    grid = np.asarray(mesh.get_array()).reshape(len(names), -1)
    first = nodes[nodes["window_start_ms"] == nodes["window_start_ms"].min()].set_index("node")["messages"]
    np.testing.assert_allclose(grid[:, 0], first[names].to_numpy())  # 1 s windows: messages/s
    panels = heat_maps(figure)
    assert len(panels) == 2  # quickstart's replicas have a service time: utilization too
    assert panels[1].collections[0].norm.vmin == 0 and panels[1].collections[0].norm.vmax == 100
    assert all(axes.get_legend() is None for axes in figure.axes)  # the legend is the figure's, outside


def test_a_crash_is_marked_on_its_nodes_row(twelve):
    [crash] = twelve.faults.itertuples()
    figure = plots.node_load(twelve.nodes, twelve.faults)
    for axes in heat_maps(figure):
        names = [label.get_text() for label in axes.get_yticklabels()]
        [mark] = [patch for patch in axes.patches if patch.get_hatch()]
        assert names[round(mark.get_y() + 0.5)] == crash.target == "n10"
        assert mark.get_height() == 1.0
        assert (mark.get_x(), mark.get_x() + mark.get_width()) == pytest.approx(
            (crash.start_ms / 1000, crash.end_ms / 1000)
        )


def test_without_a_service_time_the_node_plot_has_one_panel(constant):
    assert constant.nodes["utilization"].max() == 0
    figure = plots.node_load(constant.nodes, constant.faults)
    assert len(heat_maps(figure)) == 1
    assert "messages/s" in figure.axes[0].get_title()


def test_a_run_folder_holds_the_percentile_plot_and_qsim_plot_redraws_it(tmp_path):
    out = tmp_path / "run"
    args = ["run", str(SCENARIOS / "quickstart.yaml"), "--set", "duration=1s", "--out", str(out), "-q"]
    assert CliRunner().invoke(main, args).exit_code == 0
    percentiles = out / "plots" / "latency_percentiles.png"
    assert percentiles.read_bytes().startswith(b"\x89PNG")
    percentiles.unlink()
    redrawn = CliRunner().invoke(main, ["plot", str(out)])
    assert redrawn.exit_code == 0, redrawn.output
    assert percentiles.read_bytes().startswith(b"\x89PNG")


def test_the_staleness_title_and_axis_speak_of_the_same_reads(quick):
    figures = run_figures(quick.ops, quick.summary, quick.faults, quick.timeline, quick.nodes, "t")
    [axes] = figures["plots/staleness_timeline.png"].axes
    assert "(fraction of checked reads)" in axes.get_title()
    assert "checked reads" in axes.get_ylabel()


def test_a_degraded_link_between_two_regions_marks_their_nodes_on_a_real_run():
    degrade = "faults=[{at: 1s, until: 2s, degrade: [us-east, eu-west], loss: 0.1}]"
    result = qsim.simulate(scenario("flaky-wan", "duration=3s", "warmup=0", degrade))
    [fault] = result.faults.itertuples()
    regions = {node.name: node.region for node in result.scenario.cluster.nodes}
    figures = run_figures(
        result.ops, result.summary, result.faults, result.timeline, result.nodes, "t", regions=regions
    )
    figure = figures["plots/node_utilization.png"]
    [axes] = heat_maps(figure)
    names = [label.get_text() for label in axes.get_yticklabels()]
    hatched = {names[round(patch.get_y() + 0.5)] for patch in axes.patches if patch.get_hatch()}
    assert hatched == {name for name, region in regions.items() if region in ("us-east", "eu-west")}
    [label] = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
    assert label == f"degrade {fault.target}" == "degrade us-east-eu-west"


def test_run_and_plot_pass_each_nodes_region_to_the_node_plot(tmp_path):
    folder = tmp_path / "run"
    degrade = "faults=[{at: 1s, until: 2s, degrade: [us-east, eu-west], loss: 0.1}]"
    args = ["run", str(SCENARIOS / "flaky-wan.yaml"), "--set", "duration=3s", "--set", degrade]
    assert CliRunner().invoke(main, [*args, "--out", str(folder), "-q"]).exit_code == 0
    saved = qsim.load_run(folder)
    expected = {node["name"]: node["region"] for node in saved.scenario["cluster"]["nodes"]}
    assert results._regions(saved) == expected and set(expected.values()) == {"us-east", "us-west", "eu-west"}


def many_reads(count: int):
    """An ops table of ``count`` ok reads with lognormal latencies (a long tail), no warm-up."""
    import pandas as pd

    latency = np.random.default_rng(5).lognormal(0.0, 1.0, count)
    return pd.DataFrame({"op_id": np.arange(count), "kind": "read", "ok": True, "warmup": False,
                         "start_ms": 0.0, "end_ms": latency, "latency_ms": latency})  # fmt: skip


def test_a_large_sample_draws_a_few_thousand_exact_points_and_its_whole_tail():
    count = 200_000
    truth = np.sort(np.round(many_reads(count)["latency_ms"].to_numpy(), plots.DECIMALS))
    lines = plots.latency_percentiles(many_reads(count)).axes[0].lines
    [line] = [ln for ln in lines if not ln.get_label().startswith("_")]  # the step line, not the dots
    x, y = line.get_xdata(), line.get_ydata()
    assert len(x) < 3500  # not 200,000
    ranks = np.round(count * (1 - 10.0**-x)).astype(int)  # every drawn point is a true order statistic
    np.testing.assert_array_equal(y, truth[ranks])
    np.testing.assert_array_equal(y[-200:], truth[-200:])  # the extreme tail point by point
    assert x[-1] == pytest.approx(float(nines.nines(nines.resolved(count))))
    [step] = plots.latency_cdf(many_reads(count)).axes[0].lines
    cdf_x, cdf_y = step.get_xdata(), step.get_ydata()
    assert len(cdf_x) < 4500 and cdf_x[-1] == truth[-1] and cdf_y[-1] == 1.0
    np.testing.assert_array_equal(cdf_x, truth[np.round(cdf_y * count).astype(int) - 1])


def test_the_nines_axis_ends_at_a_sample_that_resolves_a_hair_past_a_tick():
    figure = plots.latency_percentiles(many_reads(1_000_002))
    low, high = figure.axes[0].get_xlim()
    assert low == 0 and 6.0 < high < 6.001  # p99.9999 is the last tick, not p99.99999
