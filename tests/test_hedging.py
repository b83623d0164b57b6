"""Hedged requests (quorum.hedge): an operation short of its quorum after a delay asks one more replica.

Seeds are pinned; tolerances are multiples of the binomial standard error of the sample.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd
import pytest

import qsim


def run(spec: dict, seed: int = 1, check: bool = True) -> qsim.RunResult:
    result = qsim.simulate(qsim.scenario_from_dict({"name": "hedging", **spec}), seed=seed)
    if check:
        assert result.error is None
    return result


def one_slow_node(
    hedge: dict | None, read_fraction: float = 1.0, fanout: str = "quorum", slow: bool = True
) -> dict:
    """Six nodes, n6 a hundred times slower (unless not ``slow``); R = 1 and W = 2 of N = 3."""
    nodes = [{"name": f"n{i + 1}"} for i in range(6)]
    if slow:
        nodes[5] |= {"service_time": {"dist": "exponential", "mean": 20.0}, "concurrency": 8}
    return {
        "duration": "2s",
        "cluster": {
            "nodes": nodes,
            "replica": {"service_time": {"dist": "exponential", "mean": 0.2}, "concurrency": 4},
        },
        "network": {"latency": {"dist": "exponential", "mean": 0.5}},
        "quorum": {
            "n": 3,
            "r": 1,
            "w": 2,
            "read_fanout": fanout,
            "write_fanout": fanout,
            "hedge": hedge,
        },
        "workload": {
            "arrival": {"type": "poisson", "rate": 2000},
            "clients": 4,
            "read_fraction": read_fraction,
        },
    }


def counts(result: qsim.RunResult, kind: str) -> tuple[int, int]:
    """Operations of ``kind`` and the ``kind`` requests sent (all delivered: nothing is lost here)."""
    sent = result.summary["messages"][f"{kind}_request"]
    assert sent["dropped"] == 0
    return int((result.ops["kind"] == kind).sum()), sent["sent"]


def test_hedging_after_a_fixed_delay_cuts_the_read_tail():
    """Reads take ~1.2 ms except on n6 (~20 ms and its queue): a hedge after 5 ms avoids n6's tail."""
    plain = run(one_slow_node(None))
    hedged = run(one_slow_node({"after": "5ms"}))
    reads, sent = counts(hedged, "read")
    extra = hedged.summary["hedging"]["extra_requests"]
    assert reads == counts(plain, "read")[0]
    assert extra > 0
    assert sent == reads + extra
    assert hedged.summary["reads"]["latency_ms"]["p99"] < plain.summary["reads"]["latency_ms"]["p99"] / 3


def test_hedging_after_a_percentile_cuts_the_read_tail_by_one_extra_request_per_hedged_read():
    plain = run(one_slow_node(None))
    hedged = run(one_slow_node({"after": "p90"}))
    reads, sent = counts(hedged, "read")
    extra = hedged.summary["hedging"]["extra_requests"]
    assert counts(plain, "read") == (reads, reads)  # R = 1: one request per read without hedging
    assert extra > 0
    assert sent == reads + extra
    p99 = {
        name: r.summary["reads"]["latency_ms"]["p99"] for name, r in (("plain", plain), ("hedged", hedged))
    }
    assert p99["hedged"] < p99["plain"] / 3  # ~9.5 ms against ~63 ms: n6's queue no longer sets it


def test_a_hedge_delay_longer_than_every_latency_sends_nothing_and_changes_nothing():
    spec = {
        "duration": "1s",
        "network": {"latency": {"dist": "constant", "value": 1.0}},
        "quorum": {"n": 3, "r": 1, "w": 1, "read_fanout": "quorum", "write_fanout": "quorum"},
        "workload": {"arrival": {"type": "poisson", "rate": 1000}},
    }
    plain = run(spec)
    hedged = run(spec | {"quorum": spec["quorum"] | {"hedge": {"after": "10ms", "writes": True}}})
    assert hedged.summary["hedging"]["extra_requests"] == 0
    assert len(plain.ops) > 900
    assert (plain.ops["latency_ms"] < 10).all()
    pd.testing.assert_frame_equal(hedged.ops, plain.ops)
    assert hedged.summary["messages"] == plain.summary["messages"]


