"""Faults of the tool itself: a killed sweep takes its workers with it; a killed writer's temporaries go."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import qsim
from qsim.cli import main
from tests.conftest import ROOT, SCENARIOS

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")

# --- the processes of a process group, read from /proc -----------------------------------------


def process_stat(pid: int) -> tuple[str, int, int, int, float] | None:
    """State, parent pid, process group, start time (ticks) and CPU seconds of ``pid``, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19]), cpu_s


def group_members(pgid: int) -> dict[int, tuple[int, float]]:
    """The live processes of group ``pgid`` but its leader, as pid: (start time, CPU seconds)."""
    members = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != pgid:
            stat = process_stat(int(entry.name))
            if stat is not None and stat[2] == pgid and stat[0] not in "ZX":
                members[int(entry.name)] = (stat[3], stat[4])
    return members


def still_alive(members: dict[int, tuple[int, float]]) -> list[int]:
    """The pids of ``members`` that still run (a zombie has exited; a reused pid is someone else)."""
    alive = []
    for pid, (started, _) in members.items():
        stat = process_stat(pid)
        if stat is not None and stat[3] == started and stat[0] not in "ZX":
            alive.append(pid)
    return alive


def wait_for_busy_workers(process: subprocess.Popen, workers: int) -> dict[int, tuple[int, float]]:
    """Wait until ``workers`` processes of the sweep's group have each run the model for a while."""
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, "the sweep ended early"
        assert time.monotonic() < deadline, "the sweep's workers never got busy"
        members = group_members(process.pid)
        if sum(cpu_s >= 0.5 for _, cpu_s in members.values()) >= workers:
            return members
        time.sleep(0.05)


def wait_until_gone(members: dict[int, tuple[int, float]], seconds: float) -> list[int]:
    """Wait up to ``seconds`` for every one of ``members`` to exit; return those still alive."""
    deadline = time.monotonic() + seconds
    while still_alive(members) and time.monotonic() < deadline:
        time.sleep(0.05)
    return still_alive(members)


def kill_all(pids: list[int]) -> None:
    """Kill the processes a failed test left behind (all of them started by the test)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# --- a SIGKILLed sweep takes its workers with it ------------------------------------------------

# Four points of tens of seconds each on two workers: both are mid-point when the sweep is killed.
SLOW_POINTS = ("--factor", "quorum.r=1,2", "--seeds", "2", "--set", "duration=60s", "--set", "warmup=0")


@linux_only
@pytest.mark.parametrize(
    "executor", ["process", pytest.param("dask", marks=pytest.mark.slow)], ids=["process", "dask"]
)
def test_the_workers_of_a_killed_sweep_exit_within_seconds(tmp_path, executor):
    if executor == "dask":
        pytest.importorskip("dask.distributed")
    command = [sys.executable, "-m", "qsim", "sweep", str(SCENARIOS / "quickstart.yaml"), *SLOW_POINTS,
               "--executor", executor, "--workers", "2", "--quiet", "--no-plots",
               "--out", str(tmp_path / "out")]  # fmt: skip
    # Its own process group, so that every process it starts can be found after it is gone; output
    # to a file, not a pipe, which orphaned workers would hold open.
    with open(tmp_path / "log", "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, start_new_session=True, stdout=log, stderr=log)
    try:
        members = wait_for_busy_workers(process, workers=2)
    finally:
        process.kill()
        process.wait()
    left = wait_until_gone(members, seconds=5)
    kill_all(left)
    assert left == [], f"{len(left)} of the {len(members)} processes of the killed sweep are still alive"
    assert not list((tmp_path / "out" / "points").glob("*.json"))  # killed mid-point: none finished


@linux_only
def test_the_watchdog_ends_a_worker_whose_parent_died():
    # The fallback where the kernel cannot do it: a parent starts a child that watches it, then dies.
    parent = textwrap.dedent(
        """
        import os, sys, time
        from qsim.sweep.executors import watch_parent
        parent = os.getpid()
        if os.fork() == 0:
            watch_parent(parent, interval_s=0.05)
            time.sleep(60)
            os._exit(0)
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", parent], start_new_session=True, stdout=subprocess.PIPE)
    assert process.stdout.readline() == b"ready\n"
    members = group_members(process.pid)
    time.sleep(0.3)
    assert len(members) == 1 and still_alive(members)  # while its parent lives, it runs
    process.kill()
    process.wait()  # not communicate(): the child holds the pipe until it ends
    process.stdout.close()
    left = wait_until_gone(members, seconds=3)
    kill_all(left)
    assert left == []


# --- temporary files of killed writers ----------------------------------------------------------

