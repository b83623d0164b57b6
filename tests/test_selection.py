"""Replica selection (quorum.replica_selection): each strategy against what it promises.

With constant latencies and no service time, the latency of a read is the R-th smallest round
trip among the replicas it asks, so ``nearest``, ``random`` and ``ring`` have exact answers.
Tolerances are multiples of the standard error computed from the sample; seeds are pinned.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

import qsim
from qsim.model.leaderless.ring import Ring

STRATEGIES = ("random", "ring", "nearest", "least_outstanding", "latency_ewma", "two_choices")
NODES = 5
R = 2
# One-way latency (ms) from the clients' region r1 to the node of region rI; read_request and
# read_response differ in the second table, so the nearest replicas by request alone (n1, n2)
# are not the nearest by round trip (n3, n4).
SYMMETRIC = {"read_request": [3.0, 1.0, 4.0, 1.5, 5.0], "read_response": [3.0, 1.0, 4.0, 1.5, 5.0]}
ASYMMETRIC = {"read_request": [1.0, 2.0, 3.0, 4.0, 5.0], "read_response": [9.0, 6.0, 1.0, 1.0, 1.0]}


def run(spec: dict, seed: int = 1) -> qsim.RunResult:
    result = qsim.simulate(qsim.scenario_from_dict({"name": "selection", **spec}), seed=seed)
    assert result.error is None
    return result


def one_node_per_region(strategy: str, one_way: dict[str, list[float]], duration: str = "2s") -> dict:
    """Node nI alone in region rI, clients in r1: each region pair (r1, rI) has its own latency.

    Links name nodes only, so the client takes part in overrides through its region; the pair
    (r1, r1) is the route from the clients to n1. Reads only, no service time: R of N = 5.
    """
    pairs = [
        {
            "between": ["r1", f"r{i + 1}"],
            "kinds": {kind: {"dist": "constant", "value": one_way[kind][i]} for kind in one_way},
        }
        for i in range(NODES)
    ]
    return {
        "duration": duration,
        "cluster": {"nodes": [{"name": f"n{i + 1}", "region": f"r{i + 1}"} for i in range(NODES)]},
        "network": {"latency": {"dist": "constant", "value": 50.0}, "regions": pairs},
        "quorum": {"n": NODES, "r": R, "w": R, "read_fanout": "quorum", "replica_selection": strategy},
        "workload": {
            "arrival": {"type": "poisson", "rate": 1000},
            "client_regions": ["r1"],
            "read_fraction": 1.0,
        },
    }


def round_trips(one_way: dict[str, list[float]]) -> list[float]:
    return [a + b for a, b in zip(one_way["read_request"], one_way["read_response"], strict=True)]


def reads(result: qsim.RunResult) -> pd.DataFrame:
    ops = result.ops
    return ops[ops["kind"] == "read"]


# --- nearest, random, ring: exact latencies ------------------------------------------------------


@pytest.mark.parametrize("one_way", [SYMMETRIC, ASYMMETRIC], ids=["symmetric", "asymmetric"])
def test_nearest_reads_take_the_r_th_smallest_round_trip(one_way):
    result = run(one_node_per_region("nearest", one_way))
    latency = reads(result)["latency_ms"].to_numpy()
    expected = sorted(round_trips(one_way))[R - 1]  # 3.0 (2 x 1.5) and 5.0 (4 + 1)
    assert len(latency) > 1500
    assert result.ops["ok"].all()
    np.testing.assert_allclose(latency, expected, rtol=0, atol=1e-9)


def test_random_reads_average_the_r_th_order_statistic_over_every_r_subset():
    result = run(one_node_per_region("random", SYMMETRIC, duration="4s"))
    latency = reads(result)["latency_ms"].to_numpy()
    subsets = list(itertools.combinations(round_trips(SYMMETRIC), R))
    expected = sum(sorted(subset)[R - 1] for subset in subsets) / math.comb(NODES, R)
    standard_error = latency.std(ddof=1) / math.sqrt(len(latency))
    assert len(latency) > 3000
    assert abs(latency.mean() - expected) < 4 * standard_error
    # Every read took one of the subsets' values, and each of them occurs.
    possible = {sorted(subset)[R - 1] for subset in subsets}
    assert set(np.round(latency, 9)) == possible


def test_ring_reads_ask_the_first_r_of_the_preference_list():
    scenario = qsim.scenario_from_dict({"name": "selection", **one_node_per_region("ring", SYMMETRIC)})
    nodes = scenario.cluster.nodes
    ring = Ring([n.name for n in nodes], scenario.cluster.vnodes, NODES, [n.region for n in nodes])
    trips = round_trips(SYMMETRIC)
    by_key = []
    for seed in (1, 2):
        ops = reads(run(one_node_per_region("ring", SYMMETRIC), seed=seed))
        expected = [max(trips[node] for node in ring.replicas(key)[:R]) for key in ops["key"]]
        np.testing.assert_allclose(ops["latency_ms"], expected, rtol=0, atol=1e-9)
        by_key.append(ops.groupby("key")["latency_ms"].agg(["min", "max"]))
    assert (by_key[0]["max"] - by_key[0]["min"]).max() < 1e-9  # one latency per key
    common = by_key[0].index.intersection(by_key[1].index)
    assert len(common) > 500
    np.testing.assert_allclose(by_key[0].loc[common, "min"], by_key[1].loc[common, "min"], atol=1e-9)
    assert by_key[0]["min"].nunique() > 1  # the key decides, and keys differ


# --- least_outstanding and two_choices balance load ----------------------------------------------


def uneven_ring(strategy: str) -> dict:
    """Reads of R = 1 of N = 3 on a ring of one token per node.

    The nodes own very different shares of the keys, so ``random`` (each read to a uniform
    replica of its key) loads them unevenly.
    """
    return {
        "duration": "1s",
        "cluster": {
            "nodes": 6,
            "vnodes": 1,
            "replica": {"service_time": {"dist": "exponential", "mean": 0.2}, "concurrency": 2},
        },
        "network": {"latency": {"dist": "exponential", "mean": 0.5}},
        "quorum": {"n": 3, "r": 1, "w": 1, "read_fanout": "quorum", "replica_selection": strategy},
        "workload": {"arrival": {"type": "poisson", "rate": 5000}, "clients": 4, "read_fraction": 1.0},
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_least_outstanding_and_two_choices_spread_load_more_evenly_than_random(seed):
    load = {s: run(uneven_ring(s), seed) for s in ("random", "least_outstanding", "two_choices")}
    imbalance = {s: result.summary["load"]["imbalance"] for s, result in load.items()}
    # random: ~1.8 (the ring's ownership); least_outstanding ~1.45, two_choices ~1.55. Each
    # node receives ~800 messages, so an imbalance is known to a few percent.
    assert imbalance["random"] > 1.6
    assert imbalance["least_outstanding"] < 0.9 * imbalance["random"]
    assert imbalance["two_choices"] < 0.9 * imbalance["random"]


# --- latency_ewma follows observed response times ------------------------------------------------


def slowed(strategy: str, until: float | None, reset: float | None = 10_000.0) -> dict:
    """n6 serves 20x slower from 1 s (to ``until``); reads of R = 1 of N = 3, 250 ms windows."""
    return {
        "duration": "3s",
        "cluster": {
            "nodes": 6,
            "replica": {"service_time": {"dist": "exponential", "mean": 0.2}, "concurrency": 4},
        },
        "network": {"latency": {"dist": "exponential", "mean": 0.5}},
        "quorum": {
            "n": 3,
            "r": 1,
            "w": 1,
            "read_fanout": "quorum",
            "replica_selection": strategy,
            "ewma_reset": reset,
        },
        "workload": {"arrival": {"type": "poisson", "rate": 3000}, "clients": 4, "read_fraction": 1.0},
        "faults": [{"at": 1000, "slow": "n6", "factor": 20, "until": until}],
        "metrics": {"window": 250},
    }


def share_of_n6(result: qsim.RunResult, start_ms: float, end_ms: float) -> tuple[float, int]:
    """The share of read requests n6 received in [start_ms, end_ms), and how many there were."""
    nodes = result.nodes
    during = nodes[(nodes["window_start_ms"] >= start_ms) & (nodes["window_start_ms"] < end_ms)]
    total = int(during["messages"].sum())
    return during.loc[during["node"] == "n6", "messages"].sum() / total, total


def test_latency_ewma_steers_reads_away_from_a_node_once_it_slows_down():
    random = run(slowed("random", until=None))
    before, early = share_of_n6(random, 0, 1000)
    after, late = share_of_n6(random, 1250, 3000)
    # random ignores speed: n6 keeps its share (each read goes to n6 independently, so the
    # difference of the two shares has a binomial standard error).
    standard_error = math.sqrt(before * (1 - before) * (1 / early + 1 / late))
    assert abs(after - before) < 4 * standard_error
    assert before > 0.1

    ewma = run(slowed("latency_ewma", until=None))
    before, _ = share_of_n6(ewma, 0, 1000)
    after, _ = share_of_n6(ewma, 1250, 3000)
    assert before > 0.1
    assert after < 0.01


def test_latency_ewma_brings_traffic_back_after_the_slowdown_only_when_scores_are_reset():
    reset = run(slowed("latency_ewma", until=2000, reset=100))
    before, _ = share_of_n6(reset, 0, 1000)
    during, _ = share_of_n6(reset, 1250, 2000)
    back, _ = share_of_n6(reset, 2250, 3000)
    assert during < 0.05  # only the few reads after each reset, while n6's score is unknown
    assert back > 0.1
    assert back > 3 * during

    kept = run(slowed("latency_ewma", until=2000, reset=None))
    # Without a reset n6 keeps the slow score it had when last asked: it is never asked again.
    assert share_of_n6(kept, 2250, 3000)[0] < 0.01
    assert before > 0.1


# --- fan-out all, determinism ---------------------------------------------------------------------


def fan_out_all(strategy: str, latency: dict) -> dict:
    """Reads and writes asked of every replica (fan-out all), one slow link, coordinators on nodes."""
    return {
        "seed": 3,
        "duration": "1s",
        "cluster": {
            "nodes": 5,
            "replica": {"service_time": {"dist": "exponential", "mean": 0.2}, "concurrency": 2},
        },
        "network": {
            "latency": latency,
            "links": [{"between": ["n1", "n2"], "latency": {"dist": "constant", "value": 3.0}}],
        },
        "quorum": {"n": 3, "r": 2, "w": 2, "replica_selection": strategy, "coordinator": "replica"},
        "workload": {"arrival": {"type": "poisson", "rate": 2000}, "clients": 2, "keys": {"count": 50}},
    }


@pytest.mark.parametrize(
    "latency",
    [{"dist": "constant", "value": 1.0}, {"dist": "exponential", "mean": 1.0}],
    ids=["constant", "exponential"],
)
def test_selection_changes_nothing_when_every_replica_is_asked(latency):
    baseline = run(fan_out_all("random", latency)).ops
    assert len(baseline) > 1500
    for strategy in STRATEGIES[1:]:
        pd.testing.assert_frame_equal(run(fan_out_all(strategy, latency)).ops, baseline, obj=strategy)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_same_seed_gives_the_same_operations_for_every_strategy(strategy):
    spec = uneven_ring(strategy) | {"duration": "300ms"}
    first, second = run(spec, seed=7), run(spec, seed=7)
    pd.testing.assert_frame_equal(first.ops, second.ops)
    pd.testing.assert_frame_equal(first.nodes, second.nodes)
    assert not first.ops.equals(run(spec, seed=8).ops)
