"""Speed-up of a 16-point sweep on the local process pool against running it serially.

Runs bench/scenarios/core.yaml (fault-free N=3, R=W=2) over quorum.r x quorum.w in {1,2} x {1,2}
with 4 seeds (16 points of 50k operations each) twice: serially, then on a process pool of 2
workers; both write their tables under a temporary folder, with no plots. The speed-up is the
ratio of the two wall times (target >= 1.8x on 2 cores; the ideal is 2.0x). It also checks that
both executors produced identical runs tables.

Usage: python bench/bench_sweep.py [--ops N] [--workers W]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from qsim.scenario import read_scenario_data
from qsim.sweep import sweep_from_cli
from qsim.sweep.run import plan, run_sweep

SCENARIO = Path(__file__).parent / "scenarios" / "core.yaml"
TARGET = 1.8


def timed_sweep(executor: str, workers: int, ops: int, out: Path) -> tuple[float, pd.DataFrame]:
    """Return (wall seconds, runs table) of the 16-point sweep on ``executor``."""
    data = read_scenario_data(SCENARIO, [f"workload.max_ops={ops}"])
    sweep = sweep_from_cli(["quorum.r=1,2", "quorum.w=1,2"], where=None, zips=(), seeds="4")
    planned = plan(data, sweep, base_dir=SCENARIO.parent)
    started = time.perf_counter()
    result = run_sweep(planned, out, executor_name=executor, workers=workers)
    return time.perf_counter() - started, result.runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=50_000, help="operations per point")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        serial_s, serial_runs = timed_sweep("serial", 1, args.ops, Path(folder, "serial"))
        pool_s, pool_runs = timed_sweep("process", args.workers, args.ops, Path(folder, "pool"))
    identical = serial_runs.equals(pool_runs)
    speedup = serial_s / pool_s
    print(
        f"16 points x {args.ops} ops: serial {serial_s:.2f} s, pool of {args.workers} workers {pool_s:.2f} s"
    )
    print(f"speed-up {speedup:.2f}x; {'PASS' if speedup >= TARGET else 'MISS'} (target >= {TARGET}x)")
    print(f"runs tables identical: {identical}")


if __name__ == "__main__":
    main()
