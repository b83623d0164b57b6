"""Event-loop speed of this tree against another git revision, in interleaved A/B pairs.

The hosts are noisy, so a change is judged by pairs measured a moment apart: each round times
``model.run()`` of bench/scenarios/core.yaml once with this tree's qsim (A) and once with the
revision's (B), in fresh subprocesses, alternating which goes first. It times the CPU time of the
process (``time.process_time``), not the wall clock, so that time spent waiting for a core that
another job holds does not count; a busy host still slows both sides (shared caches, clocks).
It prints each pair, the median ops/s of each side and the median of the per-pair ratios A/B,
the figure to quote (1.00 = the same speed; 0.97 = this tree is 3% slower). The revision is
checked out into a temporary git worktree, removed afterwards.

With ``--instructions`` it also counts the CPU instructions one operation costs on each side,
under valgrind's callgrind (``apt-get install valgrind``): the difference between a 25k- and a
5k-operation run, over 20k operations, so start-up and imports cancel out. Instruction counts do
not depend on the host's load, so they resolve differences of a fraction of a percent that the
timed pairs cannot (callgrind runs ~50x slower: about a minute a side).

It also compares the peak memory of the event loop of a probe run (scenarios/pbs-probe.yaml)
with a 1 s and a 1 h timeout, on this tree: the deadline queues hold the operations in flight,
so the two should match.

``--set FIELD=VALUE`` (repeatable) changes core.yaml on both sides, e.g. ``--set
quorum.failover=sloppy`` for the checked path, ``--set quorum.protocol=leader`` for the leader
protocol; ``--rounds 0`` skips the timed pairs.

``--lockstep K`` also runs K lock-step rounds: each side's model lives in a child process that runs
to the next of 20 slices of simulated time when told, the two taking turns (alternating which goes
first), each adding up the CPU time of its slices. Both sides meet the same host conditions a
moment apart, so the ratios spread far less than the pairs' on a noisy host.

Usage: python bench/bench_compare.py [--against REV] [--rounds K] [--ops N] [--instructions]
                                     [--lockstep K] [--set FIELD=VALUE ...]
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

# Run in a subprocess with one tree's qsim first on sys.path; prints {"ops": .., "seconds": ..}.
TIME_LOOP = """
import gc, json, sys, time
sys.path.insert(0, sys.argv[1])
import qsim
from qsim.model.build import build
from qsim.rng import RandomStreams
scenario = qsim.load_scenario(sys.argv[2], [f"workload.max_ops={sys.argv[3]}", *sys.argv[4:]])
model = build(scenario, RandomStreams(scenario.seed))
gc.collect()
started = time.process_time()
model.run()
print(json.dumps({"ops": len(model.recorder), "seconds": time.process_time() - started}))
"""

# Peak traced memory (bytes) of a probe run's event loop with the given timeout.
PROBE_PEAK = """
import json, sys, tracemalloc
sys.path.insert(0, sys.argv[1])
import qsim
from qsim.model.build import build
from qsim.rng import RandomStreams
scenario = qsim.load_scenario(sys.argv[2], [f"quorum.timeout={sys.argv[3]}", "workload.arrival.trials=5000"])
tracemalloc.start()
model = build(scenario, RandomStreams(scenario.seed))
built = tracemalloc.get_traced_memory()[0]
model.run()
print(json.dumps({"ops": len(model.recorder), "peak": tracemalloc.get_traced_memory()[1] - built}))
"""


# Lock-step: one tree's model in a child process that runs to each simulated time (ms) read from
# stdin, or to the end for "end", and answers with the CPU seconds that slice took.
LOCKSTEP_CHILD = """
import contextlib, gc, json, sys, time
sys.path.insert(0, sys.argv[1])
import qsim
from qsim.model import build as built
from qsim.rng import RandomStreams
scenario = qsim.load_scenario(sys.argv[2], [f"workload.max_ops={sys.argv[3]}", *sys.argv[4:]])
model = built.build(scenario, RandomStreams(scenario.seed))
rare = getattr(built, "rare_collections", contextlib.nullcontext)  # as Model.run, where it exists
try:
    from qsim.model.clock import run_until
