"""The leader protocol's steady state against the leaderless core benchmark, in interleaved pairs.

Issue 13's target: fault-free leader replication simulates at least 60% as many operations per
second as the leaderless core benchmark on a comparable workload. Both sides run
bench/scenarios/core.yaml (exponential links with a mean of 1 ms, zero service time, Poisson
arrivals at 2000/s, half reads, 10,000 uniform keys) on ``--nodes`` nodes (3), so that N is the
same: the leaderless side with N=3, R=W=2 (majorities) and fan-out to all three, the leader side
with ``quorum.protocol: leader`` (the group is the three nodes, Q2 = 2) and the given read mode
(default ``leader``, the protocol's default: reads through the log, the slowest). Each
round times ``model.run()`` of each side (CPU time, ``time.process_time``), alternating which goes
first, and prints each side's ops/s and the median of the per-pair ratios leader / leaderless:
in the steady state (operations that end after ``--warmup`` simulated ms, by then the first
leader is elected and the clients have found it, over the CPU time after it), the figure to
quote, and over the whole run.

Usage: python bench/bench_leader.py [--ops N] [--rounds K] [--read-mode leader|read_index|lease|follower]
                                   [--nodes N] [--read-fraction F]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from pathlib import Path

import qsim
from qsim.model.build import build, rare_collections
from qsim.model.clock import run_until
from qsim.rng import RandomStreams

SCENARIO = Path(__file__).parent / "scenarios" / "core.yaml"


def ops_per_s(overrides: list[str], warmup_ms: float) -> tuple[float, float]:
    """CPU-time ops/s of one event loop of core.yaml with ``overrides``: after ``warmup_ms``, and whole.

    The steady state starts after the warm-up: by then the leader protocol has elected its first
    leader and the clients have found it (before, they bounce between nodes that know no leader).
    """
    scenario = qsim.load_scenario(SCENARIO, overrides)
    model = build(scenario, RandomStreams(scenario.seed))
    gc.collect()
    started = time.process_time()
    stop = model.start()
    with rare_collections():  # as Model.run
        model.env.run(until=warmup_ms)
        warm, warmed = len(model.recorder), time.process_time()
        if not stop.triggered:
            run_until(model.env, stop)  # as Model.run
        ended = time.process_time()
    return (len(model.recorder) - warm) / (ended - warmed), len(model.recorder) / (ended - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--read-mode", default="leader", choices=("leader", "read_index", "lease", "follower")
    )
    parser.add_argument("--warmup", type=float, default=1000.0, help="simulated ms before the steady state")
    parser.add_argument(
        "--nodes", type=int, default=3, help="N on both sides (leaderless: R = W = a majority, fan-out all)"
    )
    parser.add_argument("--read-fraction", type=float, default=None, help="e.g. 0: writes only, both sides")
    args = parser.parse_args()
    majority = args.nodes // 2 + 1
    common = [f"cluster.nodes={args.nodes}", f"quorum.n={args.nodes}", f"workload.max_ops={args.ops}"]
    if args.read_fraction is not None:
        common.append(f"workload.read_fraction={args.read_fraction}")
    leaderless = [*common, f"quorum.r={majority}", f"quorum.w={majority}"]
    leader = [*common, "quorum.protocol=leader", f"quorum.leader.read_mode={args.read_mode}"]
    steady, whole = [], []  # per round: {side: ops/s}
    for round_ in range(args.rounds):
        order = ("leader", "leaderless") if round_ % 2 == 0 else ("leaderless", "leader")
        rates = {side: ops_per_s(leader if side == "leader" else leaderless, args.warmup) for side in order}
        steady.append({side: rate[0] for side, rate in rates.items()})
        whole.append({side: rate[1] for side, rate in rates.items()})
        now = steady[-1]
        ratio = now["leader"] / now["leaderless"]
        print(f"round {round_ + 1}: steady state: leader {now['leader'] / 1e3:.1f} k ops/s, "
              f"leaderless {now['leaderless'] / 1e3:.1f} k ops/s, ratio {ratio:.3f}"
              f"; whole run ratio {whole[-1]['leader'] / whole[-1]['leaderless']:.3f}")  # fmt: skip
    for name, rounds in (("steady state", steady), ("whole run", whole)):
        median = {side: statistics.median(r[side] for r in rounds) for side in ("leader", "leaderless")}
        ratio = statistics.median(r["leader"] / r["leaderless"] for r in rounds)
        print(
            f"median, {name}: leader ({args.read_mode} reads) {median['leader'] / 1e3:.1f} k ops/s, "
            f"leaderless {median['leaderless'] / 1e3:.1f} k ops/s; median pair ratio {ratio:.3f}"
            + (" (target >= 0.60)" if name == "steady state" else "")
        )


if __name__ == "__main__":
    main()
