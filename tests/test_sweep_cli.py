"""The `qsim sweep` command, driven in-process: its files, its two forms, its options and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from qsim.analysis import load_sweep
from qsim.cli import main
from qsim.sweep.aggregate import DEFAULT_OBJECTIVES, METRICS, pareto
from tests.conftest import SCENARIOS

SCENARIO = SCENARIOS / "quickstart.yaml"
SHORT = ("--set", "duration=200ms", "--set", "warmup=0", "--executor", "serial")
HEATMAPS = (
    "heatmap_stale_fraction.png",
    "heatmap_read_latency_p99_ms.png",
    "heatmap_write_latency_p99_ms.png",
    "heatmap_availability.png",
)


def sweep(*arguments: str, scenario: Path = SCENARIO):
    """Invoke ``qsim sweep`` on the shortened scenario; return the click result."""
    return CliRunner().invoke(main, ["sweep", str(scenario), *SHORT, *arguments])


def test_a_sweep_writes_its_tables_points_and_plots_and_prints_the_pareto_table(tmp_path):
    grid = ("--factor", "quorum.n=3", "--factor", "quorum.r=1,2", "--factor", "quorum.w=1,2", "--seeds", "2")
    result = sweep(*grid, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    tables = {f"{name}.{ext}" for name in ("runs", "aggregate") for ext in ("parquet", "csv")}
    written = {*tables, "sweep.json", "scenario.yaml", "points", "plots"}
    assert {path.name for path in tmp_path.iterdir()} == written
    assert {path.name for path in (tmp_path / "plots").iterdir()} == {
        "frontier.png",
        "frontier.svg",
        "t_visibility.png",
        "latency_percentiles.png",
        *HEATMAPS,
    }
    state = json.loads((tmp_path / "sweep.json").read_text())
    assert (state["status"], state["points"], state["done"], state["failed"]) == ("complete", 8, 8, 0)

    runs = pd.read_parquet(tmp_path / "runs.parquet")
    factors = ["quorum.n", "quorum.r", "quorum.w"]
    assert {*factors, "point", "seed", "run_id", "error", *METRICS} <= set(runs.columns)
    expected = [(3, r, w, seed) for r in (1, 2) for w in (1, 2) for seed in (0, 1)]
    assert list(runs[[*factors, "seed"]].itertuples(index=False, name=None)) == expected
    assert runs["point"].tolist() == list(range(8)) and runs["error"].isna().all()
    assert sorted(p.stem for p in (tmp_path / "points").glob("*.json")) == sorted(runs["run_id"])
    assert pd.read_csv(tmp_path / "runs.csv")["run_id"].tolist() == runs["run_id"].tolist()

    table = pd.read_parquet(tmp_path / "aggregate.parquet")
    assert table[factors].values.tolist() == [[3, 1, 1], [3, 1, 2], [3, 2, 1], [3, 2, 2]]
    assert table["runs"].tolist() == [2] * 4
    assert pd.read_csv(tmp_path / "aggregate.csv")[factors].values.tolist() == table[factors].values.tolist()

    assert f"8 runs, 0 failed; results: {tmp_path}" in result.stdout
    shown = result.stdout.split("Pareto-optimal configurations")[1].splitlines()[2:]
    assert len(shown) == pareto(table).sum() >= 1
    assert state["objectives"] == ["read_latency_p99_ms", "write_latency_p99_ms", "stale_fraction"]


def test_an_r_by_w_sweep_at_fixed_n_has_heatmaps_and_one_factor_has_none(tmp_path):
    result = sweep("--factor", "quorum.r=1,2", "--factor", "quorum.w=1,2", "--out", str(tmp_path / "rw"))
    assert result.exit_code == 0, result.output
    assert {*HEATMAPS} <= {p.name for p in (tmp_path / "rw" / "plots").iterdir()}
    result = sweep("--factor", "quorum.r=1,2", "--out", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "r" / "plots").iterdir()) == [
        "frontier.png",
        "frontier.svg",
        "latency_percentiles.png",
        "t_visibility.png",
    ]


def test_the_yaml_block_and_the_same_options_give_identical_runs(tmp_path):
    block = '\nsweep:\n  quorum.r: [1, 2]\n  quorum.w: "1..r"\n  where: "r + w > 2"\n  seeds: 2\n'
    scenario = tmp_path / "grid.yaml"
    scenario.write_text(SCENARIO.read_text() + block)
    from_yaml = sweep("--out", str(tmp_path / "yaml"), "--no-plots", scenario=scenario)
    options = ("--factor", "quorum.r=1,2", "--factor", "quorum.w=1..r", "--where", "r+w>2", "--seeds", "2")
    from_cli = sweep(*options, "--out", str(tmp_path / "cli"), "--no-plots", scenario=scenario)
    assert from_yaml.exit_code == from_cli.exit_code == 0, from_yaml.output + from_cli.output
    runs = pd.read_parquet(tmp_path / "yaml" / "runs.parquet")
    pd.testing.assert_frame_equal(runs, pd.read_parquet(tmp_path / "cli" / "runs.parquet"))
    assert runs[["quorum.r", "quorum.w", "seed"]].values.tolist() == [
        [2, 1, 0],
        [2, 1, 1],
        [2, 2, 0],
        [2, 2, 1],
    ]


def test_a_dry_run_lists_the_runs_and_writes_nothing(tmp_path):
    result = sweep("--factor", "quorum.r=1,2", "--seeds", "2", "--dry-run", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert [line.split() for line in result.stdout.splitlines()] == [
        ["quorum.r", "seeds"],
        ["1", "0,", "1"],
        ["2", "0,", "1"],
        ["4", "runs", "(2", "configurations", "x", "2", "seeds)"],
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("--factor", "quorum.rr=1,2"), "quorum.rr: unknown key; did you mean 'r'?"),
        (("--factor", "quorum.r=1,2", "--where", "__import__('os')"), "where: a call to '__import__'"),
        (("--factor", "quorum.r=1..m"), "'m' uses unknown name m"),
        (("--factor", "quorum.r=1,2", "--where", "r > 5"), "no runs: the filter 'r > 5' removed every"),
        (("--factor", "quorum.r"), "--factor 'quorum.r': no '='"),
    ],
)
def test_a_bad_sweep_exits_with_a_clean_message(tmp_path, arguments, expected):
    result = sweep(*arguments, "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output.startswith("Error: ") and expected in result.output, result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_quiet_prints_only_the_folder_and_no_plots_draws_nothing(tmp_path):
    result = sweep("--factor", "quorum.r=1,2", "--out", str(tmp_path), "--quiet", "--no-plots")
    assert result.exit_code == 0, result.output
    assert (result.stdout, result.stderr) == (f"{tmp_path}\n", "")
    assert not (tmp_path / "plots").exists() and not list(tmp_path.rglob("*.png"))
    assert len(pd.read_parquet(tmp_path / "runs.parquet")) == 2


def test_keep_runs_writes_each_runs_folder(tmp_path):
    result = sweep("--factor", "quorum.r=1,2", "--out", str(tmp_path), "--keep-runs", "--quiet")
    assert result.exit_code == 0, result.output
    runs = pd.read_parquet(tmp_path / "runs.parquet")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(runs["run_id"])
    for run_id in runs["run_id"]:
        manifest = json.loads((tmp_path / "runs" / run_id / "manifest.json").read_text())
        assert (manifest["run_id"], manifest["error"]) == (run_id, None)
        assert (tmp_path / "runs" / run_id / "ops.parquet").is_file()


def test_no_plots_also_leaves_out_the_plots_of_kept_runs(tmp_path):
    result = sweep("--factor", "quorum.r=1", "--out", str(tmp_path), "--keep-runs", "--no-plots", "--quiet")
    assert result.exit_code == 0, result.output
    assert list(tmp_path.rglob("*.png")) == []


def test_the_help_lists_every_option():
    result = CliRunner().invoke(main, ["sweep", "--help"])
    assert result.exit_code == 0
    grid = ["--factor", "--where", "--zip", "--seeds", "--set"]
    running = ["--executor", "--workers", "--scheduler", "--out", "--resume", "--keep-runs", "--dry-run"]
    assert [
        option
        for option in [*grid, *running, "--no-plots", "--quiet", "--objective"]
        if option not in result.output
    ] == []


@pytest.mark.parametrize(
    ("arguments", "expected_note"),
    [
        (("--set", "warmup=10s"), None),  # every run fails: nothing to leave out
        (("--factor", "warmup=1s,10s"), "warmup=10s fails in every configuration"),
        (("--factor", "quorum.n=3,5", "--factor", "duration=400ms,5s"), "duration=400ms fails in every"),
    ],
)
def test_warmup_not_shorter_than_duration_ends_without_the_where_hint(arguments, expected_note):
    result = CliRunner().invoke(main, ["sweep", str(SCENARIOS / "choose-nrw.yaml"), *arguments, "--dry-run"])
    assert result.exit_code == 1, result.output
    assert "ms is not shorter than duration" in result.output
    assert "where" not in result.output, result.output
    last = result.output.splitlines()[-1]
    assert last.startswith(expected_note) if expected_note else last.startswith("  - every run: warmup:")


def test_resume_says_how_many_points_are_done_and_how_many_it_runs(tmp_path):
    grid = ("--factor", "quorum.r=1,2", "--seeds", "2", "--out", str(tmp_path), "--no-plots")
    assert sweep(*grid).exit_code == 0
    points = sorted((tmp_path / "points").glob("*.json"))
    points[0].unlink()
    result = sweep(*grid, "--resume")
    assert result.exit_code == 0, result.output
    assert f"resuming: 3 of 4 points already done in {tmp_path}; running the other 1\n" in result.stderr
    assert "resuming" not in result.stdout
    again = sweep(*grid, "--resume")
    assert f"resuming: all 4 points already done in {tmp_path}; nothing to run\n" in again.stderr
    quiet = sweep(*grid, "--resume", "--quiet")
    assert (quiet.stdout, quiet.stderr) == (f"{tmp_path}\n", "")


def test_resume_counts_failed_points_among_those_it_runs_again(tmp_path):
    grid = ("--factor", "quorum.r=1,2", "--out", str(tmp_path), "--no-plots")
    assert sweep(*grid).exit_code == 0
    point = next((tmp_path / "points").glob("*.json"))
    point.write_text(json.dumps(json.loads(point.read_text()) | {"error": "RuntimeError: boom"}))
    result = sweep(*grid, "--resume")
    assert result.exit_code == 0, result.output
    assert "resuming: 1 of 2 points already done" in result.stderr
    assert "running the other 1, of which 1 failed before\n" in result.stderr


# --- what a sweep folder keeps of what was asked ---------------------------------------------------

GRID_BLOCK = """
sweep:
  quorum.n: 3..4
  quorum.r: [1, 2]
  quorum.w: [2, 1]
  zip: [[quorum.r, quorum.w]]
  where: "n == 3 or r == 2"
  seeds: 2
