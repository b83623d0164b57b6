"""Load, capacity, resilience and availability of quorum systems against hand-computed values.

The 2x3 grid used throughout has nodes 0 1 2 in row 0 and 3 4 5 in row 1. A read quorum is a row;
a write quorum is one node from each row ({i, 3 + j}, nine of them), so every read meets every write.
"""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qsim.analysis.quorum_load import (
    Capacities,
    availability,
    capacity,
    expected_latency_ms,
    latency_optimal_strategy,
    node_load,
    optimal_strategy,
    resilience,
    resilient_quorums,
    system_load,
    uniform_strategy,
)
from qsim.errors import QsimError

GRID_READS = [frozenset({0, 1, 2}), frozenset({3, 4, 5})]
GRID_WRITES = [frozenset({i, 3 + j}) for i in range(3) for j in range(3)]


def majority(n: int) -> list[frozenset[int]]:
    return [frozenset(c) for c in itertools.combinations(range(n), n // 2 + 1)]


def optimal_load(n, reads, writes, fr, capacities=None, f=0) -> float:
    return system_load(n, optimal_strategy(n, reads, writes, fr, capacities, f), fr, capacities)


# ---- resilience -------------------------------------------------------------------------------


def test_grid_resilience():
    """Reads: one node from each row (2 nodes) kills both rows, one node never does -> 1.

    Writes: a set missing a node of each row leaves the write {that node, that node}; only a whole
    row (3 nodes) meets all nine writes -> 2.
    """
    assert resilience(6, GRID_READS) == 1
    assert resilience(6, GRID_WRITES) == 2


def test_majority_of_5_resilience():
    """3-of-5: any 2 failures leave 3 nodes up, a quorum; 3 failures leave 2 -> resilience 2."""
    assert resilience(5, majority(5)) == 2


def brute_resilience(n, quorums) -> int:
    for k in range(n + 1):
        if any(all(q & set(hit) for q in quorums) for hit in itertools.combinations(range(n), k)):
            return k - 1
    raise AssertionError("the whole node set meets every non-empty quorum")


def minimal(sets):
    sets = sorted(set(sets), key=len)
    return [s for i, s in enumerate(sets) if not any(t < s for t in sets[:i])]


systems = st.integers(2, 6).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.frozensets(st.integers(0, n - 1), min_size=1), min_size=1, max_size=6).map(minimal),
    )
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(systems)
def test_resilience_matches_brute_force(system):
    """The integer program's smallest hitting set is the smallest one found by trying every set."""
    n, quorums = system
    assert resilience(n, quorums) == brute_resilience(n, quorums)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(systems, st.integers(1, 3))
def test_resilient_quorums_survive_f_failures(system, f):
    """Each set returned still holds a quorum after any f of its nodes fail, and is minimal; such sets
    exist exactly when f <= the resilience (the whole node set is one then)."""
    n, quorums = system
    if f > resilience(n, quorums):
        with pytest.raises(QsimError, match="after any"):
            resilient_quorums(n, quorums, f)
        return

    def survives(s):
        return all(any(q <= s - set(x) for q in quorums) for x in itertools.combinations(s, min(f, len(s))))

    found = resilient_quorums(n, quorums, f)
    assert found and all(survives(s) for s in found)
    assert not any(survives(s - {i}) for s in found for i in s)


# ---- load and capacity ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fr", "load"), [(0.0, 1 / 3), (0.25, 0.375), (0.5, 5 / 12), (1.0, 0.5)], ids=["0", "0.25", "0.5", "1"]
)
def test_grid_optimal_load(fr, load):
    """Load fr/2 + (1 - fr)/3: 1/3, 3/8, 5/12, 1/2 for fr = 0, 0.25, 0.5, 1.

    Every read touches 3 of the 6 nodes and every write 2, so whatever the strategy the node loads
    sum to 3 fr + 2 (1 - fr) and the busiest node carries at least the mean, fr/2 + (1 - fr)/3.
    Reading each row half the time and writing the nine quorums uniformly gives every node exactly
    fr * 1/2 + (1 - fr) * 1/3, so that bound is the optimum.
    """
    assert optimal_load(6, GRID_READS, GRID_WRITES, fr) == pytest.approx(load, abs=1e-9)


