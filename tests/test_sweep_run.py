"""Running sweeps: planning points, executors, failed points, resuming, and the sweep tables."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import qsim
from qsim.cli import main
from qsim.engine import simulate
from qsim.scenario import load_scenario, read_scenario_data
from qsim.sweep import SweepError, sweep_from_mapping
from qsim.sweep.aggregate import (
    LEADER_METRICS,
    METRICS,
    QUORUM_SYSTEM_METRICS,
    aggregate,
    headline,
    pareto,
    t_visibility_at,
)
from qsim.sweep.run import PlannedRun, plan, run_sweep
from tests.conftest import ROOT, SCENARIOS

SCENARIO = SCENARIOS / "quickstart.yaml"
SHORT = ("duration=200ms", "warmup=0")


def plan_quickstart(block: dict, *overrides: str) -> list[PlannedRun]:
    """Plan ``block`` over the quickstart scenario, shortened to 200 ms."""
    data = read_scenario_data(SCENARIO, [*SHORT, *overrides])
    return plan(data, sweep_from_mapping(block), base_dir=SCENARIO.parent)


def read_tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(out / "runs.parquet"), pd.read_parquet(out / "aggregate.parquet")


def point_files(out: Path) -> dict[str, int]:
    """Each points file by name, with its modification time (ns)."""
    return {path.name: path.stat().st_mtime_ns for path in (out / "points").glob("*.json")}


# --- planning ----------------------------------------------------------------------------------


def test_factors_apply_to_the_raw_base_so_a_quorum_alias_follows_n():
    planned = plan_quickstart({"quorum.n": [3, 5]})
    assert read_scenario_data(SCENARIO)["quorum"]["r"] == "quorum"
    assert [(p.scenario.quorum.n, p.scenario.quorum.r, p.scenario.quorum.w) for p in planned] == [
        (3, 2, 2),
        (5, 3, 3),
    ]


def test_a_planned_run_is_the_run_of_its_scenario_without_the_sweep_block():
    data = read_scenario_data(SCENARIO, SHORT) | {"sweep": {"quorum.n": [3, 5], "seeds": [4, 7]}}
    runs = plan(data, sweep_from_mapping(data["sweep"]), base_dir=SCENARIO.parent)
    assert [(p.point.factors["quorum.n"], p.scenario.seed) for p in runs] == [(3, 4), (3, 7), (5, 4), (5, 7)]
    assert all(p.scenario.sweep is None and p.run_id == qsim.run_id(p.scenario) for p in runs)
    assert len({p.run_id for p in runs}) == 4
    single = load_scenario(SCENARIO, [*SHORT, "quorum.n=5", "seed=7"])
    assert runs[3].run_id == qsim.run_id(single)


def test_without_seeds_each_point_keeps_the_scenarios_seed():
    assert [p.scenario.seed for p in plan_quickstart({"quorum.r": [1, 2]})] == [1, 1]


def test_invalid_points_are_reported_together_with_their_run_and_field():
    with pytest.raises(SweepError) as caught:
        plan_quickstart({"quorum.r": [1, 4, 5], "quorum.w": [1, 9]})
    problems = caught.value.problems
    for run, r, w in ((1, 1, 9), (2, 4, 1), (3, 4, 9), (4, 5, 1), (5, 5, 9)):
        prefix = f"run {run} (r={r}, w={w}): "
        assert (prefix + f"quorum.r: {r} is larger than quorum.n (3)" in problems) == (r > 3), prefix
        assert (prefix + f"quorum.w: {w} is larger than quorum.n (3)" in problems) == (w > 3), prefix
    assert not any(line.startswith("run 0 ") for line in problems)
    assert len(plan_quickstart({"quorum.n": [3], "quorum.r": [1, 4], "where": "r <= n"})) == 1


def test_the_problem_count_counts_only_the_problems():
    with pytest.raises(SweepError) as caught:
        plan_quickstart({"quorum.r": [4, 5]})
    assert str(caught.value).startswith("2 problems in the sweep:")


# --- executors ---------------------------------------------------------------------------------

GRID = {"quorum.r": [1, 2, 3], "quorum.w": [1], "seeds": 2}


@pytest.fixture(scope="module")
def serial_sweep(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tables of a 6-point sweep run serially: the reference for every other executor."""
    out = tmp_path_factory.mktemp("serial")
    run_sweep(plan_quickstart(GRID), out, executor_name="serial")
    return read_tables(out)


