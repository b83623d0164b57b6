"""What a Monte Carlo run reports, straight from the arrays of :func:`qsim.analysis.montecarlo.wars`.

The summary has the sections :func:`qsim.engine.simulate` writes, with the same definitions: it
equals :func:`qsim.checks.metrics.summarize` over :func:`ops_history` (the tests hold the two together),
but costs no DataFrame. Beside it: the exact t at which P(consistent) reaches a probability
(:func:`consistency_times`, :func:`t_for_consistency`), and the per-trial ops table, built only
when asked.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from qsim.analysis.montecarlo import WarsResult, wars
from qsim.checks.digest import Latencies
from qsim.checks.metrics import visibility_row
from qsim.checks.timeline import availability_timeline
from qsim.history import faults_frame
from qsim.model.recorder import ERROR_TEXT, NO_VERSION, QUORUM_TIMEOUT
from qsim.rng import RandomStreams
from qsim.scenario import Scenario, run_id

PROBABILITIES = (0.9, 0.99, 0.999, 0.9999)  # staleness.t_at_probability of every run
Z = 1.96  # the 95% interval of a quantile: order statistics at ranks m p -+ Z sqrt(m p (1 - p))
TIMEOUT_TEXT = ERROR_TEXT[QUORUM_TIMEOUT]


def summary_from_arrays(
    scenario: Scenario, outcome: WarsResult, latencies: dict[str, Latencies] | None = None
) -> dict:
    """Return the summary sections of a fault-free Monte Carlo run, from its arrays alone.

    Args:
        latencies: :func:`ok_latencies` of ``outcome``, if already made.
    """
    checked = outcome.checked
    stale = checked & ~outcome.fresh
    latencies = ok_latencies(outcome) if latencies is None else latencies
    writes = _kind_summary(outcome.write_ok, latencies["write"])
    writes["commit_latency_ms"] = writes["latency_ms"]  # the ops table records commits of ok writes only
    reads = _kind_summary(outcome.read_ok, latencies["read"])
    ops, ok = writes["count"] + reads["count"], writes["ok"] + reads["ok"]
    n_checked, n_stale = int(checked.sum()), int(stale.sum())
    staleness = {
        "reads_checked": n_checked,
        "reads_unchecked": reads["ok"] - n_checked,
        "stale": n_stale,
        "stale_fraction": n_stale / n_checked if n_checked else None,
        "k": {str(k): n for k, n in ((0, n_checked - n_stale), (1, n_stale)) if n},
        "k_mean": n_stale / n_checked if n_checked else None,
        "t_visibility": _visibility(outcome.delays_ms, checked.sum(axis=1), stale.sum(axis=1)),
        "t_at_probability": consistency_times(outcome)["t_at_probability"],
    }
    outside = {
        "ops": ops,
        "availability": _fraction(ok, ops),
        "read_availability": _fraction(reads["ok"], reads["count"]),
        "write_availability": _fraction(writes["ok"], writes["count"]),
        "reads_checked": n_checked,
        "stale": n_stale,
        "stale_fraction": _fraction(n_stale, n_checked),
    }
    inside = dict.fromkeys(outside) | {"ops": 0, "reads_checked": 0, "stale": 0}
    return {
        "scenario": scenario.name,
        "run_id": f"{run_id(scenario)}-mc",
        "seed": scenario.seed,
        "engine": "montecarlo",
        "quorum": {"n": scenario.quorum.n, "r": scenario.quorum.r, "w": scenario.quorum.w},
        "reads": reads,
        "writes": writes,
        "availability": ok / ops if ops else None,
        "staleness": staleness,
        "faults": {
            "count": 0,
            "window_ms": scenario.metrics.window,
            "recovery": [],
            "inside": inside,
            "outside": outside,
        },
        # Nothing is lost without faults, and one write per key leaves last-writer-wins nothing to drop.
        "durability": {
            "acknowledged_writes": writes["ok"],
            "lost_writes": 0,
            "lost_fraction": 0.0 if writes["ok"] else None,
            "lww_lost_updates": 0,
        },
        "nodes": {},
        "messages": {},
    }


def _kind_summary(ok: np.ndarray, latency: Latencies) -> dict:
    """Return :func:`qsim.checks.metrics.kind_summary` of one kind from which were ok and their latencies."""
    count, n_ok = ok.size, int(ok.sum())
    return {
        "count": count,
        "ok": n_ok,
        "availability": n_ok / count if count else None,
        "latency_ms": latency.stats(),  # qsim.checks.metrics.latency_stats, keeping its sorted runs
        "errors": {TIMEOUT_TEXT: count - n_ok} if count - n_ok else {},
    }


def _visibility(delays_ms: np.ndarray, reads: np.ndarray, stale: np.ndarray) -> list[dict]:
    """Return the t-visibility points: per distinct delay, ascending, where some read was checked."""
    delays, row = np.unique(delays_ms, return_inverse=True)
    reads = np.bincount(row, weights=reads, minlength=len(delays)).astype(np.int64)
    stale = np.bincount(row, weights=stale, minlength=len(delays)).astype(np.int64)
    return [visibility_row(t, int(n), int(s)) for t, n, s in zip(delays, reads, stale, strict=True) if n]


def _fraction(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def ok_latencies(outcome: WarsResult) -> dict[str, Latencies]:
    """Return the latencies of the ok reads and writes, sorted (what the latency plots draw)."""
    return {
        "read": Latencies().add(outcome.read_latency_ms[outcome.read_ok]),
        "write": Latencies().add(outcome.write_latency_ms[outcome.write_ok]),
    }


def empty_timeline(window_ms: float) -> pd.DataFrame:
    """Return the availability timeline of a run without a clock: its columns, and no windows."""
    ops = pd.DataFrame(
        {
            "start_ms": np.empty(0),
            "kind": pd.Categorical([], ["read", "write"]),
            "ok": np.empty(0, dtype=bool),
            "stale": pd.array([], dtype="boolean"),
            "warmup": np.empty(0, dtype=bool),
        }
    )
    return availability_timeline(ops, window_ms)


def no_faults() -> pd.DataFrame:
    """Return the faults table of a fault-free run."""
    return faults_frame([])


# --- the exact t at which P(consistent) reaches p -------------------------------------------------


def t_for_consistency(
    scenario: Scenario,
    probabilities: tuple[float, ...] = PROBABILITIES,
    trials: int = 1_000_000,
    rng: np.random.Generator | None = None,
) -> dict:
    """Return the smallest delay t at which P(consistent) reaches each probability, from ``trials`` trials.

    Each trial's read is consistent at every delay t >= its t* and at none below (see
    :mod:`qsim.analysis.montecarlo`), so P(consistent at t) is the fraction of checked trials
    with t* <= t, exactly, at every t at once: no grid of delays.

    Args:
        scenario: a scenario the Monte Carlo engine applies to (its probe delays are ignored).
        probabilities: each in (0, 1].
        trials: write-then-read trials to draw.
        rng: the random generator; by default the scenario's ``"montecarlo"`` stream.

    Returns:
        See :func:`consistency_times`.
    """
    if rng is None:
        rng = RandomStreams(scenario.seed).generator("montecarlo")
    return consistency_times(wars(scenario, trials, rng, delays_ms=(0.0,)), probabilities)


def consistency_times(outcome: WarsResult, probabilities: tuple[float, ...] = PROBABILITIES) -> dict:
    """Return the t at which P(consistent) reaches each probability, over all the checked trials.

    Returns:
        {"reads_checked": m, "never_consistent": checked reads no delay makes consistent,
        "t_at_probability": [{"probability", "t_ms", "ci_low_ms", "ci_high_ms"}, ...]}. ``t_ms``
        is the smallest t >= 0 at which at least a fraction p of the m checked reads is
        consistent; the interval is distribution-free, 95%. None where no t reaches p (more
        than 1 - p of the reads are never consistent, or none was checked) or the interval is
        open.
    """
    t_star = outcome.consistent_from_ms[outcome.checked]
    m = t_star.size
    ranks = {p: _ranks(p, m) for p in probabilities}
    wanted = sorted({k - 1 for triple in ranks.values() for k in triple if 1 <= k <= m})
    ordered = np.partition(t_star, wanted) if wanted else t_star

    def at(rank: int) -> float | None:
        value = ordered[rank - 1] if 1 <= rank <= m else np.inf
        return max(0.0, float(value)) if np.isfinite(value) else None  # delays start at 0

    rows = [
        {"probability": p, "t_ms": at(k), "ci_low_ms": at(max(low, 1)), "ci_high_ms": at(high)}
        for p, (k, low, high) in ranks.items()
    ]
    return {"reads_checked": m, "never_consistent": int(np.isinf(t_star).sum()), "t_at_probability": rows}


def _ranks(p: float, m: int) -> tuple[int, int, int]:
    """Return the rank k (1-based) of the p-quantile, the smallest with k / m >= p, and its 95% band."""
    if m == 0:
        return (1, 1, 1)
    k = max(1, math.ceil(p * m))
    while k > 1 and (k - 1) / m >= p:  # p * m rounds: settle k by the comparison itself
        k -= 1
    while k <= m and k / m < p:
        k += 1
    half = Z * math.sqrt(m * p * (1 - p))
    return k, math.floor(m * p - half), math.ceil(m * p + half)


# --- the per-trial ops table (only when asked) ---------------------------------------------------


def ops_history(outcome: WarsResult, node_names: list[str]) -> pd.DataFrame:
    """Return the trials as an ops table (:data:`qsim.history.OPS_COLUMNS`), staleness verdicts included.

    Trial i (delay i mod T, T delays) is write op 2i and read op 2i+1 of key i, on client 0, which
    coordinates them; it starts when trial i-1's read ended. A failed operation ends at its
    timeout with version -1, as in the engine. A read returns the write (version 2i) when fresh;
    it is checked when it and its write succeeded, and then stale with k = 1 or fresh with k = 0.
    No operation is a warm-up one: trials are independent. The anomaly columns are the checkers'
    (:mod:`qsim.checks.consistency`): a stale read of a trial is a linearizability violation.
    """
    count = outcome.fresh.size
    delay = np.tile(outcome.delays_ms, outcome.trials)  # trial-major, so the delays take turns

    def by_trial(values: np.ndarray) -> np.ndarray:
        return values.T.ravel()

    write_ok, read_ok = by_trial(outcome.write_ok), by_trial(outcome.read_ok)
    write_latency = np.where(write_ok, by_trial(outcome.write_latency_ms), outcome.timeout_ms)
    read_latency = np.where(read_ok, by_trial(outcome.read_latency_ms), outcome.timeout_ms)
    fresh, checked = by_trial(outcome.fresh), write_ok & read_ok
    write_start = np.concatenate([[0.0], np.cumsum(write_latency + delay + read_latency)[:-1]])
    read_start = write_start + write_latency + delay
    write_id = 2 * np.arange(count, dtype=np.int64)

    def interleave(write: np.ndarray, read: np.ndarray) -> np.ndarray:
        values = np.empty(2 * count, dtype=np.result_type(write, read))
        values[0::2], values[1::2] = write, read
        return values

    ok = interleave(write_ok, read_ok)
    start = interleave(write_start, read_start)
    latency = interleave(write_latency, read_latency)
    nan = np.full(count, np.nan)
    verdict = interleave(np.zeros(count, bool), checked & ~fresh)
    verdict_mask = interleave(np.ones(count, bool), ~checked)
    ops = pd.DataFrame(
        {
            "op_id": np.arange(2 * count, dtype=np.int64),
            "client": np.zeros(2 * count, dtype=np.int32),
            "kind": pd.Categorical.from_codes(np.tile(np.array([1, 0], np.int8), count), ["read", "write"]),
            "key": np.repeat(np.arange(count, dtype=np.int64), 2),
            "start_ms": start,
            "end_ms": start + latency,
            "latency_ms": latency,
            "ok": ok,
            "error": pd.array(np.where(ok, None, TIMEOUT_TEXT), dtype="string"),
            "replies": interleave(by_trial(outcome.write_replies), by_trial(outcome.read_replies)),
            "version": interleave(
                np.where(write_ok, write_id, NO_VERSION), np.where(fresh & read_ok, write_id, NO_VERSION)
            ),
            "ts_ms": interleave(write_start, nan),
            "commit_ms": interleave(np.where(write_ok, write_start + write_latency, np.nan), nan),
            "coordinator": pd.Categorical.from_codes(np.zeros(2 * count, np.int8), ["client", *node_names]),
            "stale": pd.arrays.BooleanArray(verdict, mask=verdict_mask),
            "k": pd.arrays.IntegerArray(verdict.astype(np.int64), mask=verdict_mask),
            "t_ms": interleave(nan, np.where(checked, delay, np.nan)),
            "attempts": np.ones(2 * count, dtype=np.int8),
            "faults": pd.array(np.full(2 * count, ""), dtype="string"),
            "warmup": np.zeros(2 * count, dtype=bool),
            "probe_delay_ms": interleave(nan, delay),
        }
    )
    from qsim.checks.consistency import anomaly_columns  # only for a per-trial table

    anomalies = anomaly_columns(ops)[0]
    at = ops.columns.get_loc("t_ms") + 1
    return pd.concat([ops.iloc[:, :at], anomalies, ops.iloc[:, at:]], axis=1)
