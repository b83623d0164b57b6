"""The leader protocol's plots: who led when, and the CDF of the time without a leader.

The run tests use the real model (a leader crash); the property tests draw hand-written leader
sections (random histories of tenures and intervals without a leader) and read the figures' artists.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qsim
from qsim.output import leader_plots, plots
from qsim.output.html_figures import caption, order
from qsim.output.results import LEADER_PLOTS, PLOTS, run_figures, write_run

LEADER_RUN = {
    "name": "leader-crash",
    "duration": "5s",
    "cluster": {"nodes": 5},
    "network": {"latency": {"dist": "constant", "value": 15}},
    "quorum": {"protocol": "leader", "timeout": "1s", "retries": 3},
    "workload": {"arrival": {"type": "poisson", "rate": 100}, "clients": 4, "keys": {"count": 5}},
    "faults": [{"at": "2s", "crash": "leader", "recover_at": "4s"}],
}
NODES = [f"n{i}" for i in range(1, 6)]
NO_FAULTS = pd.DataFrame(
    {"fault_id": [], "kind": [], "target": [], "start_ms": [], "end_ms": [], "params": []}
).astype({"start_ms": float, "end_ms": float})


@pytest.fixture(scope="module")
def crash():
    return qsim.simulate(qsim.scenario_from_dict(LEADER_RUN))


@pytest.fixture(scope="module")
def figures(crash):
    return run_figures(crash.ops, crash.summary, crash.faults, crash.timeline, crash.nodes, "t")


def windows(end_ms: float) -> pd.DataFrame:
    """One-second windows of full availability from 0 to past ``end_ms``."""
    starts = 1000.0 * np.arange(int(end_ms // 1000) + 1)
    return pd.DataFrame({"window_start_ms": starts, "window_end_ms": starts + 1000.0,
                         "read_availability": 1.0, "write_availability": 1.0})  # fmt: skip


def spans(axes, kind: str) -> list[tuple[float, float, str]]:
    """(from s, to s, name) of each rectangle of the collections ``kind:<name>`` of ``axes``, by time."""
    found = []
    for collection in axes.collections:
        gid = collection.get_gid() or ""
        if gid.startswith(f"{kind}:"):
            found += [(*_x_extent(path), gid.split(":", 1)[1]) for path in collection.get_paths()]
    return sorted(found)


def _x_extent(path) -> tuple[float, float]:
    return float(path.vertices[:, 0].min()), float(path.vertices[:, 0].max())


def tenure_bars(figure) -> list[tuple[str, float, float]]:
    """(node, from s, to s) of each bar on the lanes panel, by time; each checked to be on its lane."""
    lanes = figure.axes[1]
    names = [label.get_text() for label in lanes.get_yticklabels()]
    for collection in lanes.collections:
        if (collection.get_gid() or "").startswith("leading:"):
            rows = {
                round(float(path.vertices[:, 1].min() + path.vertices[:, 1].max()) / 2, 9)
                for path in collection.get_paths()
            }
            assert rows == {float(names.index(collection.get_gid().split(":")[1]))}
    return [(node, start, end) for start, end, node in spans(lanes, "leading")]


def no_leader_spans(axes) -> list[tuple[float, float, str]]:
    """(from s, to s, cause) of each hatched band without a leader on ``axes``, in time order."""
    return spans(axes, "no-leader")


def cdf_curves(figure) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The step line of each curve by its legend label up to ' (n='."""
    [axes] = figure.axes
    return {line.get_label().split(" (n=")[0]: (line.get_xdata(), line.get_ydata())
            for line in axes.lines if " (n=" in line.get_label()}  # fmt: skip


# --- a real run: a leader crash ---------------------------------------------------------------


def test_a_leader_run_draws_both_leader_plots_after_the_others(figures):
    assert list(figures) == [*PLOTS, *LEADER_PLOTS]


def test_each_tenure_is_a_bar_on_its_nodes_lane_over_its_time(crash, figures):
    leader = crash.summary["leader"]
    tenures = leader["tenures"]
    assert len(tenures) >= 2  # the first leader, and one after the crash
    first = tenures[0]
    [fault] = crash.faults.itertuples()
    assert fault.target == first["node"] and first["to_ms"] == fault.start_ms == 2000.0
    expected = [(t["node"], t["from_ms"] / 1000, (t["to_ms"] or 5000.0) / 1000) for t in tenures]
    bars = tenure_bars(figures["plots/leadership_timeline.png"])
    assert [b[0] for b in bars] == [e[0] for e in expected]
    np.testing.assert_allclose([b[1:] for b in bars], [e[1:] for e in expected], rtol=0, atol=1e-9)


def test_each_interval_without_a_leader_is_hatched_on_both_panels(crash, figures):
    without = crash.summary["leader"]["time_without_leader_ms"]
    assert without["open_since"] is None
    expected = [(i["from_ms"] / 1000, i["to_ms"] / 1000, i["cause"]) for i in without["intervals"]]
    assert [cause for *_, cause in expected][:2] == ["start", "crash"] and expected[1][0] == 2.0
    top, lanes = figures["plots/leadership_timeline.png"].axes
    for axes in (top, lanes):
        drawn = no_leader_spans(axes)
        assert [s[2] for s in drawn] == [e[2] for e in expected]
        np.testing.assert_allclose([s[:2] for s in drawn], [e[:2] for e in expected], rtol=0, atol=1e-9)
    legend = [text.get_text() for text in lanes.get_legend().get_texts()]
    assert "no leader: the leader crashed" in legend and "no leader: the run's first election" in legend


