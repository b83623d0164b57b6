"""The simulator against closed forms: quorum intersection, PBS staleness, exact and order-statistic latency.

Tolerances are multiples of the standard error computed from the sample size; seeds are pinned.
"""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

import qsim


def run(spec: dict, seed: int = 1) -> qsim.RunResult:
    result = qsim.simulate(qsim.scenario_from_dict({"name": "theory", **spec}), seed=seed)
    assert result.error is None
    return result


def ok_latency(result: qsim.RunResult, kind: str) -> np.ndarray:
    ops = result.ops
    return ops.loc[(ops["kind"] == kind) & ops["ok"], "latency_ms"].to_numpy()


# (a) R + W > N: every read quorum meets every write quorum, so no read can be stale.


@pytest.mark.parametrize(
    ("n", "r", "w", "fanout"),
    [(3, 2, 2, "all"), (3, 2, 2, "quorum"), (5, 3, 3, "all"), (5, 1, 5, "quorum"), (3, 3, 1, "all")],
)
def test_intersecting_quorums_never_read_stale(n, r, w, fanout):
    result = run(
        {
            "duration": "10s",
            "cluster": {"nodes": 5, "replica": {"service_time": {"dist": "exponential", "mean": 0.05}}},
            "network": {"latency": {"dist": "exponential", "mean": 1}},
            "quorum": {"n": n, "r": r, "w": w, "read_fanout": fanout, "write_fanout": fanout},
            # ~20 operations in flight on 20 hot keys: reads race concurrent writes all the time.
            "workload": {
                "arrival": {"type": "poisson", "rate": "10000/s"},
                "clients": 8,
                "read_fraction": 0.6,
                "keys": {"count": 20, "popularity": "zipf", "s": 1.0},
                "max_ops": 25_000,
            },
        }
    )
    staleness = result.summary["staleness"]
    assert result.summary["availability"] == 1.0
    assert staleness["reads_checked"] > 12_000
    assert staleness["stale"] == 0


def test_the_same_workload_reads_stale_when_quorums_need_not_meet():
    """The control for the test above: with R + W <= N the same workload does see stale reads."""
    result = run(
        {
            "network": {"latency": {"dist": "exponential", "mean": 1}},
            "quorum": {"n": 3, "r": 1, "w": 1},
            "workload": {
                "arrival": {"type": "poisson", "rate": "10000/s"},
                "read_fraction": 0.6,
                "keys": {"count": 20, "popularity": "zipf", "s": 1.0},
                "max_ops": 10_000,
            },
        }
    )
    assert result.summary["staleness"]["stale"] > 100


# (b) PBS: a write to W random replicas, then a read of R random replicas, no repair:
#     P(stale) = C(N-W, R) / C(N, R) at any t.


@pytest.mark.parametrize(("n", "r", "w"), [(3, 1, 1), (5, 2, 2), (5, 1, 3), (5, 2, 1), (7, 2, 3)])
def test_random_partial_quorums_match_pbs_k_staleness(n, r, w):
    trials = 3000
    result = run(
        {
            "cluster": {"nodes": n},
            "quorum": {"n": n, "r": r, "w": w, "read_fanout": "quorum", "write_fanout": "quorum"},
            "workload": {"arrival": {"type": "probe", "delays": [0, "5ms"], "trials": trials}},
        }
    )
    staleness = result.summary["staleness"]
    p = comb(n - w, r) / comb(n, r)
    reads = staleness["reads_checked"]
    assert reads == 2 * trials
    assert abs(staleness["stale_fraction"] - p) < 3 * np.sqrt(p * (1 - p) / reads)
    for point in staleness["t_visibility"]:  # the same at every t, since nothing repairs
        assert abs((1 - point["p_consistent"]) - p) < 3 * np.sqrt(p * (1 - p) / point["reads"])


# (c) Constant link delays give exact latencies.


def test_constant_delays_per_kind_give_exact_latencies():
    kinds = {"write_request": 1.0, "write_ack": 2.0, "read_request": 0.5, "read_response": 4.0}
    result = run({"network": {"latency": "9ms", "kinds": kinds}, "workload": {"max_ops": 2000}})
    assert np.allclose(ok_latency(result, "write"), 3.0, rtol=0, atol=1e-9)
    assert np.allclose(ok_latency(result, "read"), 4.5, rtol=0, atol=1e-9)


