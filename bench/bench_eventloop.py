"""qsim's event loop against a minimal SimPy callback model of the same protocol, in interleaved pairs.

The minimal model is what a careful user would write by hand for bench/scenarios/core.yaml and
nothing more: five nodes, N=3 replicas per key, fan-out to all three, the client coordinates and
waits for R=2 read or W=2 write replies; exponential links with a mean of 1 ms; zero service time;
Poisson arrivals at 2000/s, half reads, 10,000 uniform keys. It does the protocol's real work:
each replica keeps the newest (timestamp, op id) version of each key in a dict (last writer wins),
the coordinator counts replies to its quorum and keeps the newest version among a read's R
replies, and each finished operation is appended to typed arrays. Every message and arrival is a
callback appended to an ``env.timeout(delay)`` event (no process per message); random numbers are
drawn from numpy in batches and handed out by ``list.pop``.

Each round times ``model.run()`` of qsim on core.yaml and ``env.run()`` of the minimal model for
the same number of operations, alternating which goes first, in CPU time of this process
(``time.process_time``: time waiting for a core another job holds does not count). It prints
each pair, each side's median ops/s and the median of the per-pair ratios qsim / minimal (the
figure to quote: 1.00 = qsim's loop is as fast as the minimal model's). Then it times
``qsim.simulate`` end to end (build, loop and analysis) and the minimal loop again, in pairs,
and prints simulate's ops/s over the minimal loop's.

On a host whose speed changes from one second to the next, a pair's two runs (a few seconds each)
often meet different conditions, and the per-pair ratios spread widely (0.7-1.3 has been seen).
With ``--lockstep K`` it also runs K rounds in which the two sides take turns a slice of
simulated time at a time, so that both meet the same conditions: for the loop, qsim's model
(started as ``Model.run`` starts it, each slice run as it runs it, with ``run_until`` and the
garbage collector made rare) and the minimal model each run to the end of the next of 20 slices
of the run; for ``qsim.simulate``, its progress reports (every 1/200 of ``duration``: 20 in a
200k-operation run of core.yaml) run the minimal model up to the report's simulated time, and the
CPU time spent there is taken out of simulate's. A round's ratio is qsim's ops/s over the minimal
model's, each over its whole run; it prints each round and the medians.

With ``--instructions N`` it also counts, under valgrind's callgrind (``apt-get install
valgrind``), the CPU instructions an operation costs on each of the three sides (qsim's loop,
``qsim.simulate`` end to end, the minimal loop). Each count runs a 2,000-operation warm-up first
(imports and first calls done). A loop's count is that of a run of N operations less that of a
run of N/5, over 4N/5 operations, so that building the model cancels out; ``qsim.simulate``'s is
that of N operations less that of the warm-up alone, so that its fixed costs (the build, the
oracle's integrals) count, as they do in the timed pairs, together with one ``load_scenario`` that
the timed pairs leave out. Instruction counts do not depend on the host's load (callgrind runs
~50x slower: N = 50,000 takes a few minutes on two cores). The ratios minimal / qsim are the
noise-free counterparts of the timed ratios; a side that runs fewer instructions can still be
slower in time (cache misses, branch mispredictions), so the timed pairs remain the figures the
targets name.

To measure another copy of qsim (say, the files before a change), put it first on the path:
``PYTHONPATH=/tmp/before python bench/bench_eventloop.py``.

Usage: python bench/bench_eventloop.py [--ops N] [--repeats K] [--simulate-repeats K] [--lockstep K]
                                       [--instructions N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from array import array
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import simpy

SCENARIO = Path(__file__).parent / "scenarios" / "core.yaml"
WARM_UP_OPS = 2_000  # operations run before the counted ones (imports and first calls done)

# Run under callgrind: a warm-up of one side, then (if argv[2] > 0) that many counted operations.
COUNT_SIDE = """
import sys
sys.path.insert(0, sys.argv[3])
import bench_eventloop as bench
side, ops = sys.argv[1], int(sys.argv[2])
bench.SIDES[side](bench.WARM_UP_OPS)
if ops:
    bench.SIDES[side](ops)
