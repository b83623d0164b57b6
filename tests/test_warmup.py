"""One warm-up rule: the summary, the plots, the timeline and the analysis helpers count the same
operations, on a real run and on the same run read back from its folder."""

from __future__ import annotations

import pandas as pd
import pytest

import qsim
from qsim.analysis import (
    availability_timeline,
    k_distribution,
    latency_percentiles,
    montecarlo,
    stale_fraction,
    t_visibility,
)
from qsim.history import OPS_COLUMNS
from qsim.output import plots
from qsim.output.report import terminal_table
from qsim.output.results import run_figures

from .conftest import SCENARIOS

# Cut down, with a warm-up that holds about a third of the operations; the eventual scenario
# (R=W=1) has stale reads, so the staleness counts are compared too.
CUT = ("duration=1500ms", "warmup=500ms")


@pytest.fixture(scope="module", params=["quickstart", "eventual-consistency"])
def run(request, tmp_path_factory):
    """A shipped scenario cut down, simulated and written; (result, saved run)."""
    result = qsim.simulate(qsim.load_scenario(SCENARIOS / f"{request.param}.yaml", CUT))
    folder = qsim.write_run(result, tmp_path_factory.mktemp("warmup") / "run", plots_too=False)
    return result, qsim.load_run(folder)


def legend_counts(figure) -> dict[str, int]:
    """The n=... of each line of the latency CDF's legend, by kind ('reads', 'writes')."""
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    return {label.split(" ")[0]: int(label.split("n=")[1].rstrip(")")) for label in labels}


def test_the_ops_table_marks_the_warm_up(run):
    result, saved = run
    assert "warmup" in OPS_COLUMNS
    for ops in (result.ops, saved.ops):
        assert ops["warmup"].dtype == bool
        assert ops["warmup"].equals(ops["start_ms"] < 500.0)
        assert 0 < ops["warmup"].sum() < len(ops)  # the test means something


def test_summary_plots_timeline_and_helpers_count_the_same_operations(run):
    result, saved = run
    summary = result.summary
    ok = {kind: summary[f"{kind}s"]["latency_ms"]["count"] for kind in ("read", "write")}
    staleness = summary["staleness"]
    assert staleness["stale"] > 0 or result.scenario.name == "quickstart"  # R=W=2 there
    for ops, timeline in ((result.ops, result.timeline), (saved.ops, saved.timeline)):
        assert legend_counts(plots.latency_cdf(ops)) == {"reads": ok["read"], "writes": ok["write"]}
        latency = latency_percentiles(ops)["count"]
        assert (latency["read"], latency["write"]) == (ok["read"], ok["write"])
        by_window = latency_percentiles(ops, window_ms=100.0)["count"]
        assert by_window.sum() == ok["read"] + ok["write"]
        stale = stale_fraction(ops).iloc[0]
        assert (stale["reads_checked"], stale["stale"]) == (staleness["reads_checked"], staleness["stale"])
        assert k_distribution(ops).to_dict() == {int(k): n for k, n in staleness["k"].items()}
        assert t_visibility(ops)["reads"].tolist() == [p["reads"] for p in staleness["t_visibility"]]
        for frame in (timeline, availability_timeline(ops, 1000.0)):
            assert frame["reads"].sum() == summary["reads"]["count"]
            assert frame["writes"].sum() == summary["writes"]["count"]
            assert frame["reads_checked"].sum() == staleness["reads_checked"]
            assert frame["stale_reads"].sum() == staleness["stale"]
    assert summary["faults"]["outside"]["ops"] == summary["reads"]["count"] + summary["writes"]["count"]


def test_the_saved_runs_plots_count_what_its_summary_counts(run):
    _, saved = run
    figures = run_figures(saved.ops, saved.summary, saved.faults, saved.timeline, saved.nodes, "saved")
    counts = legend_counts(figures["plots/latency_cdf.png"])
    assert counts == {kind: saved.summary[kind]["latency_ms"]["count"] for kind in ("reads", "writes")}


def test_the_terminal_table_says_how_many_operations_the_warm_up_held(run):
    result, _ = run
    head = terminal_table(result.summary, result.manifest).splitlines()[0]
    assert f"{len(result.ops)} ops ({int(result.ops['warmup'].sum())} in the warm-up, left out)" in head


def test_include_warmup_counts_every_operation(run):
    result, _ = run
    ops = result.ops
    is_read = ops["kind"] == "read"
    every_ok_read = int((is_read & ops["ok"]).sum())
    assert every_ok_read > result.summary["reads"]["latency_ms"]["count"]
    assert legend_counts(plots.latency_cdf(ops, include_warmup=True))["reads"] == every_ok_read
    assert latency_percentiles(ops, include_warmup=True)["count"]["read"] == every_ok_read
    checked = int((is_read & ops["stale"].notna()).sum())
    assert stale_fraction(ops, include_warmup=True)["reads_checked"][0] == checked
    assert k_distribution(ops, include_warmup=True).sum() == checked
    assert t_visibility(ops, include_warmup=True)["reads"].sum() == checked
    assert availability_timeline(ops, 1000.0, include_warmup=True)["reads"].sum() == int(is_read.sum())


def test_a_table_without_the_column_has_no_warm_up(run):
    result, _ = run
    ops = result.ops.drop(columns="warmup")
    assert latency_percentiles(ops)["count"].sum() == int(ops["ok"].sum())


def test_monte_carlo_trials_are_never_warm_up(tmp_path):
    scenario = qsim.load_scenario(
        SCENARIOS / "pbs-probe.yaml", ["workload.arrival.trials=50", "warmup=20ms", "duration=1s"]
    )
    result = montecarlo.run(scenario, table=True)
    assert result.ops["warmup"].dtype == bool and not result.ops["warmup"].any()
    assert list(result.ops.columns) == [c for c in OPS_COLUMNS if c in result.ops]
    trials = 6 * 50
    assert result.summary["reads"]["count"] == result.summary["writes"]["count"] == trials
    assert legend_counts(plots.latency_cdf(result.ops)) == {"reads": trials, "writes": trials}
    assert latency_percentiles(result.ops)["count"].sum() == 2 * trials
    assert "warm-up" not in terminal_table(result.summary, result.manifest)


def test_a_run_saved_before_the_warmup_column_gets_it_from_its_scenario(tmp_path):
    scenario = qsim.load_scenario(SCENARIOS / "quickstart.yaml", ["duration=3s", "warmup=1s"])
    folder = qsim.write_run(qsim.simulate(scenario), tmp_path / "run", plots_too=False)
    ops = pd.read_parquet(folder / "ops.parquet")
    ops.drop(columns="warmup").to_parquet(folder / "ops.parquet", index=False)  # the old layout
    assert qsim.load_run(folder).ops["warmup"].tolist() == ops["warmup"].tolist()
    assert ops["warmup"].any() and not ops["warmup"].all()