@pytest.mark.parametrize(("name", "workers"), [("process", 1), ("process", 2), ("dask", 2)])
def test_every_executor_and_worker_count_writes_identical_tables(serial_sweep, tmp_path, name, workers):
    if name == "dask":
        pytest.importorskip("dask.distributed")
    run_sweep(plan_quickstart(GRID), tmp_path, executor_name=name, workers=workers)
    runs, table = read_tables(tmp_path)
    pd.testing.assert_frame_equal(runs, serial_sweep[0])
    pd.testing.assert_frame_equal(table, serial_sweep[1])
    assert runs["point"].tolist() == list(range(6)) and runs["error"].isna().all()
    assert runs.groupby("quorum.r")["read_latency_p99_ms"].mean().is_monotonic_increasing  # r took effect


# --- failed points -----------------------------------------------------------------------------


def samples_file(folder: Path) -> tuple[Path, dict]:
    """A CSV of link latencies and an empirical distribution that reads it when a run starts."""
    path = folder / "latency.csv"
    path.write_text("ms\n0.8\n1.0\n1.5\n")
    return path, {"dist": "empirical", "file": str(path), "column": "ms"}


def test_a_point_that_fails_is_recorded_and_rerun_on_resume(tmp_path):
    path, empirical = samples_file(tmp_path)
    planned = plan_quickstart({"network.latency": ["1ms", empirical, "2ms"]})
    path.unlink()  # it existed when the points were validated; now their run fails
    calls = []

    def record(*progress):
        calls.append(progress)

    result = run_sweep(planned, tmp_path / "out", executor_name="serial", progress=record)
    assert calls == [(1, 3, 0), (2, 3, 1), (3, 3, 1)]
    runs, table = read_tables(tmp_path / "out")
    assert "cannot read empirical samples file" in runs.loc[1, "error"]
    assert runs.loc[[0, 2], "error"].isna().all()
    # Leader and quorum-system metrics are None for a leaderless N/R/W run.
    leaderless = [metric for metric in METRICS if metric not in (*LEADER_METRICS, *QUORUM_SYSTEM_METRICS)]
    assert runs.loc[1, list(METRICS)].isna().all() and runs.loc[[0, 2], leaderless].notna().all().all()
    assert table["runs"].tolist() == [1, 1, 1] and table["failed"].tolist() == [0, 1, 0]
    assert math.isnan(table.loc[1, "read_latency_p99_ms_mean"])
    pd.testing.assert_frame_equal(runs, result.runs)
    state = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert (state["status"], state["done"], state["failed"]) == ("complete", 3, 1)

    before = point_files(tmp_path / "out")
    calls.clear()
    run_sweep(planned, tmp_path / "out", executor_name="serial", resume=True, progress=record)
    assert calls == [(3, 3, 1)]  # only the failed point ran again, and failed again

    samples_file(tmp_path)
    calls.clear()
    again = run_sweep(planned, tmp_path / "out", executor_name="serial", resume=True, progress=record)
    assert calls == [(3, 3, 0)]
    assert again.runs["error"].isna().all() and again.aggregate["failed"].tolist() == [0, 0, 0]
    after = point_files(tmp_path / "out")
    assert after.keys() == before.keys()
    assert [name for name in before if after[name] != before[name]] == [f"{planned[1].run_id}.json"]


