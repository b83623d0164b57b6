"""Headline metrics of a run: pure functions of the ops DataFrame (see DESIGN.md for definitions)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from qsim import nines

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}
QUANTILE_GRID = np.linspace(0.0, 1.0, 101)  # latency_ms.quantiles: the 0th, 1st, ..., 100th percentiles
_T_EDGES_MS = np.array(
    [0, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 6e4, np.inf]
)


def latency_stats(latency_ms: np.ndarray) -> dict:
    """Return count, mean, p50, p90, p99, p999 and max of latencies in ms (None when empty).

    Percentiles interpolate linearly between order statistics (numpy's default).
    """
    latency_ms = np.asarray(latency_ms, dtype=float)
    stats: dict = {"count": int(latency_ms.size)}
    if latency_ms.size == 0:
        return stats | {"mean": None} | dict.fromkeys(PERCENTILES) | {"max": None, "quantiles": None,
                                                                        "percentiles": None}  # fmt: skip
    stats["mean"] = float(latency_ms.mean())
    values = np.percentile(latency_ms, list(PERCENTILES.values()))
    stats.update({name: float(v) for name, v in zip(PERCENTILES, values, strict=True)})
    stats["max"] = float(latency_ms.max())
    stats["quantiles"] = np.quantile(latency_ms, QUANTILE_GRID).tolist()  # for CDFs across runs
    # At qsim.nines.GRID, for percentile plots across runs; beyond what the sample resolves: None.
    levels = nines.grid_points(latency_ms.size)
    values = np.percentile(latency_ms, levels).tolist()
    stats["percentiles"] = values + [None] * (len(nines.GRID) - len(values))
    return stats


def kind_summary(ops: pd.DataFrame) -> dict:
    """Return count, ok, availability, latency of ok operations, and failure reasons."""
    count = len(ops)
    ok = int(ops["ok"].sum())
    errors = ops.loc[~ops["ok"], "error"].value_counts()
    return {
        "count": count,
        "ok": ok,
        "availability": ok / count if count else None,
        "latency_ms": latency_stats(ops.loc[ops["ok"], "latency_ms"].to_numpy()),
        "errors": {str(text): int(n) for text, n in errors.items()},
    }


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Return the Wilson score interval of a binomial proportion (95% by default)."""
    if trials == 0:
        return (math.nan, math.nan)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # Clamp so the interval always contains p (rounding can put a bound a hair past it).
    return (max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


def staleness_summary(reads: pd.DataFrame) -> dict:
    """Return the stale-read counts, the k distribution and t-visibility of checked reads.

    t-visibility is P(read not stale) against t: per configured delay for probe reads, otherwise
    over bins of t_ms ([t_ms, t_hi_ms); t_hi_ms is None for the last, open bin).
    """
    checked = reads[reads["stale"].notna()]
    stale = int(checked["stale"].sum())
    k_counts = checked["k"].astype("int64").value_counts().sort_index()
    probe = "probe_delay_ms" in reads and reads["probe_delay_ms"].notna().any()
    return {
        "reads_checked": len(checked),
        "reads_unchecked": int(reads["ok"].sum()) - len(checked),
        "stale": stale,
        "stale_fraction": stale / len(checked) if len(checked) else None,
        "k": {str(k): int(n) for k, n in k_counts.items()},
        "k_mean": float(checked["k"].astype("int64").mean()) if len(checked) else None,
        "t_visibility": _probe_visibility(checked) if probe else _binned_visibility(checked),
    }


def _visibility_row(t_ms: float, group: pd.DataFrame, **extra) -> dict:
    reads = len(group)
    consistent = reads - int(group["stale"].sum())
    low, high = wilson_interval(consistent, reads)
    return {
        "t_ms": float(t_ms),
        **extra,
        "p_consistent": consistent / reads,
        "reads": reads,
        "ci_low": low,
        "ci_high": high,
    }


def _probe_visibility(checked: pd.DataFrame) -> list[dict]:
    groups = checked.groupby("probe_delay_ms", sort=True)
    return [_visibility_row(t, group) for t, group in groups]


def _binned_visibility(checked: pd.DataFrame) -> list[dict]:
    bins = np.digitize(checked["t_ms"].to_numpy(), _T_EDGES_MS) - 1
    return [
        _visibility_row(_T_EDGES_MS[b], group, t_hi_ms=_finite_or_none(_T_EDGES_MS[b + 1]))
        for b, group in checked.groupby(bins, sort=True)
    ]


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None  # JSON has no infinity


def measured(ops: pd.DataFrame, *, include_warmup: bool = False) -> pd.DataFrame:
    """Return the operations a result counts: every one not marked as started in the warm-up.

    This is the one warm-up rule of the summary, the plots, the timeline and the analysis
    helpers. An ops table without a ``warmup`` column (a hand-made one) has no warm-up.

    Args:
        ops: the history, with the boolean ``warmup`` column of :data:`qsim.history.OPS_COLUMNS`.
        include_warmup: keep the warm-up operations too.
    """
    if include_warmup or "warmup" not in ops:
        return ops
    return ops[~ops["warmup"].to_numpy(dtype=bool)]


def summarize(ops: pd.DataFrame) -> dict:
    """Return the reads, writes, availability and staleness sections of a run's summary.

    Only the operations :func:`measured` keeps are counted (not those of the warm-up); staleness
    was checked against the whole history, warm-up included.
    """
    measured_ops = measured(ops)
    is_read = (measured_ops["kind"] == "read").to_numpy()
    reads, writes = measured_ops[is_read], measured_ops[~is_read]
    return {
        "reads": kind_summary(reads),
        "writes": kind_summary(writes),
        "availability": float(measured_ops["ok"].mean()) if len(measured_ops) else None,
        "staleness": staleness_summary(reads),
    }