except ImportError:  # a revision before it: SimPy's own loop
    def run_until(env, until):
        env.run(until=until)
stop, env = model.start(), model.env
gc.collect()
print("ready", flush=True)
for line in sys.stdin:
    started = time.process_time()
    with rare():
        if line.strip() == "end":
            if not stop.triggered:
                run_until(env, stop)
        elif not stop.triggered:
            run_until(env, env.timeout(max(float(line) - env.now, 0.0)))
    seconds = time.process_time() - started
    print(json.dumps({"seconds": seconds, "ops": len(model.recorder)}), flush=True)
"""


def measure(script: str, tree: Path, *args: str) -> dict:
    """Run ``script`` with ``tree``'s qsim in a fresh interpreter and return what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tree), *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# The event loop alone, for callgrind: its instruction count is in callgrind's "Collected" line.
RUN_LOOP = """
import sys
sys.path.insert(0, sys.argv[1])
import qsim
from qsim.model.build import build
from qsim.rng import RandomStreams
scenario = qsim.load_scenario(sys.argv[2], [f"workload.max_ops={sys.argv[3]}", *sys.argv[4:]])
build(scenario, RandomStreams(scenario.seed)).run()
"""


def instructions(tree: Path, ops: int, scratch: Path, overrides: list[str]) -> int:
    """Return the instructions callgrind counts for a whole run of ``ops`` operations with ``tree``."""
    return collected(RUN_LOOP, [str(tree), str(SCENARIO), str(ops), *overrides], scratch)


def compare_instructions(
    other: Path, scratch: Path, overrides: list[str], small: int = 5_000, large: int = 25_000
) -> None:
    per_op = {}
    for name, tree in (("this tree", ROOT), ("other", other)):
        counts = [instructions(tree, ops, scratch, overrides) for ops in (large, small)]
        per_op[name] = (counts[0] - counts[1]) / (large - small)
    mine, theirs = per_op["this tree"], per_op["other"]
    print(f"instructions per operation (callgrind, {large} - {small} ops): this tree {mine:,.0f},"
          f" other {theirs:,.0f}; ratio {mine / theirs:.4f} ({(mine / theirs - 1) * 100:+.2f}%)")  # fmt: skip


def ops_per_s(tree: Path, ops: int, overrides: list[str]) -> float:
    result = measure(TIME_LOOP, tree, str(SCENARIO), str(ops), *overrides)
    return result["ops"] / result["seconds"]


def compare_speed(other: Path, rounds: int, ops: int, overrides: list[str]) -> None:
    if not rounds:
        return
    ratios, mine, theirs = [], [], []
    for i in range(rounds):
        order = [(ROOT, mine), (other, theirs)]
        for tree, rates in order if i % 2 == 0 else reversed(order):
            rates.append(ops_per_s(tree, ops, overrides))
        ratios.append(mine[-1] / theirs[-1])
        print(f"round {i + 1}: this tree {mine[-1] / 1e3:.1f} k ops/s, other {theirs[-1] / 1e3:.1f} k ops/s,"
              f" ratio {ratios[-1]:.3f}")  # fmt: skip
    print(
        f"median: this tree {statistics.median(mine) / 1e3:.1f} k ops/s,"
        f" other {statistics.median(theirs) / 1e3:.1f} k ops/s;"
        f" median pair ratio {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})"
    )


