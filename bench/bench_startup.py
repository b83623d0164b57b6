"""How long qsim takes to start: `import qsim`, `qsim --help`, `qsim validate`, each the median
wall time of fresh processes, beside `import simpy, numpy, pandas` measured in the same run.

    python bench/bench_startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QSIM = [sys.executable, "-m", "qsim"]
SCENARIOS = ROOT / "scenarios"
COMMANDS = {
    "import simpy, numpy, pandas (baseline)": [sys.executable, "-c", "import simpy, numpy, pandas"],
    "import qsim": [sys.executable, "-c", "import qsim"],
    "qsim --help": [*QSIM, "--help"],
    "qsim validate quickstart.yaml": [*QSIM, "validate", str(SCENARIOS / "quickstart.yaml")],
    "qsim validate choose-nrw.yaml (69 points)": [
        *QSIM,
        "validate",
        str(SCENARIOS / "choose-nrw.yaml"),
    ],
}


def wall_s(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="fresh processes per command (default 7)")
    rounds = parser.parse_args().rounds
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(rounds):  # interleaved, so a noisy moment hits every command alike
        for name, command in COMMANDS.items():
            times[name].append(wall_s(command))
    baseline = statistics.median(next(iter(times.values())))
    print(f"start-up, median of {rounds} fresh processes each")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:45s} {1000 * median:7.0f} ms   {median / baseline:5.2f}x the baseline")


if __name__ == "__main__":
    main()