def test_run_sweep_refuses_a_folder_that_is_not_a_sweeps(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine\n")
    with pytest.raises(qsim.QsimError, match=r"notes\.txt"):
        run_sweep(plan_quickstart({"quorum.r": [1]}), tmp_path / "out", executor_name="serial")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.txt"]


def test_resume_reruns_a_damaged_point_and_warns_through_the_callback(tmp_path):
    planned = plan_quickstart({"quorum.r": [1, 2]})
    run_sweep(planned, tmp_path / "out", executor_name="serial")
    damaged = tmp_path / "out" / "points" / f"{planned[0].run_id}.json"
    row = json.loads(damaged.read_text())
    damaged.write_text("")
    warnings, calls = [], []
    result = run_sweep(planned, tmp_path / "out", executor_name="serial", resume=True,
                       progress=lambda *c: calls.append(c), warn=warnings.append)  # fmt: skip
    assert len(warnings) == 1 and warnings[0].startswith(f"{damaged}: ") and "run again" in warnings[0]
    assert calls == [(2, 2, 0)]  # only the damaged point ran
    assert json.loads(damaged.read_text()) == row and result.runs["error"].isna().all()


def test_a_sweep_whose_every_point_fails_still_writes_its_tables(tmp_path):
    path, empirical = samples_file(tmp_path)
    planned = plan_quickstart({"network.latency": [empirical]})
    path.unlink()
    result = run_sweep(planned, tmp_path / "out", executor_name="serial")
    assert result.runs["error"].notna().all() and result.aggregate["failed"].tolist() == [1]


def test_the_columns_of_the_runs_table_do_not_depend_on_which_points_failed(tmp_path):
    path, empirical = samples_file(tmp_path)
    planned = plan_quickstart({"network.latency": [empirical, "1ms"]})
    path.unlink()
    failed = run_sweep(planned, tmp_path / "out", executor_name="serial").runs
    samples_file(tmp_path)
    fixed = run_sweep(planned, tmp_path / "out", executor_name="serial", resume=True).runs
    assert failed.columns.tolist() == fixed.columns.tolist()


def test_a_factor_may_mix_counts_and_aliases(tmp_path):
    result = run_sweep(plan_quickstart({"quorum.r": [1, "quorum"]}), tmp_path, executor_name="serial")
    assert result.runs["error"].isna().all()
    # A parquet column has one type: a factor mixing numbers and text is stored as text.
    assert pd.read_parquet(tmp_path / "runs.parquet")["quorum.r"].tolist() == ["1", "quorum"]


# --- resuming an interrupted sweep -------------------------------------------------------------

# 12 points of about 0.2 s each; the folder comes with --out
GRID_12 = ("--factor", "quorum.r=1,2,3", "--factor", "quorum.w=1,2", "--seeds", "2")
SLOW_SWEEP = ("sweep", str(SCENARIO), *GRID_12, "--set", "duration=5s", "--set", "warmup=0",
              "--executor", "serial", "--quiet", "--no-plots")  # fmt: skip


def start_sweep(out: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "qsim", *SLOW_SWEEP, "--out", str(out), *extra]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def interrupt_after(process: subprocess.Popen, out: Path, points: int, signum: int) -> str:
    """Send ``signum`` to the sweep once ``points`` points files exist; return what it wrote to stderr."""
    deadline = time.monotonic() + 60
    while len(point_files(out) if (out / "points").is_dir() else ()) < points:
        assert process.poll() is None, f"the sweep ended before {points} points: {process.communicate()}"
        assert time.monotonic() < deadline, "the sweep is too slow"
        time.sleep(0.01)
    process.send_signal(signum)
    return process.communicate(timeout=60)[1]


def temporaries(out: Path) -> set[Path]:
    return set(out.rglob(".*"))


def test_an_interrupted_sweep_resumes_without_running_a_point_twice(tmp_path):
    out = tmp_path / "interrupted"
    process = start_sweep(out)
    interrupt_after(process, out, 3, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL
    killed = point_files(out)
    assert 3 <= len(killed) < 12
    for path in (out / "points").glob("*.json"):
        json.loads(path.read_text())  # a file has its final name only once complete
    left = temporaries(out)  # a write cut by SIGKILL: never read, never counted, removed on resume
    assert all(path.name.endswith(".tmp") for path in left)

    process = start_sweep(out, "--resume")
    stderr = interrupt_after(process, out, len(killed) + 3, signal.SIGINT)
    assert process.returncode == 130
    assert f"done in {out}; rerun with --resume" in stderr and "Traceback" not in stderr
    assert temporaries(out) == set()
    assert json.loads((out / "sweep.json").read_text())["status"] == "interrupted"
    stopped = point_files(out)
    assert {name: stopped[name] for name in killed} == killed and len(stopped) < 12

    resumed = CliRunner().invoke(main, [*SLOW_SWEEP, "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    done = point_files(out)
    assert {name: done[name] for name in stopped} == stopped and len(done) == 12
    state = json.loads((out / "sweep.json").read_text())
    assert (state["status"], state["skipped"], state["done"]) == ("complete", len(stopped), 12)

    whole = CliRunner().invoke(main, [*SLOW_SWEEP, "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    for mine, reference in zip(read_tables(out), read_tables(tmp_path / "whole"), strict=True):
        pd.testing.assert_frame_equal(mine, reference)


# --- tables ------------------------------------------------------------------------------------


def runs_table(rows: list[tuple[int, str | None, float]]) -> pd.DataFrame:
    """A runs table with one factor, quorum.r, and every metric set to the row's value."""
    frame = pd.DataFrame(
        [{"quorum.r": r, "error": error, **dict.fromkeys(METRICS, v)} for r, error, v in rows]
    )
    frame["error"] = frame["error"].astype("string")
    return frame


def test_aggregate_gives_the_mean_and_the_student_t_interval_over_the_runs_without_error():
    rows = [(2, None, 1.0), (1, None, 1.0), (2, None, 2.0), (1, None, 3.0), (2, "boom", 100.0)]
    rows += [(2, None, 3.0), (3, None, 5.0), (4, "boom", math.nan)]
    table = aggregate(runs_table(rows), ["quorum.r"])
    assert table.columns[:3].tolist() == ["quorum.r", "runs", "failed"]
    assert table["quorum.r"].tolist() == [2, 1, 3, 4]  # in order of first appearance
    assert table["runs"].tolist() == [4, 2, 1, 1] and table["failed"].tolist() == [1, 0, 0, 1]
    for metric in METRICS:
        assert table[f"{metric}_mean"].tolist()[:3] == [2.0, 2.0, 5.0]
        # t(0.975, df) * sd / sqrt(n): sd = 1 for 1, 2, 3 and sqrt(2) for 1, 3
        assert table[f"{metric}_ci95"].iloc[0] == pytest.approx(4.303 / math.sqrt(3))
        assert table[f"{metric}_ci95"].iloc[1] == pytest.approx(12.706)
        assert table[[f"{metric}_mean", f"{metric}_ci95"]].iloc[3].isna().all()
        assert math.isnan(table[f"{metric}_ci95"].iloc[2])


@pytest.mark.parametrize(("seeds", "t"), [(2, 12.706), (3, 4.303), (5, 2.776), (10, 2.262), (31, 2.042)])
def test_the_interval_uses_the_t_quantile_of_its_degrees_of_freedom(seeds, t):
    values = [float(v) for v in range(seeds)]
    table = aggregate(runs_table([(1, None, v) for v in values]), ["quorum.r"])
    sd = pd.Series(values).std(ddof=1)
    assert table["availability_ci95"].iloc[0] == pytest.approx(t * sd / math.sqrt(seeds))


def test_aggregate_without_factors_is_one_configuration():
    table = aggregate(runs_table([(1, None, 1.0), (2, None, 3.0)]).drop(columns="quorum.r"), [])
    assert table[["runs", "failed", "k_mean_mean"]].values.tolist() == [[2, 0, 2.0]]


def test_pareto_marks_exactly_the_rows_no_other_row_beats():
    x, y = "read_latency_p99_ms", "stale_fraction"
    points = [(1, 3), (2, 2), (3, 1), (1, 3), (2, 2.5), (4, 1), (math.nan, 0), (0.5, math.nan)]
    table = pd.DataFrame(
        points, columns=[f"{x}_mean", f"{y}_mean"], index=[f"c{i}" for i in range(len(points))]
    )
    optimal = pareto(table, [x, y])
    # equal rows (c0 and c3) do not beat each other; rows with a NaN are never optimal
    assert optimal.to_dict() == {"c0": True, "c1": True, "c2": True, "c3": True, "c4": False, "c5": False,
                                 "c6": False, "c7": False}  # fmt: skip
    assert pareto(table, [y, x]).tolist() == optimal.tolist()
    assert pareto(table.iloc[[4]], [x, y]).tolist() == [True]


def test_t_visibility_at_is_where_the_curve_stays_at_or_above_the_level():
    def curve(*pairs):
        return [{"t_ms": t, "p_consistent": p} for t, p in pairs]

    points = curve((0, 0.5), (1, 0.995), (2, 0.98), (5, 0.999), (10, 1.0))
    assert t_visibility_at(points, 0.99) == 5
    assert t_visibility_at(points, 0.9) == 1
    assert t_visibility_at(points, 0.5) == 0
    assert t_visibility_at(points, 0.9995) == 10
    assert t_visibility_at(curve((0, 1.0), (1, 0.9)), 0.99) is None
    assert t_visibility_at([], 0.99) is None


def test_t_visibility_at_is_0_when_every_point_meets_the_level():
    # No stale read anywhere: where the first non-empty bin starts (0.2 or 0.5 ms) is no delay.
    for first in (0.2, 0.5):
        points = [{"t_ms": t, "t_hi_ms": t * 2, "p_consistent": 1.0} for t in (first, 1.0, 5.0)]
        assert t_visibility_at(points, 0.99) == 0
        assert t_visibility_at(points, 0.999) == 0


def test_a_sweep_row_holds_the_headline_of_the_same_single_run(tmp_path):
    planned = plan_quickstart({"quorum.r": [1], "seeds": [3]})
    row = run_sweep(planned, tmp_path, executor_name="serial").runs.iloc[0]
    summary = simulate(load_scenario(SCENARIO, [*SHORT, "quorum.r=1", "seed=3"])).summary
    assert row["run_id"] == planned[0].run_id and row["seed"] == 3
    for kind in ("read", "write"):
        for stat in ("mean", "p50", "p99", "p999"):
            assert row[f"{kind}_latency_{stat}_ms"] == summary[f"{kind}s"]["latency_ms"][stat]
        assert row[f"{kind}_availability"] == summary[f"{kind}s"]["availability"]
        percentiles = summary[f"{kind}s"]["latency_ms"]["percentiles"]  # for the sweep's percentile plot
        assert json.loads(row[f"{kind}_latency_percentiles"]) == percentiles and len(percentiles) > 10
    staleness = summary["staleness"]
    assert row["availability"] == summary["availability"]
    assert (row["stale_fraction"], row["k_mean"]) == (staleness["stale_fraction"], staleness["k_mean"])
    assert row["reads_checked"] == staleness["reads_checked"] > 0
    assert json.loads(row["t_visibility"]) == staleness["t_visibility"]
    assert row["t_visibility_99_ms"] == t_visibility_at(staleness["t_visibility"], 0.99)
    messages = sum(kind["sent"] for kind in summary["messages"].values())
    assert (row["messages"], row["ops"]) == (messages, summary["runtime"]["ops"])
    assert row["messages_per_op"] == messages / summary["runtime"]["ops"]
    assert row["lost_writes"] == summary["durability"]["lost_writes"]
    for key, value in headline(summary).items():  # and every other column: None is NaN in a table
        assert row[key] == value or (value is None and pd.isna(row[key])), key
