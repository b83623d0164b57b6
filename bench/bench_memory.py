"""Bytes each simulated operation leaves behind, measured with tracemalloc.

Runs the event loop of bench/scenarios/core.yaml (fault-free N=3, R=W=2) for 200k and for 1M
operations, without ``qsim.simulate`` and without building a DataFrame, and reports per operation:

- record: ``Recorder.nbytes() / ops``, the packed records (target: at most 60 bytes); the
  buffer's allocated size (``sys.getsizeof``, growth slack included) is shown beside it;
- retained: traced memory once the run has drained, minus traced memory right after the model was
  built, divided by the operations. Everything the run keeps: records, replica stores, the ring's
  key cache, leftover random batches. The stores and the cache stop growing once every key has
  been seen, so this falls towards the record cost as runs get longer; the marginal line (the
  difference between the two runs over their difference in operations) is the cost of one more
  operation;
- peak: the most memory traced at any moment of the run (in-flight operations, scheduled
  messages, buffers being regrown).

tracemalloc slows Python several-fold, so this script reports no timings; see bench_core.py.

Usage: python bench/bench_memory.py
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from dataclasses import dataclass

from bench_core import SCENARIO, load

from qsim.model.build import build
from qsim.rng import RandomStreams

TARGET_RECORD_BYTES = 60
RUNS = (200_000, 1_000_000)
MIB = 2**20


@dataclass(frozen=True)
class Footprint:
    """Memory of one drained run, bytes."""

    ops: int
    record: int  # Recorder.nbytes(): the record columns' used bytes
    record_allocated: int  # the same buffers' allocated size, growth slack included
    built: int  # traced after build, before the first arrival is scheduled
    retained: int  # traced after the run minus ``built``
    peak: int  # most traced at any moment of the run


def measure(ops: int) -> Footprint:
    """Run the event loop for ``ops`` operations under tracemalloc and return its footprint."""
    scenario = load(ops)
    gc.collect()
    tracemalloc.start()
    model = build(scenario, RandomStreams(scenario.seed))
    gc.collect()
    built, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    model.run()
    gc.collect()  # count only what the run keeps, not garbage awaiting the cyclic collector
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    recorder = model.recorder
    buffers = [value for value in vars(recorder).values() if isinstance(value, bytearray)]
    return Footprint(
        ops=len(recorder),
        record=recorder.nbytes(),
        record_allocated=sum(sys.getsizeof(buffer) for buffer in buffers),
        built=built,
        retained=after - built,
        peak=peak,
    )


def main() -> None:
    print(f"scenario {SCENARIO.name}: N=3 R=W=2; bytes per operation after the run has drained")
    footprints = []
    for ops in RUNS:
        f = measure(ops)
        footprints.append(f)
        print(
            f"{f.ops:>9} ops: record {f.record / f.ops:.1f} B/op"
            f" ({f.record_allocated / f.ops:.1f} B/op allocated),"
            f" retained {f.retained / f.ops:.1f} B/op ({f.retained / MIB:.1f} MiB),"
            f" peak traced {f.peak / MIB:.1f} MiB (model as built {f.built / MIB:.1f} MiB)"
        )
    short, long = footprints[0], footprints[-1]
    marginal = (long.retained - short.retained) / (long.ops - short.ops)
    print(f"marginal retained: {marginal:.1f} B per additional op ({short.ops} -> {long.ops} ops)")
    record = long.record / long.ops
    verdict = "PASS" if record <= TARGET_RECORD_BYTES else "MISS"
    print(
        f"record bytes per op at {long.ops} ops: {record:.1f} B; {verdict}"
        f" (target <= {TARGET_RECORD_BYTES} B); retained {long.retained / long.ops:.1f} B/op (information)"
    )


if __name__ == "__main__":
    main()
