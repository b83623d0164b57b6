"""Counting the CPU instructions of a Python snippet under valgrind's callgrind (benchmarks share it).

Instruction counts do not depend on the host's load, so they resolve differences that timed runs
on a noisy machine cannot. ``apt-get install valgrind`` provides it; callgrind runs ~50x slower.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def collected(code: str, args: list[str], scratch: Path, cwd: Path | None = None) -> int:
    """Return the instructions callgrind counts for ``python -c code args...``.

    The hash seed is fixed: string hashing and set order otherwise vary the count.
    """
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch / 'callgrind.out'}",
         sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))
