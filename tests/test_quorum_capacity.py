"""Simulated saturation throughput against the analytic capacity of a quorum system's strategy.

A node with c servers and a constant service time s ms serves at most 1000 c / s requests per
second. A strategy asks node i on a fraction p_i of operations, so the system can carry at most
min_i (1000 c_i / s_i) / p_i operations per second: the capacity, 1 / the strategy's load with
capacities (Whittaker et al. 2021). A closed loop of many clients keeps every queue busy, so by the
operational laws its throughput approaches that bound from below as the clients grow (with K
bottleneck queues and C clients, within a factor of about C / (C + K - 1) for balanced demands).
Open-loop arrivals below the capacity are carried in full with short queues; above it the
bottleneck's queue grows for as long as the run lasts: the knee of the latency curve.
"""

from __future__ import annotations

import pytest

import qsim
from qsim.quorums import QuorumSystem
from qsim.quorums import load as ql

SERVICE_MS = (1.0, 1.0, 2.0, 1.0, 2.0, 4.0)  # a 2 x 3 grid of unequal nodes, one server each
NAMES = [f"n{i + 1}" for i in range(len(SERVICE_MS))]
GRID = {"kind": "grid", "rows": 2, "cols": 3, "read": "row", "write": "row_cover"}


def spec(strategy: str, arrival: dict, clients: int = 1, duration: str = "3s") -> dict:
    services = zip(NAMES, SERVICE_MS, strict=True)
    nodes = [{"name": name, "service_time": f"{ms}ms", "concurrency": 1} for name, ms in services]
    return {
        "name": "capacity",
        "duration": duration,
        "warmup": "500ms",
        "cluster": {"nodes": nodes},
        "network": {"latency": "100us"},
        "quorum": {
            "read_fanout": "quorum",
            "write_fanout": "quorum",
            "timeout": "20s",
            "system": GRID | {"strategy": strategy},
        },
        "workload": {"arrival": arrival, "clients": clients, "read_fraction": 0.5, "keys": {"count": 1000}},
    }


def run(strategy: str, arrival: dict, clients: int = 1) -> dict:
    result = qsim.simulate(qsim.scenario_from_dict(spec(strategy, arrival, clients)), seed=3)
    assert result.error is None
    return result.summary


def analytic_capacity(strategy: str) -> float:
    """The capacity by hand for uniform, by the linear program for optimal.

    Uniform: a read takes either row (p = 1/2 per node), a write one node of each row (p = 1/3),
    so every node is asked on 0.5 x 1/2 + 0.5 x 1/3 = 5/12 of operations. The slowest node (4 ms,
    250 requests/s) caps the system at 250 / (5/12) = 600 ops/s.
    """
    if strategy == "uniform":
        return 250 / (5 / 12)
    system = QuorumSystem.grid(NAMES, 2, 3)
    capacities = [1000.0 / ms for ms in SERVICE_MS]
    best = ql.optimal_strategy(system.n, system.reads, system.writes, 0.5, capacities)
    return 1.0 / ql.system_load(system.n, best, 0.5, capacities)


def test_the_optimal_strategy_has_more_capacity_than_uniform_here():
    """The optimal strategy sends writes of row 2 to its fast nodes; reads still need a whole row."""
    assert analytic_capacity("uniform") == pytest.approx(600.0)
    assert analytic_capacity("optimal") > 1.4 * analytic_capacity("uniform")


@pytest.mark.parametrize("strategy", ["uniform", "optimal"])
def test_closed_loop_throughput_saturates_at_the_analytic_capacity(strategy):
    summary = run(strategy, {"type": "closed"}, clients=128)
    capacity = summary["quorum_system"]["capacity_ops_s"]
    assert capacity == pytest.approx(analytic_capacity(strategy), rel=1e-6)
    assert summary["throughput_ops_s"] == pytest.approx(capacity, rel=0.10)
    assert summary["throughput_ops_s"] < capacity * 1.01  # a bound: never above it (constant service)


@pytest.mark.slow
def test_open_loop_latency_knees_at_the_capacity():
    """Below the capacity every operation is carried and queues stay short; above it they grow."""
    capacity = analytic_capacity("optimal")
    below = run("optimal", {"type": "poisson", "rate": f"{0.7 * capacity:.0f}/s"}, clients=16)
    above = run("optimal", {"type": "poisson", "rate": f"{1.3 * capacity:.0f}/s"}, clients=16)
    assert below["throughput_ops_s"] == pytest.approx(0.7 * capacity, rel=0.05)
    assert above["throughput_ops_s"] < 1.3 * capacity * 0.95
    assert above["reads"]["latency_ms"]["p50"] > 20 * below["reads"]["latency_ms"]["p50"]