def test_grid_heterogeneous_capacity():
    """Row 0 nodes serve 2 ops/s, row 1 nodes 1 op/s (reads and writes alike).

    fr = 1: read row 0 with p; loads p/2 and 1 - p are equal at p = 2/3 -> load 1/3, capacity 3
    (2 + 1 reads/s: both rows busy). fr = 0: each write puts 1 on row 1, whose three nodes of
    capacity 1 carry it best uniformly -> load 1/3, capacity 3. fr = 0.5: writes stay uniform in each
    row (the problem is symmetric within a row), so row 0 nodes carry (p/2 + 1/6)/2 and row 1 nodes
    (1 - p)/2 + 1/6; equal at p = 7/9 -> load 5/18, capacity 3.6. Uniform reads give row 1 nodes
    1/4 + 1/6 = 5/12 -> capacity 2.4: the optimal strategy beats uniform by half.
    """
    caps = [2, 2, 2, 1, 1, 1]
    assert capacity(6, GRID_READS, GRID_WRITES, 1.0, caps) == pytest.approx(3.0)
    assert capacity(6, GRID_READS, GRID_WRITES, 0.0, caps) == pytest.approx(3.0)
    best = optimal_strategy(6, GRID_READS, GRID_WRITES, 0.5, caps)
    assert best.read_probs == pytest.approx([7 / 9, 2 / 9], abs=1e-9)
    assert 1 / system_load(6, best, 0.5, caps) == pytest.approx(3.6)
    uniform = uniform_strategy(GRID_READS, GRID_WRITES)
    assert 1 / system_load(6, uniform, 0.5, caps) == pytest.approx(2.4)


def test_grid_separate_read_and_write_capacities():
    """Every node reads at 2 ops/s and writes at 1 op/s; fr = 0.5.

    Node loads now sum to 0.5 * 3 / 2 + 0.5 * 2 / 1 = 1.75 over 6 nodes, so at least 7/24 each; the
    symmetric strategy reaches it (0.5 * 1/2 / 2 + 0.5 * 1/3 / 1 = 7/24) -> capacity 24/7.
    """
    caps = Capacities(read=[2] * 6, write=[1] * 6)
    assert capacity(6, GRID_READS, GRID_WRITES, 0.5, caps) == pytest.approx(24 / 7)


@pytest.mark.parametrize("fr", [0.0, 0.3, 1.0])
def test_majority_of_5_load(fr):
    """Every quorum touches 3 of 5 nodes, so some node carries >= 3/5; uniform reaches 3/5 exactly."""
    assert optimal_load(5, majority(5), majority(5), fr) == pytest.approx(0.6, abs=1e-9)


def test_f_resilient_load():
    """f = 1. Majority of 5: a set surviving any one failure needs 4 nodes -> load 4/5.

    Grid writes: two nodes from each row (nine 4-sets), uniformly each node is in 2/3 -> load 2/3 at
    fr = 0 (each row's write load is 2, so 2/3 is also a lower bound). Grid reads: only both rows
    whole survive any one failure -> load 1 at fr = 1. No set survives 2 failures for reads.
    """
    assert optimal_load(5, majority(5), majority(5), 0.5, f=1) == pytest.approx(0.8, abs=1e-9)
    assert optimal_load(6, GRID_READS, GRID_WRITES, 0.0, f=1) == pytest.approx(2 / 3, abs=1e-9)
    assert optimal_load(6, GRID_READS, GRID_WRITES, 1.0, f=1) == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(QsimError, match="any 2 nodes fail"):
        optimal_strategy(6, GRID_READS, GRID_WRITES, 0.5, f=2)


def simplex_grid(m: int, k: int) -> np.ndarray:
    """All probability vectors of length m whose entries are multiples of 1/k."""
    points = [c for c in itertools.product(range(k + 1), repeat=m - 1) if sum(c) <= k]
    return np.array([[*c, k - sum(c)] for c in points]) / k


def brute_force_load(n, reads, writes, fr, caps, k) -> float:
    """Least load over every pair of read and write strategies on the 1/k grid."""
    caps = np.asarray(caps, dtype=float)
    read_inc = np.array([[i in q for q in reads] for i in range(n)], dtype=float)
    write_inc = np.array([[i in q for q in writes] for i in range(n)], dtype=float)
    read_loads = fr * read_inc @ simplex_grid(len(reads), k).T / caps[:, None]
    write_loads = (1 - fr) * write_inc @ simplex_grid(len(writes), k).T / caps[:, None]
    return float((read_loads[:, :, None] + write_loads[:, None, :]).max(axis=0).min())


