"""Running a sweep: plan the points, run them on an executor, write each as it finishes, assemble.

results/<sweep name>/
    sweep.json           what was swept (the grid as written), how it ran, how many points are done
    scenario.yaml        the base scenario as given, without its sweep block (from ``qsim sweep``)
    points/<run id>.json one per finished point (its headline row), written atomically
    runs.parquet, runs.csv            one row per run, in point order
    aggregate.parquet, aggregate.csv  replicates aggregated per configuration (mean, 95% CI)
    runs/<run id>/       full run folders, with --keep-runs
    plots/*.png

A point's run id is the id of its resolved scenario (seed included), so ``resume`` recognises the
points already done whatever order they finished in; the tables hold only what the simulation
determines, so they are identical whatever the executor and the number of workers. A point file
that cannot be read, or lacks its fields, is not a finished point: it is run again, with a warning;
files in ``points/`` not named after a planned run are left alone.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from qsim.engine import simulate
from qsim.errors import QsimError
from qsim.output.files import atomic_write, parquet_bytes, remove_stale_temporaries, scratch_folder
from qsim.output.results import check_sweep_folder, folder_name, write_run
from qsim.scenario import resolved_dict, scenario_from_dict
from qsim.sweep.aggregate import PERCENTILE_COLUMNS, RUN_COLUMNS, aggregate, headline
from qsim.sweep.executors import executor
from qsim.sweep.plan import PlannedRun
from qsim.sweep.plan import plan as plan  # re-exported: plan, then run_sweep

SCENARIO_FILE = "scenario.yaml"  # the base scenario as given, for people and the report to read
MAX_POINT_BYTES = 1 << 20  # a point's row is about 2 KB; anything this large is not one


class SweepInterrupted(QsimError):
    """The sweep was interrupted; the points that finished are kept for --resume."""


def run_point(payload: tuple[dict, str | None, bool, str]) -> dict:
    """Run one point (in a worker): validate, simulate, return its headline row (never raises).

    A long run streams its history to a scratch folder (see :func:`qsim.simulate`): inside its
    kept run folder, or else inside the sweep's ``points`` folder, so a worker's memory stays
    bounded whatever the length of the runs.
    """
    data, keep, plots, points = payload
    try:
        with scratch_folder(Path(keep if keep is not None else points)) as scratch:
            result = simulate(scenario_from_dict(data), scratch=scratch)
            if keep is not None:
                write_run(result, keep, plots_too=plots)
        row = headline(result.summary) if result.error is None else {}
        return row | {"error": result.error}
    except Exception as exc:  # a point that fails is recorded and the sweep goes on
        return {"error": f"{type(exc).__name__}: {exc}"}


@dataclass(frozen=True)
class SweepResult:
    """What a sweep produced."""

    path: Path
    runs: pd.DataFrame
    aggregate: pd.DataFrame
    factors: list[str]


def run_sweep(
    planned: list[PlannedRun],
    out: str | Path,
    *,
    executor_name: str = "process",
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    keep_runs: bool = False,
    plots: bool = True,
    progress: Callable[[int, int, int], None] | None = None,
    description: dict | None = None,
    warn: Callable[[str], None] | None = None,
    say: Callable[[str], None] | None = None,
    given: str | None = None,
) -> SweepResult:
    """Run the planned points not yet done, write each as it finishes, then assemble the tables.

    Args:
        resume: skip points whose row is already written without an error (failed ones rerun).
        keep_runs: also write each run's full results folder under ``out/runs`` (with ``plots``).
        progress: called as ``progress(done, total, failed)`` after each point.
        warn: called with each warning, such as a damaged point file (default: ``warnings.warn``).
        say: called with each notice: with ``resume``, how many points are done and will not run.
        description: what was swept (the grid as written, the objectives, ...), kept in sweep.json.
        given: the base scenario as its user gave it, without its sweep block
            (``qsim.scenario.written_yaml``), kept as ``scenario.yaml``; None removes an earlier one.

    Raises:
        ResultsError: if ``out`` is neither new, nor empty, nor a sweep folder (nothing is run).
        SweepInterrupted: on Ctrl-C, after recording how far it got.
    """
    out = Path(out)
    check_sweep_folder(out)
    warn = warn or _python_warning
    (out / "points").mkdir(parents=True, exist_ok=True)
    for folder in (out, out / "points", out / "plots"):  # each run folder is cleaned as it is written
        remove_stale_temporaries(folder)
    if given is not None:  # after points/ exists, so the folder reads as a sweep's from now on
        atomic_write(out / SCENARIO_FILE, given)
    else:  # an earlier sweep's base scenario would describe another grid
        (out / SCENARIO_FILE).unlink(missing_ok=True)
    done = _finished_points(out, planned, warn) if resume else {}
    todo = [p for p in planned if p.run_id not in done or done[p.run_id].get("error") is not None]
    if resume and say is not None:
        say(resume_notice(len(planned), len(todo), sum(p.run_id in done for p in todo), out))
    started = time.perf_counter()
    state = {"points": len(planned), "skipped": len(planned) - len(todo), "executor": executor_name,
             "workers": workers, "scheduler": scheduler, **(description or {})}  # fmt: skip
    failed = sum(1 for p in planned if p.run_id in done and p not in todo and done[p.run_id].get("error"))
    finished = len(planned) - len(todo)
    keep = [str(out / "runs" / folder_name(p.run_id)) if keep_runs else None for p in todo]
    points = str(out / "points")
    payloads = [(resolved_dict(p.scenario), kept, plots, points) for p, kept in zip(todo, keep, strict=True)]
    try:
        with executor(executor_name, workers, scheduler) as map_unordered:
            for index, row in map_unordered(run_point, payloads):
                _write_point(out, todo[index], row)
                finished += 1
                failed += row["error"] is not None
                if progress is not None:
                    progress(finished, len(planned), failed)
    except KeyboardInterrupt:
        _write_state(
            out, state | {"status": "interrupted", "done": finished, "wall_s": time.perf_counter() - started}
        )
        raise SweepInterrupted(
            f"interrupted: {finished} of {len(planned)} points are done in {out}; rerun with --resume"
        ) from None
    result = assemble(out, planned, warn)
    _write_state(out, state | {"status": "complete", "done": finished, "failed": failed,
                               "wall_s": time.perf_counter() - started})  # fmt: skip
    return result


def resume_notice(points: int, todo: int, failed_before: int, out: Path) -> str:
    """Say how many of ``points`` a resumed sweep finds done in ``out`` and how many it runs."""
    done = points - todo
    if todo == 0:
        return f"resuming: all {points} points already done in {out}; nothing to run"
    rerun = f", of which {failed_before} failed before" if failed_before else ""
    others = "the other" if done else "all"
    return f"resuming: {done} of {points} points already done in {out}; running {others} {todo}{rerun}"


def assemble(out: Path, planned: list[PlannedRun], warn: Callable[[str], None] | None = None) -> SweepResult:
    """Build and write runs and aggregate tables from the points written under ``out``."""
    rows = _finished_points(out, planned, warn or _python_warning)
    factors = list(planned[0].point.factors) if planned else []
    records = []
    for p in planned:
        row = rows.get(p.run_id, {"error": "not run"})
        record = {"point": p.point.index, "run_id": p.run_id, "seed": p.scenario.seed}
        record |= {path: _cell(value) for path, value in p.point.factors.items()}
        records.append(
            record | {k: v for k, v in row.items() if k not in ("index", "run_id", "seed", "factors")}
        )
    columns = [
        "point",
        "run_id",
        "seed",
        *factors,
        *RUN_COLUMNS,
        "error",
    ]  # whatever failed, the same columns
    runs = pd.DataFrame.from_records(records).reindex(columns=columns)
    for factor in factors:
        runs[factor] = _one_type(list(runs[factor]))
    runs["error"] = runs["error"].astype("string")
    table = aggregate(runs, factors)
    for name, frame in (("runs", runs), ("aggregate", table)):
        atomic_write(out / f"{name}.parquet", parquet_bytes(frame))
        atomic_write(out / f"{name}.csv", frame.to_csv(index=False))
    return SweepResult(out, runs, table, factors)


def _finished_points(out: Path, planned: list[PlannedRun], warn: Callable[[str], None]) -> dict[str, dict]:
    """The rows of the planned points written under ``out``, by run id; a damaged file is left out."""
    rows = {}
    for p in planned:
        path = out / "points" / f"{folder_name(p.run_id)}.json"
        if not path.exists():
            continue
        row, problem = _read_point(path, p.run_id)
        if problem:
            warn(f"{path}: {problem}; the point is run again")
        else:
            rows[p.run_id] = row
    return rows


def _read_point(path: Path, run_id: str) -> tuple[dict, str | None]:
    """A point file's row, or why it is not one (unreadable, not a row, or missing fields)."""
    if not path.is_file() or path.stat().st_size > MAX_POINT_BYTES:  # a device or a pipe never ends
        return {}, "not a point file"
    try:
        row = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeError are ValueErrors
        return {}, f"not readable ({type(exc).__name__}: {exc})"
    if not isinstance(row, dict) or row.get("run_id") != run_id:
        return {}, f"not the row of run {run_id}"
    error = row.get("error", 0)
    if error is not None and not isinstance(error, str):
        return {}, "no error field (null or text)"
    # Percentile columns are newer than some sweeps: a point without them is still done (plotted blank).
    needed = [c for c in RUN_COLUMNS if c not in PERCENTILE_COLUMNS]
    missing = [c for c in needed if c not in row] if error is None else []
    return (row, None) if not missing else ({}, f"no {', '.join(missing[:3])}")


def _python_warning(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def _write_point(out: Path, planned: PlannedRun, row: dict) -> None:
    record = {"index": planned.point.index, "run_id": planned.run_id, "seed": planned.scenario.seed,
              "factors": {k: _cell(v) for k, v in planned.point.factors.items()}, **row}  # fmt: skip
    path = out / "points" / f"{folder_name(planned.run_id)}.json"
    atomic_write(path, json.dumps(record, default=_json_number))


def _write_state(out: Path, state: dict) -> None:
    atomic_write(out / "sweep.json", json.dumps(state, indent=2, default=str))


def _cell(value):
    """A factor value as a table cell: scalars as they are, anything else as JSON text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True)


def _one_type(values: list) -> list:
    """A factor column's cells as they are, or all as text if they mix numbers and text."""
    kinds = {"number" if isinstance(v, int | float) and not isinstance(v, bool) else type(v) for v in values}
    if len(kinds - {type(None)}) > 1:
        return [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
    return values


def _json_number(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