"""


def grid_scenario(tmp_path: Path) -> Path:
    """quickstart with a sweep block that has a range, a zip and a filter (3 configurations, 6 runs)."""
    path = tmp_path / "grid.yaml"
    path.write_text(SCENARIO.read_text() + GRID_BLOCK)
    return path


def test_a_sweep_keeps_its_grid_as_written_and_its_base_scenario_as_given(tmp_path):
    scenario = grid_scenario(tmp_path)
    result = sweep("--out", str(tmp_path / "out"), "--no-plots", scenario=scenario)
    assert result.exit_code == 0, result.output
    state = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert state["grid"] == yaml.safe_load(GRID_BLOCK)["sweep"]  # "3..4" as written, not 3, 4
    kept = (tmp_path / "out" / "scenario.yaml").read_text()
    base = {k: v for k, v in yaml.safe_load(scenario.read_text()).items() if k != "sweep"}
    assert yaml.safe_load(kept) == base | {"duration": "200ms", "warmup": 0}  # with the --set overrides
    assert f"# from {json.dumps(str(scenario))}" in kept and '# with --set "duration=200ms"' in kept

    again = sweep("--out", str(tmp_path / "out"), "--no-plots", "--resume", scenario=scenario)
    assert again.exit_code == 0, again.output  # a folder with scenario.yaml is still a sweep's
    assert "all 6 points already done" in again.stderr
    assert len(load_sweep(tmp_path / "out").runs) == 6


def test_a_sweep_from_options_keeps_the_options_as_written(tmp_path):
    options = ("--factor", "quorum.r=1,2", "--factor", "quorum.w=1..r", "--where", "r+w>2", "--seeds", "2")
    out = tmp_path / "out"
    result = sweep(*options, "--objective", "availability", "--out", str(out), "--no-plots",
                   scenario=grid_scenario(tmp_path))  # fmt: skip
    assert result.exit_code == 0, result.output
    grid = json.loads((out / "sweep.json").read_text())["grid"]
    assert grid == {"quorum.r": "1,2", "quorum.w": "1..r", "where": "r+w>2", "seeds": "2",
                    "objectives": ["availability"]}  # fmt: skip
    assert "sweep" not in yaml.safe_load((out / "scenario.yaml").read_text())  # the options replaced it


def test_a_sweep_without_a_default_grid_keeps_no_objectives_it_was_not_given(tmp_path):
    result = sweep("--factor", "quorum.r=1,2", "--out", str(tmp_path), "--no-plots")
    assert result.exit_code == 0, result.output
    state = json.loads((tmp_path / "sweep.json").read_text())
    assert state["grid"] == {"quorum.r": "1,2"} and state["objectives"] == list(DEFAULT_OBJECTIVES)