def test_the_availability_panel_is_the_availability_timeline(figures):
    top = figures["plots/leadership_timeline.png"].axes[0]
    alone = figures["plots/availability_timeline.png"].axes[0]
    for line, same in zip(top.lines, alone.lines, strict=True):
        np.testing.assert_array_equal(line.get_xydata(), same.get_xydata())
    assert top.get_xlim() == alone.get_xlim()
    assert [t.get_text() for t in top.get_legend().get_texts()] == [
        t.get_text() for t in alone.get_legend().get_texts()
    ]


def test_terms_are_written_inside_their_bars(crash, figures):
    figure = figures["plots/leadership_timeline.png"]
    lanes = figure.axes[1]
    terms = {str(t["term"]) for t in crash.summary["leader"]["tenures"]}
    labels = [text for text in lanes.texts if text.get_text()]
    assert labels and {t.get_text().removeprefix("term ") for t in labels} <= terms
    ends = [lanes.transData.transform([(start, 0), (end, 0)])[:, 0] for _, start, end in tenure_bars(figure)]
    for label in labels:
        text = label.get_window_extent()
        assert any(left <= text.x0 and text.x1 <= right for left, right in ends)


def test_the_cdf_steps_through_the_sorted_durations_of_each_cause(crash, figures):
    intervals = crash.summary["leader"]["time_without_leader_ms"]["intervals"]
    curves = cdf_curves(figures["plots/election_time_cdf.png"])
    causes = {i["cause"] for i in intervals}
    assert set(curves) == {cause.replace("_", " ") for cause in causes} >= {"start", "crash"}
    for cause in causes:
        durations = np.sort([i["to_ms"] - i["from_ms"] for i in intervals if i["cause"] == cause])
        x, y = curves[cause.replace("_", " ")]
        np.testing.assert_array_equal(x[1:], durations)
        np.testing.assert_array_equal(y, np.arange(durations.size + 1) / durations.size)


def test_a_leaderless_run_writes_no_leader_plot_and_clears_an_earlier_ones(crash, tmp_path):
    quick = qsim.simulate(qsim.load_scenario("scenarios/quickstart.yaml", ["duration=300ms", "warmup=0"]))
    assert "leader" not in quick.summary
    assert list(run_figures(quick.ops, quick.summary, quick.faults, quick.timeline, quick.nodes, "t")) == [
        *PLOTS
    ]
    folder = tmp_path / "run"
    write_run(crash, folder)
    assert all((folder / name).read_bytes().startswith(b"\x89PNG") for name in LEADER_PLOTS)
    write_run(quick, folder)
    assert not any((folder / name).exists() for name in LEADER_PLOTS)
    assert all((folder / name).is_file() for name in PLOTS)


def test_the_report_knows_both_plots_and_puts_them_after_availability():
    for stem in ("leadership_timeline", "election_time_cdf"):
        assert "does not know" not in caption(stem)
    ranks = [order(s)[0] for s in ("availability_timeline", "leadership_timeline", "election_time_cdf")]
    assert ranks == sorted(ranks) and ranks[2] < order("staleness_timeline")[0]


# --- hand-written histories -------------------------------------------------------------------

CAUSE = st.sampled_from(["crash", "step_down", "takeover"])


@st.composite
def histories(draw) -> dict:
    """A leader section: [start interval, tenure, (interval, tenure)...], ending led or without a leader."""
    now, term, tenures, intervals = 0.0, 0, [], []
    for cause in ["start", *draw(st.lists(CAUSE, max_size=5))]:
        gap = draw(st.sampled_from([0.0, 0.5, 3.0, 40.0, 150.0, 900.0, 2500.0]))
        intervals.append({"from_ms": now, "to_ms": now + gap, "cause": cause})
        term += draw(st.integers(1, 3))
        span = draw(st.floats(10.0, 3000.0))
        tenures.append({"term": term, "node": draw(st.sampled_from(NODES)), "from_ms": now + gap,
                        "to_ms": now + gap + span})  # fmt: skip
        now += gap + span
    open_since = now if draw(st.booleans()) else None
    if open_since is None:
        tenures[-1]["to_ms"] = None
    without = {"total": 0.0, "count": len(intervals), "intervals": intervals, "open_since": open_since,
               "listed": len(intervals)}  # fmt: skip
    leader = {"tenures": tenures, "time_without_leader_ms": without, "leader_changes": len(tenures)}
    return {"leader": leader, "nodes": {name: {} for name in NODES}, "end_ms": now + 500.0}


