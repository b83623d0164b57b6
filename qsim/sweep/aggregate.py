"""Sweep tables: one headline row per run, and the replicates aggregated per configuration.

All pure functions of summaries and DataFrames; nothing here starts a simulation.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and pandas load when a table is built, not when a sweep is checked
    import numpy as np
    import pandas as pd

from qsim.errors import QsimError

# Two-sided 95% quantiles of Student's t by degrees of freedom (1..30); 1.96 beyond.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042)  # fmt: skip

# The leader protocol's (None for leaderless runs): from the summary's leader section.
LEADER_METRICS = (
    "time_without_leader_ms",
    "elections",
    "elections_without_winner",
    "failover_p50_ms",
    "failover_max_ms",
    "crash_to_leader_p50_ms",
    "crash_to_leader_max_ms",
    "client_write_gap_p50_ms",
    "client_write_gap_max_ms",
    "leader_load_ratio",
)
QUORUM_SYSTEM_METRICS = ("max_node_load", "analytic_max_node_load", "capacity_ops_s")
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
    "linearizability_violations",
    "session_violations",
    "commit_latency_p50_ms",
    "commit_latency_p99_ms",
    "throughput_ops_s",
    *QUORUM_SYSTEM_METRICS,
    *LEADER_METRICS,
)
# Percentiles at qsim.checks.nines.GRID as JSON; sweeps written before they existed lack these columns.
PERCENTILE_COLUMNS = ("read_latency_percentiles", "write_latency_percentiles")
RUN_COLUMNS = (*METRICS, "reads_checked", "ops", "t_visibility", "read_latency_quantiles",
               *PERCENTILE_COLUMNS)  # headline()  # fmt: skip
# Metrics that are better higher; every other metric is better lower.
MAXIMISED = frozenset(
    {"availability", "read_availability", "write_availability", "throughput_ops_s", "capacity_ops_s"}
)
DEFAULT_OBJECTIVES = ("read_latency_p99_ms", "write_latency_p99_ms", "stale_fraction")
LABELS = {  # what each metric is, with its unit, for plots and tables
    "read_latency_mean_ms": "mean read latency (ms)",
    "read_latency_p50_ms": "p50 read latency (ms)",
    "read_latency_p99_ms": "p99 read latency (ms)",
    "read_latency_p999_ms": "p99.9 read latency (ms)",
    "write_latency_mean_ms": "mean write latency (ms)",
    "write_latency_p50_ms": "p50 write latency (ms)",
    "write_latency_p99_ms": "p99 write latency (ms)",
    "write_latency_p999_ms": "p99.9 write latency (ms)",
    "availability": "availability (fraction ok)",
    "read_availability": "read availability (fraction ok)",
    "write_availability": "write availability (fraction ok)",
    "stale_fraction": "stale-read fraction",
    "k_mean": "mean k (versions missed per read)",
    "t_visibility_99_ms": "t-visibility at 99% (ms)",
    "t_visibility_999_ms": "t-visibility at 99.9% (ms)",
    "messages": "messages sent",
    "messages_per_op": "messages per operation",
    "lost_writes": "lost writes",
    "linearizability_violations": "linearizability violations",
    "session_violations": "session-guarantee violations",
    "commit_latency_p50_ms": "p50 commit latency (ms)",
    "commit_latency_p99_ms": "p99 commit latency (ms)",
    "throughput_ops_s": "throughput (ok operations/s)",
    "max_node_load": "busiest node's load (fraction of attempts asking it)",
    "analytic_max_node_load": "busiest node's load on paper (strategy's)",
    "capacity_ops_s": "capacity on paper (operations/s)",
    "time_without_leader_ms": "time without a leader (ms, in all)",
    "elections": "elections",
    "elections_without_winner": "elections without a winner",
    "failover_p50_ms": "p50 time without a leader after one stopped (ms)",
    "failover_max_ms": "longest time without a leader after one stopped (ms)",
    "crash_to_leader_p50_ms": "p50 leader crash to new leader (ms)",
    "crash_to_leader_max_ms": "longest leader crash to new leader (ms)",
    "client_write_gap_p50_ms": "p50 clients' gap in acknowledged writes (ms)",
    "client_write_gap_max_ms": "longest clients' gap in acknowledged writes (ms)",
    "leader_load_ratio": "leader's messages / a follower's",
}


class ObjectiveError(QsimError):
    """Objectives of a Pareto frontier that are not metrics; ``problems`` lists each, one line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def better(metric: str) -> str:
    """Which way ``metric`` improves: "higher" for availabilities, "lower" for everything else."""
    return "higher" if metric in MAXIMISED else "lower"


