"""Load, capacity, resilience and availability of a read-write quorum system, on paper.

The definitions follow Whittaker et al., "Read-Write Quorum Systems Made Practical" (PaPoC 2021).
A system is a node count n (nodes 0..n-1) with minimal read and write quorums (frozensets of node
indexes). A strategy is a probability distribution over read quorums and one over write quorums.
With a read fraction fr, a node's load is the probability that it serves an operation,
fr * P(node in the read quorum) + (1 - fr) * P(node in the write quorum), each term divided by the
node's read or write capacity (operations per second) when capacities are given. The load of a
strategy is its largest node load; the system's load is the smallest over strategies, found by
linear programming, and its capacity (operations per second) is one over that load.

Subsets of nodes are handled as bitmasks (bit i = node i): the exact computations build a table over
all 2^n subsets and are limited to n <= MAX_EXACT_NODES. scipy loads only when a program is solved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from qsim.errors import QsimError

Quorums = Sequence[frozenset[int]]
MAX_EXACT_NODES = 20  # a table over 2^20 subsets is a 1 MB array of booleans
MC_BLOCK = 4_000_000  # samples x quorums compared per Monte Carlo block (32 MB of float64)


class Capacities(NamedTuple):
    """Per-node capacities in operations per second: reads a node serves alone, writes alike."""

    read: Sequence[float]
    write: Sequence[float]


@dataclass(frozen=True, eq=False)
class Strategy:
    """Probabilities over read quorums and over write quorums, each summing to 1."""

    reads: tuple[frozenset[int], ...]
    read_probs: np.ndarray
    writes: tuple[frozenset[int], ...]
    write_probs: np.ndarray


class Availability(NamedTuple):
    """Probability that some read (write) quorum is fully up, with the Monte Carlo standard errors.

    The standard errors are 0 and ``samples`` is 0 when the probability was computed exactly.
    """

    read: float
    write: float
    read_se: float
    write_se: float
    method: str
    samples: int


# ---- bitmask tables ---------------------------------------------------------------------------


def _mask(quorum: frozenset[int]) -> int:
    return sum(1 << i for i in quorum)


def _check_exact(n: int, what: str) -> None:
    if n > MAX_EXACT_NODES:
        raise QsimError(f"{what} enumerates the 2^n node subsets: n = {n} is above {MAX_EXACT_NODES}")


def contains_quorum(n: int, quorums: Quorums) -> np.ndarray:
    """Return a table over the 2^n subsets: True where the subset contains some quorum."""
    table = np.zeros(1 << n, dtype=bool)
    table[[_mask(q) for q in quorums]] = True
    for i in range(n):  # close upwards: adding node i keeps a quorum
        view = table.reshape(-1, 2, 1 << i)
        view[:, 1, :] |= view[:, 0, :]
    return table


def _drop_any_node(table: np.ndarray, n: int) -> np.ndarray:
    """Return the subsets S for which S minus any one node is in ``table`` (S itself included)."""
    out = table.copy()
    for i in range(n):
        view, source = out.reshape(-1, 2, 1 << i), table.reshape(-1, 2, 1 << i)
        view[:, 1, :] &= source[:, 0, :]
    return out


def _minimal_members(table: np.ndarray, n: int) -> list[frozenset[int]]:
    keep = table.copy()
    for i in range(n):
        view, source = keep.reshape(-1, 2, 1 << i), table.reshape(-1, 2, 1 << i)
        view[:, 1, :] &= ~source[:, 0, :]
    return [frozenset(i for i in range(n) if m >> i & 1) for m in np.flatnonzero(keep)]


def resilient_quorums(n: int, quorums: Quorums, f: int) -> list[frozenset[int]]:
    """Return the minimal f-resilient quorums: node sets that still contain a quorum after any f fail.

    This is quoracle's set of quorums for an f-resilient strategy; for f = 0 it is ``quorums``.

    Raises:
        QsimError: if no set of nodes is f-resilient (f is above the resilience), or n is too large.
    """
    if f < 0:
        raise QsimError(f"f must be a number of failures >= 0, not {f}")
    if f == 0:
        return list(quorums)
    if f >= n:  # nothing is left after n failures: no need to build the table
        raise QsimError(f"no set of the {n} nodes still holds a quorum after any {f} nodes fail")
    _check_exact(n, "an f-resilient strategy")
    table = contains_quorum(n, quorums)
    for _ in range(f):  # S is f-resilient iff S, and S minus any one node, are (f-1)-resilient
        table = _drop_any_node(table, n)
    found = _minimal_members(table, n)
    if not found:
        raise QsimError(f"no set of the {n} nodes still holds a quorum after any {f} nodes fail")
    return found


# ---- resilience -------------------------------------------------------------------------------


def resilience(n: int, quorums: Quorums) -> int:
    """Return the largest f such that any f failed nodes leave some quorum intact.

    That is the size of the smallest set of nodes meeting every quorum (a hitting set), minus one,
    found as a 0-1 integer program (scipy's ``milp``, HiGHS).
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    incidence = _incidence(n, quorums).T  # one row per quorum
    hit_all = LinearConstraint(incidence, lb=1, ub=np.inf)
    result = milp(np.ones(n), constraints=hit_all, integrality=np.ones(n), bounds=Bounds(0, 1))
    if result.status != 0:
        raise QsimError(f"no set of nodes meets every quorum ({result.message})")
    return round(result.fun) - 1


# ---- strategies and load ----------------------------------------------------------------------


def _incidence(n: int, quorums: Quorums) -> np.ndarray:
    """Return the n x len(quorums) matrix with 1 where the node is in the quorum."""
    if not quorums:
        raise QsimError("a quorum system needs at least one read and one write quorum")
    matrix = np.zeros((n, len(quorums)))
    for j, quorum in enumerate(quorums):
        matrix[sorted(quorum), j] = 1.0
    return matrix


def _capacity_arrays(n: int, capacities: Capacities | Sequence[float] | None) -> tuple[np.ndarray, ...]:
    if capacities is None:
        return np.ones(n), np.ones(n)
    pair = capacities if isinstance(capacities, Capacities) else (capacities, capacities)
    arrays = tuple(np.asarray(c, dtype=float) for c in pair)
    if any(a.shape != (n,) or not (a > 0).all() for a in arrays):
        raise QsimError(f"capacities must be {n} positive numbers per operation kind")
    return arrays


def _check_fraction(read_fraction: float) -> None:
    if not 0.0 <= read_fraction <= 1.0:
        raise QsimError(f"read_fraction must be in [0, 1], not {read_fraction}")


def _load_rows(n, reads, writes, read_fraction, capacities) -> np.ndarray:
    """Return the n x (len(reads) + len(writes)) matrix mapping strategy probabilities to node load."""
    _check_fraction(read_fraction)
    read_cap, write_cap = _capacity_arrays(n, capacities)
    read_part = read_fraction * _incidence(n, reads) / read_cap[:, None]
    write_part = (1.0 - read_fraction) * _incidence(n, writes) / write_cap[:, None]
    return np.hstack([read_part, write_part])


def uniform_strategy(reads: Quorums, writes: Quorums) -> Strategy:
    """Return the strategy that picks every read quorum, and every write quorum, equally often."""
    return Strategy(
        tuple(reads),
        np.full(len(reads), 1 / len(reads)),
        tuple(writes),
        np.full(len(writes), 1 / len(writes)),
    )


def node_load(
    n: int, strategy: Strategy, read_fraction: float, capacities: Capacities | Sequence[float] | None = None
) -> np.ndarray:
    """Return each node's load: the probability it serves an operation, over its capacity if given."""
    rows = _load_rows(n, strategy.reads, strategy.writes, read_fraction, capacities)
    return rows @ np.concatenate([strategy.read_probs, strategy.write_probs])


def system_load(
    n: int, strategy: Strategy, read_fraction: float, capacities: Capacities | Sequence[float] | None = None
) -> float:
    """Return the strategy's load: its busiest node's load (capacity = 1 / load, operations/s)."""
    return float(node_load(n, strategy, read_fraction, capacities).max())


def expected_latency_ms(strategy: Strategy, latency_ms: Sequence[float], read_fraction: float) -> float:
    """Return the mean quorum latency (ms) of an operation, a quorum waiting for its slowest node."""
    read_ms = _quorum_latency_ms(strategy.reads, latency_ms) @ strategy.read_probs
    write_ms = _quorum_latency_ms(strategy.writes, latency_ms) @ strategy.write_probs
    return float(read_fraction * read_ms + (1 - read_fraction) * write_ms)


def _quorum_latency_ms(quorums: Quorums, latency_ms: Sequence[float]) -> np.ndarray:
    return np.array([max(latency_ms[i] for i in q) for q in quorums], dtype=float)


def _solve(cost, rows, bounds_ub, n_reads, n_writes):
    """Solve min cost @ x over the two probability simplices with rows @ x <= bounds_ub (HiGHS)."""
    from scipy.optimize import linprog

    size = len(cost)
    sums = np.zeros((2, size))
    sums[0, :n_reads], sums[1, n_reads : n_reads + n_writes] = 1.0, 1.0
    return linprog(
        cost, A_ub=rows, b_ub=bounds_ub, A_eq=sums, b_eq=[1.0, 1.0], bounds=(0, None), method="highs"
    )


def _strategy(x: np.ndarray, reads: Quorums, writes: Quorums) -> Strategy:
    # HiGHS may return -1e-12 or sums off by rounding: clip and renormalize before sampling from them.
    read_probs, write_probs = (np.clip(p, 0.0, None) for p in (x[: len(reads)], x[len(reads) :]))
    return Strategy(
        tuple(reads), read_probs / read_probs.sum(), tuple(writes), write_probs / write_probs.sum()
    )


def optimal_strategy(
    n: int,
    reads: Quorums,
    writes: Quorums,
    read_fraction: float,
    capacities: Capacities | Sequence[float] | None = None,
    f: int = 0,
) -> Strategy:
    """Return a strategy of least load (largest capacity), by linear programming.

    Minimizes L subject to every node's load <= L. With ``f`` > 0 the strategy picks among the
    minimal f-resilient quorums (:func:`resilient_quorums`), so an operation sent to its quorum still
    completes when f of those nodes fail; its load counts every node the operation is sent to.
    """
    reads, writes = resilient_quorums(n, reads, f), resilient_quorums(n, writes, f)
    rows = _load_rows(n, reads, writes, read_fraction, capacities)
    rows = np.hstack([rows, -np.ones((n, 1))])  # node load - L <= 0
    cost = np.zeros(rows.shape[1])
    cost[-1] = 1.0
    result = _solve(cost, rows, np.zeros(n), len(reads), len(writes))
    if result.status != 0:
        raise QsimError(f"the load program failed: {result.message}")
    return _strategy(result.x[:-1], reads, writes)


def capacity(
    n: int,
    reads: Quorums,
    writes: Quorums,
    read_fraction: float,
    capacities: Capacities | Sequence[float] | None = None,
    f: int = 0,
) -> float:
    """Return the system's capacity: 1 / the optimal load (operations per second with capacities)."""
    best = optimal_strategy(n, reads, writes, read_fraction, capacities, f)
    return 1.0 / system_load(n, best, read_fraction, capacities)


def latency_optimal_strategy(
    n: int,
    reads: Quorums,
    writes: Quorums,
    read_fraction: float,
    latency_ms: Sequence[float],
    max_load: float | None = None,
    capacities: Capacities | Sequence[float] | None = None,
    write_latency_ms: Sequence[float] | None = None,
) -> Strategy:
    """Return the strategy of least expected quorum latency whose load is at most ``max_load``.

    A quorum's latency is its slowest node's expected latency (ms): ``latency_ms`` per node, for
    writes ``write_latency_ms`` if given (a write's messages may travel differently). Without
    ``max_load`` the strategy simply uses the fastest quorums.

    Raises:
        QsimError: if no strategy has a load of at most ``max_load``.
    """
    _check_fraction(read_fraction)
    write_latency_ms = latency_ms if write_latency_ms is None else write_latency_ms
    if len(latency_ms) != n or len(write_latency_ms) != n:
        raise QsimError(f"latency_ms needs one value per node ({n}), not {len(latency_ms)}")
    read_ms, write_ms = _quorum_latency_ms(reads, latency_ms), _quorum_latency_ms(writes, write_latency_ms)
    cost = np.concatenate([read_fraction * read_ms, (1 - read_fraction) * write_ms])
    rows = _load_rows(n, reads, writes, read_fraction, capacities) if max_load is not None else None
    bound = np.full(n, max_load) if max_load is not None else None
    result = _solve(cost, rows, bound, len(reads), len(writes))
    if result.status == 2:  # infeasible
        least = optimal_strategy(n, reads, writes, read_fraction, capacities)
        best = system_load(n, least, read_fraction, capacities)
        raise QsimError(f"no strategy has load <= {max_load}: the least load is {best:.6g}")
    if result.status != 0:
        raise QsimError(f"the latency program failed: {result.message}")
    return _strategy(result.x, reads, writes)


# ---- availability -----------------------------------------------------------------------------


def _up_array(n: int, up: float | Sequence[float]) -> np.ndarray:
    array = np.broadcast_to(np.asarray(up, dtype=float), (n,))
    if not ((array >= 0) & (array <= 1)).all():
        raise QsimError("node availabilities must be probabilities in [0, 1]")
    return array


def _state_probs(up: np.ndarray) -> np.ndarray:
    """Return the probability of each of the 2^n up/down states (bit i set = node i up)."""
    probs = np.ones(1)
    for a in up:  # node i becomes bit i: the new half of the table is "node i up"
        probs = np.concatenate([probs * (1 - a), probs * a])
    return probs


def _some_quorum_up(states: np.ndarray, quorums: Quorums) -> np.ndarray:
    """Return, per sampled state (rows of booleans, one column per node), whether a quorum is all up."""
    incidence = _incidence(states.shape[1], quorums)
    sizes = incidence.sum(axis=0)
    block = max(1, MC_BLOCK // len(quorums))
    out = np.empty(len(states), dtype=bool)
    for start in range(0, len(states), block):
        up_count = states[start : start + block].astype(float) @ incidence
        out[start : start + block] = (up_count > sizes - 0.5).any(axis=1)
    return out


def availability(
    n: int,
    reads: Quorums,
    writes: Quorums,
    up: float | Sequence[float],
    method: str = "auto",
    samples: int = 100_000,
    seed: int = 0,
) -> Availability:
    """Return the probability that some read, and some write, quorum has every node up.

    Nodes are up independently, with probability ``up`` (one value, or one per node). ``method`` is
    ``"exact"`` (sum over the 2^n up/down states), ``"montecarlo"`` (``samples`` states drawn from
    ``seed``; reads and writes see the same states) or ``"auto"`` (exact for n <= MAX_EXACT_NODES).
    """
    probs_up = _up_array(n, up)
    if method == "auto":
        method = "exact" if n <= MAX_EXACT_NODES else "montecarlo"
    if method == "exact":
        _check_exact(n, "exact availability")
        probs = _state_probs(probs_up)
        read, write = (float(probs[contains_quorum(n, qs)].sum()) for qs in (reads, writes))
        return Availability(read, write, 0.0, 0.0, "exact", 0)
    if method != "montecarlo":
        raise QsimError(f"availability method must be auto, exact or montecarlo, not {method!r}")
    states = np.random.default_rng(seed).random((samples, n)) < probs_up
    read, write = (float(_some_quorum_up(states, qs).mean()) for qs in (reads, writes))
    read_se, write_se = (float(np.sqrt(p * (1 - p) / samples)) for p in (read, write))
    return Availability(read, write, read_se, write_se, "montecarlo", samples)
