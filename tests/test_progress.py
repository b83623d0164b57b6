"""Progress while a run or a sweep runs: the reports change no outcome; the bar shows only on a terminal."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios

import numpy as np
import pytest
from click.testing import CliRunner

import qsim
from qsim.analysis import montecarlo
from qsim.cli import main
from qsim.engine import PROGRESS_REPORTS
from qsim.progress import RunProgress
from qsim.sweep.report import Progress
from tests.conftest import ROOT, SCENARIOS

SHORT = ["duration=2s", "warmup=200ms"]
# Constant delays that are binary fractions put model events exactly on the report instants
# (every 1 ms of a 200 ms run), a crash and a recovery included.
TIES = [
    "duration=200ms",
    "warmup=0",
    "network.latency={dist: constant, value: 0.25ms}",
    "cluster.replica.service_time={dist: constant, value: 0.25ms}",
    "workload.arrival={type: closed, think_time: {dist: constant, value: 0.75ms}}",
    "faults=[{at: 50ms, crash: n2, recover_at: 100ms}]",
]
CASES = {
    "quickstart": ("quickstart.yaml", SHORT),
    "crash-recover": (
        "crash-recover.yaml",
        ["duration=3s", "warmup=200ms", "faults.0.at=1s", "faults.0.recover_at=2s"],
    ),
    "random-failures": ("random-failures.yaml", SHORT),
    "partition-majority": (
        "partition-majority.yaml",
        ["duration=3s", "faults.0.at=1s", "faults.0.heal_at=2s"],
    ),
    "probe": ("pbs-probe.yaml", ["workload.arrival.trials=300", "duration=1s"]),  # 4.3 s simulated
    "ties": ("quickstart.yaml", TIES),
}
FAULTY = {"crash-recover", "random-failures", "partition-majority", "ties"}


class Terminal(io.StringIO):
    """A text stream that says it is a terminal, as stderr does in a shell."""

    def isatty(self) -> bool:
        return True


def without_wall_times(summary: dict) -> dict:
    runtime = {k: v for k, v in summary["runtime"].items() if k not in ("wall_s", "engine_s", "ops_per_s")}
    return summary | {"runtime": runtime}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_run_with_progress_reports_is_the_same_run(case):
    name, overrides = CASES[case]
    scenario = qsim.load_scenario(SCENARIOS / name, overrides)
    calls = []
    plain = qsim.simulate(scenario)
    watched = qsim.simulate(scenario, progress=lambda *call: calls.append(call))
    assert plain.error is None and watched.error is None
    assert len(calls) > PROGRESS_REPORTS // 2  # the reports did run, in the middle of the model's events
    for frame in ("ops", "faults", "timeline", "nodes"):
        assert getattr(plain, frame).equals(getattr(watched, frame)), frame
    assert without_wall_times(plain.summary) == without_wall_times(watched.summary)
    assert plain.manifest["events"] == watched.manifest["events"]  # the reports' own events are left out
    assert plain.manifest["sim_ms"] == watched.manifest["sim_ms"]
    assert (len(plain.faults) > 0) == (case in FAULTY)


def test_model_events_fall_exactly_on_the_report_instants_in_the_tied_case():
    scenario = qsim.load_scenario(SCENARIOS / "quickstart.yaml", TIES)
    starts = qsim.simulate(scenario).ops["start_ms"].to_numpy()
    step_ms = scenario.duration / PROGRESS_REPORTS
    assert np.count_nonzero(starts / step_ms == np.round(starts / step_ms)) > len(starts) // 4


def test_reports_count_simulated_seconds_up_to_the_duration():
    scenario = qsim.load_scenario(SCENARIOS / "quickstart.yaml", SHORT)
    calls = []
    qsim.simulate(scenario, progress=lambda *call: calls.append(call))
    done = [call[0] for call in calls]
    assert {call[1:] for call in calls} == {(2.0, "s")}
    assert done == sorted(done) and done[-1] == 2.0
    assert len(calls) == PROGRESS_REPORTS + 1  # one per step of duration, then the end


def test_a_probe_run_reports_trials_as_it_goes_past_its_duration():
    scenario = qsim.load_scenario(
        SCENARIOS / "pbs-probe.yaml", ["workload.arrival.trials=300", "duration=1s"]
    )
    calls = []
    result = qsim.simulate(scenario, progress=lambda *call: calls.append(call))
    assert result.manifest["sim_ms"] > scenario.duration  # the reports went on past it
    total = 300 * len(scenario.workload.arrival.delays)
    assert {call[1:] for call in calls} == {(total, "trials")}
    done = [call[0] for call in calls]
    assert done == sorted(done) and 0 < done[len(done) // 2] < total and done[-1] == total


def test_a_monte_carlo_run_reports_each_delay_and_keeps_its_result():
    scenario = qsim.load_scenario(SCENARIOS / "pbs-probe.yaml")
    calls = []
    plain = montecarlo.run(scenario, table=True)
    watched = montecarlo.run(scenario, progress=lambda *call: calls.append(call), table=True)
    trials = scenario.workload.arrival.trials
    assert calls == [(trials * (i + 1), trials * 6, "trials") for i in range(6)]
    assert plain.ops.equals(watched.ops)
    assert without_wall_times(plain.summary) == without_wall_times(watched.summary)


# --- the bar ------------------------------------------------------------------------------------


def test_the_run_bar_draws_on_a_terminal_with_the_real_engine_and_clears_itself():
    terminal = Terminal()
    with RunProgress("quickstart", stream=terminal) as bar:
        qsim.simulate(qsim.load_scenario(SCENARIOS / "quickstart.yaml", SHORT), progress=bar)
    text = terminal.getvalue()
    assert re.search(r"quickstart: +\d+%\|.*\| \d+\.\d/2\.0 s simulated", text), text
    assert text.endswith("\r")  # leave=False: the bar is wiped, the line is free for the table


def test_the_run_bar_stays_silent_off_a_terminal_and_when_quiet():
    scenario = qsim.load_scenario(SCENARIOS / "quickstart.yaml", ["duration=300ms", "warmup=0"])
    for stream, quiet in ((io.StringIO(), False), (Terminal(), True)):
        with RunProgress("quickstart", stream=stream, quiet=quiet) as bar:
            qsim.simulate(scenario, progress=bar)
        assert stream.getvalue() == ""


def test_the_sweep_bar_on_a_terminal_counts_points_and_failures():
    terminal = Terminal()
    progress = Progress(terminal)
    for done in range(1, 5):
        progress(done, 4, done // 3)
    text = terminal.getvalue()
    assert "sweep: 100%" in text and "4/4 points, failed 1" in text and text.endswith("\n")


def test_the_sweep_progress_off_a_terminal_is_a_line_per_tenth_and_counts_only_points_it_ran():
    stream = io.StringIO()
    progress = Progress(stream)
    for done in range(31, 51):  # a resumed sweep: 30 of 50 points were done before
        progress(done, 50, 0)
    lines = stream.getvalue().splitlines()
    assert [line.split("]")[0] for line in lines] == ["[31/50", "[35/50", "[40/50", "[45/50", "[50/50"]
    assert all("\r" not in line and "|" not in line for line in lines)


# --- the command --------------------------------------------------------------------------------


def run_on_a_terminal(*arguments: str) -> tuple[int, str]:
    """Run ``python -m qsim ARGUMENTS`` with stderr on a pseudo-terminal; return its status and stderr."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # tqdm draws to its width
    process = subprocess.Popen(
        [sys.executable, "-m", "qsim", *arguments],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            process.kill()
            break
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process has exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=60), b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize(("quiet", "shown"), [((), True), (("--quiet",), False)], ids=["bar", "quiet"])
def test_qsim_run_on_a_terminal_shows_the_bar_unless_quiet(tmp_path, quiet, shown):
    status, stderr = run_on_a_terminal(
        "run",
        "scenarios/quickstart.yaml",
        "--set",
        "duration=1s",
        "--no-plots",
        "--out",
        str(tmp_path / "o"),
        *quiet,
    )
    assert status == 0, stderr
    assert ("s simulated" in stderr and "%|" in stderr) == shown, stderr


def test_qsim_run_off_a_terminal_prints_no_bar_and_says_what_the_wall_times_cover(tmp_path):
    out = tmp_path / "o"
    result = CliRunner().invoke(
        main,
        ["run", str(SCENARIOS / "quickstart.yaml"), "--set", "duration=1s", "--no-plots", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    line = next(line for line in result.stdout.splitlines() if line.startswith("wall time: "))
    match = re.fullmatch(
        r"wall time: (\d+\.\d\d) s from reading the scenario to the results written; "
        r"the simulation (\d+\.\d\d) s \(event loop (\d+\.\d\d) s, [\d,]+ ops/s\)",
        line,
    )
    assert match, line
    command_s, simulation_s, loop_s = map(float, match.groups())
    manifest = qsim.load_run(out).manifest
    assert simulation_s == round(manifest["wall_s"], 2)
    assert command_s >= simulation_s >= loop_s