class _Side:
    """One tree's model in a child process, run a slice at a time (:data:`LOCKSTEP_CHILD`)."""

    def __init__(self, tree: Path, ops: int, overrides: list[str]):
        self.seconds, self.ops = 0.0, 0
        self._child = subprocess.Popen(
            [sys.executable, "-c", LOCKSTEP_CHILD, str(tree), str(SCENARIO), str(ops), *overrides],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self._child.stdout.readline().strip() == "ready"

    def run_to(self, ms: float | None) -> None:
        """Run to simulated time ``ms`` (None: to the end) and add up the CPU time it took."""
        self._child.stdin.write("end\n" if ms is None else f"{ms!r}\n")
        self._child.stdin.flush()
        answer = json.loads(self._child.stdout.readline())
        self.seconds += answer["seconds"]
        self.ops = answer["ops"]

    def close(self) -> float:
        """End the child; return its operations per CPU second."""
        self._child.stdin.close()
        self._child.wait()
        return self.ops / self.seconds


def compare_lockstep(other: Path, rounds: int, ops: int, overrides: list[str], slices: int = 20) -> None:
    """Time the two trees' loops by turns, a slice of simulated time each, in two child processes.

    Both sides meet the same host conditions a moment apart, so the ratio resolves a few percent
    on a host where the pairs of :func:`compare_speed` spread 0.7-1.3.
    """
    sys.path.insert(0, str(ROOT))
    import qsim

    scenario = qsim.load_scenario(SCENARIO, [f"workload.max_ops={ops}", *overrides])
    if scenario.workload.arrival.type != "poisson":
        raise SystemExit("--lockstep slices simulated time by the Poisson arrival rate: keep arrival.type")
    slice_ms = ops / scenario.workload.arrival.rate * 1e3 / slices
    ratios = []
    for i in range(rounds):
        sides = {"this tree": _Side(ROOT, ops, overrides), "other": _Side(other, ops, overrides)}
        for k in range(1, slices + 2):
            order = list(sides.values()) if (i + k) % 2 == 0 else list(reversed(sides.values()))
            for side in order:
                side.run_to(k * slice_ms if k <= slices else None)
        rates = {name: side.close() for name, side in sides.items()}
        ratios.append(rates["this tree"] / rates["other"])
        print(f"lock-step round {i + 1}: this tree {rates['this tree'] / 1e3:.1f} k ops/s,"
              f" other {rates['other'] / 1e3:.1f} k ops/s, ratio {ratios[-1]:.3f}")  # fmt: skip
    print(
        f"lock-step median ratio {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})"
    )


def compare_timeouts() -> None:
    probe = str(ROOT / "scenarios" / "pbs-probe.yaml")
    peaks = {timeout: measure(PROBE_PEAK, ROOT, probe, timeout) for timeout in ("1s", "1h")}
    short, long = peaks["1s"], peaks["1h"]
    print(
        f"probe event loop, {short['ops']} ops: peak traced {short['peak'] / 2**20:.1f} MiB with a 1 s"
        f" timeout, {long['peak'] / 2**20:.1f} MiB with 1 h (ratio {long['peak'] / short['peak']:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD", help="git revision to compare with (default HEAD)")
    parser.add_argument("--rounds", type=int, default=7, help="A/B pairs (default 7)")
    parser.add_argument("--ops", type=int, default=200_000, help="operations per run (default 200000)")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions per op (valgrind)"
    )
    parser.add_argument(
        "--lockstep", type=int, default=0, metavar="K", help="also K lock-step rounds (default 0: skip)"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE",
        help="a scenario override for both sides, e.g. quorum.failover=sloppy (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        other = Path(scratch) / "other"
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", "-q", str(other), args.against], check=True)
        try:
            changed = f" with {', '.join(args.set)}" if args.set else ""
            print(f"this tree vs {args.against}: {args.ops} ops of {SCENARIO.name}{changed} per run")
            compare_speed(other, args.rounds, args.ops, args.set)
            if args.lockstep:
                compare_lockstep(other, args.lockstep, args.ops, args.set)
            if args.instructions:
                compare_instructions(other, Path(scratch), args.set)
        finally:
            subprocess.run([*git, "remove", "--force", str(other)], check=True)
    compare_timeouts()


if __name__ == "__main__":
    main()