@pytest.mark.parametrize("level", [50, 90, 95])
def test_hedging_at_a_percentile_hedges_about_the_reads_beyond_it(level):
    """On equal nodes a read is hedged when it outlasts the p-th percentile of recent reads.

    (With a slow node the share is larger: hedged reads shorten the tail the percentile is taken of.)
    """
    result = run(one_slow_node({"after": f"p{level}"}, slow=False))
    reads = int((result.ops["kind"] == "read").sum())
    extra = result.summary["hedging"]["extra_requests"]
    expected = 1 - level / 100
    standard_error = math.sqrt(expected * (1 - expected) / reads)
    assert reads > 3500
    # Each read is hedged at most once; the first 50 are not (no percentile yet).
    assert abs(extra / reads - expected) < 4 * standard_error + 50 / reads


def test_percentile_hedging_waits_for_50_latencies_first():
    spec = one_slow_node({"after": "p50"})
    spec["workload"] = spec["workload"] | {"max_ops": 50}
    assert run(spec).summary["hedging"]["extra_requests"] == 0
    spec["workload"] = spec["workload"] | {"max_ops": 200}
    assert run(spec).summary["hedging"]["extra_requests"] > 0


def test_writes_are_hedged_only_with_writes_true():
    """A write-only workload, W = 2 of N = 3 asked of two replicas: the third is the hedge."""
    never = run(one_slow_node({"after": "p50"}, read_fraction=0.0))
    hedged = run(one_slow_node({"after": "p50", "writes": True}, read_fraction=0.0))
    writes, sent = counts(never, "write")
    assert never.summary["hedging"]["extra_requests"] == 0
    assert sent == 2 * writes
    writes, sent = counts(hedged, "write")
    extra = hedged.summary["hedging"]["extra_requests"]
    assert extra > writes / 4
    assert sent == 2 * writes + extra
    p99 = [r.summary["writes"]["latency_ms"]["p99"] for r in (never, hedged)]
    assert p99[1] < p99[0]


def test_fan_out_all_leaves_nothing_to_hedge():
    spec = one_slow_node({"after": "p50", "writes": True}, read_fraction=0.5, fanout="all")
    result = run(spec)
    reads, read_requests = counts(result, "read")
    writes, write_requests = counts(result, "write")
    assert result.summary["hedging"]["extra_requests"] == 0
    assert (read_requests, write_requests) == (3 * reads, 3 * writes)


@pytest.mark.parametrize("failover", ["sloppy", "shrink"])
def test_hedging_works_with_every_failover(failover):
    spec = one_slow_node({"after": "p90"})
    spec["quorum"] = spec["quorum"] | {"failover": failover}
    result = run(spec, check=False)
    assert result.error is None
    assert result.summary["hedging"]["extra_requests"] > 0


def test_the_hedge_percentile_is_recomputed_every_50_latencies(monkeypatch):
    """Over the last 1000 latencies, every 50 answered operations (not after each one)."""
    calls = []
    percentile = np.percentile

    def counted(values, level, *args, **kwargs):
        if sys._getframe(1).f_globals["__name__"].startswith("qsim.model."):  # the model's, not the summary's
            calls.append(len(values))
        return percentile(values, level, *args, **kwargs)

    monkeypatch.setattr(np, "percentile", counted)
    result = run(one_slow_node({"after": "p90"}))
    reads = int((result.ops["kind"] == "read").sum())
    assert reads > 3500  # far more than the 1000 latencies kept
    assert result.ops["ok"].all()
    assert calls[:3] == [50, 100, 150]
    assert len(calls) == reads // 50
