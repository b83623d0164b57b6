"""Event-loop speed of a 3x3 grid quorum system against a threshold system, in interleaved pairs.

Issue 14 asks that drawing quorums from a strategy be cheap: a 3x3 grid must simulate within 20%
of a threshold system that sends as many messages per operation. Both run bench/scenarios/core.yaml
adapted: 9 nodes, fan-out ``quorum`` on both sides, zero service time, the client coordinates.

- threshold: n=9, r=w=3, ``replica_selection: random`` (the replica-selection path, no
  ``quorum.system``): 3 requests and 3 replies per operation.
- grid: ``quorum.system`` a 3x3 grid, reads a row, writes one node of every row
  (``row_cover``), strategy ``uniform``: 3 + 3 messages per operation too.
- grid-optimal (with ``--optimal``): the same grid with strategy ``optimal``.

As in bench_compare.py, each round times ``model.run()`` once per side in fresh subprocesses, by
the CPU time of the process, the order reversed every other round; it prints each round, the
median ops/s of each side and the median of the per-round ratios grid/threshold, the figure to
quote (1.00 = the same speed; 0.80 = the 20% the issue allows). Messages and SimPy events per
operation are printed to show that the sides do the same work.

With ``--instructions`` it also counts each side's CPU instructions per operation under valgrind's
callgrind: the difference between a 25k- and a 5k-operation run, over 20k operations, so that
start-up and imports cancel out.

Usage: python bench/bench_quorum_systems.py [--rounds K] [--ops N] [--optimal] [--instructions]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from callgrind import collected

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "bench" / "scenarios" / "core.yaml"
ALLOWED_SLOWDOWN = 0.20  # issue 14: the grid within 20% of the threshold system

BASE = [
    "cluster.nodes=9",
    "quorum.n=9",
    "quorum.r=3",
    "quorum.w=3",
    "quorum.read_fanout=quorum",
    "quorum.write_fanout=quorum",
    "quorum.replica_selection=random",
    "quorum.coordinator=client",
]
GRID = "{kind: grid, rows: 3, cols: 3, read: row, write: row_cover, strategy: %s}"
SIDES = {
    "threshold": [],
    "grid": [f"quorum.system={GRID % 'uniform'}"],
    "grid-optimal": [f"quorum.system={GRID % 'optimal'}"],
}

# Run in a subprocess: argv = scenario, max_ops, overrides...; prints ops, seconds, messages, events.
TIME_LOOP = """
import gc, json, sys, time
import qsim
from qsim.model.build import build
from qsim.rng import RandomStreams
from qsim.scenario.schema import MESSAGE_KINDS
scenario = qsim.load_scenario(sys.argv[1], [f"workload.max_ops={sys.argv[2]}", *sys.argv[3:]])
model = build(scenario, RandomStreams(scenario.seed))
gc.collect()
started = time.process_time()
model.run()
seconds = time.process_time() - started
messages = sum(model.network.delivered(kind) for kind in range(len(MESSAGE_KINDS)))
# SimPy numbers every scheduled event from one counter; reading it is the only way to count.
print(json.dumps({"ops": len(model.recorder), "seconds": seconds, "messages": messages,
                  "events": next(model.env._eid)}))
"""

# The event loop alone, for callgrind: its instruction count is in callgrind's "Collected" line.
RUN_LOOP = """
import sys
import qsim
from qsim.model.build import build
from qsim.rng import RandomStreams
scenario = qsim.load_scenario(sys.argv[1], [f"workload.max_ops={sys.argv[2]}", *sys.argv[3:]])
build(scenario, RandomStreams(scenario.seed)).run()
"""


def overrides(side: str) -> list[str]:
    """The overrides of core.yaml that make ``side``'s scenario."""
    return [*BASE, *SIDES[side]]


def measure(side: str, ops: int) -> dict:
    """Time one run of ``side``'s event loop in a fresh interpreter; return what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", TIME_LOOP, str(SCENARIO), str(ops), *overrides(side)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_speed(sides: list[str], rounds: int, ops: int) -> dict[str, dict]:
    """Time ``rounds`` interleaved rounds; print each and the medians; return the first run of each side."""
    rates: dict[str, list[float]] = {side: [] for side in sides}
    first: dict[str, dict] = {}
    for i in range(rounds):
        for side in sides if i % 2 == 0 else reversed(sides):
            result = measure(side, ops)
            first.setdefault(side, result)
            rates[side].append(result["ops"] / result["seconds"])
        shown = ", ".join(f"{side} {rates[side][-1] / 1e3:.1f}" for side in sides)
        ratios = ", ".join(f"{side}/threshold {ratio(rates, side, -1):.3f}" for side in sides[1:])
        print(f"round {i + 1}: {shown} k ops/s; {ratios}")
    print_medians(rates)
    return first


def ratio(rates: dict[str, list[float]], side: str, round_: int) -> float:
    """``side``'s ops/s over the threshold system's in one round."""
    return rates[side][round_] / rates["threshold"][round_]


def print_medians(rates: dict[str, list[float]]) -> None:
    """Print each side's median ops/s and each grid's median per-round ratio to the threshold system."""
    medians = ", ".join(f"{side} {statistics.median(runs) / 1e3:.1f}" for side, runs in rates.items())
    print(f"median: {medians} k ops/s")
    for side in list(rates)[1:]:
        ratios = [ratio(rates, side, i) for i in range(len(rates[side]))]
        median = statistics.median(ratios)
        verdict = "PASS" if median >= 1 - ALLOWED_SLOWDOWN else "MISS"
        print(
            f"median pair ratio {side}/threshold {median:.3f} (range {min(ratios):.3f}-{max(ratios):.3f});"
            f" {verdict} (at least {1 - ALLOWED_SLOWDOWN:.2f})"
        )


def print_work(first: dict[str, dict]) -> None:
    """Print the messages and SimPy events per operation of each side (the same work if equal)."""
    for side, result in first.items():
        ops = result["ops"]
        print(
            f"{side}: {result['messages'] / ops:.3f} messages/op, {result['events'] / ops:.3f} events/op"
            f" ({ops} ops)"
        )


def instructions(side: str, ops: int, scratch: Path) -> int:
    """Return the instructions callgrind counts for a whole run of ``ops`` operations of ``side``."""
    return collected(RUN_LOOP, [str(SCENARIO), str(ops), *overrides(side)], scratch, cwd=ROOT)


def compare_instructions(sides: list[str], small: int = 5_000, large: int = 25_000) -> None:
    """Print each side's callgrind instructions per operation and its ratio to the threshold's."""
    with tempfile.TemporaryDirectory() as scratch:
        per_op = {
            side: (instructions(side, large, Path(scratch)) - instructions(side, small, Path(scratch)))
            / (large - small)
            for side in sides
        }
    base = per_op["threshold"]
    for side, count in per_op.items():
        print(
            f"instructions per operation (callgrind, {large} - {small} ops): {side} {count:,.0f};"
            f" ratio to threshold {count / base:.4f} ({(count / base - 1) * 100:+.2f}%)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--ops", type=int, default=100_000, help="operations per run (default 100000)")
    parser.add_argument("--optimal", action="store_true", help="also time the grid with strategy optimal")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions per op (valgrind)"
    )
    args = parser.parse_args()
    sides = ["threshold", "grid", *(["grid-optimal"] if args.optimal else [])]
    print(f"{', '.join(sides)}: {args.ops} ops per run of {SCENARIO.name} with {' '.join(BASE)}")
    first = compare_speed(sides, args.rounds, args.ops)
    print_work(first)
    if args.instructions:
        compare_instructions(sides)


if __name__ == "__main__":
    main()
