"""Peak memory of long runs: the streamed history (bounded memory) against the in-memory one.

Runs ``qsim run bench/scenarios/core.yaml`` (fault-free N=3, R=W=2, 10,000 uniform keys) for each
``--ops`` count in a fresh process, with plots, and reports the process's peak RSS
(``ru_maxrss``) and wall time. Runs longer than ``--chunk-ops`` stream their history to disk and
are analysed out of core; ``--in-memory`` also runs each count with the whole history in memory
(``--chunk-ops`` at its maximum), as every run was analysed before streaming: the baseline. Issue
11's target: 20M operations under 1.5 GiB, and peak RSS growing less than 20% from 2M to 20M.

Usage: python bench/bench_bounded.py [--ops 2000000 20000000] [--in-memory] [--out /tmp/bounded]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCENARIO = Path(__file__).parent / "scenarios" / "core.yaml"
RATE_PER_S = 2000  # core.yaml's arrival rate
IN_MEMORY = 1 << 26  # the largest --chunk-ops: nothing streams below 67M operations
CHILD = """
import resource, sys
from qsim.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print("MAXRSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, file=sys.stderr)
"""


def measure(ops: int, out: Path, chunk_ops: int | None) -> dict:
    """Run one ``qsim run`` of ``ops`` operations in a fresh process; return its peak RSS and time."""
    duration_s = ops / RATE_PER_S * 1.01 + 10  # the scenario's duration is only a bound beyond max_ops
    args = ["run", str(SCENARIO), "--set", f"workload.max_ops={ops}", "--set", f"duration={duration_s:.0f}s"]
    args += ["--out", str(out), "-q"]
    if chunk_ops is not None:
        args += ["--chunk-ops", str(chunk_ops)]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=False)
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"qsim run failed ({done.returncode}): {done.stderr[-2000:]}")
    peak = int(next(line.split()[1] for line in done.stderr.splitlines() if line.startswith("MAXRSS")))
    summary = json.loads((out / "summary.json").read_text())
    return {"ops": ops, "peak_bytes": peak, "wall_s": wall_s, "ops_in_run": summary["runtime"]["ops"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, nargs="+", default=[2_000_000, 20_000_000])
    parser.add_argument("--in-memory", action="store_true", help="also run each count all in memory")
    parser.add_argument("--out", type=Path, default=None, help="where the run folders go (a temp folder)")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="qsim-bounded-"))
    modes = [("streamed", None)] + ([("in memory", IN_MEMORY)] if args.in_memory else [])
    rows = []
    for ops in args.ops:
        for mode, chunk in modes:
            row = measure(ops, root / f"{mode.replace(' ', '-')}-{ops}", chunk) | {"mode": mode}
            rows.append(row)
            if row["ops_in_run"] != ops:
                raise SystemExit(f"the run simulated {row['ops_in_run']:,} operations, not {ops:,}")
            peak = row["peak_bytes"]
            print(f"{mode:>9}  {ops:>11,} ops  peak RSS {peak / 2**20:8.0f} MiB  {row['wall_s']:7.1f} s  "
                  f"({peak / ops:6.1f} bytes/op)", flush=True)  # fmt: skip
    streamed = [r for r in rows if r["mode"] == "streamed"]
    if len(streamed) >= 2:
        first, last = streamed[0], streamed[-1]
        growth = last["peak_bytes"] / first["peak_bytes"] - 1
        span = f"{first['ops']:,} -> {last['ops']:,} ops"
        print(f"peak RSS growth {span}, streamed: {growth:+.1%} (target < +20%)")
    print(f"run folders: {root}")


if __name__ == "__main__":
    main()
