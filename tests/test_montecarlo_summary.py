"""The Monte Carlo summary from arrays against the summary of its ops table, number for number.

The reference is the path the engine took before: the per-trial ops table, then
:func:`qsim.checks.metrics.summarize` and the fault-window summary over it. Both must give the same JSON.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from qsim.analysis import montecarlo
from qsim.analysis.montecarlo_summary import ops_history, summary_from_arrays
from qsim.checks.metrics import summarize
from qsim.checks.timeline import fault_windows_summary
from qsim.history import faults_frame
from qsim.scenario import run_id
from tests.test_montecarlo import EXPONENTIAL, MIXTURE, PARETO, monte_carlo, probe

SLOW = {"dist": "mixture", "components": [{"dist": "exponential", "mean": 1}, 30], "weights": [3, 1]}
TIMEOUTS = {  # a slow mode past a 20 ms timeout: some writes and some reads fail
    "latency": {"dist": "exponential", "mean": 1},
    "kinds": {"write_ack": SLOW, "read_response": SLOW},
}
WAN = {
    "latency": {"dist": "exponential", "mean": 1},
    "regions": [{"between": ["a", "b"], "latency": {"dist": "exponential", "mean": 2, "shift": 10}}],
}
NODES_AB = {"nodes": [{"name": "n1", "region": "a"}, {"name": "n2", "region": "b"}]}

SCENARIOS = {
    "n3-r1-w1": probe(3, 1, 1, EXPONENTIAL, delays=(0, 1, 4), trials=700),
    "n5-r2-w2-pareto": probe(5, 2, 2, PARETO, delays=(0, 0.5), trials=500),
    "n3-r2-w1-mixture": probe(3, 2, 1, MIXTURE, delays=(2,), trials=900),
    "quorum-fanouts": probe(
        5, 2, 1, EXPONENTIAL, trials=600, read_fanout="quorum", write_fanout="quorum"
    ),
    "timeouts": probe(3, 1, 2, TIMEOUTS, delays=(0, 2), trials=800, timeout="20ms"),
    "repeated-delays": probe(3, 1, 1, EXPONENTIAL, delays=(3, 0, 3), trials=400),
    "every-write-fails": probe(3, 1, 3, {"latency": 5}, delays=(0,), trials=50, timeout="4ms"),
    "wan": probe(
        2, 1, 1, WAN, delays=(0, 5), trials=800, cluster=NODES_AB,
        workload={"clients": 2, "arrival": {"type": "probe", "delays": [0, 5], "concurrency": 2}},
    ),
}  # fmt: skip


def reference_summary(scenario, outcome) -> dict:
    """The summary as the engine built it from the ops table (and as the discrete-event engine does)."""
    ops = ops_history(outcome, [node.name for node in scenario.cluster.nodes])
    faults = faults_frame([])
    acknowledged = int(((ops["kind"] == "write") & ops["ok"]).sum())
    return {
        "scenario": scenario.name,
        "run_id": f"{run_id(scenario)}-mc",
        "seed": scenario.seed,
        "engine": "montecarlo",
        "quorum": {"n": scenario.quorum.n, "r": scenario.quorum.r, "w": scenario.quorum.w},
        **summarize(ops),
        "faults": {
            "count": 0,
            "window_ms": scenario.metrics.window,
            "recovery": [],
            **fault_windows_summary(ops, faults),
        },
        "durability": {
            "acknowledged_writes": acknowledged,
            "lost_writes": 0,
            "lost_fraction": 0.0 if acknowledged else None,
            "lww_lost_updates": 0,
        },
        "nodes": {},
        "messages": {},
    }


def as_json(summary: dict) -> dict:
    return json.loads(json.dumps(summary))


@pytest.mark.parametrize("name", SCENARIOS)
def test_summary_from_arrays_is_the_summary_of_the_ops_table(name):
    scenario = SCENARIOS[name]
    outcome = monte_carlo(scenario, scenario.workload.arrival.trials, seed=3)
    summary = as_json(summary_from_arrays(scenario, outcome))
    assert summary["staleness"].pop("t_at_probability")  # Monte Carlo only: tested on its own
    reference = as_json(reference_summary(scenario, outcome))
    # The ops table holds absolute commit times (trials laid end to end), so commit_ms - start_ms
    # rounds: equal to the write latency the arrays hold to a few ulps of the run's length.
    commit, expected = (
        summary["writes"].pop("commit_latency_ms"),
        reference["writes"].pop("commit_latency_ms"),
    )
    assert commit.keys() == expected.keys() and commit["count"] == expected["count"]
    for field in ("mean", "p50", "p90", "p99", "p999", "max", "quantiles", "percentiles"):
        got, want = commit[field], expected[field]
        got, want = (got, want) if isinstance(want, list) else ([got], [want])
        assert [g is None for g in got] == [w is None for w in want]
        assert [g for g in got if g is not None] == pytest.approx(
            [w for w in want if w is not None], rel=1e-9
        )
    assert summary == reference


def test_the_scenarios_reach_the_cases_they_name():
    def outcome(name):
        scenario = SCENARIOS[name]
        return monte_carlo(scenario, scenario.workload.arrival.trials, seed=3)

    timeouts = outcome("timeouts")
    assert 0 < timeouts.write_ok.mean() < 1 and 0 < timeouts.read_ok.mean() < 1
    assert not outcome("every-write-fails").write_ok.any()
    wan = outcome("wan")
    assert wan.regions == ("a", "b") and set(np.unique(wan.write_region)) == {0, 1}
    assert 0 < outcome("quorum-fanouts").p_consistent.min() < 1


def test_run_without_a_table_reports_the_same():
    scenario = SCENARIOS["timeouts"]
    plain, tabled = montecarlo.run(scenario), montecarlo.run(scenario, table=True)
    assert plain.ops is None and len(tabled.ops) == 2 * 1600
    for summary in (plain.summary, tabled.summary):
        summary["runtime"] = summary["runtime"] | {"wall_s": 0, "engine_s": 0, "ops_per_s": 0}
    assert as_json(plain.summary) == as_json(tabled.summary)
    ops = tabled.ops[tabled.ops["ok"]]
    for kind in ("read", "write"):
        expected = np.sort(ops.loc[ops["kind"] == kind, "latency_ms"].to_numpy())
        latencies = np.concatenate(list(plain.sorted_latency[kind].runs.blocks()))
        assert np.array_equal(latencies, expected)
    assert plain.timeline.empty and list(plain.timeline.columns) == list(tabled.timeline.columns)
