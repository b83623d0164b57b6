"""Zones: the exact O(n log n) linearizability test of registers whose writes write unique values.

Gibbons & Korach (1997), "Testing shared memories", as Golab, Li & Shah (2011) use it. A cluster is
a write and the reads that returned it; a key's initial value is a cluster whose write ended at
-inf. Let f be the earliest end and s the latest start among a cluster's operations: it has a
forward zone [f, s] if f < s, else a backward zone [s, f]. Once the reads from the future are set
apart (:mod:`qsim.checks.register`), a key is linearizable iff no two forward zones overlap and no
backward zone lies inside a forward one. Both cases, and only they, are pairs of clusters i, j that
*conflict*: f_i < s_j and f_j < s_i (two backward zones never do: f_i < s_j <= f_j < s_i <= f_i).

Why. In any linearization a cluster's operations are consecutive, its write first: a read returns
the latest write, and values are unique. The operation x_i that ends at f_i ended before the one
y_j that starts at s_j began, so x_i comes before y_j, and likewise x_j before y_i: each cluster
would have to come before the other. Conversely, with no conflict the forward zones are disjoint
but for shared ends, every backward zone has a point outside their interiors (a closed interval
covered by disjoint open ones lies in one of them), and placing each cluster at its zone, in the
zones' order, gives a valid order. Ties follow the definition: an operation that ends at t and one
that starts at t are concurrent, so zones that only touch do not conflict, hence the strict "<".

Counting the conflicts sorts each key's f and s together. Most keys need no count: one pass over
their clusters in row order shows that none of theirs conflict (:func:`_unordered`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qsim.checks.order import by_key
from qsim.checks.register import INITIAL, NONE, Registers, dense_rank

NO_ROW = -1  # the write of the initial value, which has no row


@dataclass(frozen=True)
class Clusters:
    """A history's clusters, sorted by key; one entry per write taking part, one per read initial value.

    Attributes:
        key_index: the cluster's key, as :attr:`Registers.key_index`.
        write: the row of its write (NO_ROW for the initial value).
        first_end: f, the earliest end among its operations, ms (-inf for the initial value).
        last_start: s, the latest start among them, ms.
        ender: the row of the operation that ends at f (NO_ROW for the initial value).
        starter: the row of the operation that starts at s.
        earliest: the smallest :attr:`Registers.earliest` among write, ender and starter.
        conflicts: how many other clusters of its key it conflicts with.
    """

    key_index: np.ndarray
    write: np.ndarray
    first_end: np.ndarray
    last_start: np.ndarray
    ender: np.ndarray
    starter: np.ndarray
    earliest: np.ndarray
    conflicts: np.ndarray


def clusters(reg: Registers) -> Clusters:
    """Return the clusters of the live rows of ``reg``, with their conflict counts."""
    key_index, write, ender, starter = _by_key(reg)
    # The initial values' clusters: their write and ender, NO_ROW, index the last row until replaced.
    initial = np.flatnonzero(write == NO_ROW)
    first_end = np.where(reg.ok[ender], reg.end[ender], np.inf)  # only a cluster's write may fail
    first_end[initial] = -np.inf
    last_start = reg.start[starter]
    start_rank = reg.earliest[starter]
    earliest = np.minimum(reg.earliest[write], reg.earliest[ender])
    earliest[initial] = len(reg.op_id)  # later than every row
    np.minimum(earliest, start_rank, out=earliest)
    conflicts = _conflicts(key_index, first_end, last_start, initial, start_rank)
    return Clusters(key_index, write, first_end, last_start, ender, starter, earliest, conflicts)


def _by_key(reg: Registers) -> tuple[np.ndarray, ...]:
    """Return the key_index, write, ender and starter of the clusters, in the order of :class:`Clusters`.

    That is by key, and within a key by label: its writes in row order, then its initial value.
    """
    heads = reg.live & reg.is_write  # each live write heads a cluster
    writes = np.flatnonzero(heads)
    write_ender, write_starter = _write_extremes(reg, heads, writes)
    # The initial values' clusters, by key, have only reads: no row of their own (NONE, at -inf).
    initial = np.flatnonzero(reg.source == INITIAL)
    no_row, no_value = np.full(len(reg.keys), NONE), np.full(len(reg.keys), -np.inf)
    initial_starter = _first_extreme(
        np.maximum, no_row, no_value, reg.key_index[initial], reg.start[initial], initial
    )
    initial_keys = np.flatnonzero(initial_starter != NONE)
    key_index = np.concatenate([reg.key_index[writes], initial_keys])
    order = by_key(key_index)
    no_rows = np.full(len(initial_keys), NO_ROW)
    return (
        key_index[order],
        np.concatenate([writes, no_rows])[order],
        np.concatenate([write_ender, no_rows])[order],
        np.concatenate([write_starter, initial_starter[initial_keys]])[order],
    )


def _write_extremes(reg: Registers, heads: np.ndarray, writes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the ender and the starter of the cluster of each of ``writes``, the rows of ``heads``."""
    reads = np.flatnonzero(reg.source >= 0)  # the reads of a write's value
    cluster = np.cumsum(heads)[reg.source[reads]]
    cluster -= 1  # their write's position in writes
    # A failed write that was read never ended: only its reads' ends bound its cluster.
    end = np.where(reg.ok[writes], reg.end[writes], np.inf)
    ender = _first_extreme(np.minimum, writes, end, cluster, reg.end[reads], reads)
    return ender, _first_extreme(np.maximum, writes, reg.start[writes], cluster, reg.start[reads], reads)