# Writes each file given with qsim's atomic_write, one thread each, and stops every write after its
# data and before its rename: the state a writer killed in the middle of a write leaves.
WRITER = """
import os, sys, threading, time
from pathlib import Path
from qsim.output.files import atomic_write

stopped = threading.Semaphore(0)

def stop(source, target):
    stopped.release()
    time.sleep(120)

os.replace = stop
for name in sys.argv[1:]:
    threading.Thread(target=atomic_write, args=(Path(name), b"half"), daemon=True).start()
for _ in sys.argv[1:]:
    stopped.acquire()
print("written", flush=True)
time.sleep(120)
"""


def start_writer(*paths: Path) -> tuple[subprocess.Popen, list[Path]]:
    """A process in the middle of writing ``paths``; and the temporary files it writes them to."""
    before = {path.parent: set(path.parent.iterdir()) for path in paths}
    process = subprocess.Popen([sys.executable, "-c", WRITER, *map(str, paths)], stdout=subprocess.PIPE)
    assert process.stdout.readline() == b"written\n"
    temporaries = [p for folder, old in before.items() for p in set(folder.iterdir()) - old]
    assert len(temporaries) == len(paths) and all(p.name.startswith(".") for p in temporaries)
    return process, temporaries


def killed_writer(*paths: Path) -> tuple[int, list[Path]]:
    """The pid of a writer killed in the middle of writing ``paths``, and the temporaries it left."""
    process, temporaries = start_writer(*paths)
    process.kill()
    process.wait()
    return process.pid, temporaries


def look_alikes(folder: Path, writer_temporary: Path, dead_pid: int) -> list[Path]:
    """Hidden files a cleanup must not touch: a user's, and a dead pid's temporary of another host."""
    host = writer_temporary.name.split(".")[-3].split("-")[0]  # .<name>.<host>-<pid>.<random>.tmp
    other = "00000000" if host != "00000000" else "11111111"
    paths = [folder / ".notes", folder / f".ops.parquet.{other}-{dead_pid}.abcdefgh.tmp"]
    for path in paths:
        path.write_text("not qsim's to remove")
    return paths


QUICKSTART = str(SCENARIOS / "quickstart.yaml")
QUICK_RUN = ("run", QUICKSTART, "--set", "duration=300ms", "--set", "warmup=0", "--quiet")


def test_a_run_removes_the_temporaries_of_killed_writers_and_only_those(tmp_path):
    out = tmp_path / "run"
    first = CliRunner().invoke(main, [*QUICK_RUN, "--out", str(out)])
    assert first.exit_code == 0, first.output
    dead_pid, stale = killed_writer(out / "ops.parquet", out / "plots" / "latency_cdf.png")
    live, (working,) = start_writer(out / "summary.md")
    try:
        kept = look_alikes(out, stale[0], dead_pid)
        again = CliRunner().invoke(main, [*QUICK_RUN, "--seed", "2", "--out", str(out)])
        assert again.exit_code == 0, again.output
        assert [path for path in stale if path.exists()] == []
        assert working.exists() and all(path.exists() for path in kept)
        assert live.poll() is None  # the live writer was still writing all along
    finally:
        live.kill()
        live.wait()
    saved = qsim.load_run(out)  # and the run is whole
    assert saved.manifest["seed"] == saved.scenario["seed"] == 2 and len(saved.ops) > 0
    assert {p.name for p in out.rglob(".*")} == {working.name, *(p.name for p in kept)}


QUICK_SWEEP = ("sweep", QUICKSTART, "--factor", "quorum.r=1,2", "--set", "duration=200ms",
               "--set", "warmup=0", "--executor", "serial", "--no-plots", "--quiet")  # fmt: skip


def finished_points(out: Path) -> dict[Path, tuple[bytes, int]]:
    """Each finished point's file, with its bytes and modification time (ns)."""
    return {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in (out / "points").glob("*.json")}


def test_a_sweep_removes_the_temporaries_of_killed_writers_and_keeps_every_finished_point(tmp_path):
    out = tmp_path / "sweep"
    first = CliRunner().invoke(main, [*QUICK_SWEEP, "--out", str(out)])
    assert first.exit_code == 0, first.output
    points = finished_points(out)
    assert len(points) == 2
    dead_pid, stale = killed_writer(out / "runs.parquet", out / "points" / "0123456789ab.json")
    live, (working,) = start_writer(out / "points" / "ba9876543210.json")
    try:
        kept = look_alikes(out / "points", stale[0], dead_pid)
        again = CliRunner().invoke(main, [*QUICK_SWEEP, "--out", str(out), "--resume"])
        assert again.exit_code == 0, again.output
        assert [path for path in stale if path.exists()] == []
        assert working.exists() and all(path.exists() for path in kept)
        assert live.poll() is None
    finally:
        live.kill()
        live.wait()
    assert {
        path: (path.read_bytes(), path.stat().st_mtime_ns) for path in (out / "points").glob("*.json")
    } == points
