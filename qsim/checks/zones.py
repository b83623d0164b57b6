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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qsim.checks.order import by_key
from qsim.checks.register import INITIAL, Registers, codes, dense_rank

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
    n = len(reg.op_id)
    rows = np.flatnonzero(reg.live)
    label = np.where(reg.is_write[rows], rows, reg.source[rows])
    initial = label == INITIAL
    label[initial] = n + reg.key_index[rows[initial]]
    labels, group = codes(label)
    # A failed write that was read never ended: only its reads' ends bound its cluster.
    end = np.where(reg.failed_write[rows], np.inf, reg.end[rows])
    ender = _smallest_per_group(group, end, len(labels))
    starter = _smallest_per_group(group, -reg.start[rows], len(labels))
    first_end, last_start = end[ender], reg.start[rows[starter]]
    ender, starter = rows[ender], rows[starter]
    write = np.where(labels < n, labels, NO_ROW)
    first_end[write == NO_ROW] = -np.inf
    ender[write == NO_ROW] = NO_ROW
    key_index = reg.key_index[starter]
    order = by_key(key_index)
    write, ender, starter = write[order], ender[order], starter[order]
    first_end, last_start, key_index = first_end[order], last_start[order], key_index[order]
    never = len(reg.earliest)  # later than every row
    ranks = [np.where(rows >= 0, reg.earliest[rows], never) for rows in (write, ender, starter)]
    return Clusters(
        key_index,
        write,
        first_end,
        last_start,
        ender,
        starter,
        np.minimum.reduce(ranks),
        _conflicts(key_index, first_end, last_start),
    )


def _smallest_per_group(group: np.ndarray, value: np.ndarray, groups: int) -> np.ndarray:
    """Return, for groups 0..groups-1 (each present), the first position of its smallest value."""
    smallest = np.full(groups, np.inf)
    np.minimum.at(smallest, group, value)
    at = np.flatnonzero(value == smallest[group])
    first = np.full(groups, len(value))
    np.minimum.at(first, group[at], at)
    return first


def _conflicts(key_index: np.ndarray, first_end: np.ndarray, last_start: np.ndarray) -> np.ndarray:
    """For each cluster, how many others of its key it conflicts with."""
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
