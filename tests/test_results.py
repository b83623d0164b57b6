"""The results folder: write_run and load_run round-trip, atomic writes, failed runs."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import qsim
from qsim.output import plots
from qsim.output.files import atomic_write, remove_stale_temporaries
from qsim.output.results import default_sweep_dir, folder_name

from .conftest import DATA_FILES as FILES
from .conftest import PLOT_FILES as PLOTS

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
SHORT = ("duration=300ms", "warmup=0")


def short_run(seed: int = 1) -> qsim.RunResult:
    """The quickstart scenario for 300 ms of simulated time."""
    return qsim.simulate(qsim.load_scenario(QUICKSTART, SHORT), seed)


def as_json(value: dict) -> dict:
    return json.loads(json.dumps(value))


def hidden_files(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob(".*")]


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.fixture(scope="module")
def result() -> qsim.RunResult:
    return short_run()


@pytest.fixture(scope="module")
def folder(result, tmp_path_factory) -> Path:
    return qsim.write_run(result, tmp_path_factory.mktemp("results") / "run")


@pytest.fixture(scope="module")
def saved(folder) -> qsim.SavedRun:
    return qsim.load_run(folder)


@pytest.fixture
def restore_umask():
    """Restore the process umask after a test that changes it."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_write_run_returns_the_folder_with_every_file(folder):
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == sorted(
        FILES + PLOTS
    )


def test_ops_round_trip(result, saved):
    assert len(result.ops) > 100
    pd.testing.assert_frame_equal(saved.ops, result.ops)


@pytest.mark.parametrize("part", ["summary", "manifest"])
def test_json_round_trip(result, saved, part):
    assert getattr(saved, part) == as_json(getattr(result, part))


def test_scenario_round_trip(result, saved):
    assert saved.scenario == qsim.resolved_dict(result.scenario)


def test_resolved_scenario_validates_to_the_same_run(result, saved):
    again = qsim.scenario_from_dict(saved.scenario)
    assert again == result.scenario
    assert qsim.run_id(again) == result.run_id == saved.manifest["run_id"]


def test_no_temporary_files_remain(folder):
    assert hidden_files(folder) == []


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_are_written_with_the_umask_mode(result, tmp_path, restore_umask, mask, mode):
    os.umask(mask)
    out = qsim.write_run(result, tmp_path / "run")
    for path in (out / name for name in FILES + PLOTS):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


def test_an_interruption_while_rendering_writes_nothing(result, tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "t_visibility", interrupt)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        qsim.write_run(result, out)
    assert not out.exists() or list(out.rglob("*")) == []


def test_interrupted_rename_removes_the_temporary_file(result, tmp_path, monkeypatch):
    replace = os.replace

    def interrupt_ops(source, target):
        if Path(target).name == "ops.parquet":
            raise KeyboardInterrupt
        replace(source, target)

    monkeypatch.setattr(os, "replace", interrupt_ops)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        qsim.write_run(result, out, plots_too=False)
    assert sorted(p.name for p in out.iterdir()) == ["scenario.resolved.yaml"]


def test_writing_twice_replaces_the_files(result, tmp_path):
    other = short_run(seed=2)
    out = qsim.write_run(result, tmp_path / "run")
    qsim.write_run(other, out)
    saved = qsim.load_run(out)
    assert saved.manifest["run_id"] == saved.summary["run_id"] == other.run_id != result.run_id
    pd.testing.assert_frame_equal(saved.ops, other.ops)
    assert saved.scenario["seed"] == 2
    assert hidden_files(out) == []


def test_rewrite_without_plots_leaves_no_old_plots(result, tmp_path):
    out = qsim.write_run(result, tmp_path / "run")
    qsim.write_run(short_run(seed=2), out, plots_too=False)
    assert not (out / "plots").exists()


def test_an_interrupted_render_over_an_old_run_leaves_the_old_run_whole(result, tmp_path, monkeypatch):
    out = qsim.write_run(result, tmp_path / "run")
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    monkeypatch.setattr(plots, "t_visibility", interrupt)
    with pytest.raises(KeyboardInterrupt):
        qsim.write_run(short_run(seed=2), out)
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before


def test_an_interrupted_write_over_an_old_run_leaves_no_manifest(result, tmp_path, monkeypatch):
    out = qsim.write_run(result, tmp_path / "run")
    real_replace = os.replace

    def replace(source, target):
        if str(target).endswith("summary.json"):
            raise KeyboardInterrupt
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        qsim.write_run(short_run(seed=2), out)
    assert not (out / "manifest.json").exists()
    assert hidden_files(out) == []