def _first_extreme(extreme, rows, values, group, value, row) -> np.ndarray:
    """Return, for each group, the first (smallest) row with the group's least or greatest value.

    ``extreme`` is np.minimum or np.maximum. Group g has row ``rows[g]`` with ``values[g]`` (NONE
    with extreme's identity, an infinity, for no such row) and each ``row[i]`` with ``value[i]``
    for which ``group[i]`` is g. A group with no row gets NONE.
    """
    best = values.copy()
    extreme.at(best, group, value)
    first = np.where(values == best, rows, NONE)
    tie = np.flatnonzero(value == best[group])
    np.minimum.at(first, group[tie], row[tie])
    return first


def _conflicts(key_index, first_end, last_start, initial, start_rank) -> np.ndarray:
    """For each cluster, how many others of its key it conflicts with.

    Args:
        key_index, first_end, last_start: the clusters' keys, f and s, by key.
        initial: the positions of the clusters of initial values (each last of its key).
        start_rank: a rank of each s among all, as :attr:`Registers.earliest` ranks the operations.
    """
    conflicts = np.zeros(len(key_index), np.int64)
    if len(key_index) == 0:
        return conflicts
    some = np.flatnonzero(_unordered(key_index, first_end, last_start, initial, start_rank)[key_index])
    if len(some):
        conflicts[some] = _count_conflicts(key_index[some], first_end[some], last_start[some])
    return conflicts


def _unordered(key_index, first_end, last_start, initial, start_rank) -> np.ndarray:
    """Which keys may have a conflict: in the order of their initial value and then their writes by
    row, some cluster has an s later than the f of a cluster after it.

    In an order without such a pair no two clusters conflict (s_i <= f_j for i before j), so
    counting is left to the keys that fail, usually few: a simulation records writes about in the
    order they took effect.
    """
    keys = int(key_index[-1]) + 1
    scale = int(start_rank.max()) + 1
    if keys * scale > 2**63:  # key * scale + rank below could overflow: every key may
        return np.ones(keys, bool)
    # The cluster with the latest s up to each: the last one to raise the running maximum of
    # key * scale + rank of s (keys ascend, ranks differ); it is the latest of the key if of that key.
    rank = key_index * scale
    rank += start_rank
    latest = np.arange(len(rank))
    latest *= rank == np.maximum.accumulate(rank)  # 0 where no record: the running maximum ignores it
    np.maximum.accumulate(latest, out=latest)
    latest = latest[:-1]  # before each cluster from the second on
    late = np.zeros(len(rank), bool)
    late[1:] = (key_index[latest] == key_index[1:]) & (last_start[latest] > first_end[1:])
    # The initial value's s, before every write cluster of its key.
    initial_start = np.full(keys, -np.inf)
    initial_start[key_index[initial]] = last_start[initial]
    late |= initial_start[key_index] > first_end
    late[initial] = False  # (their own f is -inf)
    unordered = np.zeros(keys, bool)
    unordered[key_index[late]] = True
    return unordered


