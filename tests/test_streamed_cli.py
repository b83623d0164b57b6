"""Streamed runs in results folders: written and read back, through ``qsim run --chunk-ops``, their
scratch folders cleaned up, and a long run held under a memory limit that the in-memory path exceeds."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

import qsim
from qsim.cli import main
from qsim.model.replica import Replica
from qsim.output.files import SCRATCH, _host_tag, scratch_folder
from qsim.output.results import default_run_dir, redraw_run

from .conftest import DATA_FILES, PLOT_FILES, ROOT, SCENARIOS

QUICKSTART = SCENARIOS / "quickstart.yaml"
CHUNK = 997


def invoke(*args) -> Result:
    """Run ``qsim ARGS`` in-process."""
    return CliRunner().invoke(main, [str(arg) for arg in args])


def without_runtime(summary: dict) -> dict:
    return {name: part for name, part in json.loads(json.dumps(summary)).items() if name != "runtime"}


def read_summary(folder: Path) -> dict:
    return without_runtime(json.loads((folder / "summary.json").read_text()))


def hidden(folder: Path) -> list[str]:
    """Every hidden entry (a temporary file or a scratch folder) at any depth of ``folder``."""
    return [p.relative_to(folder).as_posix() for p in folder.rglob(".*")]


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def ended_process() -> int:
    """The pid of a process that has ended and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# --- a streamed result written, read back and redrawn ---------------------------------------------


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[qsim.RunResult, Path]:
    """quickstart cut to 3 s held in memory, and the same run streamed and written as ``qsim run`` does."""
    sc = qsim.load_scenario(QUICKSTART, ["duration=3s"])
    folder = tmp_path_factory.mktemp("runs") / "streamed"
    with scratch_folder(folder) as scratch:
        streamed = qsim.simulate(sc, scratch=scratch, chunk_ops=CHUNK)
        assert streamed.ops is None
        qsim.write_run(streamed, folder, plots_too=False)  # plotted by qsim run below, redrawn here
    return qsim.simulate(sc), folder


def test_a_written_streamed_run_holds_every_file_and_no_scratch(written):
    _, folder = written
    assert files_under(folder) - set(PLOT_FILES) == set(DATA_FILES)  # plots: once redrawn below
    assert hidden(folder) == []


def test_a_written_streamed_run_reads_back_as_the_run_in_memory(written):
    memory, folder = written
    saved = qsim.load_run(folder)
    pd.testing.assert_frame_equal(saved.ops, memory.ops)
    assert saved.summary["runtime"]["ops"] == len(memory.ops)
    assert without_runtime(saved.summary) == without_runtime(memory.summary)
    pd.testing.assert_frame_equal(saved.timeline, memory.timeline)


def test_the_ops_table_reads_back_in_chunks(written):
    memory, folder = written
    saved = qsim.load_run(folder)
    chunks = list(saved.ops_chunks())
    assert (
        len(chunks)
        == math.ceil(len(memory.ops) / CHUNK)
        == pq.ParquetFile(folder / "ops.parquet").num_row_groups
    )
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), memory.ops)
    some = pd.concat(saved.ops_chunks(["op_id", "latency_ms"]), ignore_index=True)
    pd.testing.assert_frame_equal(some, memory.ops[["op_id", "latency_ms"]])


def test_the_latencies_read_in_chunks_give_the_summary_latencies(written, tmp_path):
    memory, folder = written
    latencies = qsim.load_run(folder).latencies(tmp_path)
    for kind, section in (("read", "reads"), ("write", "writes")):
        stats = json.loads(json.dumps(latencies[kind].stats()))
        assert stats == memory.summary[section]["latency_ms"]
        latencies[kind].close()
    assert list(tmp_path.iterdir()) == []


def test_a_streamed_run_redraws_and_leaves_no_scratch(written):
    _, folder = written
    drawn = redraw_run(folder)
    assert {p.relative_to(folder).as_posix() for p in drawn} == set(PLOT_FILES)
    assert files_under(folder) == {*DATA_FILES, *PLOT_FILES} and hidden(folder) == []