BRUTE_CASES = {
    # name: (n, reads, writes, fr, capacities, optimal load), each optimum on the 1/12 grid.
    "majority-of-3": (3, majority(3), majority(3), 0.7, [1, 1, 1], 2 / 3),
    "star": (
        4,
        [frozenset({0}), frozenset({1, 2, 3})],
        [frozenset({0, i}) for i in (1, 2, 3)],
        0.5,
        [1] * 4,
        7 / 12,
    ),
    "grid-2x2-hetero": (
        4,
        [frozenset({0, 1}), frozenset({2, 3})],
        [frozenset({0, 2}), frozenset({0, 3}), frozenset({1, 2}), frozenset({1, 3})],
        0.75,
        [3, 3, 1, 1],
        1 / 4,
    ),
}


@pytest.mark.parametrize("case", BRUTE_CASES, ids=list(BRUTE_CASES))
def test_lp_load_equals_brute_force_on_exact_grid(case):
    """These optima sit on the 1/12 grid, so the grid search finds the LP's load exactly.

    majority-of-3: each quorum holds 2 of 3 nodes -> 2/3 (uniform, thirds = 4/12).
    star (reads {0} or {1,2,3}, writes {0,i}; fr = 1/2): writes always load node 0 and are best
    spread a third to each other node; reading {0} with p gives node 0 1/2 + p/2 and the others
    (1 - p)/2 + 1/6, equal at p = 1/6 (2/12) -> 7/12.
    grid-2x2-hetero (rows {0,1} {2,3} read, one node per row written; capacities 3 3 1 1; fr = 3/4):
    writes uniform (1/4 = 3/12), reading row 0 with p gives (3p/4 + 1/8)/3 and 3(1 - p)/4 + 1/8,
    equal at p = 5/6 (10/12) -> 1/4.
    """
    n, reads, writes, fr, caps, load = BRUTE_CASES[case]
    lp = optimal_load(n, reads, writes, fr, caps)
    assert lp == pytest.approx(load, abs=1e-9)
    assert brute_force_load(n, reads, writes, fr, caps, 12) == pytest.approx(lp, abs=1e-9)


small_systems = st.integers(3, 4).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.frozensets(st.integers(0, n - 1), min_size=1), min_size=1, max_size=3).map(minimal),
        st.lists(st.frozensets(st.integers(0, n - 1), min_size=1), min_size=1, max_size=3).map(minimal),
        st.sampled_from([0.0, 0.25, 0.5, 0.8, 1.0]),
        st.lists(st.sampled_from([1.0, 2.0, 3.0]), min_size=n, max_size=n),
    )
)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(small_systems)
def test_lp_load_is_the_best_on_a_fine_grid(system):
    """The LP's strategy is at least as good as every grid strategy, and the grid's best is within the
    rounding error of the optimum: moving each of m probabilities by < 1/k changes a node's load by
    < m/k (divided by the smallest capacity)."""
    n, reads, writes, fr, caps = system
    k = 24
    best = optimal_strategy(n, reads, writes, fr, caps)
    assert best.read_probs.sum() == pytest.approx(1) and best.write_probs.sum() == pytest.approx(1)
    assert (best.read_probs >= 0).all() and (best.write_probs >= 0).all()
    lp = system_load(n, best, fr, caps)
    brute = brute_force_load(n, reads, writes, fr, caps, k)
    assert lp <= brute + 1e-9
    assert brute - lp <= max(len(reads), len(writes)) / k / min(caps) + 1e-9


def test_node_load_of_uniform_majority():
    """Uniform over the ten 3-of-5 quorums: each node is in 6 of them -> 6/10 for reads and writes."""
    load = node_load(5, uniform_strategy(majority(5), majority(5)), 0.4)
    assert load == pytest.approx([0.6] * 5)


# ---- latency ----------------------------------------------------------------------------------

LATENCY_MS = [1, 2, 3, 4, 5, 6]  # row 0 is faster than row 1


@pytest.mark.parametrize(
    ("fr", "max_load", "expected_ms"),
    [
        (1.0, None, 3.0),
        (1.0, 0.75, 3.75),
        (1.0, 0.5, 4.5),
        (0.0, None, 4.0),
        (0.0, 0.5, 4.5),
        (0.0, 1 / 3, 5.0),
    ],
)
def test_grid_latency_optimal(fr, max_load, expected_ms):
    """A read takes 3 ms on row 0 and 6 ms on row 1; a write {i, 3+j} takes node 3+j's 4, 5 or 6 ms.

    Reads use row 0 as often as the load allows: always (3 ms), 3/4 (3.75 ms) or 1/2 (4.5 ms).
    Writes pile onto node 3 up to the bound: always (4 ms); node 3 then 4 half each (4.5 ms);
    with load 1/3 each row-1 node a third (5 ms).
    """
    best = latency_optimal_strategy(6, GRID_READS, GRID_WRITES, fr, LATENCY_MS, max_load)
    assert expected_latency_ms(best, LATENCY_MS, fr) == pytest.approx(expected_ms, abs=1e-9)
    if max_load is not None:
        assert system_load(6, best, fr) <= max_load + 1e-9


