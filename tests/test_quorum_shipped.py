"""The three shipped quorum-system scenarios: each validates, is analysed, runs, and shows its claim."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import qsim
from qsim.cli import main

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
GRID = SCENARIOS / "quorum-grid-vs-majority.yaml"
WEIGHTED = SCENARIOS / "quorum-weighted-strong-node.yaml"
HETEROGENEOUS = SCENARIOS / "quorum-heterogeneous-capacity.yaml"
SHIPPED = (GRID, WEIGHTED, HETEROGENEOUS)
MAJORITY = "{kind: threshold, strategy: uniform}"


def run(path: Path, **overrides: str) -> dict:
    """Run ``path`` with ``overrides`` (dotted path: value) and return its summary."""
    scenario = qsim.load_scenario(path, [f"{k}={v}" for k, v in overrides.items()])
    result = qsim.simulate(scenario)
    assert result.error is None
    return result.summary


def brief(path: Path, **overrides: str) -> dict:
    """Run ``path`` for 2 s of simulated time (0.5 s warm-up) and return its summary."""
    return run(path, **({"duration": "2s", "warmup": "500ms"} | overrides))


def node_loads(summary: dict) -> dict[str, tuple[float, float, float]]:
    """Each node's (measured load, analytic load, standard error) from a summary."""
    nodes = summary["quorum_system"]["nodes"]
    return {name: (n["load"], n["analytic_load"], n["se"]) for name, n in nodes.items()}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_validates_and_sweeps(path):
    scenario = qsim.load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.quorum.system is not None
    result = CliRunner().invoke(main, ["sweep", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_analyze_prints_the_system(path):
    result = CliRunner().invoke(main, ["analyze", str(path)])
    assert result.exit_code == 0, result.output
    for word in ("resilience", "availability", "optimal", "uniform", "capacity"):
        assert word in result.output


# --- grid against majority ---------------------------------------------------------------------


def test_grid_spreads_less_load_than_majority_and_answers_sooner():
    """Read fraction 0.9, fan-out quorum, no crashes (so no node's load moves to the others).

    Grid 3x3, row reads (3 of 9 nodes) and row-plus-cover writes (5 of 9), uniform: every node's
    load is 0.9 x 3/9 + 0.1 x 5/9 = 0.3556; majority of 9 asks 5 of 9 for both: 5/9 = 0.5556.
    Capacity = node capacity (2 servers x 1000 / 1 ms = 2,000 ops/s) / load: 5,625 against 3,600. Each
    measured load lies within 4 standard errors of its analytic value (9 nodes, seed pinned). A
    grid read waits for the slowest of 3 replies, a majority read for the slowest of 5: the grid's
    p50 is lower (3.5 against 4.0 ms in the shipped sweep).
    """
    grid = brief(GRID, faults="[]")
    majority = brief(GRID, faults="[]", **{"quorum.system": MAJORITY})
    for summary, load in ((grid, 0.9 * 3 / 9 + 0.1 * 5 / 9), (majority, 5 / 9)):
        assert summary["quorum_system"]["load"] == pytest.approx(load)
        for measured, analytic, se in node_loads(summary).values():
            assert analytic == pytest.approx(load)
            assert abs(measured - analytic) < 4 * se
    assert grid["quorum_system"]["capacity_ops_s"] == pytest.approx(2000 / (0.9 * 3 / 9 + 0.1 * 5 / 9))
    assert majority["quorum_system"]["capacity_ops_s"] == pytest.approx(2000 / (5 / 9))
    assert grid["reads"]["latency_ms"]["p50"] < majority["reads"]["latency_ms"]["p50"]


def test_grid_is_less_available_than_majority_on_paper():
    """Nodes up a = 9 s / (9 s + 1 s) = 0.9. Grid reads need a whole row: 1 - (1 - a^3)^3 = 0.9801;
    majority needs 5 of 9 up: sum over k >= 5 of C(9,k) a^k (1-a)^(9-k) = 0.9991."""
    grid = brief(GRID, duration="1s")
    majority = brief(GRID, duration="1s", **{"quorum.system": MAJORITY})
    assert grid["quorum_system"]["availability"]["read"] == pytest.approx(1 - (1 - 0.9**3) ** 3)
    assert majority["quorum_system"]["availability"]["read"] == pytest.approx(0.999109, abs=1e-6)
    assert grid["quorum_system"]["resilience"] == {"read": 2, "write": 2}
    assert majority["quorum_system"]["resilience"] == {"read": 4, "write": 4}


# --- weighted voting with one strong node ------------------------------------------------------


def test_optimal_weighted_strategy_leans_on_the_strong_node():
    """Votes n1=3, n2..n5=1; reads and writes need 4: {n1, x} for x in n2..n5, or {n2..n5}.

    Uniform over the 5 quorums: n1 in 4 of them (load 0.8), each other node in 2 (0.4).
    Optimal with n1 three times a small node's capacity: p = 1/13 on {n2..n5}, 12/13 spread over
    the pairs: n1 load 12/13 = 0.923, the others 3/13 + 1/13 = 4/13 = 0.308; capacity 13/4 small
    nodes (6,500 ops/s) against uniform's 1/0.4 = 2.5 (5,000 ops/s). Without crashes each measured
    load lies within 4 standard errors of these.
    """
    expected = {"uniform": (0.8, 0.4), "optimal": (12 / 13, 4 / 13)}
    capacity = {}
    for strategy, (strong, small) in expected.items():
        summary = brief(WEIGHTED, faults="[]", **{"quorum.system.strategy": strategy})
        loads = node_loads(summary)
        for name, (measured, analytic, se) in loads.items():
            assert analytic == pytest.approx(strong if name == "n1" else small)
            assert abs(measured - analytic) < 4 * se
        capacity[strategy] = summary["quorum_system"]["capacity_ops_s"]
    assert capacity == pytest.approx({"uniform": 2.5 * 2000, "optimal": 3.25 * 2000})


def test_strong_node_makes_weighted_voting_as_available_as_majority():
    """n1 up 0.99, the others 0.9. Weighted: 0.99 x (1 - 0.1^4) + 0.01 x 0.9^4 = 0.99646.
    Majority of 5: n1 up and >= 2 of 4 up, or n1 down and >= 3 of 4:
    0.99 x (1 - 0.1^4 - 4 x 0.9 x 0.1^3) + 0.01 x (0.9^4 + 4 x 0.9^3 x 0.1) = 0.99581."""
    weighted = brief(WEIGHTED, duration="1s")
    majority = brief(WEIGHTED, duration="1s", **{"quorum.system": MAJORITY})
    assert weighted["quorum_system"]["availability"]["read"] == pytest.approx(
        0.99 * (1 - 0.1**4) + 0.01 * 0.9**4
    )
    assert majority["quorum_system"]["availability"]["read"] == pytest.approx(
        0.99 * (1 - 0.1**4 - 4 * 0.9 * 0.1**3) + 0.01 * (0.9**4 + 4 * 0.9**3 * 0.1)
    )
    assert (
        weighted["quorum_system"]["availability"]["read"] > majority["quorum_system"]["availability"]["read"]
    )


# --- heterogeneous capacity --------------------------------------------------------------------


def test_optimal_strategy_saturates_at_its_higher_capacity():
    """Any 3 of 5; n1, n2 serve in 0.5 ms (4,000 ops/s with 2 servers), n3..n5 in 2 ms (1,000).

    Uniform: every node in 3/5 of the quorums, so a slow node saturates at 1,000 / 0.6 = 1,667
    ops/s. Optimal: both fast nodes in every quorum, each slow one in 1/3: 1,000 / (1/3) = 3,000
    ops/s. With 128 closed-loop clients every bottleneck stays busy, and the throughput is within 10%
    of the capacity (97-98% in the shipped sweep). It cannot exceed it by more than its noise: 2,400
    to 4,400 operations in 1.5 s, a relative standard error of 1.5-2%, so 5% is 2.5-3 SE.
    """
    capacity = {"uniform": 1000 / 0.6, "optimal": 3000.0}
    throughput = {}
    for strategy in ("uniform", "optimal"):
        summary = brief(HETEROGENEOUS, **{"quorum.system.strategy": strategy, "workload.clients": "128"})
        assert summary["quorum_system"]["capacity_ops_s"] == pytest.approx(capacity[strategy])
        throughput[strategy] = summary["throughput_ops_s"]
        assert throughput[strategy] == pytest.approx(capacity[strategy], rel=0.1)
        assert throughput[strategy] <= capacity[strategy] * 1.05
    assert throughput["optimal"] > 1.6 * throughput["uniform"]
