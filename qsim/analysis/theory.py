"""Closed forms of the quorum literature: PBS staleness, quorum availability, quorum latency.

Pure functions of numbers and distribution specs; nothing here simulates. Times are milliseconds.
The latency forms assume the WARS model of PBS: the coordinator sends to all n replicas at once,
each link delay is independent, and replicas answer on arrival (no service time, no queueing).
"""

from __future__ import annotations

from collections.abc import Callable
from math import comb

import numpy as np

from qsim.distributions import Constant, Exponential

Cdf = Callable[[np.ndarray], np.ndarray]
GRID_POINTS = 200_001
_SAME_MEAN = 1e-8  # relative difference below which two exponential means count as equal
_TAIL_MEANS = 60.0  # P(Exp > 60 means) = e^-60: an integration range that loses nothing


def pbs_stale_probability(n: int, r: int, w: int) -> float:
    """Return C(n-w, r) / C(n, r): the chance that r random replicas miss a write held by w random ones.

    This is PBS's probability that a read right after a write commits is stale (0 when r + w > n).
    """
    return comb(n - w, r) / comb(n, r)


def pbs_k_staleness(n: int, r: int, w: int, k: int) -> float:
    """Return p^k: PBS's probability that a read returns a version more than k versions old.

    Each of the k newest writes chose its w replicas independently, and the read misses them all.
    """
    return pbs_stale_probability(n, r, w) ** k


def quorum_availability(n: int, q: int, a: float) -> float:
    """Return the probability that at least q of n replicas are up, each up independently with a."""
    return sum(comb(n, k) * a**k * (1 - a) ** (n - k) for k in range(q, n + 1))


def node_availability(mttf: float, mttr: float) -> float:
    """Return the long-run fraction of time a node is up: mttf / (mttf + mttr), both in the same unit."""
    return mttf / (mttf + mttr)


def intersects(n: int, r: int, w: int) -> bool:
    """Return True if every read quorum meets every write quorum (r + w > n): no stale reads."""
    return r + w > n


def writes_intersect(n: int, w: int) -> bool:
    """Return True if every two write quorums meet (2w > n): concurrent writes see each other."""
    return 2 * w > n


def order_statistic_mean(k: int, n: int, cdf: Cdf, upper: float) -> float:
    """Return E[X_(k)], the k-th smallest of n iid non-negative draws with distribution ``cdf``.

    E[X_(k)] is the integral over [0, upper] of P(X_(k) > x) = P(fewer than k draws <= x), computed
    by the trapezoid rule on GRID_POINTS (200,001) evenly spaced points. The mass beyond ``upper``
    is ignored, so choose ``upper`` where n * P(X > upper) is negligible. For smooth CDFs the result
    is accurate to about 1e-6 relative; a step in the CDF costs up to one grid spacing.

    Args:
        k: which order statistic, 1 (the smallest) to n.
        n: the number of draws.
        cdf: the CDF of one draw, vectorized over a numpy array of times (ms).
        upper: the end of the integration range, ms.
    """
    x = np.linspace(0.0, upper, GRID_POINTS)
    below = np.clip(cdf(x), 0.0, 1.0)
    survival = sum(comb(n, j) * below**j * (1 - below) ** (n - j) for j in range(k))
    return float(np.trapezoid(survival, x))


def sum_cdf(a, b) -> Cdf | None:
    """Return the CDF of the sum of independent draws of specs ``a`` and ``b``, where one is known.

    Known sums, shifts included: two constants (a step), a constant and an exponential (a shifted
    exponential), two exponentials (hypoexponential; Erlang-2 when the means are equal). Any other
    pair returns None.
    """
    parts = _offset_and_means(a, b)
    if parts is None:
        return None
    offset, means = parts
    if not means:
        return lambda x: (np.asarray(x, dtype=float) >= offset).astype(float)
    if len(means) == 1:
        return _shifted(offset, lambda y: -np.expm1(-y / means[0]))
    m1, m2 = means
    if abs(m1 - m2) <= _SAME_MEAN * max(m1, m2):
        return _shifted(offset, lambda y: 1 - np.exp(-y / m1) * (1 + y / m1))
    return _shifted(offset, lambda y: 1 - (m1 * np.exp(-y / m1) - m2 * np.exp(-y / m2)) / (m1 - m2))


def _offset_and_means(*specs) -> tuple[float, list[float]] | None:
    """Return the constant part and the exponential means (ms) of a sum of specs, if it has only those."""
    if not all(isinstance(spec, Constant | Exponential) for spec in specs):
        return None
    offset = sum(spec.shift + (spec.value if isinstance(spec, Constant) else 0.0) for spec in specs)
    return offset, [spec.mean_ms for spec in specs if isinstance(spec, Exponential)]


def _shifted(offset: float, cdf: Cdf) -> Cdf:
    """Return the CDF of ``offset`` plus a draw of ``cdf`` (a distribution on [0, inf))."""
    return lambda x: cdf(np.maximum(np.asarray(x, dtype=float) - offset, 0.0))


def quorum_latency_mean(request, response, n: int, k: int) -> float | None:
    """Return the mean time (ms) to hear from k of n replicas, or None without a closed form.

    The coordinator sends to all n at once; round trip i is a request draw plus a response draw,
    all independent. With two constants the answer is exactly request + response; otherwise it is
    :func:`order_statistic_mean` of :func:`sum_cdf`, integrated far enough into the tail.

    Args:
        request: the spec of request delays (a qsim.distributions spec).
        response: the spec of response delays.
        n: replicas asked.
        k: replies needed, 1 to n.
    """
    parts = _offset_and_means(request, response)
    if parts is None:
        return None
    offset, means = parts
    if not means:
        return offset
    return order_statistic_mean(k, n, sum_cdf(request, response), offset + _TAIL_MEANS * sum(means))
