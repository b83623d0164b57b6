"""The closed forms of qsim.analysis.theory: exact small cases, brute force, and numpy samples."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from pydantic import TypeAdapter

from qsim.analysis.theory import (
    intersects,
    node_availability,
    order_statistic_mean,
    pbs_k_staleness,
    pbs_stale_probability,
    quorum_availability,
    quorum_latency_mean,
    sum_cdf,
    writes_intersect,
)
from qsim.distributions import Dist

SPEC = TypeAdapter(Dist)


def spec(value) -> object:
    """Return a distribution spec from its scenario form."""
    return SPEC.validate_python(value)


def exponential(mean: float, shift: float = 0.0) -> object:
    return spec({"dist": "exponential", "mean": mean, "shift": shift})


def constant(value: float, shift: float = 0.0) -> object:
    return spec({"dist": "constant", "value": value, "shift": shift})


@pytest.mark.parametrize(
    ("n", "r", "w", "expected"),
    [(3, 1, 1, 2 / 3), (5, 2, 2, 0.3), (3, 2, 2, 0.0), (3, 1, 2, 1 / 3), (5, 1, 5, 0.0), (1, 1, 1, 0.0)],
)
def test_pbs_stale_probability_small_cases(n, r, w, expected):
    assert pbs_stale_probability(n, r, w) == pytest.approx(expected, abs=1e-15)


def test_pbs_stale_probability_is_zero_exactly_when_quorums_intersect():
    for n in range(1, 8):
        for r, w in itertools.product(range(1, n + 1), repeat=2):
            assert (pbs_stale_probability(n, r, w) == 0) == intersects(n, r, w)


def test_k_staleness_is_the_stale_probability_to_the_k():
    assert pbs_k_staleness(3, 1, 1, 1) == pytest.approx(2 / 3)
    assert pbs_k_staleness(3, 1, 1, 3) == pytest.approx(8 / 27)
    assert pbs_k_staleness(5, 2, 2, 2) == pytest.approx(0.09)
    assert pbs_k_staleness(3, 2, 2, 4) == 0.0


def brute_force_availability(n: int, q: int, a: float) -> float:
    """Sum the probability of every up/down pattern of n nodes with at least q up."""
    total = 0.0
    for pattern in itertools.product((True, False), repeat=n):
        up = sum(pattern)
        if up >= q:
            total += a**up * (1 - a) ** (n - up)
    return total


@pytest.mark.parametrize("a", [0.0, 0.5, 0.9, 0.999])
@pytest.mark.parametrize(("n", "q"), [(1, 1), (3, 1), (3, 2), (3, 3), (5, 3), (6, 4), (7, 5)])
def test_quorum_availability_matches_enumeration(n, q, a):
    assert quorum_availability(n, q, a) == pytest.approx(brute_force_availability(n, q, a), abs=1e-12)


def test_node_availability():
    assert node_availability(9.0, 1.0) == pytest.approx(0.9)
    assert node_availability(3_600_000, 0.0) == 1.0


@pytest.mark.parametrize(
    ("n", "r", "w", "reads_meet", "writes_meet"),
    [(3, 2, 2, True, True), (3, 1, 1, False, False), (3, 1, 3, True, True), (4, 2, 2, False, False)],
)
def test_intersection_rules(n, r, w, reads_meet, writes_meet):
    assert intersects(n, r, w) is reads_meet
    assert writes_intersect(n, w) is writes_meet


@pytest.mark.parametrize(("k", "n"), [(1, 1), (1, 3), (2, 3), (3, 3), (3, 5), (5, 5), (4, 7)])
def test_order_statistic_mean_of_exponentials(k, n):
    mean = 2.0
    expected = sum(mean / (n - i) for i in range(k))  # Renyi: gaps between exponential order statistics
    result = order_statistic_mean(k, n, lambda x: -np.expm1(-x / mean), upper=80 * mean)
    assert result == pytest.approx(expected, rel=1e-6)


def ks_distance(samples: np.ndarray, cdf) -> float:
    """Return the Kolmogorov-Smirnov distance between a sample and a continuous CDF."""
    x = np.sort(samples)
    f = cdf(x)
    i = np.arange(1, len(x) + 1)
    return float(max((i / len(x) - f).max(), (f - (i - 1) / len(x)).max()))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (exponential(1.0), exponential(0.5)),
        (exponential(2.0), exponential(2.0)),  # Erlang-2
        (exponential(1.0, shift=0.3), exponential(3.0, shift=1.0)),
        (constant(2.0), exponential(1.5)),
        (exponential(0.7, shift=0.2), constant(1.0, shift=0.5)),
    ],
    ids=["hypoexponential", "erlang-2", "shifted-hypoexponential", "constant+exponential", "shifted"],
)
def test_sum_cdf_matches_a_sample(a, b):
    rng = np.random.default_rng(7)
    size = 40_000
    samples = a.sample(rng, size) + b.sample(rng, size)
    assert ks_distance(samples, sum_cdf(a, b)) < 1.63 / math.sqrt(size)  # the 1% critical value


def test_sum_cdf_of_constants_is_a_step_at_their_sum():
    cdf = sum_cdf(constant(1.0, shift=0.25), constant(2.0))
    assert cdf(np.array([0.0, 3.25 - 1e-9, 3.25, 10.0])).tolist() == [0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "other",
    [
        {"dist": "pareto", "scale": 1.0, "alpha": 2.0},
        {"dist": "uniform", "low": 0.0, "high": 1.0},
        {"dist": "mixture", "components": [1.0, 2.0], "weights": [1, 1]},
    ],
    ids=["pareto", "uniform", "mixture"],
)
def test_no_closed_form_for_other_distributions(other):
    assert sum_cdf(exponential(1.0), spec(other)) is None
    assert quorum_latency_mean(spec(other), constant(1.0), 3, 2) is None


def test_quorum_latency_of_constants_is_exact():
    assert quorum_latency_mean(constant(1.0, shift=0.5), constant(2.0), 5, 3) == 3.5
    assert quorum_latency_mean(constant(0.0), constant(0.0), 3, 1) == 0.0


@pytest.mark.parametrize(
    ("outbound", "inbound"),
    [
        (exponential(1.0), exponential(0.5)),
        (exponential(1.0), exponential(1.0)),
        (constant(2.0), exponential(1.0, shift=0.5)),
    ],
    ids=["hypoexponential", "erlang-2", "shifted-exponential"],
)
@pytest.mark.parametrize(("n", "k"), [(3, 1), (3, 2), (5, 3), (5, 5)])
def test_quorum_latency_mean_matches_a_sample(outbound, inbound, n, k):
    rng = np.random.default_rng(11)
    size = 200_000
    round_trips = (outbound.sample(rng, size * n) + inbound.sample(rng, size * n)).reshape(size, n)
    kth = np.sort(round_trips, axis=1)[:, k - 1]
    standard_error = kth.std(ddof=1) / math.sqrt(size)
    assert abs(quorum_latency_mean(outbound, inbound, n, k) - kth.mean()) < 4 * standard_error


def test_quorum_latency_mean_of_exponentials_matches_renyi_when_one_side_is_zero():
    # A zero response leaves exponential round trips, whose order statistics have a closed mean.
    result = quorum_latency_mean(exponential(1.5), constant(0.0), 5, 3)
    assert result == pytest.approx(1.5 * (1 / 5 + 1 / 4 + 1 / 3), rel=1e-6)