# --- the scratch folders of killed runs -----------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> qsim.RunResult:
    return qsim.simulate(qsim.load_scenario(QUICKSTART, ["duration=300ms", "warmup=0"]))


def scratch_with_files(parent: Path, name: str) -> Path:
    folder = parent / name
    folder.mkdir(parents=True)
    for file in ("spool.bin", "key-00000.bin", "ops.parquet"):
        (folder / file).write_bytes(b"\0" * 1000)
    return folder


def test_only_the_scratch_folders_of_dead_runs_of_this_host_are_removed(small, tmp_path):
    host, dead = _host_tag(), ended_process()
    other_host = "00000000" if host != "00000000" else "11111111"
    folder = tmp_path / "run"
    stale = scratch_with_files(folder, f"{SCRATCH}{host}-{dead}.xyz.tmp")
    kept = [
        scratch_with_files(folder, f"{SCRATCH}{host}-{os.getpid()}.abc.tmp"),  # a run at work
        scratch_with_files(folder, f"{SCRATCH}{other_host}-{dead}.xyz.tmp"),  # another host's pid
        scratch_with_files(folder, f".spool.{host}-{dead}.xyz.tmp"),  # a temporary's name, not qsim's folder
    ]
    qsim.write_run(small, folder, plots_too=False)
    assert not stale.exists()
    for survivor in kept:
        assert sorted(p.name for p in survivor.iterdir()) == ["key-00000.bin", "ops.parquet", "spool.bin"]
    pd.testing.assert_frame_equal(qsim.load_run(folder).ops, small.ops)


def test_the_next_run_removes_the_scratch_folder_of_a_killed_run(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "qsim", "run", QUICKSTART, "--set", "duration=60s", "--no-plots", "-q"]
    process = subprocess.Popen([*map(str, command), "--chunk-ops", "1000", "--out", str(out)], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(f"{SCRATCH}*/spool.bin")) and time.monotonic() < deadline:
            assert process.poll() is None, "the run ended before it was killed"
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()
    [scratch] = out.glob(f"{SCRATCH}*")
    assert f"-{process.pid}." in scratch.name and (scratch / "spool.bin").stat().st_size > 0
    result = invoke(
        "run", QUICKSTART, "--set", "duration=1s", "--no-plots", "--chunk-ops", 1000, "--out", out
    )
    assert result.exit_code == 0, result.output
    assert hidden(out) == [] and files_under(out) == set(DATA_FILES)


# --- the command line -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_pair(tmp_path_factory) -> tuple[Path, Path]:
    """quickstart run whole by ``qsim run``: in memory (A), and streamed 1000 operations at a time (B)."""
    root = tmp_path_factory.mktemp("cli")
    a, b = root / "A", root / "B"
    for args in (("--no-plots", "--out", a), ("--chunk-ops", 1000, "--out", b)):
        result = invoke("run", QUICKSTART, *args)
        assert result.exit_code == 0, result.output
    return a, b


def test_qsim_run_streamed_writes_the_files_of_the_run_in_memory(cli_pair):
    a, b = cli_pair
    ops = pd.read_parquet(a / "ops.parquet")
    assert len(ops) > 20 * 1000
    pd.testing.assert_frame_equal(pd.read_parquet(b / "ops.parquet"), ops)
    assert pq.ParquetFile(b / "ops.parquet").num_row_groups == math.ceil(len(ops) / 1000)
    assert pq.ParquetFile(a / "ops.parquet").num_row_groups == 1  # A was not streamed
    assert read_summary(b) == read_summary(a)
    for table in ("timeline", "nodes", "faults"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(b / f"{table}.parquet"), pd.read_parquet(a / f"{table}.parquet")
        )


def test_qsim_run_streamed_leaves_no_scratch_folder(cli_pair):
    _, b = cli_pair
    assert hidden(b) == [] and files_under(b) == {*DATA_FILES, *PLOT_FILES}