def test_write_run_with_reads_long_after_the_last_commit(tmp_path):
    scenario = qsim.scenario_from_dict(
        {
            "name": "sparse-writes",
            "duration": "300s",
            "workload": {
                "arrival": {"type": "poisson", "rate": "2/s"},
                "read_fraction": 0.99,
                "keys": {"count": 1},
            },
        }
    )
    result = qsim.simulate(scenario)
    assert result.summary["staleness"]["t_visibility"][-1]["t_ms"] == 60_000.0
    saved = qsim.load_run(qsim.write_run(result, tmp_path / "run", plots_too=False))
    assert saved.summary["staleness"]["t_visibility"][-1]["t_ms"] == 60_000.0


def test_failed_run_is_recorded_and_written(tmp_path, failing_write):
    failed = short_run()
    assert failed.error.startswith("RuntimeError: injected failure")
    assert len(failed.ops) > 0
    saved = qsim.load_run(qsim.write_run(failed, tmp_path / "run", plots_too=False))
    assert saved.manifest["error"] == failed.error
    assert len(saved.ops) == saved.manifest["ops"] == len(failed.ops)


def test_failed_run_reraises_when_asked(failing_write):
    scenario = qsim.load_scenario(QUICKSTART, SHORT)
    with pytest.raises(RuntimeError, match="injected failure"):
        qsim.simulate(scenario, reraise=True)


# --- temporary files and folder names ------------------------------------------------------------


def temporary_name(folder: Path, monkeypatch) -> str:
    """The name atomic_write gives the temporary file of ``folder/x.json`` in this process."""
    names, replace = [], os.replace

    def record(source, target):
        names.append(Path(source).name)
        replace(source, target)

    monkeypatch.setattr(os, "replace", record)
    atomic_write(folder / "x.json", "{}")
    monkeypatch.undo()
    return names[0]


def ended_process() -> int:
    """The pid of a process that has ended and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_temporary_name_says_which_process_of_which_host_writes_it(tmp_path, monkeypatch):
    name = temporary_name(tmp_path, monkeypatch)
    found = re.fullmatch(r"\.x\.json\.([0-9a-f]{8})-([0-9]+)\.[a-z0-9_]+\.tmp", name)
    assert found and int(found[2]) == os.getpid()
    assert found[1] == temporary_name(tmp_path, monkeypatch).split(".")[-3].split("-")[0]  # stable


def test_only_the_temporaries_of_dead_writers_of_this_host_are_removed(tmp_path, monkeypatch):
    host = temporary_name(tmp_path, monkeypatch).split(".")[-3].split("-")[0]
    other = "00000000" if host != "00000000" else "11111111"
    dead = ended_process()
    stale = tmp_path / f".ops.parquet.{host}-{dead}.abc_1234.tmp"
    kept = [
        tmp_path / f".ops.parquet.{host}-{os.getpid()}.abc_1234.tmp",  # a writer at work
        tmp_path / f".ops.parquet.{other}-{dead}.abc_1234.tmp",  # another host's pid
        tmp_path / f"ops.parquet.{host}-{dead}.abc_1234.tmp",  # not hidden: not a temporary
        tmp_path / f".ops.parquet.{host}-{dead}.abc_1234.tmp.bak",
        tmp_path / ".notes",
    ]
    for path in [stale, *kept]:
        path.write_bytes(b"data")
    folder = tmp_path / f".plots.{host}-{dead}.abc_1234.tmp"  # a folder, whatever its name
    folder.mkdir()
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists() and all(path.exists() for path in [*kept, folder, tmp_path / "x.json"])
    assert remove_stale_temporaries(tmp_path / "missing") == []


NOT_NAMES = ["", ".", "..", "../x", "a/b", "/abs", ".hidden", "a\\b", "x\x00y", "a\n", 3]


@pytest.mark.parametrize("name", NOT_NAMES)
def test_a_results_folder_is_never_built_from_a_path(tmp_path, name):
    with pytest.raises(ValueError, match="not a plain folder name"):
        folder_name(name)
    with pytest.raises(ValueError, match="not a plain folder name"):
        default_sweep_dir(name, tmp_path)


def test_a_scenario_name_is_its_folder_name(tmp_path, result):
    assert default_sweep_dir("multi-region_1.5", tmp_path) == tmp_path / "multi-region_1.5"
    assert qsim.output.results.default_run_dir(result, tmp_path) == tmp_path / "quickstart" / result.run_id