def test_node_coordinators_add_the_client_hops_and_talk_to_themselves_for_free():
    hops = {"client_request": 3.0, "client_response": 5.0}
    result = run(
        {
            "network": {"latency": "1ms", "kinds": hops},
            "quorum": {"r": 1, "w": 1, "coordinator": "replica"},
            "workload": {"max_ops": 2000},
        }
    )
    # The coordinator is one of the key's replicas, so its own reply (0 ms) completes R=W=1.
    latency = result.ops["latency_ms"].to_numpy()
    assert np.allclose(latency, 8.0, rtol=0, atol=1e-9)


def test_region_pair_latency_applies_between_regions_only():
    spec = {
        "cluster": {
            "nodes": [
                {"name": "a1", "region": "a"},
                {"name": "a2", "region": "a"},
                {"name": "b1", "region": "b"},
            ]
        },
        "network": {"latency": "1ms", "regions": [{"between": ["a", "b"], "latency": "10ms"}]},
        "quorum": {"n": 3, "r": 2, "w": 3},
        "workload": {"client_regions": ["a"], "max_ops": 1000},
    }
    result = run(spec)
    assert np.allclose(ok_latency(result, "read"), 2.0, rtol=0, atol=1e-9)  # the two local replicas
    assert np.allclose(ok_latency(result, "write"), 20.0, rtol=0, atol=1e-9)  # must hear from b1


def test_constant_service_time_adds_to_an_idle_replica():
    result = run(
        {
            "cluster": {"replica": {"service_time": "0.25ms", "concurrency": 1}},
            "network": {"latency": "1ms"},
            # One closed-loop client: one operation at a time, so no request ever waits in a queue.
            "workload": {"arrival": {"type": "closed", "think_time": "1ms"}, "clients": 1, "max_ops": 200},
        }
    )
    assert np.allclose(result.ops["latency_ms"].to_numpy(), 2.25, rtol=0, atol=1e-9)


# (d) Exponential links, fan-out to all N: the write latency is the W-th smallest of N independent
#     sums request + ack, a hypoexponential; E[X_(W)] = integral of P(X_(W) > x) dx.


def expected_order_statistic(n: int, k: int, mean_a: float, mean_b: float) -> float:
    x = np.linspace(0.0, 60.0 * max(mean_a, mean_b), 600_001)
    a, b = 1 / mean_a, 1 / mean_b
    cdf = 1 - (b * np.exp(-a * x) - a * np.exp(-b * x)) / (b - a)
    survival = sum(comb(n, j) * cdf**j * (1 - cdf) ** (n - j) for j in range(k))
    return float(np.trapezoid(survival, x))


@pytest.mark.parametrize(("n", "w"), [(3, 1), (3, 2), (5, 3), (5, 5)])
def test_exponential_write_latency_is_the_w_th_order_statistic(n, w):
    result = run(
        {
            "duration": "1000s",
            "cluster": {"nodes": n},
            "network": {
                "kinds": {
                    "write_request": {"dist": "exponential", "mean": 1.0},
                    "write_ack": {"dist": "exponential", "mean": 0.5},
                }
            },
            "quorum": {"n": n, "r": 1, "w": w},
            "workload": {"read_fraction": 0.0, "max_ops": 20_000},
        }
    )
    latency = ok_latency(result, "write")
    expected = expected_order_statistic(n, w, 1.0, 0.5)
    standard_error = latency.std(ddof=1) / np.sqrt(latency.size)
    assert latency.size == 20_000
    assert abs(latency.mean() - expected) < 3 * standard_error


# Queueing: one replica, zero network delay, exponential service, Poisson arrivals = M/M/1,
# whose mean time in system is S / (1 - rho).


@pytest.mark.slow
def test_a_single_replica_queue_is_m_m_1():
    service_ms, rho = 1.0, 0.6
    spec = {
        "duration": "1000s",
        "warmup": "2s",
        "cluster": {
            "nodes": 1,
            "replica": {"service_time": {"dist": "exponential", "mean": service_ms}, "concurrency": 1},
        },
        "network": {"latency": 0},
        "quorum": {"n": 1, "r": 1, "w": 1},
        "workload": {"arrival": {"type": "poisson", "rate": rho / service_ms * 1e3}, "max_ops": 40_000},
    }
    # Waits are autocorrelated, so the standard error comes from independent replicates.
    means = [run(spec, seed).summary["reads"]["latency_ms"]["mean"] for seed in range(10)]
    expected = service_ms / (1 - rho)
    standard_error = np.std(means, ddof=1) / np.sqrt(len(means))
    assert abs(np.mean(means) - expected) < 4 * standard_error