"""
BATCH = 4096  # random numbers drawn per numpy call


class _Op:
    """The in-flight state of one operation of the minimal model."""

    __slots__ = ("best", "done", "id", "key", "replies", "start", "version", "write")

    def __init__(self, op_id: int, write: bool, key: int, start: float):
        self.id, self.write, self.key, self.start = op_id, write, key, start
        self.version = (start, op_id) if write else None  # LWW: timestamp, then writer
        self.replies, self.best, self.done = 0, None, False


class MinimalModel:
    """Leaderless N/R/W quorums on SimPy, written with nothing beyond what the protocol needs."""

    def __init__(
        self, ops: int, seed: int = 1, n: int = 3, r: int = 2, w: int = 2, nodes: int = 5, keys: int = 10_000
    ):
        self.env = simpy.Environment()
        self._ops, self._r, self._w, self._keys = ops, r, w, keys
        rng = np.random.default_rng(seed)
        self._rng = rng
        # A key's replicas: n consecutive nodes from a random start (keys are uniform: any fixed map).
        starts = rng.integers(0, nodes, keys)
        self._replicas = [tuple((s + i) % nodes for i in range(n)) for s in starts.tolist()]
        self._stores: list[dict] = [{} for _ in range(nodes)]
        self._delays: list[float] = []
        self._arrivals: list[tuple] = []
        self._issued = 0
        self.starts, self.ends, self.commits = array("d"), array("d"), array("d")
        self.ids, self.keys, self.versions = array("q"), array("q"), array("q")
        self.writes = array("b")

    # --- random numbers, in batches ------------------------------------------------------------

    def _delay(self) -> float:
        delays = self._delays
        if not delays:
            delays.extend(self._rng.exponential(1.0, BATCH).tolist())
        return delays.pop()

    def _arrival(self) -> tuple:
        arrivals = self._arrivals
        if not arrivals:
            rng = self._rng
            gaps = rng.exponential(0.5, BATCH).tolist()  # ms: 2000/s
            writes = (rng.random(BATCH) >= 0.5).tolist()
            keys = rng.integers(0, self._keys, BATCH).tolist()
            arrivals.extend(zip(gaps, writes, keys, strict=True))
        return arrivals.pop()

    # --- the protocol --------------------------------------------------------------------------

    def run(self) -> None:
        """Issue every operation and run until the last message is delivered."""
        self._next_arrival()
        self.env.run()

    def start(self) -> None:
        """Schedule the first arrival, for a run in slices (:meth:`run_to`)."""
        self._next_arrival()

    def run_to(self, ms: float | None) -> None:
        """Run until simulated time ``ms`` (None: to the end), after :meth:`start`."""
        if ms is None or ms > self.env.now:
            self.env.run(until=ms)

    def _next_arrival(self) -> None:
        if self._issued < self._ops:
            arrival = self._arrival()
            self.env.timeout(arrival[0], arrival).callbacks.append(self._arrive)

    def _arrive(self, event) -> None:
        _, write, key = event._value
        env = self.env
        op = _Op(self._issued, write, key, env._now)
        self._issued += 1
        handler = self._on_write if write else self._on_read
        for node in self._replicas[key]:
            env.timeout(self._delay(), (op, node)).callbacks.append(handler)
        self._next_arrival()

    def _on_write(self, event) -> None:
        op, node = event._value
        store = self._stores[node]
        current = store.get(op.key)
        if current is None or op.version > current:
            store[op.key] = op.version
        self.env.timeout(self._delay(), op).callbacks.append(self._on_ack)

    def _on_read(self, event) -> None:
        op, node = event._value
        reply = (op, self._stores[node].get(op.key))
        self.env.timeout(self._delay(), reply).callbacks.append(self._on_response)

    def _on_ack(self, event) -> None:
        op = event._value
        if op.done:
            return
        op.replies += 1
        if op.replies == self._w:
            self._record(op, op.id, self.env._now)

    def _on_response(self, event) -> None:
        op, version = event._value
        if op.done:
            return
        op.replies += 1
        if version is not None and (op.best is None or version > op.best):
            op.best = version
        if op.replies == self._r:
            self._record(op, op.best[1] if op.best is not None else -1, float("nan"))

    def _record(self, op: _Op, version: int, commit: float) -> None:
        op.done = True
        now = self.env._now
        self.starts.append(op.start)
        self.ends.append(now)
        self.commits.append(commit)
        self.ids.append(op.id)
        self.keys.append(op.key)
        self.versions.append(version)
        self.writes.append(op.write)

    def columns(self) -> dict[str, np.ndarray]:
        """The records as numpy columns, in the order operations finished."""
        return {
            "op_id": np.frombuffer(self.ids, np.int64),
            "is_write": np.frombuffer(self.writes, np.int8).astype(bool),
            "key": np.frombuffer(self.keys, np.int64),
            "start_ms": np.frombuffer(self.starts),
            "end_ms": np.frombuffer(self.ends),
            "commit_ms": np.frombuffer(self.commits),
            "version": np.frombuffer(self.versions, np.int64),
        }


def time_minimal(ops: int) -> float:
    """Return ops/s (CPU time) of the minimal model's ``env.run()``."""
    model = MinimalModel(ops)
    gc.collect()
    started = time.process_time()
    model.run()
    seconds = time.process_time() - started
    assert len(model.ids) == ops
    return ops / seconds


