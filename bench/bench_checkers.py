"""Operations per second of the consistency checkers on simulated histories.

Simulates bench/scenarios/core.yaml (N=3, R=W=2, fan-out all, 10,000 uniform keys) stopped after
200k and 1M operations, and a hot-key variant of each (100 keys, Zipf s=1.1: the hottest key gets
~19% of the operations), then times the linearizability checker (the zones method; the search
method too with --search, which is slower and may answer "unknown" for a key) and, if it exists,
the session checker ``qsim.checks.sessions.check_sessions``. Times are CPU seconds
(``time.process_time``), the median of --repeats runs; the target is a 200k-operation history in
well under 30 s.

Usage: python bench/bench_checkers.py [--ops 200000 1000000] [--repeats 3] [--search]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

import qsim
from qsim.checks.linearizability import check_linearizability

SCENARIO = Path(__file__).parent / "scenarios" / "core.yaml"
VARIANTS = {
    "uniform": [],
    "zipf": ["workload.keys.count=100", "workload.keys.popularity=zipf", "workload.keys.s=1.1"],
}


def history(ops: int, overrides: list[str]) -> pd.DataFrame:
    """The ops table of one run of the benchmark scenario, stopped after ``ops`` operations."""
    scenario = qsim.load_scenario(SCENARIO, [f"workload.max_ops={ops}", *overrides])
    return qsim.simulate(scenario, reraise=True).ops


def timed(check: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Return the median CPU seconds of ``repeats`` calls of ``check`` and its last result."""
    seconds = []
    for _ in range(repeats):
        gc.collect()
        started = time.process_time()
        result = check()
        seconds.append(time.process_time() - started)
    return statistics.median(seconds), result


def session_checker() -> Callable | None:
    """``qsim.checks.sessions.check_sessions`` if it exists."""
    try:
        return importlib.import_module("qsim.checks.sessions").check_sessions
    except (ImportError, AttributeError):
        return None


def report(label: str, n: int, seconds: float, detail: str) -> None:
    print(f"  {label:<26} {seconds:7.2f} s  {n / seconds / 1e3:8.0f} k ops/s  {detail}")


def bench(ops: pd.DataFrame, repeats: int, search: bool) -> None:
    """Time every checker on one history."""
    n = len(ops)
    seconds, result = timed(lambda: check_linearizability(ops), repeats)
    report("linearizability (zones)", n, seconds, _verdicts(result))
    if search:
        seconds, result = timed(lambda: check_linearizability(ops, method="search"), 1)
        report("linearizability (search)", n, seconds, _verdicts(result))
    sessions = session_checker()
    if sessions is None:
        print("  sessions: qsim.checks.sessions.check_sessions is missing")
        return
    seconds, result = timed(lambda: sessions(ops), repeats)
    counts = getattr(result, "counts", None) or {}
    report("sessions", n, seconds, ", ".join(f"{kind} {count}" for kind, count in counts.items()))


def _verdicts(result) -> str:
    return (
        f"{result.keys_checked} keys, {result.keys_invalid} invalid, {result.keys_unknown} unknown,"
        f" {result.violations} violations"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, nargs="+", default=[200_000, 1_000_000], help="history sizes")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per checker (default 3)")
    parser.add_argument("--search", action="store_true", help="also time the search method (one run)")
    args = parser.parse_args()
    for size in args.ops:
        for name, overrides in VARIANTS.items():
            started = time.perf_counter()
            ops = history(size, overrides)
            hottest = ops["key"].value_counts().iloc[0] / len(ops)
            print(
                f"{SCENARIO.name} {name}: {len(ops)} ops, {ops['key'].nunique()} keys"
                f" (hottest {hottest:.1%}), simulated in {time.perf_counter() - started:.1f} s"
            )
            bench(ops, args.repeats, args.search)
            del ops


if __name__ == "__main__":
    main()
