"""Answers to the common questions about saved results, as DataFrames (no simulation is started).

Like the summary and the plots, every helper leaves out the operations that started in the
warm-up (the ops table's ``warmup`` column); pass ``include_warmup=True`` to keep them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from qsim.checks.metrics import PERCENTILES, measured, staleness_summary
from qsim.output.saved import read_mapping, read_table

RUNS_NEEDED = ("point", "run_id", "seed", "error")  # what the readers of a sweep's tables use
AGGREGATE_NEEDED = ("runs", "failed")


def _windows(ops: pd.DataFrame, window_ms: float | None) -> pd.Series | None:
    return None if window_ms is None else (ops["start_ms"] // window_ms * window_ms).rename("window_start_ms")


def latency_percentiles(
    ops: pd.DataFrame, *, window_ms: float | None = None, include_warmup: bool = False
) -> pd.DataFrame:
    """Latency of ok operations (ms) by kind, and by window of start time if ``window_ms`` is given.

    Columns: count, mean, p50, p90, p99, p999, max.
    """
    ops = measured(ops, include_warmup=include_warmup)
    ok = ops[ops["ok"]]
    keys = [ok["kind"].astype(str)] + ([_windows(ok, window_ms)] if window_ms is not None else [])
    grouped = ok.groupby(keys, observed=True)["latency_ms"]
    table = grouped.agg(["count", "mean"])
    for name, q in PERCENTILES.items():
        table[name] = grouped.quantile(q / 100)
    table["max"] = grouped.max()
    return table


def stale_fraction(
    ops: pd.DataFrame, *, window_ms: float | None = None, include_warmup: bool = False
) -> pd.DataFrame:
    """Checked reads, stale reads and their fraction, overall or per window of start time."""
    ops = measured(ops, include_warmup=include_warmup)
    reads = ops[(ops["kind"] == "read") & ops["stale"].notna()]
    keys = _windows(reads, window_ms) if window_ms is not None else np.zeros(len(reads), dtype=int)
    grouped = reads.groupby(keys)["stale"]
    table = pd.DataFrame({"reads_checked": grouped.size(), "stale": grouped.sum().astype(int)})
    table["stale_fraction"] = table["stale"] / table["reads_checked"]
    return table if window_ms is not None else table.reset_index(drop=True)


def k_distribution(ops: pd.DataFrame, *, include_warmup: bool = False) -> pd.Series:
    """How many checked reads missed k committed versions, for each k (k = 0: fresh)."""
    ops = measured(ops, include_warmup=include_warmup)
    k = ops.loc[(ops["kind"] == "read") & ops["k"].notna(), "k"].astype(int)
    return k.value_counts().sort_index().rename("reads")


def t_visibility(ops: pd.DataFrame, *, include_warmup: bool = False) -> pd.DataFrame:
    """P(consistent) against t with 95% Wilson bands: per probe delay, or per bin of t_ms."""
    ops = measured(ops, include_warmup=include_warmup)
    reads = ops[ops["kind"] == "read"]
    return pd.DataFrame(staleness_summary(reads)["t_visibility"])


def node_load(summary: dict) -> pd.DataFrame:
    """Messages received and utilization per node, from a run's summary."""
    return pd.DataFrame.from_dict(summary["nodes"], orient="index").rename_axis("node")


@dataclass(frozen=True)
class SavedSweep:
    """A sweep read back from its folder: one row per run, one per configuration, and how it ran."""

    path: Path
    runs: pd.DataFrame
    aggregate: pd.DataFrame
    sweep: dict

    @property
    def factors(self) -> list[str]:
        """The swept scenario paths (columns of both tables)."""
        return [
            c
            for c in self.aggregate.columns
            if c not in ("runs", "failed") and not c.endswith(("_mean", "_ci95"))
        ]


def load_sweep(path: str | Path) -> SavedSweep:
    """Read a sweep folder written by ``qsim sweep`` (no simulation is started).

    Raises:
        ResultsError: naming the file, if a table is missing or damaged, or sweep.json is damaged.
    """
    path = Path(path)
    state = path / "sweep.json"
    return SavedSweep(
        path=path,
        runs=read_table(path / "runs.parquet", RUNS_NEEDED),
        aggregate=read_table(path / "aggregate.parquet", AGGREGATE_NEEDED),
        sweep=read_mapping(state) if state.exists() else {},
    )