def time_qsim(ops: int) -> float:
    """Return ops/s (CPU time) of qsim's ``model.run()`` on core.yaml."""
    from qsim.model.build import build
    from qsim.rng import RandomStreams

    scenario = qsim_scenario(ops)
    model = build(scenario, RandomStreams(scenario.seed))
    gc.collect()
    started = time.process_time()
    model.run()
    seconds = time.process_time() - started
    return len(model.recorder) / seconds


def time_simulate(ops: int) -> float:
    """Return ops/s (CPU time) of ``qsim.simulate`` on core.yaml: build, loop and analysis."""
    import qsim

    scenario = qsim_scenario(ops)
    gc.collect()
    started = time.process_time()
    result = qsim.simulate(scenario, reraise=True)
    return len(result.ops) / (time.process_time() - started)


SIDES = {"qsim loop": time_qsim, "qsim.simulate": time_simulate, "minimal loop": time_minimal}
SLICES = 20  # lock-step: slices of simulated time per run


class _Minimal:
    """The minimal model run in slices of simulated time, its CPU time added up, with the garbage
    collector as it is outside qsim's runs (``Model.run`` makes it run rarely while it runs)."""

    def __init__(self, ops: int) -> None:
        self.model, self.seconds, self._thresholds = MinimalModel(ops), 0.0, gc.get_threshold()
        self.model.start()

    def run_to(self, ms: float | None) -> None:
        inside = gc.get_threshold()
        gc.set_threshold(*self._thresholds)
        started = time.process_time()
        self.model.run_to(ms)
        self.seconds += time.process_time() - started
        gc.set_threshold(*inside)

    def ops_per_s(self) -> float:
        assert len(self.model.ids) == self.model._ops
        return len(self.model.ids) / self.seconds


def lockstep_loop(ops: int) -> float:
    """Return qsim's loop ops/s over the minimal loop's, the two run by turns, a slice of simulated
    time each (see the module docstring)."""
    from qsim.model.build import build, rare_collections
    from qsim.model.clock import run_until
    from qsim.rng import RandomStreams

    scenario = qsim_scenario(ops)
    model, minimal = build(scenario, RandomStreams(scenario.seed)), _Minimal(ops)
    stop, env, seconds = model.start(), model.env, 0.0
    slice_ms = ops * 0.5 / SLICES  # arrivals at 2000/s
    gc.collect()
    while not stop.triggered:
        started = time.process_time()
        with rare_collections():  # as Model.run runs
            run_until(env, env.timeout(slice_ms))
        seconds += time.process_time() - started
        minimal.run_to(env.now)
    minimal.run_to(None)
    return len(model.recorder) / seconds / minimal.ops_per_s()


def lockstep_simulate(ops: int) -> float:
    """Return ``qsim.simulate``'s ops/s over the minimal loop's, the minimal model run in slices from
    simulate's progress reports, its time taken out of simulate's (see the module docstring)."""
    import qsim

    scenario, minimal = qsim_scenario(ops), _Minimal(ops)
    gc.collect()
    started = time.process_time()
    result = qsim.simulate(
        scenario, reraise=True, progress=lambda done, total, unit: minimal.run_to(done * 1e3)
    )
    seconds = time.process_time() - started - minimal.seconds
    minimal.run_to(None)
    return len(result.ops) / seconds / minimal.ops_per_s()


def lockstep(ops: int, rounds: int) -> None:
    """Print the lock-step ratios of each round and their medians."""
    print(f"lock-step: each side runs a slice of simulated time by turns, {SLICES} slices a run")
    lockstep_simulate(WARM_UP_OPS)  # imports and first calls, which a first simulate pays for
    loops, ends = [], []
    for i in range(rounds):
        loops.append(lockstep_loop(ops))
        ends.append(lockstep_simulate(ops))
        print(f"  round {i + 1}: qsim loop {loops[-1]:.3f}, qsim.simulate {ends[-1]:.3f} of the minimal loop")
    for name, ratios, target in (("event loop", loops, 1.0), ("end-to-end", ends, 0.9)):
        median = statistics.median(ratios)
        verdict = "PASS" if median >= target else "MISS"
        print(f"lock-step {name} ratio {median:.3f} (range {min(ratios):.3f}-{max(ratios):.3f}):"
              f" {verdict} (target >= {target})")  # fmt: skip