def test_latency_below_least_load_is_an_error():
    with pytest.raises(QsimError, match=r"least load is 0\.5"):
        latency_optimal_strategy(6, GRID_READS, GRID_WRITES, 1.0, LATENCY_MS, max_load=0.4)


# ---- availability -----------------------------------------------------------------------------


def binomial_at_least(q: int, n: int, a: float) -> float:
    return sum(comb(n, k) * a**k * (1 - a) ** (n - k) for k in range(q, n + 1))


@pytest.mark.parametrize("n", [3, 5, 7])
@pytest.mark.parametrize("a", [0.5, 0.9, 0.99])
def test_majority_availability_is_binomial(n, a):
    """A majority is up iff at least n//2 + 1 nodes are: sum_{k >= q} C(n, k) a^k (1 - a)^(n - k)."""
    result = availability(n, majority(n), majority(n), a)
    expected = binomial_at_least(n // 2 + 1, n, a)
    assert (result.read, result.write) == (pytest.approx(expected), pytest.approx(expected))
    assert result.method == "exact"


def test_grid_availability_per_node():
    """Reads: some row all up, 1 - (1 - a0 a1 a2)(1 - a3 a4 a5).
    Writes: some node up in each row, (1 - (1-a0)(1-a1)(1-a2)) (1 - (1-a3)(1-a4)(1-a5))."""
    a = np.array([0.9, 0.8, 0.7, 0.95, 0.6, 0.5])
    result = availability(6, GRID_READS, GRID_WRITES, a)
    assert result.read == pytest.approx(1 - (1 - a[:3].prod()) * (1 - a[3:].prod()))
    assert result.write == pytest.approx((1 - (1 - a[:3]).prod()) * (1 - (1 - a[3:]).prod()))


def test_large_grid_uses_monte_carlo():
    """3 rows of 8 (24 nodes, over the exact limit) with a = 0.9: reads 1 - (1 - a^8)^3 and writes
    (1 - (1 - a)^8)^3, matched within 4 standard errors."""
    reads = [frozenset(range(8 * r, 8 * r + 8)) for r in range(3)]
    writes = [frozenset({i, 8 + j, 16 + k}) for i in range(8) for j in range(8) for k in range(8)]
    result = availability(24, reads, writes, 0.9, samples=20_000, seed=3)
    assert result.method == "montecarlo" and result.samples == 20_000
    assert abs(result.read - (1 - (1 - 0.9**8) ** 3)) < 4 * result.read_se
    assert result.write == pytest.approx((1 - 0.1**8) ** 3, abs=1e-4)  # se is ~0 here


@settings(max_examples=30, deadline=None, derandomize=True)
@given(systems, st.lists(st.floats(0.05, 0.95), min_size=6, max_size=6), st.integers(0, 2**32 - 1))
def test_enumeration_matches_monte_carlo(system, up, seed):
    """Monte Carlo availability is within 4 standard errors, sqrt(p (1 - p) / samples) with the
    exact p, of the enumeration (the same quorums on both sides of the system)."""
    n, quorums = system
    samples = 20_000
    exact = availability(n, quorums, quorums, up[:n], method="exact")
    sampled = availability(n, quorums, quorums, up[:n], method="montecarlo", samples=samples, seed=seed)
    se = np.sqrt(exact.read * (1 - exact.read) / samples)
    assert abs(sampled.read - exact.read) <= 4 * se + 1e-12
    assert sampled.read == sampled.write  # same states for both sides


def test_a_quorum_system_of_qsim_quorums_feeds_the_analysis():
    """The 2x3 grid built by qsim.quorums: rows read, one node of each row writes (the grid above)."""
    from qsim.quorums import QuorumSystem

    grid = QuorumSystem.grid(list("abcdef"), rows=2, cols=3)
    assert (resilience(grid.n, grid.reads), resilience(grid.n, grid.writes)) == (1, 2)
    assert capacity(grid.n, grid.reads, grid.writes, 0.5) == pytest.approx(12 / 5)  # load 5/12
