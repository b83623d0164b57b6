"""The exact t at which P(consistent) reaches p: against brute force over delays, and closed forms.

Brute force reruns the WARS kernel with the same draws (same seed: the draws do not depend on t)
at a grid of delays and reads its held-based verdicts; the closed forms are derived in the tests.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from qsim.analysis import montecarlo
from qsim.analysis.montecarlo_summary import PROBABILITIES, _ranks, consistency_times, t_for_consistency
from qsim.analysis.theory import pbs_stale_probability
from qsim.rng import RandomStreams
from tests.test_montecarlo import EXPONENTIAL, PARETO, probe
from tests.test_montecarlo_summary import NODES_AB, TIMEOUTS, WAN

BRUTE = {
    "n3-r1-w1": probe(3, 1, 1, EXPONENTIAL),
    "n5-r2-w2-pareto": probe(5, 2, 2, PARETO),
    "n5-r2-w1-quorum-fanouts": probe(5, 2, 1, EXPONENTIAL, read_fanout="quorum", write_fanout="quorum"),
    "timeouts": probe(3, 1, 2, TIMEOUTS, timeout="20ms"),
    "wan": probe(
        2, 1, 1, WAN, cluster=NODES_AB,
        workload={"clients": 2, "arrival": {"type": "probe", "delays": [0], "concurrency": 2}},
    ),
}  # fmt: skip
TRIALS = 1500
SEED = 5


def at_delay(scenario, delay: float) -> montecarlo.WarsResult:
    """The same trials (same seed, so the same draws) run at one delay."""
    return montecarlo.wars(scenario, TRIALS, RandomStreams(SEED).generator("mc"), delays_ms=(delay,))


def p_consistent(scenario, delay: float) -> float:
    return float(at_delay(scenario, delay).p_consistent[0])


@pytest.mark.parametrize("name", BRUTE)
def test_t_star_is_the_verdict_of_the_kernel_at_every_delay(name):
    scenario = BRUTE[name]
    t_star = at_delay(scenario, 0.0).consistent_from_ms[0]
    finite = t_star[np.isfinite(t_star)]
    for delay in np.linspace(0.0, 1.1 * finite.max(), 60):
        outcome = at_delay(scenario, delay)
        clear = np.abs(t_star - delay) > 1e-9 * max(1.0, delay)  # rounding decides exact ties
        assert np.array_equal(outcome.fresh[0][clear], (t_star <= delay)[clear])


@pytest.mark.parametrize("name", BRUTE)
def test_t_at_probability_is_where_the_brute_force_curve_reaches_p(name):
    scenario = BRUTE[name]
    found = consistency_times(at_delay(scenario, 0.0), (0.3, 0.5, 0.9, 0.99))
    reached = 0
    for row in found["t_at_probability"]:
        p, t = row["probability"], row["t_ms"]
        if t is None:  # never: even a delay past every finite t* stays below p
            assert p_consistent(scenario, 1e6) < p
            continue
        reached += 1
        step = 1e-9 * max(1.0, t)
        assert p_consistent(scenario, t + step) >= p
        if t > 0:
            assert p_consistent(scenario, t - step) < p
        else:
            assert p_consistent(scenario, 0.0) >= p
    assert reached >= 1


def exponential_race(n: int) -> tuple:
    """W ~ Exp(mean 4), R ~ Exp(mean 1), A = S = 0, R = W = 1, and its P(consistent at t) for t >= 0.

    The write commits at c = min W; the read answers from replica j = argmin R (uniform, independent
    of W) with R_j = min R ~ Exp(n nu), so t* = W_j - R_j - c. If j committed the write, t* = -R_j <= 0;
    otherwise W_j - c ~ Exp(lam) (memoryless) and P(E - R_j > t) = e^(-lam t) n nu / (n nu + lam).
    """
    lam, nu = 1 / 4, 1.0
    kinds = {"write_request": {"dist": "exponential", "mean": 4.0}, "write_ack": 0, "read_response": 0}
    scenario = probe(n, 1, 1, {"latency": {"dist": "exponential", "mean": 1.0}, "kinds": kinds})
    tail = (n - 1) / n * n * nu / (n * nu + lam)

    def cdf(t: float) -> float:
        return 1 - tail * math.exp(-lam * t)

    return scenario, cdf


@pytest.mark.parametrize("n", [2, 3, 5])
def test_t_at_probability_follows_the_closed_form(n):
    scenario, cdf = exponential_race(n)
    m = 200_000
    found = t_for_consistency(scenario, (0.2, 0.5, 0.9, 0.99, 0.999), m, RandomStreams(1).generator("mc"))
    assert found["reads_checked"] == m and found["never_consistent"] == 0
    for row in found["t_at_probability"]:
        p, t = row["probability"], row["t_ms"]
        band = 4 * math.sqrt(p * (1 - p) / m) + 1 / m  # the sample quantile's CDF value: p +- this
        if p < cdf(0.0) - band:
            assert t == 0.0  # consistent already at t = 0
        else:
            assert abs(cdf(t) - p) <= band, (p, t, cdf(t))
        assert row["ci_low_ms"] <= t <= row["ci_high_ms"]


def test_partial_quorums_that_miss_the_write_are_never_consistent():
    scenario = probe(5, 1, 1, EXPONENTIAL, read_fanout="quorum", write_fanout="quorum")
    m = 100_000
    found = t_for_consistency(scenario, (0.1, 0.5), m, RandomStreams(2).generator("mc"))
    stale = pbs_stale_probability(5, 1, 1)  # 0.8: the read asks one of the 4 replicas never written
    assert abs(found["never_consistent"] / m - stale) < 4 * math.sqrt(stale * (1 - stale) / m)
    low, high = found["t_at_probability"]
    assert low["t_ms"] == 0.0  # the replica written committed it before any read could start
    assert high["t_ms"] is None and high["ci_high_ms"] is None


def test_no_checked_read_gives_no_t():
    scenario = probe(3, 1, 3, {"latency": 5}, delays=(0,), trials=20, timeout="4ms")
    found = t_for_consistency(scenario, (0.5,), 20, RandomStreams(1).generator("mc"))
    assert found["reads_checked"] == 0
    assert found["t_at_probability"] == [
        {"probability": 0.5, "t_ms": None, "ci_low_ms": None, "ci_high_ms": None}
    ]


def test_a_run_reports_t_at_probability():
    result = montecarlo.run(probe(3, 1, 1, EXPONENTIAL, delays=(0, 2), trials=20_000))
    rows = result.summary["staleness"]["t_at_probability"]
    assert [row["probability"] for row in rows] == list(PROBABILITIES)
    times = [row["t_ms"] for row in rows]
    assert times == sorted(times) and times[0] > 0
    assert all(row["ci_low_ms"] <= row["t_ms"] <= row["ci_high_ms"] for row in rows)


@pytest.mark.parametrize("m", [1, 7, 10, 1000, 999_983])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0])
def test_the_rank_is_the_first_that_reaches_p(m, p):
    k, low, high = _ranks(p, m)
    assert k / m >= p
    assert k == 1 or (k - 1) / m < p
    assert low <= k <= high
