"""The ``qsim`` command line: ``run``, ``validate`` and ``--help``, in-process and as a real subprocess."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner, Result

import qsim
from qsim.cli import main

from .conftest import DATA_FILES, PLOT_FILES

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
QUICKSTART = SCENARIOS / "quickstart.yaml"
SHORT = ("duration=300ms", "warmup=0")
SHORT_ARGS = tuple(itertools.chain.from_iterable(("--set", item) for item in SHORT))
RUN_FILES = {*DATA_FILES, *PLOT_FILES}
OPS_COLUMNS = {
    "op_id",
    "client",
    "kind",
    "key",
    "start_ms",
    "end_ms",
    "latency_ms",
    "ok",
    "error",
    "version",
    "stale",
    "k",
    "t_ms",
    "coordinator",
}
LATENCY_FIELDS = {"mean", "p50", "p90", "p99", "p999", "max"}
BAD_SCENARIO = """\
name: bad
duration: soon
cluster: {nodez: 3}
quorum: {n: 3, r: 5, w: 0}
workload:
  read_fraction: 1.5
  arrival: {type: poisson, rate: -3/s}
"""
BAD_PATHS = (
    "duration",
    "cluster.nodez",
    "quorum.r",
    "quorum.w",
    "workload.read_fraction",
    "workload.arrival.rate",
)


def invoke(*args) -> Result:
    """Run ``qsim ARGS`` in-process."""
    return CliRunner().invoke(main, [str(arg) for arg in args])


def run_short(out: Path, *args) -> Result:
    """Run the quickstart scenario for 300 ms of simulated time into ``out``."""
    return invoke("run", QUICKSTART, "--out", out, *SHORT_ARGS, *args)


def assert_clean_failure(result: Result, *fragments: str) -> None:
    """A failure reported as a message (a ClickException or sys.exit), not an uncaught exception."""
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[Result, Path]:
    """One short quickstart run with plots, shared by the tests that only read its folder."""
    out = tmp_path_factory.mktemp("cli") / "quick"
    result = run_short(out)
    assert result.exit_code == 0, result.output
    return result, out


@pytest.fixture(scope="module")
def seven(tmp_path_factory) -> Path:
    """The same short run with ``--seed 7``."""
    out = tmp_path_factory.mktemp("cli") / "seven"
    result = run_short(out, "--seed", "7", "--no-plots")
    assert result.exit_code == 0, result.output
    return out


# --- qsim run ------------------------------------------------------------------------------------


def test_run_writes_every_file(quick):
    _, out = quick
    assert files_under(out) == RUN_FILES


def test_run_prints_table_and_folder(quick):
    result, out = quick
    summary = read_json(out / "summary.json")
    lines = result.output.splitlines()
    for kind in ("reads", "writes"):
        row = next(line.split() for line in lines if line.startswith(kind))
        assert row[1:3] == [str(summary[kind]["count"]), str(summary[kind]["ok"])]
    assert lines[-1] == f"results: {out}"


def test_manifest_describes_the_run(quick):
    _, out = quick
    manifest = read_json(out / "manifest.json")
    expected_id = qsim.run_id(qsim.load_scenario(QUICKSTART, SHORT))
    assert manifest["run_id"] == expected_id
    assert manifest["seed"] == 1
    assert manifest["qsim_version"] == metadata.version("qsim")
    assert manifest["dependencies"]["simpy"] == metadata.version("simpy")
    assert all(isinstance(v, str) for v in manifest["dependencies"].values())
    assert manifest["wall_s"] > 0
    assert manifest["sim_ms"] >= 300
    assert manifest["events"] > 0
    assert manifest["error"] is None


def test_summary_has_documented_shape(quick):
    _, out = quick
    summary = read_json(out / "summary.json")
    for kind in ("reads", "writes"):
        part = summary[kind]
        assert {"count", "ok", "availability", "latency_ms"} <= part.keys()
        assert part["count"] > 0
        assert part["availability"] == part["ok"] / part["count"]
        assert part["latency_ms"].keys() >= LATENCY_FIELDS
    assert 0.9 < summary["availability"] <= 1
    staleness = summary["staleness"]
    assert {"reads_checked", "stale", "stale_fraction", "k", "t_visibility"} <= staleness.keys()
    assert staleness["t_visibility"]
    for point in staleness["t_visibility"]:
        assert {"t_ms", "p_consistent", "reads"} <= point.keys()
    assert set(summary["nodes"]) == {f"n{i}" for i in range(1, 6)}
    for node in summary["nodes"].values():
        assert node["messages"] > 0
        assert 0 < node["utilization"] < 1
    runtime = summary["runtime"]
    assert runtime["wall_s"] > 0
    assert runtime["sim_ms"] >= 300
    assert runtime["ops_per_s"] > 0


def test_ops_parquet_has_documented_columns(quick):
    _, out = quick
    ops = pd.read_parquet(out / "ops.parquet")
    assert set(ops.columns) >= OPS_COLUMNS
    assert len(ops) == read_json(out / "manifest.json")["ops"]
    assert set(ops["kind"]) == {"read", "write"}
    assert (ops["latency_ms"] == ops["end_ms"] - ops["start_ms"]).all()


def test_default_folder_is_results_name_run_id(tmp_path, monkeypatch):
    # CliRunner.isolated_filesystem is deprecated in Click 8.5; chdir into tmp_path does the same.
    monkeypatch.chdir(tmp_path)
    shutil.copy(QUICKSTART, "quickstart.yaml")
    result = invoke("run", "quickstart.yaml", "--quiet", "--no-plots", *SHORT_ARGS)
    assert result.exit_code == 0, result.output
    folder = Path("results", "quickstart", qsim.run_id(qsim.load_scenario(QUICKSTART, SHORT)))
    assert result.output == f"{folder}\n"
    assert (tmp_path / folder / "manifest.json").is_file()


def test_set_is_applied_and_changes_run_id(quick, tmp_path):
    result = run_short(tmp_path / "r1", "--set", "quorum.r=1", "--no-plots")
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load((tmp_path / "r1" / "scenario.resolved.yaml").read_text())
    summary = read_json(tmp_path / "r1" / "summary.json")
    assert resolved["quorum"]["r"] == 1
    assert summary["quorum"] == {"n": 3, "r": 1, "w": 2}
    assert summary["run_id"] != read_json(quick[1] / "summary.json")["run_id"]


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("quorum.r=9", ["quorum.r", "9 is larger than quorum.n (3)"]),
        ("quorumr", ["'quorumr'", "expected path=value"]),
        ("quorum.rr=1", ["quorum.rr", "unknown key", "did you mean 'r'"]),
        ("durration=1s", ["durration", "unknown key", "did you mean 'duration'"]),
    ],
)
def test_bad_set_fails_cleanly(tmp_path, override, fragments):
    result = run_short(tmp_path / "out", "--set", override)
    assert_clean_failure(result, *fragments)
    assert not (tmp_path / "out").exists()


def test_seed_is_recorded_and_changes_the_run(quick, seven):
    manifest = read_json(seven / "manifest.json")
    resolved = yaml.safe_load((seven / "scenario.resolved.yaml").read_text())
    assert manifest["seed"] == resolved["seed"] == 7
    assert manifest["run_id"] != read_json(quick[1] / "manifest.json")["run_id"]
    ops_7, ops_1 = pd.read_parquet(seven / "ops.parquet"), pd.read_parquet(quick[1] / "ops.parquet")
    assert not ops_7.equals(ops_1)


def test_same_seed_gives_identical_ops(seven, tmp_path):
    result = run_short(tmp_path / "again", "--seed", "7", "--no-plots")
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "again" / "ops.parquet"), pd.read_parquet(seven / "ops.parquet")
    )


def test_negative_seed_fails_cleanly(tmp_path):
    result = run_short(tmp_path / "out", "--seed", "-3", "--no-plots")
    assert_clean_failure(result, "seed")


def test_quiet_prints_only_the_folder(tmp_path):
    result = run_short(tmp_path / "out", "--quiet", "--no-plots")
    assert result.exit_code == 0, result.output
    assert result.output == f"{tmp_path / 'out'}\n"


def test_no_plots_writes_no_plots_folder(tmp_path):
    result = run_short(tmp_path / "out", "--no-plots")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "out" / "plots").exists()
    assert files_under(tmp_path / "out") == {f for f in RUN_FILES if not f.startswith("plots/")}


def test_bad_scenario_file_reports_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SCENARIO)
    result = invoke("run", bad, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert_clean_failure(result, f"{len(BAD_PATHS)} problems", *(f"- {path}:" for path in BAD_PATHS))
    assert not (tmp_path / "out").exists()


def test_missing_scenario_file_fails_cleanly(tmp_path):
    result = invoke("run", tmp_path / "nope.yaml", "--out", tmp_path / "out")
    assert_clean_failure(result, "nope.yaml", "cannot read the scenario file")


def test_model_failure_still_writes_manifest(tmp_path, failing_write):
    result = run_short(tmp_path / "out", "--no-plots")
    assert_clean_failure(result, "the run failed", "RuntimeError: injected failure in Replica._write")
    manifest = read_json(tmp_path / "out" / "manifest.json")
    assert manifest["error"].startswith("RuntimeError")
    assert manifest["ops"] > 0


# --- qsim validate -------------------------------------------------------------------------------


def test_validate_shipped_scenarios():
    paths = sorted(SCENARIOS.glob("*.yaml"))
    result = invoke("validate", *paths)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"{path}: OK" for path in paths]  # warnings go to stderr


def test_validate_reports_good_files_beside_a_bad_one(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SCENARIO)
    good = sorted(SCENARIOS.glob("*.yaml"))
    result = invoke("validate", good[0], bad, *good[1:])
    assert result.exit_code == 1
    assert_clean_failure(result, *(f"{path}: OK" for path in good), *(f"- {p}:" for p in BAD_PATHS))
    assert f"{bad}: OK" not in result.output


# --- help and the real command -------------------------------------------------------------------


@pytest.mark.parametrize("name", [None, *sorted(main.commands)])
def test_every_command_has_help(name):
    command = main if name is None else main.commands[name]
    assert command.help and command.help.strip()
    result = invoke(*([] if name is None else [name]), "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage:")
    assert " ".join(command.help.split()) in " ".join(result.output.split())


def test_version_option():
    result = invoke("--version")
    assert result.exit_code == 0
    assert metadata.version("qsim") in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], "Usage: qsim"),
        (["validate", "scenarios/quickstart.yaml"], "scenarios/quickstart.yaml: OK"),
    ],
    ids=["help", "validate"],
)
def test_python_m_qsim(args, expected):
    done = subprocess.run(
        [sys.executable, "-m", "qsim", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout
