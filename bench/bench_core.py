"""Simulated operations per second of qsim's event loop, against a plain SimPy baseline.

Runs bench/scenarios/core.yaml (fault-free N=3, R=W=2, exponential links, 200k operations) several
times with the same seed and times only ``model.run()``: building the model and the post-run analysis
are left out. Each repeat also times a bare SimPy loop (one process yielding ``env.timeout(1)``),
because these machines are shared and noisy: the ratio qsim ops/s : SimPy events/s, measured in the
same process a moment apart, is the figure to compare across machines and days. PERFORMANCE.md
quotes ~2.2M events/s for the baseline and ~148k ops/s for a minimal callback model of this
protocol; the target is 100k ops/s.

Afterwards it prints the peak resident memory of the process and times one full ``qsim.simulate``
run, whose wall time also covers building the ops DataFrame, the staleness check and the summary.

Usage: python bench/bench_core.py [--ops N] [--repeats K]
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time
from pathlib import Path

import simpy

import qsim
from qsim.model.build import build
from qsim.rng import RandomStreams

SCENARIO = Path(__file__).parent / "scenarios" / "core.yaml"
TARGET_OPS_PER_S = 100_000
BASELINE_EVENTS = 500_000


def load(ops: int) -> qsim.Scenario:
    """Return the benchmark scenario, stopping after ``ops`` operations."""
    return qsim.load_scenario(SCENARIO, [f"workload.max_ops={ops}"])


def time_model(scenario: qsim.Scenario) -> tuple[int, int, float]:
    """Return (operations, SimPy events, seconds) of one run of the event loop alone."""
    model = build(scenario, RandomStreams(scenario.seed))
    gc.collect()  # start each repeat without the previous model's garbage
    started = time.perf_counter()
    model.run()
    seconds = time.perf_counter() - started
    # SimPy numbers every scheduled event from one counter; reading it is the only way to count.
    return len(model.recorder), next(model.env._eid), seconds


def time_baseline(events: int = BASELINE_EVENTS) -> float:
    """Return events per second of one SimPy process looping on ``env.timeout(1)``."""
    env = simpy.Environment()

    def loop():
        for _ in range(events):
            yield env.timeout(1)

    env.process(loop())
    gc.collect()
    started = time.perf_counter()
    env.run()
    return events / (time.perf_counter() - started)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200_000, help="operations per run (default 200000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (default 3)")
    args = parser.parse_args()
    scenario = load(args.ops)

    print(f"scenario {SCENARIO.name}: N=3 R=W=2, {args.ops} ops, seed {scenario.seed}")
    print(f"peak RSS after imports: {peak_rss_mib():.0f} MiB")
    rates, baselines = [], []
    for repeat in range(1, args.repeats + 1):
        ops, events, seconds = time_model(scenario)
        baseline = time_baseline()
        rates.append(ops / seconds)
        baselines.append(baseline)
        print(
            f"repeat {repeat}: {ops} ops, {events} events ({events / ops:.2f}/op) in {seconds:.3f} s"
            f" = {ops / seconds / 1e3:.1f} k ops/s; SimPy baseline {baseline / 1e6:.2f} M events/s"
        )

    rate, baseline = statistics.median(rates), statistics.median(baselines)
    verdict = "PASS" if rate >= TARGET_OPS_PER_S else "MISS"
    print(
        f"median: {rate / 1e3:.1f} k ops/s, baseline {baseline / 1e6:.2f} M events/s,"
        f" ratio {rate / baseline:.4f} (an op costs the wall time of {baseline / rate:.1f} baseline events);"
        f" {verdict} (target >= {TARGET_OPS_PER_S / 1e3:.0f} k ops/s)"
    )
    print(f"peak RSS after the timed runs: {peak_rss_mib():.0f} MiB")

    runtime = qsim.simulate(scenario, reraise=True).summary["runtime"]
    engine_s, wall_s = runtime["engine_s"], runtime["wall_s"]
    print(
        f"qsim.simulate: {wall_s:.3f} s wall = {engine_s:.3f} s build + event loop"
        f" + {wall_s - engine_s:.3f} s analysis (ops frame, staleness check, summary);"
        f" {runtime['ops'] / wall_s / 1e3:.1f} k ops/s end to end"
    )
    print(f"peak RSS after simulate: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