def test_qsim_run_streams_into_the_default_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(
        "run", QUICKSTART, "--set", "duration=1500ms", "--no-plots", "--chunk-ops", 1000, "--seed", 7
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / default_run_dir(qsim.simulate(qsim.load_scenario(QUICKSTART, ["duration=1500ms"]), 7))
    assert files_under(folder) == set(DATA_FILES) and hidden(tmp_path) == []
    assert pq.ParquetFile(folder / "ops.parquet").num_row_groups > 1


@pytest.mark.parametrize("value", ["5", "999", str((1 << 26) + 1), "many"])
def test_a_chunk_size_out_of_range_is_refused_naming_the_option(value, tmp_path):
    result = invoke("run", QUICKSTART, "--chunk-ops", value, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "--chunk-ops" in result.output and value in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_failed_streamed_run_writes_its_partial_history_and_no_scratch(tmp_path, monkeypatch):
    original, calls = Replica._write, itertools.count(1)

    def apply_write(self, message):
        if next(calls) == 1500:  # about op 5,000 of quickstart's 20,000
            raise RuntimeError("injected failure in Replica._write")
        return original(self, message)

    monkeypatch.setattr(Replica, "_write", apply_write)
    out = tmp_path / "out"
    result = invoke("run", QUICKSTART, "--no-plots", "--chunk-ops", 1000, "--out", out)
    assert result.exit_code == 1 and "injected failure" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["error"].startswith("RuntimeError") and manifest["ops"] > 3000
    assert pq.ParquetFile(out / "ops.parquet").metadata.num_rows == manifest["ops"]
    assert hidden(out) == []


# --- bounded memory -------------------------------------------------------------------------------

MEMORY_OPS = 1_000_000
# RLIMIT_DATA (private writable memory, pyarrow's allocator reservations included) for the whole
# `qsim run`; RLIMIT_AS would also count pyarrow's 1 GiB address-space reservation. Measured at 1M
# operations of core.yaml, --no-plots: streamed 131,072 operations at a time, the run needs 355-380
# MiB (the same at 300k: 360-400 MiB; peak RSS 275 MiB); held in memory, 600-700 MiB (peak RSS
# 496 MiB without a limit).
MEMORY_LIMIT = 450 << 20
LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_DATA, (int(sys.argv[1]), int(sys.argv[1])))
from qsim.cli import main
try:
    main(sys.argv[2:])
finally:
    print("peak RSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, file=sys.stderr)
"""


def limited_run(out: Path, chunk_ops: int) -> subprocess.Popen:
    """Start ``qsim run`` of core.yaml for MEMORY_OPS operations in a process limited to MEMORY_LIMIT."""
    args = ["run", ROOT / "bench" / "scenarios" / "core.yaml", "--set", f"workload.max_ops={MEMORY_OPS}"]
    args += ["--no-plots", "-q", "--chunk-ops", chunk_ops, "--out", out]
    command = [sys.executable, "-c", LIMITED, MEMORY_LIMIT, *args]
    return subprocess.Popen(
        list(map(str, command)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=out.parent
    )


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_DATA bounds mmap'ed memory on Linux (4.7+) only")
def test_a_long_run_streams_within_a_memory_limit_the_in_memory_path_exceeds(tmp_path):
    # Side by side (two cores): the streamed run, and the run held in memory as before streaming.
    runs = [limited_run(tmp_path / "streamed", 1 << 17), limited_run(tmp_path / "in-memory", 1 << 26)]
    (_, streamed_err), (_, in_memory_err) = (run.communicate() for run in runs)
    assert runs[0].returncode == 0, streamed_err[-3000:]
    summary = json.loads((tmp_path / "streamed" / "summary.json").read_text())
    rows = pq.ParquetFile(tmp_path / "streamed" / "ops.parquet").metadata.num_rows
    assert summary["runtime"]["ops"] == rows == MEMORY_OPS
    assert runs[1].returncode != 0 and "MemoryError" in in_memory_err, in_memory_err[-3000:]
