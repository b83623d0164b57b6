"""Crashes combine with retries, hedging, every failover and every coordinator mode.

A retry waiting out its backoff has no coordinator yet; a crash in that window once aborted the
run (AttributeError in Coordinator.orphan).
"""

from __future__ import annotations

import itertools

import pytest

import qsim

# The issue's reproduction: a retry waits 200 ms while n1 crashes.
ORPHAN_RETRY = {
    "name": "orphan-retry",
    "duration": "3s",
    "cluster": {"nodes": 3},
    "network": {"latency": "1ms", "loss": 0.3},
    "quorum": {
        "n": 3,
        "r": 2,
        "w": 2,
        "coordinator": "random",
        "timeout": "10ms",
        "retries": 1,
        "retry_backoff": "200ms",
    },
    "workload": {"arrival": {"type": "poisson", "rate": "1000/s"}},
    "faults": [{"at": "1s", "crash": "n1", "recover_at": "2s"}],
}


@pytest.mark.parametrize("coordinator", ["random", "client"])
def test_a_crash_while_a_retry_waits_does_not_abort_the_run(coordinator):
    spec = {**ORPHAN_RETRY, "quorum": {**ORPHAN_RETRY["quorum"], "coordinator": coordinator}}
    result = qsim.simulate(qsim.scenario_from_dict(spec))
    assert result.error is None
    ops = result.ops
    assert len(ops) == ops["op_id"].max() + 1  # every issued operation ended and was recorded
    assert (ops["attempts"] == 2).any()
    assert ops["end_ms"].max() > 2000  # it ran past the crash and the recovery


FAULTS = {
    "crash": [{"at": "300ms", "crash": "n2", "recover_at": "700ms"}],
    "random": [
        {
            "random_crashes": "all",
            "mttf": {"dist": "exponential", "mean": "300ms"},
            "mttr": {"dist": "exponential", "mean": "100ms"},
        }
    ],
}
COMBINATIONS = list(
    itertools.product(
        ["client", "random", "local", "replica"],
        ["strict", "sloppy", "shrink"],
        [False, True],
        sorted(FAULTS),
    )
)


@pytest.mark.parametrize(("coordinator", "failover", "hedge", "faults"), COMBINATIONS)
def test_crashes_combine_with_every_mechanism(coordinator, failover, hedge, faults):
    quorum = {
        "n": 3,
        "r": 2,
        "w": 2,
        "coordinator": coordinator,
        "failover": failover,
        "timeout": "10ms",
        "retries": 2,
        "retry_backoff": "50ms",
        "suspicion": "100ms",
        "read_fanout": "quorum" if hedge else "all",
    }
    if hedge:
        quorum["hedge"] = {"after": "2ms", "writes": True}
    spec = {
        "name": "combination",
        "seed": 3,
        "duration": "1s",
        "cluster": {"nodes": [{"name": f"n{i}", "region": "ab"[i % 2]} for i in range(1, 6)]},
        "network": {"latency": {"dist": "exponential", "mean": "1ms"}, "loss": 0.05},
        "quorum": quorum,
        "workload": {"arrival": {"type": "poisson", "rate": "800/s"}, "clients": 4},
        "faults": FAULTS[faults],
    }
    result = qsim.simulate(qsim.scenario_from_dict(spec))
    assert result.error is None
    ops = result.ops
    assert len(ops) == ops["op_id"].max() + 1
    assert ops["attempts"].between(1, 3).all()
    assert (ops["end_ms"] >= ops["start_ms"]).all()
    budget = 3 * 10 + 50 + 100 + 1e-6  # three timeouts and the two backoffs
    assert (ops["latency_ms"] <= budget).all()
    assert (ops["attempts"] > 1).any() and ops["ok"].mean() > 0.5
    if hedge:
        assert result.summary["hedging"]["extra_requests"] > 0