def _count_conflicts(key_index: np.ndarray, first_end: np.ndarray, last_start: np.ndarray) -> np.ndarray:
    """For each cluster, how many others of its key it conflicts with (by counting)."""
    m = len(key_index)
    # One rank scale for both ends, key first, so clusters of different keys never compare as conflicting.
    rank = dense_rank(np.concatenate([key_index, key_index]), np.concatenate([first_end, last_start]))
    f, s = rank[:m], rank[m:]
    # Counting is the costly part: count only in the keys that have a conflict at all.
    some = np.flatnonzero(np.bincount(key_index, weights=_sees_conflict(f, s))[key_index] > 0)
    f, s = f[some], s[some]
    conflicts = np.zeros(m, np.int64)
    conflicts[some] = count_dominated(f, s, s, f) - (f < s)  # a forward zone counts itself
    return conflicts


def _sees_conflict(f: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Clusters that conflict with a forward zone that ends before them, or with as early an f.

    ``f`` and ``s`` are ranks on one key-first scale. Every conflicting pair has such a member: one
    of the two, i, is forward, and the other, j, has f_i < s_j and s_i > f_j. If j is backward, the
    forward zones that end before s_j reach past f_j; if j is forward and f_i < f_j, those that end
    before f_j do (else swap i and j); two forward zones with the same f always conflict.
    """
    forward = f < s
    # reach[r]: the latest start among forward zones that end before rank r.
    reach = np.full(2 * len(f) + 1, -1)
    np.maximum.at(reach, f[forward] + 1, s[forward])
    reach = np.maximum.accumulate(reach)
    shared = np.bincount(f[forward], minlength=2 * len(f))[f] > 1
    return (reach[np.minimum(f, s)] > f) | (forward & shared)


def count_dominated(px: np.ndarray, py: np.ndarray, qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
    """For each query j, how many points i have px[i] < qx[j] and py[i] > qy[j] (non-negative ints).

    The points sorted by x are cut into aligned blocks of 1, 2, 4, ... points, each sorted by y; a
    query's prefix of points with smaller x is a union of at most one block of each size, and
    counting the larger y in a sorted block is a binary search: O(n log^2 n), all vectorized.
    """
    counts = np.zeros(len(qx), np.int64)
    if len(px) == 0 or len(qx) == 0:
        return counts
    order = np.argsort(px, kind="stable")
    px, py = px[order], py[order]
    prefix = np.searchsorted(px, qx, side="left")
    span = int(max(py.max(), qy.max())) + 1
    position = np.arange(len(px))
    level = 0
    while (1 << level) <= len(px):
        keyed = np.sort((position >> level) * span + py)
        asking = np.flatnonzero((prefix >> level) & 1)
        block = (prefix[asking] >> level) - 1
        not_above = np.searchsorted(keyed, block * span + qy[asking], side="right")
        counts[asking] += ((block + 1) << level) - not_above
        level += 1
    return counts


def first_pairs(cl: Clusters, limit: int) -> list[tuple[int, int]]:
    """Return the first ``limit`` conflicting pairs (i, j) of clusters in order of their earliest operation.

    ``i`` holds the pair's earliest operation; pairs that share it follow the earliest operation of
    ``j``. Cost: one pass over its key's clusters per involved cluster visited.
    """
    involved = np.flatnonzero(cl.conflicts > 0)
    involved = involved[np.argsort(cl.earliest[involved], kind="stable")]
    pairs: list[tuple[int, int]] = []
    for i in involved.tolist():
        if len(pairs) >= limit:
            break
        lo = np.searchsorted(cl.key_index, cl.key_index[i], side="left")
        hi = np.searchsorted(cl.key_index, cl.key_index[i], side="right")
        partner = lo + np.flatnonzero(
            (cl.first_end[lo:hi] < cl.last_start[i])
            & (cl.last_start[lo:hi] > cl.first_end[i])
            & (cl.earliest[lo:hi] > cl.earliest[i])
        )
        partner = partner[np.argsort(cl.earliest[partner], kind="stable")]
        pairs += [(i, j) for j in partner[: limit - len(pairs)].tolist()]
    return pairs


def witness_rows(cl: Clusters, involved: np.ndarray) -> np.ndarray:
    """Rows of the operations that define the zones of the given clusters (write, ender, starter)."""
    rows = np.concatenate([cl.write[involved], cl.ender[involved], cl.starter[involved]])
    return rows[rows >= 0]
