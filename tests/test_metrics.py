"""Metrics are pure functions of the history, checked on hand-made tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from qsim.checks import nines
from qsim.checks.metrics import latency_stats, measured, staleness_summary, summarize, wilson_interval


def test_latency_stats_are_numpy_percentiles_with_their_count():
    values = np.arange(1.0, 101.0)
    stats = latency_stats(values)
    assert stats["count"] == 100 and stats["mean"] == 50.5 and stats["max"] == 100.0
    assert stats["p50"] == np.percentile(values, 50) and stats["p999"] == np.percentile(values, 99.9)
    assert stats["p90"] == pytest.approx(90.1) and stats["p99"] == pytest.approx(99.01)


def test_latency_stats_of_nothing_are_none():
    assert latency_stats(np.array([])) == {
        "count": 0,
        "mean": None,
        "p50": None,
        "p90": None,
        "p99": None,
        "p999": None,
        "max": None,
        "quantiles": None,
        "percentiles": None,
    }


@pytest.mark.parametrize(("successes", "trials"), [(0, 10), (10, 10), (7, 10), (500, 1000), (1, 3)])
def test_wilson_interval_contains_p_and_matches_the_formula(successes, trials):
    low, high = wilson_interval(successes, trials)
    p, z = successes / trials, 1.96
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials**2)) / (1 + z * z / trials)
    assert low <= p <= high
    assert low == pytest.approx(max(0.0, centre - half), abs=1e-12)
    assert high == pytest.approx(min(1.0, centre + half), abs=1e-12)


def ops_table(rows: list[tuple]) -> pd.DataFrame:
    """Rows are (kind, start_ms, latency_ms, ok, stale, k, t_ms)."""
    frame = pd.DataFrame(rows, columns=["kind", "start_ms", "latency_ms", "ok", "stale", "k", "t_ms"])
    frame["kind"] = pd.Categorical(frame["kind"], ["read", "write"])
    frame["error"] = pd.array(
        [None if ok else "timeout: quorum not reached" for ok in frame["ok"]], dtype="string"
    )
    frame["stale"] = frame["stale"].astype("boolean")
    frame["k"] = frame["k"].astype("Int64")
    return frame


def test_summarize_counts_only_operations_after_the_warmup():
    ops = ops_table(
        [
            ("read", 0.5, 1.0, True, False, 0, 1.0),  # warm-up: ignored
            ("read", 2.0, 2.0, True, True, 1, 0.1),
            ("read", 3.0, 4.0, True, None, None, None),  # no committed write before it
            ("read", 4.0, 9.0, False, None, None, None),
            ("write", 5.0, 3.0, True, None, None, None),
        ]
    )
    ops["warmup"] = ops["start_ms"] < 1.0
    summary = summarize(ops)
    assert summary["reads"]["count"] == 3 and summary["reads"]["ok"] == 2
    assert summary["reads"]["availability"] == pytest.approx(2 / 3)
    assert summary["reads"]["latency_ms"]["mean"] == 3.0  # ok reads only
    assert summary["reads"]["errors"] == {"timeout: quorum not reached": 1}
    assert summary["availability"] == pytest.approx(3 / 4)
    staleness = summary["staleness"]
    assert (staleness["reads_checked"], staleness["stale"], staleness["reads_unchecked"]) == (1, 1, 1)
    assert staleness["k"] == {"1": 1}


def test_measured_drops_the_rows_marked_warmup_unless_asked_not_to():
    ops = ops_table([("read", float(t), 1.0, True, None, None, None) for t in range(4)])
    assert measured(ops).equals(ops)  # no warmup column: no warm-up
    ops["warmup"] = [True, False, True, False]
    assert measured(ops)["start_ms"].tolist() == [1.0, 3.0]
    assert measured(ops, include_warmup=True).equals(ops)


def test_t_visibility_groups_probe_reads_by_their_delay():
    ops = ops_table([("read", float(i), 1.0, True, i % 4 == 0, int(i % 4 == 0), 0.0) for i in range(8)])
    ops["probe_delay_ms"] = [0.0, 0.0, 0.0, 0.0, 5.0, 5.0, 5.0, 5.0]
    visibility = staleness_summary(ops)["t_visibility"]
    assert [(p["t_ms"], p["reads"], p["p_consistent"]) for p in visibility] == [
        (0.0, 4, 0.75),
        (5.0, 4, 0.75),
    ]


def test_t_visibility_bins_workload_reads_by_t():
    ops = ops_table(
        [
            ("read", 1.0, 1.0, True, stale, int(stale), t)
            for stale, t in [(True, 0.05), (False, 0.07), (False, 0.3), (False, 0.4), (False, 70.0)]
        ]
    )
    visibility = staleness_summary(ops)["t_visibility"]
    assert [(p["t_ms"], p["t_hi_ms"], p["reads"], p["p_consistent"]) for p in visibility] == [
        (0.0, 0.1, 2, 0.5),
        (0.2, 0.5, 2, 1.0),
        (50.0, 100.0, 1, 1.0),
    ]


def test_percentiles_follow_the_nines_grid_and_stop_where_the_sample_does():
    latency = np.random.default_rng(3).exponential(2.0, size=2000)
    stats = latency_stats(latency)
    resolved = [p for p, v in zip(nines.GRID, stats["percentiles"], strict=True) if v is not None]
    # 2000 values resolve p99.95 (1 - 1/2000) and nothing finer.
    assert resolved[-1] == 99.95 and len(resolved) == nines.GRID.index(99.95) + 1
    for percent, value in zip(resolved, stats["percentiles"], strict=False):
        assert value == np.percentile(latency, percent)
    assert stats["percentiles"][nines.GRID.index(99.0)] == stats["p99"]