def objective_problems(objectives: object, field: str = "objectives") -> list[str]:
    """What is wrong with ``objectives`` as a list of metric names, one line each naming ``field``."""
    if isinstance(objectives, str) or not isinstance(objectives, Sequence) or not objectives:
        return [f"{field}: expected a non-empty list of metric names, such as "
                f"[{', '.join(DEFAULT_OBJECTIVES)}]; found {objectives!r}"]  # fmt: skip
    found = []
    for name in objectives:
        if name not in METRICS:
            close = difflib.get_close_matches(str(name), METRICS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            found.append(f"{field}: {name!r} is not a metric{hint}; the metrics are {', '.join(METRICS)}")
    repeated = sorted({name for name in objectives if isinstance(name, str) and objectives.count(name) > 1})
    return found + [f"{field}: {name} is listed twice" for name in repeated]


def check_objectives(objectives: object, field: str = "objectives") -> tuple[str, ...]:
    """Return ``objectives`` as a tuple of metric names.

    Raises:
        ObjectiveError: naming ``field``, each unknown or repeated name, and the valid names.
    """
    problems = objective_problems(objectives, field)
    if problems:
        raise ObjectiveError(problems)
    return tuple(objectives)


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
        **_consistency(summary.get("consistency")),
        **_commits(summary["writes"].get("commit_latency_ms")),
        "throughput_ops_s": summary.get("throughput_ops_s"),
        **_quorum_system(summary.get("quorum_system")),
        **_leader(summary.get("leader")),
        "t_visibility": json.dumps(staleness["t_visibility"]),
        "read_latency_quantiles": json.dumps(summary["reads"]["latency_ms"].get("quantiles")),
        "read_latency_percentiles": json.dumps(summary["reads"]["latency_ms"].get("percentiles")),
        "write_latency_percentiles": json.dumps(summary["writes"]["latency_ms"].get("percentiles")),
    }
    return row


def _consistency(section: dict | None) -> dict:
    """Violations of linearizability, and of the four session guarantees together (None: not checked)."""
    if not section:  # a Monte Carlo run, or a run written before the checkers
        return {"linearizability_violations": None, "session_violations": None}
    sessions = section["sessions"]
    return {
        "linearizability_violations": section["linearizability"]["violations"],
        "session_violations": sum(count for name, count in sessions.items() if name != "clients_checked"),
    }


def _commits(latency: dict | None) -> dict:
    """p50 and p99 commit latency of the writes (None: a summary written before they were kept)."""
    latency = latency or {}
    return {"commit_latency_p50_ms": latency.get("p50"), "commit_latency_p99_ms": latency.get("p99")}


def _quorum_system(section: dict | None) -> dict:
    """The busiest node's load, measured and on paper, and the capacity (None: no quorum system)."""
    if not section:
        return dict.fromkeys(QUORUM_SYSTEM_METRICS)
    nodes = section["nodes"].values()
    return {
        "max_node_load": max(node["load"] for node in nodes),
        "analytic_max_node_load": section["load"],
        "capacity_ops_s": section["capacity_ops_s"],
    }


def _leader(section: dict | None) -> dict:
    """The leader protocol's headline numbers (None for leaderless runs)."""
    if not section:
        return dict.fromkeys(LEADER_METRICS)
    failover, crash, gap = (
        section["failover_ms"],
        section["crash_to_leader_ms"],
        section["client_write_gap_ms"],
    )
    return {
        "time_without_leader_ms": section["time_without_leader_ms"]["total"],
        "elections": section["elections"],
        "elections_without_winner": section["split_votes"],
        "failover_p50_ms": failover["p50"],
        "failover_max_ms": failover["max"],
        "crash_to_leader_p50_ms": crash["p50"],
        "crash_to_leader_max_ms": crash["max"],
        "client_write_gap_p50_ms": gap["p50"],
        "client_write_gap_max_ms": gap["max"],
        "leader_load_ratio": section["load"]["ratio"],
    }


def t_visibility_at(points: list[dict], level: float) -> float | None:
    """The smallest t (ms) from which every t-visibility point has P(consistent) >= ``level``.

    Points are in increasing t. When a point is below ``level``, the answer is the t of the next
    point (for binned points, that bin's lower edge). When every point meets ``level``, it is 0:
    no read, at any t, was less consistent than ``level`` (where the first read fell is no delay).
    None if the last point is still below ``level``, or there are no points.
    """
    below = [i for i, point in enumerate(points) if point["p_consistent"] < level]
    if not points or (below and below[-1] == len(points) - 1):
        return None
    return float(points[below[-1] + 1]["t_ms"]) if below else 0.0


def aggregate(runs: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """Aggregate replicates: per configuration, the mean and 95% CI half-width of each metric.

    The half-width is t(0.975, n-1) * sd / sqrt(n) over the seeds that ran without error (NaN
    with one seed). Columns: the factors, ``runs``, ``failed``, then ``<metric>_mean`` and
    ``<metric>_ci95`` for each metric.
    """
    import pandas as pd

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


def pareto(table: pd.DataFrame, objectives: Sequence[str] = DEFAULT_OBJECTIVES) -> pd.Series:
    """Return a boolean Series: True for the configurations no other one dominates on ``objectives``.

    A row dominates another when its mean (``<metric>_mean``) is at least as good on every
    objective and strictly better on one; availabilities are better higher, every other metric
    lower. Equal rows do not dominate each other. Rows with a NaN objective are never optimal and
    dominate nothing.

    Raises:
        ObjectiveError: if an objective is not a metric.
    """
    import numpy as np
    import pandas as pd

    objectives = check_objectives(objectives)
    signs = np.array([-1.0 if better(m) == "higher" else 1.0 for m in objectives])
    points = table[[f"{m}_mean" for m in objectives]].to_numpy(dtype=float) * signs  # lower is better
    valid = ~np.isnan(points).any(axis=1)
    others = points[valid]
    optimal = np.zeros(len(table), dtype=bool)
    for i in np.flatnonzero(valid):
        optimal[i] = not ((others <= points[i]).all(axis=1) & (others < points[i]).any(axis=1)).any()
    return pd.Series(optimal, index=table.index)
