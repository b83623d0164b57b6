"""The PBS WARS Monte Carlo: the kernel's trials per second, and the whole engine against its kernel.

A trial is one write then one read of a fresh key, t ms after the write's outcome: 4N link-delay
draws, the W-th fastest write acknowledgement, the first R read responses and whether one of them
held the write. Three parts, each printing its figures against a baseline measured in this run:

1. ``wars`` alone (no summary): median trials per second of ``--repeats`` calls for N=3 and N=5,
   R=W=1 and majorities, against the target of 3 million trials per second.
2. End to end, for ``--trials`` trials (1M): the kernel ``wars`` alone, then
   ``montecarlo.run(table=False)`` (kernel, summary from the arrays, t at probability, sorted
   latencies) and ``run(table=True)`` (plus the per-trial ops table), interleaved, ``--repeats``
   rounds; medians and their ratios to the kernel (target: run(table=False) <= 2.0x). On N=3,
   R=W=1, exponential links, and on the shipped scenarios/pbs-probe.yaml (its 6 delays share the
   trials).
3. Peak RSS of a fresh process for the same 1M trials: the imports and the scenario alone (the
   floor), the kernel alone, ``run(table=False)``, and ``qsim run --engine montecarlo --no-plots`` (the whole
   command, results folder written).

The machines are shared and noisy: compare medians, and rows measured in one run.

Usage: python bench/bench_montecarlo.py [--trials N] [--repeats K] [--skip-rates]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import qsim
from qsim.analysis import montecarlo
from qsim.analysis.montecarlo import wars
from qsim.rng import RandomStreams
from qsim.scenario import resolved_dict, scenario_from_dict, written_yaml

TARGET_TRIALS_PER_S = 3_000_000
TARGET_RATIO = 2.0
CASES = ((3, 1, 1), (3, 2, 2), (5, 1, 1), (5, 3, 3))
PBS_PROBE = Path(__file__).resolve().parent.parent / "scenarios" / "pbs-probe.yaml"


def scenario(n: int, r: int, w: int, trials: int = 1000) -> qsim.Scenario:
    """Return a probe scenario of N=n replicas, R=r, W=w, exponential links of mean 1 ms, one delay."""
    return qsim.scenario_from_dict(
        {
            "name": "bench-montecarlo",
            "cluster": {"nodes": n},
            "network": {"latency": {"dist": "exponential", "mean": 1.0}},
            "quorum": {"n": n, "r": r, "w": w},
            "workload": {"arrival": {"type": "probe", "delays": [1.0], "trials": trials}},
        }
    )


def pbs_probe(trials: int) -> qsim.Scenario:
    """Return scenarios/pbs-probe.yaml with ``trials`` trials in all, shared by its delays."""
    data = resolved_dict(qsim.load_scenario(PBS_PROBE))
    arrival = data["workload"]["arrival"]
    arrival["trials"] = -(-trials // len(arrival["delays"]))
    return scenario_from_dict(data)


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


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def end_to_end(probe: qsim.Scenario, repeats: int) -> dict[str, float]:
    """Return the median seconds of the kernel, run(table=False) and run(table=True), interleaved."""
    trials = probe.workload.arrival.trials
    calls = {
        "kernel": lambda: wars(probe, trials, RandomStreams(probe.seed).generator("montecarlo")),
        "run": lambda: montecarlo.run(probe),
        "run+table": lambda: montecarlo.run(probe, table=True),
    }
    montecarlo.run(scenario(3, 1, 1, 1000), table=True)  # warm up: imports, first allocations
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            times[name].append(timed(call))
    return {name: statistics.median(values) for name, values in times.items()}


HIGH_WATER = """
import sys, traceback
status = 0
try:
    {code}
except SystemExit as stop:
    status = stop.code or 0
except BaseException:
    traceback.print_exc()
    status = 1
# VmHWM is this process's own peak: ru_maxrss would carry the parent's over fork and exec.
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
sys.stderr.write("\\n" + peak.split()[1] + "\\n")
sys.exit(status)
"""


def peak_rss_mib(code: str) -> tuple[float, float, int]:
    """Return the peak RSS (MiB) and wall time (s) of a fresh Python process running ``code``."""
    started = time.perf_counter()
    script = HIGH_WATER.format(code=code.replace("\n", "\n    "))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    peak_kib = float(done.stderr.strip().splitlines()[-1])
    return peak_kib / 1024, time.perf_counter() - started, done.returncode


def memory(probe: qsim.Scenario) -> None:
    """Print the peak RSS of fresh processes drawing the same trials."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "probe.yaml"
        path.write_text(written_yaml(resolved_dict(probe)))
        load = (
            f"import qsim; from qsim.analysis import montecarlo as mc; s = qsim.load_scenario({str(path)!r})"
        )
        rng = "qsim.rng.RandomStreams(1).generator('montecarlo')"
        cli = [
            "qsim",
            "run",
            str(path),
            "--engine",
            "montecarlo",
            "--no-plots",
            "-q",
            "--out",
            f"{folder}/out",
        ]
        codes = {
            "imports only": load,
            "kernel wars()": f"{load}; mc.wars(s, s.workload.arrival.trials, {rng})",
            "run(table=False)": f"{load}; mc.run(s)",
            "qsim run --engine montecarlo": f"import runpy; sys.argv = {cli!r}\n"
            "runpy.run_module('qsim', run_name='__main__')",
        }
        for name, code in codes.items():
            rss, wall, status = peak_rss_mib(code)
            note = "" if status == 0 else f"  (exit status {status}: failed)"
            print(f"  {name:<30} peak RSS {rss:7.0f} MiB  wall {wall:5.2f} s{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1_000_000, help="trials per timed call")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per case (median)")
    parser.add_argument("--skip-rates", action="store_true", help="skip part 1 (kernel trials per second)")
    args = parser.parse_args()
    if not args.skip_rates:
        print(f"1. wars(): {args.trials:,} trials per call, median of {args.repeats}")
        for n, r, w in CASES:
            rate = trials_per_second(n, r, w, args.trials, args.repeats)
            verdict = "PASS" if rate >= TARGET_TRIALS_PER_S else "MISS"
            print(f"  N={n} R={r} W={w}: {rate / 1e6:5.2f} M trials/s  {verdict} (target 3 M/s)")
    cases = {
        "N=3 R=W=1, exponential": scenario(3, 1, 1, args.trials),
        "pbs-probe.yaml": pbs_probe(args.trials),
    }
    print(f"2. end to end, {args.trials:,} trials, medians of {args.repeats} interleaved rounds")
    for name, probe in cases.items():
        median = end_to_end(probe, args.repeats)
        kernel = median["kernel"]
        ratio = median["run"] / kernel
        verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
        print(
            f"  {name:<24} kernel {kernel:5.2f} s | run(table=False) {median['run']:5.2f} s = {ratio:4.2f}x "
            f"{verdict} (target <= {TARGET_RATIO}x) | run(table=True) {median['run+table']:5.2f} s = "
            f"{median['run+table'] / kernel:4.2f}x"
        )
    print(f"3. peak RSS of a fresh process, N=3 R=W=1, {args.trials:,} trials")
    memory(cases["N=3 R=W=1, exponential"])


if __name__ == "__main__":
    main()
