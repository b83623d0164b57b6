"""The analysis commands through the real CLI: the Monte Carlo engine, the oracle, report, tracing."""

from __future__ import annotations

import json

from click.testing import CliRunner

from qsim.cli import main

from .conftest import SCENARIOS

PROBE = str(SCENARIOS / "pbs-probe.yaml")
FEW_TRIALS = ("--set", "workload.arrival.trials=300")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_the_monte_carlo_engine_writes_a_normal_run_folder(tmp_path):
    result = invoke("run", PROBE, "--engine", "montecarlo", "--out", str(tmp_path / "mc"), *FEW_TRIALS)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "mc" / "manifest.json").read_text())
    summary = json.loads((tmp_path / "mc" / "summary.json").read_text())
    assert manifest["engine"] == "montecarlo" and manifest["error"] is None
    assert [p["t_ms"] for p in summary["staleness"]["t_visibility"]] == [0, 1, 2, 5, 10, 20]
    assert summary["reads"]["count"] == 6 * 300


def test_a_monte_carlo_run_says_it_has_no_simulated_clock(tmp_path):
    folder = tmp_path / "mc"
    result = invoke("run", PROBE, "--engine", "montecarlo", "--out", str(folder), *FEW_TRIALS)
    assert result.exit_code == 0, result.output
    assert "Monte Carlo: 1800 trials, no simulated clock" in result.output
    assert "s simulated" not in result.output
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["sim_ms"], manifest["trials"]) == (None, 1800)
    assert "simulated time: none" in (folder / "summary.md").read_text()
    assert invoke("report", str(folder)).exit_code == 0
    page = (folder / "report.html").read_text()
    assert "Monte Carlo: 1800 trials, no simulated clock" in page and "s simulated" not in page


def test_the_monte_carlo_engine_refuses_what_it_cannot_model_with_reasons():
    result = invoke("run", str(SCENARIOS / "quickstart.yaml"), "--engine", "montecarlo")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "workload.arrival" in result.output and "cluster.replica.service_time" in result.output


def test_a_probe_run_prints_and_records_the_oracles_verdict(tmp_path):
    result = invoke("run", PROBE, "--out", str(tmp_path / "run"), "--no-plots", *FEW_TRIALS)
    assert result.exit_code == 0, result.output
    checks = json.loads((tmp_path / "run" / "summary.json").read_text())["oracle"]
    assert len(checks) == 6 + 4  # P(consistent) at each delay, p50 and p99 of reads and writes
    assert f"oracle: {sum(c['agrees'] for c in checks)} of {len(checks)} checks agree" in result.output
    assert "## Oracle" in (tmp_path / "run" / "summary.md").read_text()


def test_report_writes_one_html_file_for_a_traced_run(tmp_path):
    run = tmp_path / "run"
    assert invoke("run", PROBE, "--out", str(run), "--trace-messages", "3", *FEW_TRIALS).exit_code == 0
    assert (run / "sequence.svg").exists() and (run / "sequence.png").exists()
    result = invoke("report", str(run))
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text()
    assert result.output.strip() == str(run / "report.html")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "data:image/png;base64," in page


def test_report_refuses_a_folder_that_is_not_a_run_or_a_sweep(tmp_path):
    result = invoke("report", str(tmp_path))
    assert result.exit_code == 1 and "Traceback" not in result.output and "expected" in result.output
