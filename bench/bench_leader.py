"""The leader protocol's steady state against the leaderless core benchmark, in interleaved pairs.

Issue 13's target: fault-free leader replication simulates at least 60% as many operations per
second as the leaderless core benchmark on a comparable workload. Both sides run
bench/scenarios/core.yaml (exponential links with a mean of 1 ms, zero service time, Poisson
arrivals at 2000/s, half reads, 10,000 uniform keys) on three nodes, so that N is the same: the
leaderless side with N=3, R=W=2 and fan-out to all three, the leader side with
``quorum.protocol: leader`` (the group is the three nodes, Q2 = 2) and the given read mode. Each
round times ``model.run()`` of each side (CPU time, ``time.process_time``), alternating which goes
first, and prints each side's ops/s and the median of the per-pair ratios leader / leaderless.

Usage: python bench/bench_leader.py [--ops N] [--rounds K] [--read-mode leader|read_index|lease|follower]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from pathlib import Path

import qsim
from qsim.model.build import build
from qsim.rng import RandomStreams

SCENARIO = Path(__file__).parent / "scenarios" / "core.yaml"


def ops_per_s(overrides: list[str]) -> float:
    """CPU-time ops/s of one event loop of core.yaml with ``overrides``."""
    scenario = qsim.load_scenario(SCENARIO, overrides)
    model = build(scenario, RandomStreams(scenario.seed))
    gc.collect()
    started = time.process_time()
    model.run()
    return len(model.recorder) / (time.process_time() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--read-mode", default="read_index", choices=("leader", "read_index", "lease", "follower")
    )
    args = parser.parse_args()
    common = ["cluster.nodes=3", f"workload.max_ops={args.ops}"]
    leaderless = common
    leader = [*common, "quorum.protocol=leader", f"quorum.leader.read_mode={args.read_mode}"]
    sides = {"leader": [], "leaderless": []}
    ratios = []
    for round_ in range(args.rounds):
        order = ("leader", "leaderless") if round_ % 2 == 0 else ("leaderless", "leader")
        now = {side: ops_per_s(leader if side == "leader" else leaderless) for side in order}
        for side, rate in now.items():
            sides[side].append(rate)
        ratios.append(now["leader"] / now["leaderless"])
        print(f"round {round_ + 1}: leader {now['leader'] / 1e3:.1f} k ops/s, "
              f"leaderless {now['leaderless'] / 1e3:.1f} k ops/s, ratio {ratios[-1]:.3f}")  # fmt: skip
    print(
        f"median: leader ({args.read_mode} reads) {statistics.median(sides['leader']) / 1e3:.1f} k ops/s, "
        f"leaderless {statistics.median(sides['leaderless']) / 1e3:.1f} k ops/s; median pair ratio "
        f"{statistics.median(ratios):.3f} (target >= 0.60)"
    )


if __name__ == "__main__":
    main()
