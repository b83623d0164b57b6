"""A sweep of long runs on a Dask cluster: points per minute, each worker's peak memory, same rows as serial.

Sweeps bench/scenarios/core.yaml (fault-free, 10,000 uniform keys, 2000 ops/s) over quorum.r x
quorum.w in {1,2} x {1,2} with ``--seeds`` seeds (4 x 50 = 200 points by default) of ``--ops``
operations each (1M by default), on a Dask LocalCluster of ``--workers`` single-threaded worker
processes (or on ``--scheduler`` ADDRESS, a running cluster whose workers share this folder),
without plots. Every point streams its history (``qsim.simulate(scratch=...)``), so a worker holds
about ``--chunk-ops`` operations at a time. It prints the wall time, points per minute, each
worker's peak RSS, and then reruns ``--check`` of the points serially in this process and checks
that their rows are identical to the cluster's (same numbers, whatever ran them).

Usage: python bench/bench_dask_sweep.py [--ops N] [--seeds K] [--workers W] [--check C]
                                        [--scheduler ADDRESS] [--out DIR]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from qsim.scenario import read_scenario_data
from qsim.sweep import sweep_from_cli
from qsim.sweep.run import plan, run_sweep

SCENARIO = Path(__file__).parent / "scenarios" / "core.yaml"
RATE_PER_S = 2000  # core.yaml's arrival rate
WALL_COLUMNS = ("wall_s", "engine_s", "ops_per_s", "events_per_s")  # timings differ run to run


def planned_points(ops: int, seeds: int) -> list:
    """The sweep's points: R x W in {1,2} x {1,2} times ``seeds`` seeds of ``ops`` operations."""
    duration_s = ops / RATE_PER_S * 1.01 + 10  # duration only bounds the run beyond max_ops
    data = read_scenario_data(SCENARIO, [f"workload.max_ops={ops}", f"duration={duration_s:.0f}s"])
    sweep = sweep_from_cli(["quorum.r=1,2", "quorum.w=1,2"], where=None, zips=(), seeds=str(seeds))
    return plan(data, sweep, base_dir=SCENARIO.parent)


def worker_peaks(scheduler: str) -> list[int]:
    """Peak RSS (bytes) of each worker process of the cluster at ``scheduler``."""
    from dask.distributed import Client

    with Client(scheduler) as client:
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return sorted(peaks.values())


def comparable(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs table without its timings, by run id."""
    drop = [c for c in runs.columns if c in WALL_COLUMNS]
    return runs.drop(columns=drop).set_index("run_id").sort_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--check", type=int, default=2, help="points rerun serially to compare")
    parser.add_argument("--scheduler", default=None, help="a running Dask scheduler's address")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="qsim-dask-sweep-"))
    planned = planned_points(args.ops, args.seeds)
    cluster = None
    if args.scheduler is None:  # a cluster of our own, reached by its address as a real one would be
        from dask.distributed import LocalCluster

        cluster = LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
    scheduler = args.scheduler or cluster.scheduler_address
    print(f"{len(planned)} points of {args.ops:,} operations on Dask at {scheduler}", flush=True)
    started = time.perf_counter()
    result = run_sweep(
        planned, out / "dask", executor_name="dask", scheduler=scheduler, plots=False,
        progress=lambda done, total, failed: _report(done, total, failed, started),
    )  # fmt: skip
    wall_s = time.perf_counter() - started
    peaks = worker_peaks(scheduler)
    if cluster is not None:
        cluster.close()
    failed = int(result.runs["error"].notna().sum())
    per_minute = len(planned) / (wall_s / 60)
    print(f"{len(planned)} points ({failed} failed) in {wall_s / 60:.1f} min: {per_minute:.2f} points/min")
    print("worker peak RSS: " + ", ".join(f"{p / 2**20:.0f} MiB" for p in peaks))
    serial = run_sweep(planned[: args.check], out / "serial", executor_name="serial", plots=False)
    same = comparable(serial.runs).equals(comparable(result.runs).loc[comparable(serial.runs).index])
    print(f"{args.check} points rerun serially: rows {'identical' if same else 'DIFFERENT'} to the cluster's")
    print(f"results: {out}")


def _report(done: int, total: int, failed: int, started: float) -> None:
    if done % 10 == 0 or done == total:
        minutes = (time.perf_counter() - started) / 60
        print(f"  {done}/{total} points ({failed} failed), {minutes:.1f} min", flush=True)


if __name__ == "__main__":
    main()
