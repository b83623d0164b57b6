"""Hedged requests (quorum.hedge): an operation short of its quorum after a delay asks one more replica.

Seeds are pinned; tolerances are multiples of the binomial standard error of the sample.
"""

from __future__ import annotations

import math
import types

import numpy as np
import pandas as pd
import pytest

import qsim
import qsim.model.coordinator

# Below 50 operations of a kind, a fixed hedge delay never meets the percentile bookkeeping that
# crashes it (see the xfail test below), so the fixed-delay tests run fewer operations than that.
FEW = 49


def run(spec: dict, seed: int = 1, check: bool = True) -> qsim.RunResult:
    result = qsim.simulate(qsim.scenario_from_dict({"name": "hedging", **spec}), seed=seed)
    if check:
        assert result.error is None
    return result


def one_slow_node(hedge: dict | None, read_fraction: float = 1.0, fanout: str = "quorum") -> dict:
    """Six nodes, n6 a hundred times slower; R = 1 and W = 2 of N = 3, asked of as few as needed."""
    nodes = [{"name": f"n{i + 1}"} for i in range(5)]
    nodes.append({"name": "n6", "service_time": {"dist": "exponential", "mean": 20.0}, "concurrency": 8})
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
        "workload": {"arrival": {"type": "poisson", "rate": 2000}, "clients": 4, "read_fraction": read_fraction},
    }


def counts(result: qsim.RunResult, kind: str) -> tuple[int, int]:
    """Operations of ``kind`` and the ``kind`` requests sent (all delivered: nothing is lost here)."""
    sent = result.summary["messages"][f"{kind}_request"]
    assert sent["dropped"] == 0
    return int((result.ops["kind"] == kind).sum()), sent["sent"]


@pytest.mark.xfail(
    reason="BUG: with a fixed delay (hedge.after in ms) Coordinator._observe_latency computes "
    "np.percentile(recent, None) at the 50th answered operation of a kind and the run stops "
    "with TypeError",
    strict=True,
)
def test_hedging_after_a_fixed_delay_cuts_the_read_tail():
    plain = run(one_slow_node(None))
    hedged = run(one_slow_node({"after": "5ms"}))
    reads, sent = counts(hedged, "read")
    extra = hedged.summary["hedging"]["extra_requests"]
    assert reads == counts(plain, "read")[0]
    assert 0 < extra and sent == reads + extra
    assert hedged.summary["reads"]["latency_ms"]["p99"] < plain.summary["reads"]["latency_ms"]["p99"] / 3


def test_hedging_after_a_percentile_cuts_the_read_tail_by_one_extra_request_per_hedged_read():
    plain = run(one_slow_node(None))
    hedged = run(one_slow_node({"after": "p90"}))
    reads, sent = counts(hedged, "read")
    extra = hedged.summary["hedging"]["extra_requests"]
    assert counts(plain, "read") == (reads, reads)  # R = 1: one request per read without hedging
    assert extra > 0
    assert sent == reads + extra
    p99 = {name: r.summary["reads"]["latency_ms"]["p99"] for name, r in (("plain", plain), ("hedged", hedged))}
    assert p99["hedged"] < p99["plain"] / 3  # ~9.5 ms against ~63 ms: n6's queue no longer sets it


def test_a_hedge_delay_longer_than_every_latency_sends_nothing_and_changes_nothing():
    spec = {
        "duration": "1s",
        "network": {"latency": {"dist": "constant", "value": 1.0}},
        "quorum": {"n": 3, "r": 1, "w": 1, "read_fanout": "quorum", "write_fanout": "quorum"},
        "workload": {"arrival": {"type": "poisson", "rate": 1000}, "max_ops": FEW},
    }
    plain = run(spec)
    hedged = run(spec | {"quorum": spec["quorum"] | {"hedge": {"after": "10ms", "writes": True}}})
    assert hedged.summary["hedging"]["extra_requests"] == 0
    assert (plain.ops["latency_ms"] < 10).all()
    pd.testing.assert_frame_equal(hedged.ops, plain.ops)
    assert hedged.summary["messages"] == plain.summary["messages"]


@pytest.mark.parametrize("level", [50, 90, 95])
def test_hedging_at_a_percentile_hedges_about_the_reads_beyond_it(level):
    """On equal nodes a read is hedged when it outlasts the p-th percentile of recent reads."""
    spec = one_slow_node({"after": f"p{level}"})
    spec["cluster"] = spec["cluster"] | {"nodes": 6}
    result = run(spec)
    reads = int((result.ops["kind"] == "read").sum())
    extra = result.summary["hedging"]["extra_requests"]
    expected = 1 - level / 100
    # No hedging before the first 50 reads have set the threshold.
    standard_error = math.sqrt(expected * (1 - expected) / reads)
    assert reads > 3500
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


@pytest.mark.xfail(
    reason="BUG: Coordinator._send_hedge reads op.pool, which only strict failover sets; with "
    "failover sloppy or shrink the first hedge raises AttributeError: 'Op' object has no attribute 'pool'",
    strict=True,
)
@pytest.mark.parametrize("failover", ["sloppy", "shrink"])
def test_hedging_works_with_every_failover(failover):
    spec = one_slow_node({"after": "p90"})
    spec["quorum"] = spec["quorum"] | {"failover": failover}
    result = run(spec, check=False)
    assert result.error is None
    assert result.summary["hedging"]["extra_requests"] > 0


@pytest.mark.xfail(
    reason="BUG: once 1000 latencies are kept (the deque is full), len(recent) % 50 == 0 always "
    "holds, so Coordinator._observe_latency recomputes the percentile after every operation "
    "instead of every 50",
    strict=True,
)
def test_the_hedge_percentile_is_recomputed_every_50_latencies(monkeypatch):
    calls = []

    def percentile(values, level):
        calls.append(len(values))
        return np.percentile(values, level)

    monkeypatch.setattr(qsim.model.coordinator, "np", types.SimpleNamespace(percentile=percentile))
    result = run(one_slow_node({"after": "p90"}))
    reads = int((result.ops["kind"] == "read").sum())
    assert reads > 3500
    assert len(calls) <= reads // 50
