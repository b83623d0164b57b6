"""What a run produces, whichever engine ran it: the result object and its manifest."""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path

import pandas as pd

from qsim.scenario import Scenario

DEPENDENCIES = ("simpy", "numpy", "pandas", "pydantic", "pyarrow", "matplotlib", "click", "PyYAML")


@dataclass(frozen=True)
class RunResult:
    """Everything one run produced; ``error`` is set (and the history partial) if it failed."""

    scenario: Scenario
    run_id: str
    ops: pd.DataFrame
    summary: dict
    manifest: dict = field(repr=False)
    faults: pd.DataFrame = field(default=None, repr=False)
    timeline: pd.DataFrame = field(default=None, repr=False)
    messages: pd.DataFrame | None = field(default=None, repr=False)  # with trace_messages only
    nodes: pd.DataFrame | None = field(default=None, repr=False)  # per-node load per window
    # The latencies of the counted ok operations by kind ("read", "write"), sorted: what the
    # latency plots draw. None: take them from ``ops``. An engine that keeps no ops table
    # (``ops`` None) gives them here.
    sorted_latency: dict | None = field(default=None, repr=False)
    # A run too long for memory leaves its ops table here instead of in ``ops`` (None).
    ops_file: Path | None = field(default=None, repr=False)

    @property
    def error(self) -> str | None:
        """The exception that stopped the run, or None."""
        return self.manifest["error"]


def runtime(
    *,
    wall_s: float,
    engine_s: float,
    sim_ms: float | None,
    ops: int,
    events: int | None,
    trials: int | None = None,
) -> dict:
    """The summary's ``runtime`` section; ``trials`` only for an engine without a clock (Monte Carlo)."""
    section = {"wall_s": wall_s, "engine_s": engine_s, "sim_ms": sim_ms}
    if trials is not None:
        section["trials"] = trials
    return section | {"ops": ops, "ops_per_s": ops / engine_s if engine_s > 0 else None, "events": events}


def manifest(
    summary: dict,
    *,
    engine: str,
    started: datetime,
    wall_s: float,
    sim_ms: float | None,
    events: int | None,
    error: str | None,
    trials: int | None = None,
) -> dict:
    """The manifest of a run: its identity, the versions that made it, how long it took, any error.

    ``sim_ms`` is None for an engine without a simulated clock (Monte Carlo), which gives the
    number of ``trials`` it drew instead.
    """
    return {
        "run_id": summary["run_id"],
        "scenario": summary["scenario"],
        "seed": summary["seed"],
        "engine": engine,
        "qsim_version": _version("qsim"),
        "dependencies": {name: _version(name) for name in DEPENDENCIES},
        "python": platform.python_version(),
        "started_at": started.isoformat(timespec="seconds"),
        "wall_s": wall_s,
        "sim_ms": sim_ms,
        "trials": trials,
        "events": events,
        "ops": summary["runtime"]["ops"],
        "error": error,
    }


@functools.cache  # reading a package's metadata takes ~2 ms; a sweep's worker asks once per run
def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