def qsim_scenario(ops: int):
    """core.yaml, stopped after ``ops`` operations."""
    import qsim

    return qsim.load_scenario(SCENARIO, [f"workload.max_ops={ops}"])


def count_instructions(ops: int) -> None:
    """Print the instructions per operation of each side (callgrind; see the module docstring)."""
    from callgrind import collected

    here = str(Path(__file__).parent)
    spans = {side: (ops, 0 if side == "qsim.simulate" else ops // 5) for side in SIDES}
    runs = [(side, n) for side, span in spans.items() for n in span]
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(2) as pool:
        folders = [Path(scratch) / str(i) for i in range(len(runs))]
        for folder in folders:
            folder.mkdir()

        def count(run: tuple[str, int], folder: Path) -> int:
            return collected(COUNT_SIDE, [run[0], str(run[1]), here], folder)

        total = dict(zip(runs, pool.map(count, runs, folders), strict=True))
    per_op = {
        side: (total[side, large] - total[side, small]) / (large - small)
        for side, (large, small) in spans.items()
    }
    minimal = per_op["minimal loop"]
    print(f"instructions per operation (callgrind, {ops} ops after a {WARM_UP_OPS}-op warm-up):")
    for side in ("qsim loop", "qsim.simulate"):
        print(
            f"  {side} {per_op[side]:,.0f} vs minimal loop {minimal:,.0f}: ratio {minimal / per_op[side]:.3f}"
        )


def pairs(first, second, ops: int, repeats: int, label: str) -> list[float]:
    """Time ``first`` and ``second`` in ``repeats`` interleaved pairs; print and return the ratios."""
    ratios, mine, base = [], [], []
    for i in range(repeats):
        order = [(first, mine), (second, base)]
        for timer, rates in order if i % 2 == 0 else reversed(order):
            rates.append(timer(ops))
        ratios.append(mine[-1] / base[-1])
        print(f"  pair {i + 1}: {label} {mine[-1] / 1e3:.1f} k ops/s,"
              f" minimal loop {base[-1] / 1e3:.1f} k ops/s, ratio {ratios[-1]:.3f}")  # fmt: skip
    print(
        f"median: {label} {statistics.median(mine) / 1e3:.1f} k ops/s, minimal loop"
        f" {statistics.median(base) / 1e3:.1f} k ops/s; median pair ratio {statistics.median(ratios):.3f}"
        f" (range {min(ratios):.3f}-{max(ratios):.3f})"
    )
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200_000, help="operations per run (default 200000)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved loop pairs (default 5; 0: skip)")
    parser.add_argument(
        "--simulate-repeats", type=int, default=3, help="interleaved simulate pairs (default 3; 0: skip)"
    )
    parser.add_argument(
        "--lockstep", type=int, default=0, metavar="K", help="also K lock-step rounds (default 0: skip)"
    )
    parser.add_argument(
        "--instructions", type=int, default=0, metavar="N", help="also count instructions, N ops (valgrind)"
    )
    args = parser.parse_args()
    import qsim

    print(f"qsim from {Path(qsim.__file__).parent}; {SCENARIO.name}, {args.ops} ops per run")
    if args.repeats:
        print("event loop: qsim model.run() vs the minimal callback model's env.run()")
        loop = statistics.median(pairs(time_qsim, time_minimal, args.ops, args.repeats, "qsim loop"))
        verdict = "PASS" if loop >= 1.0 else "MISS"
        print(f"event loop ratio {loop:.3f}: {verdict} (target >= 1.0)")
    if args.simulate_repeats:
        print("end to end: qsim.simulate (build + loop + analysis) vs the minimal model's env.run()")
        ratios = pairs(time_simulate, time_minimal, args.ops, args.simulate_repeats, "qsim.simulate")
        end_to_end = statistics.median(ratios)
        verdict = "PASS" if end_to_end >= 0.9 else "MISS"
        print(f"end-to-end ratio {end_to_end:.3f}: {verdict} (target >= 0.9)")
    if args.lockstep:
        lockstep(args.ops, args.lockstep)
    if args.instructions:
        count_instructions(args.instructions)


if __name__ == "__main__":
    main()
