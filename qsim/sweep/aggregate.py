"""Sweep tables: one headline row per run, and the replicates aggregated per configuration.

All pure functions of summaries and DataFrames; nothing here starts a simulation.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

# Two-sided 95% quantiles of Student's t by degrees of freedom (1..30); 1.96 beyond.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042)  # fmt: skip

METRICS = (
    "read_latency_mean_ms",
    "read_latency_p50_ms",
    "read_latency_p99_ms",
    "read_latency_p999_ms",
    "write_latency_mean_ms",
    "write_latency_p50_ms",
    "write_latency_p99_ms",
    "write_latency_p999_ms",
    "availability",
    "read_availability",
    "write_availability",
    "stale_fraction",
    "k_mean",
    "t_visibility_99_ms",
    "t_visibility_999_ms",
    "messages",
    "messages_per_op",
    "lost_writes",
)
RUN_COLUMNS = (*METRICS, "reads_checked", "ops", "t_visibility", "read_latency_quantiles")  # headline()
FRONTIER = ("read_latency_p99_ms", "stale_fraction")  # the trade-off the Pareto frontier is over


def headline(summary: dict) -> dict:
    """Return the headline metrics of one run (the columns of runs.parquet), from its summary."""
    row: dict = {}
    for kind in ("read", "write"):
        part = summary[f"{kind}s"]
        for stat in ("mean", "p50", "p99", "p999"):
            row[f"{kind}_latency_{stat}_ms"] = part["latency_ms"][stat]
        row[f"{kind}_availability"] = part["availability"]
    staleness = summary["staleness"]
    messages = sum(kind["sent"] for kind in summary["messages"].values())
    ops = summary["runtime"]["ops"]
    row |= {
        "availability": summary["availability"],
        "stale_fraction": staleness["stale_fraction"],
        "k_mean": staleness["k_mean"],
        "reads_checked": staleness["reads_checked"],
        "t_visibility_99_ms": t_visibility_at(staleness["t_visibility"], 0.99),
        "t_visibility_999_ms": t_visibility_at(staleness["t_visibility"], 0.999),
        "messages": messages,
        "messages_per_op": messages / ops if ops else None,
        "ops": ops,
        "lost_writes": summary["durability"]["lost_writes"],
        "t_visibility": json.dumps(staleness["t_visibility"]),
        "read_latency_quantiles": json.dumps(summary["reads"]["latency_ms"].get("quantiles")),
    }
    return row


def t_visibility_at(points: list[dict], level: float) -> float | None:
    """The smallest t (ms) from which every t-visibility point has P(consistent) >= ``level``.

    Points are in increasing t; for binned points t is the bin's lower edge. None if the last
    point is still below ``level``, or there are no points.
    """
    t = None
    for point in reversed(points):
        if point["p_consistent"] < level:
            break
        t = point["t_ms"]
    return t


def aggregate(runs: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """Aggregate replicates: per configuration, the mean and 95% CI half-width of each metric.

    The half-width is t(0.975, n-1) * sd / sqrt(n) over the seeds that ran without error (NaN
    with one seed). Columns: the factors, ``runs``, ``failed``, then ``<metric>_mean`` and
    ``<metric>_ci95`` for each metric.
    """
    rows = []
    for config, group in runs.groupby(factors, sort=False, dropna=False) if factors else [((), runs)]:
        ok = group[group["error"].isna()]
        row = dict(zip(factors, config if isinstance(config, tuple) else (config,), strict=True))
        row |= {"runs": len(group), "failed": len(group) - len(ok)}
        for metric in METRICS:
            values = pd.to_numeric(ok[metric], errors="coerce").dropna().to_numpy(dtype=float)
            row[f"{metric}_mean"] = float(values.mean()) if values.size else math.nan
            row[f"{metric}_ci95"] = _half_width(values)
        rows.append(row)
    return pd.DataFrame(rows)


def _half_width(values: np.ndarray) -> float:
    if values.size < 2:
        return math.nan
    t = _T95[values.size - 2] if values.size - 1 <= len(_T95) else 1.96
    return float(t * values.std(ddof=1) / math.sqrt(values.size))


def pareto(table: pd.DataFrame, x: str = f"{FRONTIER[0]}_mean", y: str = f"{FRONTIER[1]}_mean") -> pd.Series:
    """Return a boolean Series: True for rows no other row beats on both ``x`` and ``y`` (lower is
    better), i.e. no other row is <= on both and < on one. Rows with a NaN in either are False."""
    points = table[[x, y]].to_numpy(dtype=float)
    valid = ~np.isnan(points).any(axis=1)
    optimal = np.zeros(len(table), dtype=bool)
    for i in np.flatnonzero(valid):
        others = points[valid]
        dominated = ((others <= points[i]).all(axis=1) & (others < points[i]).any(axis=1)).any()
        optimal[i] = not dominated
    return pd.Series(optimal, index=table.index)
