"""Availability under random crashes against the binomial closed form.

Each node is up for an exponential time (mean MTTF) and down for one (mean MTTR), so in the long
run it is up a fraction a = MTTF / (MTTF + MTTR) of the time, independently of the others. With
every key on all N nodes and a near-instant network, an operation succeeds iff at least Q nodes
are up when it starts, with probability sum_{k>=Q} C(N, k) a^k (1-a)^(N-k).

Successive operations see the same up/down state, so they are far from independent: the
tolerance comes from the spread of the availability over independent replicates (seeds).
"""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

import qsim

MTTF_MS, MTTR_MS = 200.0, 50.0
UP = MTTF_MS / (MTTF_MS + MTTR_MS)  # a = 0.8
SEEDS = range(1, 11)


def binomial_at_least(q: int, n: int, a: float) -> float:
    """P(at least q of n independent units are up), each up with probability a."""
    return sum(comb(n, k) * a**k * (1 - a) ** (n - k) for k in range(q, n + 1))


def availability(nodes, n: int, q: int, seed: int, correlated: str = "none") -> float:
    spec = {
        "name": "availability",
        "duration": "20s",
        "cluster": {"nodes": nodes},
        "network": {"latency": "1us"},  # an operation's fate is decided by who is up when it starts
        "quorum": {"n": n, "r": q, "w": q, "timeout": "5ms"},
        "workload": {"arrival": {"type": "poisson", "rate": "500/s"}, "keys": {"count": 100}},
        "faults": [
            {
                "random_crashes": "all",
                "correlated": correlated,
                "mttf": {"dist": "exponential", "mean": MTTF_MS},
                "mttr": {"dist": "exponential", "mean": MTTR_MS},
            }
        ],
    }
    result = qsim.simulate(qsim.scenario_from_dict(spec), seed=seed)
    assert result.error is None and len(result.faults) > 100  # many failure cycles
    return result.summary["availability"]


def assert_matches(replicates: list[float], expected: float) -> None:
    """|mean - expected| < 4 standard errors of the mean, which must be small enough to tell."""
    mean = float(np.mean(replicates))
    standard_error = float(np.std(replicates, ddof=1) / np.sqrt(len(replicates)))
    assert 0 < standard_error < 0.01
    assert abs(mean - expected) < 4 * standard_error, (mean, expected, standard_error)


@pytest.mark.slow
@pytest.mark.parametrize(("n", "q"), [(5, 3), (3, 2)])
def test_independent_crashes_give_the_binomial_availability(n, q):
    assert_matches([availability(n, n, q, seed) for seed in SEEDS], binomial_at_least(q, n, UP))


def test_regions_crashing_together_give_the_binomial_over_regions():
    # Two regions of two nodes, every key on all four, Q = 3: an operation succeeds iff both
    # regions are up, a^2 = 0.64, far below the 0.82 of four independent nodes.
    nodes = [{"name": f"n{i}", "region": "east" if i <= 2 else "west"} for i in range(1, 5)]
    expected = binomial_at_least(2, 2, UP)
    assert abs(expected - binomial_at_least(3, 4, UP)) > 0.1
    assert_matches([availability(nodes, 4, 3, seed, correlated="region") for seed in SEEDS], expected)