@settings(max_examples=15, deadline=None)
@given(histories())
def test_a_history_draws_a_bar_per_tenure_and_a_band_per_interval(summary):
    leader, end_ms = summary["leader"], summary["end_ms"]
    figure = plots.leadership_timeline(summary, windows(end_ms), NO_FAULTS, "h")
    right_s = (int(end_ms // 1000) + 1) * 1.0  # the last window's end
    expected = [
        (t["node"], t["from_ms"] / 1000, (t["to_ms"] or 1000 * right_s) / 1000) for t in leader["tenures"]
    ]
    bars = tenure_bars(figure)
    assert [b[0] for b in bars] == [e[0] for e in expected]
    np.testing.assert_allclose([b[1:] for b in bars], [e[1:] for e in expected], rtol=0, atol=1e-9)
    without = leader["time_without_leader_ms"]
    bands = [(i["from_ms"] / 1000, i["to_ms"] / 1000, i["cause"]) for i in without["intervals"]]
    if without["open_since"] is not None:
        bands.append((without["open_since"] / 1000, right_s, "open"))
    drawn = no_leader_spans(figure.axes[1])
    assert [s[2] for s in drawn] == [b[2] for b in bands]
    np.testing.assert_allclose([s[:2] for s in drawn], [b[:2] for b in bands], rtol=0, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(histories())
def test_a_history_steps_through_its_durations_with_a_log_axis_only_over_a_decade(summary):
    figure = plots.election_time_cdf({"run": summary})
    [axes] = figure.axes
    curves = cdf_curves(figure)
    intervals = summary["leader"]["time_without_leader_ms"]["intervals"]
    durations = {}
    for i in intervals:
        durations.setdefault(i["cause"].replace("_", " "), []).append(i["to_ms"] - i["from_ms"])
    assert set(curves) == set(durations)
    for cause, values in durations.items():
        np.testing.assert_array_equal(curves[cause][0][1:], np.sort(values))
    every = np.concatenate([np.asarray(v) for v in durations.values()])
    assert (axes.get_xscale() == "log") == (every.min() > 0 and every.max() > 10 * every.min())
    assert axes.get_xlim()[1] > every.max()  # the longest interval is inside the plot
    maxima = [line.get_xdata()[0] for line in axes.lines if line.get_marker() == "D"]
    assert sorted(maxima) == sorted(max(v) for v in durations.values())
    notes = [line.get_label() for line in axes.lines if line.get_label().startswith("not counted")]
    assert len(notes) == (summary["leader"]["time_without_leader_ms"]["open_since"] is not None)


def intervals(*rows: tuple[float, float, str]) -> dict:
    """A summary whose leader section lists closed intervals (from_ms, to_ms, cause)."""
    listed = [{"from_ms": a, "to_ms": b, "cause": cause} for a, b, cause in rows]
    without = {"intervals": listed, "open_since": None, "listed": len(rows), "count": len(rows)}
    return {"leader": {"time_without_leader_ms": without}}


def test_several_runs_get_a_colour_each_and_a_cause_filter():
    fast = intervals((0.0, 200.0, "start"), (900.0, 1250.0, "crash"), (2000.0, 2300.0, "crash"))
    slow = intervals((0.0, 900.0, "start"), (1500.0, 3100.0, "crash"))
    figure = plots.election_time_cdf({"fast": fast, "slow": slow}, causes=("crash",))
    curves = cdf_curves(figure)
    assert set(curves) == {"fast: crash", "slow: crash"}
    np.testing.assert_array_equal(curves["fast: crash"][0][1:], [300.0, 350.0])
    np.testing.assert_array_equal(curves["slow: crash"][0][1:], [1600.0])
    lines = [line for line in figure.axes[0].lines if "(n=" in line.get_label()]
    assert len({line.get_color() for line in lines}) == 2
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend == ["fast: crash (n=2, max 350 ms)", "slow: crash (n=1, max 1600 ms)"]


def test_a_summary_without_a_leader_section_is_refused_by_name():
    with pytest.raises(ValueError, match="quick: not a leader-protocol run"):
        plots.election_time_cdf({"quick": {"reads": {}}})


def test_a_run_that_never_elected_hatches_to_its_end_and_says_so():
    without = {"total": 3000.0, "count": 0, "intervals": [], "open_since": 0.0, "listed": 0}
    summary = {"leader": {"tenures": [], "time_without_leader_ms": without, "leader_changes": 0}, "nodes": {}}
    crash = pd.DataFrame({"fault_id": [0], "kind": ["crash"], "target": ["n1"], "start_ms": [0.0],
                          "end_ms": [3000.0], "params": ["{}"]})  # fmt: skip
    figure = leader_plots.leadership_timeline(summary, windows(2500.0).iloc[:0], crash)  # no clock
    lanes = figure.axes[1]
    assert no_leader_spans(lanes) == [(0.0, 3.0, "open")] and not tenure_bars(figure)
    assert lanes.get_xlim() == (0.0, 3.0) and len(lanes.get_xticks()) > 2  # the time axis stays
    [axes] = leader_plots.election_time_cdf({"r": summary}).axes
    assert "no interval without a leader ended" in axes.texts[0].get_text()
    assert [t.get_text() for t in axes.get_legend().get_texts()] == [
        "not counted: no leader since 0 ms, still at the end"
    ]
