"""The analysis helpers answer from saved results, and agree with the run's own summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import qsim
from qsim.analysis import k_distribution, latency_percentiles, node_load, stale_fraction, t_visibility
from qsim.cli import main

from .conftest import SCENARIOS


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> qsim.SavedRun:
    scenario = qsim.load_scenario(SCENARIOS / "eventual-consistency.yaml", ["duration=2s", "warmup=0"])
    return qsim.load_run(qsim.write_run(qsim.simulate(scenario), tmp_path_factory.mktemp("run") / "run"))


def test_latency_percentiles_agree_with_the_summary(saved):
    table = latency_percentiles(saved.ops)
    for kind in ("read", "write"):
        expected = saved.summary[f"{kind}s"]["latency_ms"]
        row = table.loc[kind]
        assert row["count"] == expected["count"]
        for stat in ("mean", "p50", "p90", "p99", "p999", "max"):
            assert row[stat] == pytest.approx(expected[stat])


def test_latency_percentiles_per_window_cover_every_ok_operation(saved):
    table = latency_percentiles(saved.ops, window_ms=500)
    assert table["count"].sum() == saved.ops["ok"].sum()
    assert set(table.index.get_level_values("window_start_ms")) == {0.0, 500.0, 1000.0, 1500.0}


def test_stale_fraction_and_k_distribution_agree_with_the_summary(saved):
    staleness = saved.summary["staleness"]
    overall = stale_fraction(saved.ops).iloc[0]
    assert (overall["reads_checked"], overall["stale"]) == (staleness["reads_checked"], staleness["stale"])
    assert stale_fraction(saved.ops, window_ms=1000)["stale"].sum() == staleness["stale"]
    assert {str(k): n for k, n in k_distribution(saved.ops).items()} == staleness["k"]


def test_t_visibility_is_the_summary_curve_with_its_bands(saved):
    curve = t_visibility(saved.ops)
    expected = pd.DataFrame(saved.summary["staleness"]["t_visibility"])
    pd.testing.assert_frame_equal(curve, expected)
    assert (curve["ci_low"] <= curve["p_consistent"]).all() and (
        curve["p_consistent"] <= curve["ci_high"]
    ).all()


def test_node_load_lists_every_node(saved):
    load = node_load(saved.summary)
    assert list(load.index) == [f"n{i}" for i in range(1, 6)]
    assert (load["messages"] > 0).all() and ((load["utilization"] > 0) & (load["utilization"] < 1)).all()


def test_load_sweep_reads_both_tables_and_knows_its_factors(tmp_path):
    from qsim.scenario import read_scenario_data
    from qsim.sweep import sweep_from_cli
    from qsim.sweep.run import plan, run_sweep

    data = read_scenario_data(SCENARIOS / "quickstart.yaml", ["duration=200ms", "warmup=0"])
    planned = plan(data, sweep_from_cli(["quorum.r=1,2"], where=None, zips=(), seeds="2"))
    result = run_sweep(planned, tmp_path, executor_name="serial")
    sweep = qsim.load_sweep(tmp_path)
    assert sweep.factors == ["quorum.r"]
    pd.testing.assert_frame_equal(sweep.runs, pd.read_parquet(tmp_path / "runs.parquet"))
    assert len(sweep.aggregate) == 2 and sweep.sweep["status"] == "complete"
    assert np.array_equal(sweep.runs["seed"], result.runs["seed"])


def test_qsim_plot_redraws_a_run_and_refuses_other_folders(saved, tmp_path):
    plots = saved.path / "plots"
    for png in plots.glob("*.png"):
        png.unlink()
    result = CliRunner().invoke(main, ["plot", str(saved.path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in plots.glob("*.png")) == [
        "availability_timeline.png", "latency_cdf.png", "latency_percentiles.png", "node_utilization.png",
        "staleness_timeline.png", "t_visibility.png"
    ]  # fmt: skip
    refused = CliRunner().invoke(main, ["plot", str(tmp_path)])
    assert (
        refused.exit_code == 1
        and "expected a run folder" in refused.output
        and "Traceback" not in refused.output
    )
