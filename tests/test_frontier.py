"""The Pareto frontier of a sweep: its objectives, their directions, and where they are chosen."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from qsim.cli import main
from qsim.scenario import load_scenario
from qsim.sweep import SweepError, sweep_from_mapping
from qsim.sweep.aggregate import DEFAULT_OBJECTIVES, METRICS, ObjectiveError, check_objectives, pareto
from qsim.sweep.report import pareto_table
from tests.conftest import SCENARIOS

SHORT = ("--set", "duration=300ms", "--set", "warmup=0", "--executor", "serial")


def brute_force(table: pd.DataFrame, objectives: list[str]) -> list[bool]:
    """Row i is optimal unless some row j is at least as good on every objective and better on one."""
    sign = {m: -1.0 if "availability" in m else 1.0 for m in objectives}  # lower is better after this
    rows = [{m: sign[m] * table[f"{m}_mean"].iloc[i] for m in objectives} for i in range(len(table))]
    valid = [not any(np.isnan(v) for v in row.values()) for row in rows]
    optimal = list(valid)
    for i, j in itertools.permutations(range(len(rows)), 2):
        at_least_as_good = all(rows[j][m] <= rows[i][m] for m in objectives)
        better_on_one = any(rows[j][m] < rows[i][m] for m in objectives)
        if valid[i] and valid[j] and at_least_as_good and better_on_one:
            optimal[i] = False
    return optimal


@pytest.mark.parametrize(
    "objectives",
    [
        list(DEFAULT_OBJECTIVES),
        ["read_latency_p99_ms", "stale_fraction"],
        ["availability", "write_latency_p99_ms"],
        ["availability", "read_availability", "messages_per_op", "k_mean"],
        ["stale_fraction"],
    ],
)
@pytest.mark.parametrize("seed", range(6))
def test_the_frontier_of_a_random_table_is_the_brute_force_frontier(objectives, seed):
    rng = np.random.default_rng(seed)
    size = 40
    # few distinct values, so that ties and equal rows are common; some NaN cells
    table = pd.DataFrame({f"{m}_mean": rng.integers(0, 4, size).astype(float) for m in METRICS})
    table = table.mask(rng.random(table.shape) < 0.04)
    table.index = [f"c{i}" for i in range(size)]  # any index, kept in the answer
    optimal = pareto(table, objectives)
    assert list(optimal.index) == list(table.index)
    assert optimal.tolist() == brute_force(table, objectives)


def test_availability_is_better_higher_and_latency_lower():
    table = pd.DataFrame({"availability_mean": [0.9, 1.0, 1.0], "read_latency_p99_ms_mean": [1.0, 2.0, 3.0]})
    assert pareto(table, ["availability", "read_latency_p99_ms"]).tolist() == [True, True, False]
    assert pareto(table, ["availability"]).tolist() == [False, True, True]  # equal rows both stay


def test_the_default_frontier_weighs_write_latency():
    # the old frontier (read p99 and stale fraction only) kept only the first row, whose writes are slowest
    table = pd.DataFrame(
        {
            "read_latency_p99_ms_mean": [2.5, 2.5, 3.2, 3.9],
            "write_latency_p99_ms_mean": [8.3, 2.4, 5.0, 3.9],
            "stale_fraction_mean": [0.0, 0.001, 0.0, 0.0],
        }
    )
    assert pareto(table).tolist() == [True, True, True, True]
    assert pareto(table, ["read_latency_p99_ms", "stale_fraction"]).tolist() == [True, False, False, False]


@pytest.mark.parametrize(
    ("objectives", "expected"),
    [
        (["read_p99"], "'read_p99' is not a metric"),
        (["read_latency_p99"], "'read_latency_p99' is not a metric (did you mean 'read_latency_p99_ms'?)"),
        ("stale_fraction", "expected a non-empty list of metric names"),
        ([], "expected a non-empty list of metric names"),
        (["stale_fraction", "stale_fraction"], "stale_fraction is listed twice"),
    ],
)
def test_a_bad_objective_names_the_field_what_was_found_and_the_metrics(objectives, expected):
    with pytest.raises(ObjectiveError) as caught:
        check_objectives(objectives, "sweep.objectives")
    assert str(caught.value).startswith("sweep.objectives: ") and expected in str(caught.value)
    if "not a metric" in expected:
        assert "the metrics are " + ", ".join(METRICS) in str(caught.value)
    with pytest.raises(ObjectiveError):
        pareto(pd.DataFrame({"stale_fraction_mean": [0.0]}), objectives)


def test_the_sweep_block_takes_objectives_and_checks_them_with_the_scenario(tmp_path):
    block = {"quorum.r": [1, 2], "objectives": ["availability", "read_latency_p99_ms"]}
    assert sweep_from_mapping(block).objectives == ("availability", "read_latency_p99_ms")
    assert sweep_from_mapping({"quorum.r": [1, 2]}).objectives is None
    with pytest.raises(SweepError, match=r"objectives: 'latency' is not a metric; the metrics are "):
        sweep_from_mapping({"quorum.r": [1, 2], "objectives": ["latency"]})
    scenario = tmp_path / "bad.yaml"
    scenario.write_text((SCENARIOS / "quickstart.yaml").read_text() + "\nsweep:\n  objectives: [p99]\n")
    with pytest.raises(Exception, match=r"sweep: objectives: 'p99' is not a metric"):
        load_scenario(scenario)


def sweep(*arguments: str, scenario=SCENARIOS / "quickstart.yaml"):
    return CliRunner().invoke(main, ["sweep", str(scenario), *SHORT, *arguments])


@pytest.mark.parametrize(
    ("arguments", "block", "expected"),
    [
        (
            ("--objective", "p99"),
            "",
            "--objective: 'p99' is not a metric; the metrics are read_latency_mean_ms",
        ),
        (("--objective", "stale_fraction", "--objective", "stale_fraction"), "", "listed twice"),
        ((), "  objectives: [nope]\n", "objectives: 'nope' is not a metric"),
    ],
)
def test_a_bad_objective_on_the_command_line_or_in_the_block_exits_non_zero(
    tmp_path, arguments, block, expected
):
    scenario = tmp_path / "grid.yaml"
    scenario.write_text(
        (SCENARIOS / "quickstart.yaml").read_text() + "\nsweep:\n  quorum.r: [1, 2]\n" + block
    )
    result = sweep(*arguments, "--out", str(tmp_path / "out"), scenario=scenario)
    assert result.exit_code == 1 and result.output.startswith("Error: "), result.output
    assert expected in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_the_objectives_are_recorded_printed_and_used_again_by_qsim_plot(tmp_path):
    scenario = tmp_path / "grid.yaml"
    block = "\nsweep:\n  quorum.r: [1, 2, 3]\n  objectives: [stale_fraction]\n"
    scenario.write_text((SCENARIOS / "quickstart.yaml").read_text() + block)
    options = ("--objective", "availability", "--objective", "messages_per_op")  # replace the block's
    result = sweep(*options, "--out", str(tmp_path / "out"), scenario=scenario)
    assert result.exit_code == 0, result.output
    state = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert state["objectives"] == ["availability", "messages_per_op"]
    header, columns, *rows = result.stdout.split("Pareto-optimal configurations")[1].splitlines()
    assert "over availability (max), messages_per_op (min):" in header
    assert columns.split()[:5] == ["quorum.r", "availability", "messages", "per", "op"]
    table = pd.read_parquet(tmp_path / "out" / "aggregate.parquet")
    assert len(rows) == pareto(table, state["objectives"]).sum()

    frontier = tmp_path / "out" / "plots" / "frontier.png"
    drawn = frontier.read_bytes()
    frontier.unlink()
    redrawn = CliRunner().invoke(main, ["plot", str(tmp_path / "out")])
    assert redrawn.exit_code == 0, redrawn.output
    assert frontier.read_bytes() == drawn  # drawn over the same, recorded, objectives

    state["objectives"] = ["availability", "bogus"]
    (tmp_path / "out" / "sweep.json").write_text(json.dumps(state))
    refused = CliRunner().invoke(main, ["plot", str(tmp_path / "out")])
    assert refused.exit_code == 1 and "sweep.json: objectives: 'bogus' is not a metric" in refused.output


@pytest.mark.slow  # 23 runs of 1.5 s
def test_on_choose_nrw_the_frontier_is_more_than_the_slowest_writer(tmp_path):
    scenario = tmp_path / "choose-nrw.yaml"
    scenario.write_text((SCENARIOS / "choose-nrw.yaml").read_text().replace("seeds: 3", "seeds: 1"))
    long_enough = ("--set", "duration=1500ms", "--set", "warmup=500ms")  # for ONE/ONE to read stale
    result = sweep(*long_enough, "--out", str(tmp_path / "out"), scenario=scenario)
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(tmp_path / "out" / "aggregate.parquet")
    assert len(table) == 23 and table["stale_fraction_mean"].max() > 0
    optimal = pareto(table)
    assert optimal.tolist() == brute_force(table, list(DEFAULT_OBJECTIVES))
    assert optimal.sum() > 1
    # some configuration with the fastest writes is optimal, and the slowest writer is not alone
    writes = table["write_latency_p99_ms_mean"]
    assert optimal[writes == writes.min()].any()
    text = pareto_table(table, ["quorum.n", "quorum.r", "quorum.w"])
    assert text.count("\n") == optimal.sum() + 1
    assert "read_latency_p99_ms (min), write_latency_p99_ms (min), stale_fraction (min)" in text
