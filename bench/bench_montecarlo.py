"""Trials per second of the PBS WARS Monte Carlo (:func:`qsim.analysis.montecarlo.wars`).

A trial is one write then one read of a fresh key, t ms after the write's outcome: 4N link-delay
draws (exponential, mean 1 ms), the W-th fastest write acknowledgement, the first R read responses
and whether one of them held the write. The script times ``wars`` alone (no ops table, no summary)
for N=3 and N=5, fan-out to all replicas, with R=W=1 and with R=W=majority, one delay and
``--trials`` trials per call, and prints the median of ``--repeats`` calls against the target of
3 million trials per second (PERFORMANCE.md measured ~7.8M/s for a minimal numpy version at N=3).
The machines are shared and noisy: compare medians, and rows measured in one run.

Usage: python bench/bench_montecarlo.py [--trials N] [--repeats K]
"""

from __future__ import annotations

import argparse
import statistics
import time

import qsim
from qsim.analysis.montecarlo import wars
from qsim.rng import RandomStreams

TARGET_TRIALS_PER_S = 3_000_000
CASES = ((3, 1, 1), (3, 2, 2), (5, 1, 1), (5, 3, 3))


def scenario(n: int, r: int, w: int) -> qsim.Scenario:
    """Return a probe scenario of N=n replicas, R=r, W=w, exponential links of mean 1 ms."""
    return qsim.scenario_from_dict(
        {
            "name": "bench-montecarlo",
            "cluster": {"nodes": n},
            "network": {"latency": {"dist": "exponential", "mean": 1.0}},
            "quorum": {"n": n, "r": r, "w": w},
            "workload": {"arrival": {"type": "probe", "delays": [1.0]}},
        }
    )


def trials_per_second(n: int, r: int, w: int, trials: int, repeats: int) -> float:
    """Return the median trials per second of ``repeats`` calls of ``wars``."""
    probe = scenario(n, r, w)
    rng = RandomStreams(1).generator("montecarlo")
    wars(probe, 1000, rng)  # warm up: imports, first allocations
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        wars(probe, trials, rng)
        rates.append(trials / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3_000_000, help="trials per timed call")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per case (median)")
    args = parser.parse_args()
    print(f"wars(): {args.trials:,} trials per call, median of {args.repeats}")
    for n, r, w in CASES:
        rate = trials_per_second(n, r, w, args.trials, args.repeats)
        verdict = "PASS" if rate >= TARGET_TRIALS_PER_S else "MISS"
        print(f"  N={n} R={r} W={w}: {rate / 1e6:5.2f} M trials/s  {verdict} (target 3 M/s)")


if __name__ == "__main__":
    main()
