"""The staleness checker: a pure function of the operation history.

A read that starts at time s is stale if the version it returns is older than the newest version of
its key committed at or before s. Its k is the number of versions committed at or before s that are
newer than the one it returned; its t is s minus the commit time of that newest committed version.
Reads with no committed write before them, and reads that failed, are not checked (null).
Versions are ordered by (ts_ms, client, op_id), as last-writer-wins orders them.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from qsim.checks.order import by_key

# Rows (or versions) worked on at a time where the whole array is not needed: the temporaries stay small,
# in cache and in memory already in use (fresh pages of large arrays cost as much as the work on them).
SLICE = 1 << 14


def check_staleness(ops: pd.DataFrame) -> pd.DataFrame:
    """Return columns ``stale`` (boolean), ``k`` (Int64) and ``t_ms`` (float), aligned with ``ops``.

    Args:
        ops: the history, with at least kind, key, start_ms, ok, version, ts_ms, commit_ms,
            client and op_id (see :data:`qsim.history.OPS_COLUMNS`).
    """
    stale, checked, k, t_ms = _verdicts(ops)
    # The arrays are ours alone, so no copies; each column has its own mask, so setting one leaves the other.
    columns = {
        "stale": pd.arrays.BooleanArray(stale, mask=~checked),
        "k": pd.arrays.IntegerArray(k, mask=~checked),
        "t_ms": t_ms,
    }
    return pd.DataFrame(columns, index=ops.index, copy=False)


def _verdicts(ops: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """Return stale, checked, k and t_ms for every row (see :func:`check_staleness`)."""
    is_write = (ops["kind"] == "write").to_numpy()
    ok_read = ~is_write & ops["ok"].to_numpy()  # the reads to check
    versions = Versions(ops, np.flatnonzero(is_write)) if ok_read.any() and is_write.any() else None

    n = len(ops)
    stale = np.zeros(n, dtype=bool)
    checked = np.zeros(n, dtype=bool)
    k = np.zeros(n, dtype=np.int64)
    t_ms = np.full(n, np.nan)
    if versions is not None:
        columns = ops["key"].to_numpy(), ops["start_ms"].to_numpy(), ops["version"].to_numpy()
        parts = (start + np.flatnonzero(ok_read[start : start + SLICE]) for start in range(0, n, SLICE))
        missed = [_check(columns, part, versions, stale, checked, t_ms) for part in parts]
        rows, *stale_reads = (np.concatenate(column) for column in zip(*missed, strict=True))
        if len(rows):
            k[rows] = _missed_versions(versions, *stale_reads)
    return stale, checked, k, t_ms


def _check(columns, reads, versions: Versions, stale, checked, t_ms) -> tuple[np.ndarray, ...]:
    """Check the ``reads`` (rows, increasing): set their stale, checked and t_ms.

    Args:
        columns: the ops' key, start_ms and version columns.
        reads: the rows to check.
        versions: the writes of the history.
        stale, checked, t_ms: the verdicts to set, for all rows.

    Returns:
        For the stale ones: their rows, keys, starts (ms), the rank below the first version they
        missed, and the rank of the newest version committed before them.
    """
    keys, start, version = (column[reads] for column in columns)
    first, end = versions.blocks(keys)
    # A read with no start time (NaN) comes after every commit, as a sort by time puts it.
    newest = versions.newest_committed(first, end, np.fmin(start, np.inf))
    has_commit = newest >= 0
    read_rank = np.where(version >= 0, versions.rank_of(version), -1)
    # A read that returned another key's write returned no version of its own key: as one returning
    # a version the history lacks (below), it missed them all.
    read_rank[(read_rank >= 0) & (versions.key[read_rank] != keys)] = -1
    is_stale = has_commit & (read_rank < newest)
    checked[reads] = has_commit
    stale[reads] = is_stale
    t_ms[reads[has_commit]] = start[has_commit] - versions.commit_ms[newest[has_commit]]
    # A read that returned nothing (version -1), a version the history lacks (its write was cut off:
    # a run that stopped on an error) or another key's, missed every version of its key, from the first.
    nothing = is_stale & (read_rank < 0)
    read_rank[nothing] = first[nothing] - 1
    return reads[is_stale], keys[is_stale], start[is_stale], read_rank[is_stale], newest[is_stale]


class Versions:
    """The writes of a history in version order: by key, then by (ts_ms, client, op_id).

    A key's versions occupy one contiguous block of this order, and keys increase along it; a
    version's rank is its position in it. Look-ups by op_id and by key go through tables, built once.

    Args:
        ops: the history.
        writes: the rows of its writes, increasing.

    Attributes:
        rows: the rows of the writes, by rank.
        key: their keys.
        commit_ms: their commit times (NaN: never committed).
    """

    def __init__(self, ops: pd.DataFrame, writes: np.ndarray) -> None:
        key, op_ids = ops["key"].to_numpy()[writes], ops["op_id"].to_numpy()[writes]
        by_version = by_key(key, op_ids, ops["client"].to_numpy()[writes], ops["ts_ms"].to_numpy()[writes])
        self.rows = writes[by_version]
        self.key = key[by_version]
        self.commit_ms = ops["commit_ms"].to_numpy(dtype=float)[self.rows]
        self._op_id = ops["op_id"].to_numpy()  # the whole column, where the table of ranks finds the ids
        self._table_size = 2 * len(ops)  # tables by op_id or key, when no larger: memory bound by the history

    def rank_of(self, op_ids: np.ndarray) -> np.ndarray:
        """Return the ranks of the writes ``op_ids`` (-1 for an id that is none of them).

        Raises:
            ValueError: naming the first few op ids that two writes share.
        """
        low, index, ranks = self._ranks_by_id
        if index is not None:
            return ranks[index.get_indexer(op_ids)]  # not found: -1 picks the last rank, -1
        at, inside = _table_index(op_ids, low, len(ranks))
        return np.where(inside, ranks[at], -1)

    @cached_property
    def _ranks_by_id(self) -> tuple[int, pd.Index | None, np.ndarray]:
        """The ranks of the writes by op_id: a table of them from an id ``low`` (-1 for a gap) up to the
        highest id, and ``low``; or, when the ids are spread too thin for a table, a hash table of them
        and their ranks followed by a -1."""
        rank_type = np.int32 if len(self.rows) < 2**31 else np.int64
        low, high = _table_range(self._op_id, self._table_size)  # all ops' ids: no gather, and as tight
        if low is not None:
            ranks = np.full(high - low + 1, -1, dtype=rank_type)
            for start in range(0, len(self.rows), SLICE):  # a slice at a time: small temporaries
                ids = self._op_id[self.rows[start : start + SLICE]]
                ranks[ids - low if low else ids] = np.arange(start, start + len(ids), dtype=rank_type)
            if np.count_nonzero(ranks >= 0) < len(self.rows):
                raise _repeated(self._op_id[np.sort(self.rows)])
            return low, None, ranks
        index = pd.Index(self._op_id[self.rows])
        if not index.is_unique:
            raise _repeated(self._op_id[np.sort(self.rows)])
        return 0, index, np.append(np.arange(len(self.rows), dtype=rank_type), -1)

    def blocks(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the ranks [first, end) of the versions of each of ``keys`` (first == end: none)."""
        table = self._blocks_by_key
        if table is None:
            return np.searchsorted(self.key, keys, "left"), np.searchsorted(self.key, keys, "right")
        low, first, end = table
        at, inside = _table_index(keys, low, len(first))
        first = first[at]
        return first, np.where(inside, end[at], first)

    @cached_property
    def _blocks_by_key(self) -> tuple[int, np.ndarray, np.ndarray] | None:
        """A table, from a key ``low`` up to the highest key, of the first rank of each key's versions and
        the rank after its last, and ``low``; None when the keys are spread too thin for a table."""
        low, high = _table_range(self.key, self._table_size)
        if low is None:
            return None
        count = np.bincount(self.key - low if low else self.key, minlength=high - low + 1)
        end = np.cumsum(count)
        return low, end - count, end

    @cached_property
    def earliest_ms(self) -> np.ndarray:
        """The earliest commit time of each version or a newer one of its key (NaN: none of them committed).

        It grows along a key's block up to its last committed version, and is NaN after it.
        """
        # A running minimum from the end that restarts at each key: the minimum of complex numbers
        # (key number, commit_ms) compares key numbers first, and fmin passes over NaN (uncommitted).
        # It runs a slice at a time from the end, each slice's minima then taking in the one after it.
        earliest, after, block = np.empty(len(self.key)), complex(np.nan, np.nan), key_numbers(self.key)
        for stop in range(len(self.key), 0, -SLICE):
            part = slice(max(stop - SLICE, 0), stop)
            pairs = np.empty(part.stop - part.start, dtype=complex)
            pairs.real, pairs.imag = block[part], self.commit_ms[part]
            np.fmin.accumulate(pairs[::-1], out=pairs[::-1])
            after = np.fmin(pairs, after, out=pairs)[0]
            # Where a key's remaining versions never committed, the minimum is a later key's (or NaN).
            earliest[part] = np.where(pairs.real == block[part], pairs.imag, np.nan)
        return earliest

    def newest_committed(self, first: np.ndarray, end: np.ndarray, by_ms: np.ndarray) -> np.ndarray:
        """Return, for each query, the newest version of rank in [first, end) (one key's block) committed
        at or before ``by_ms`` (NaN: never), or -1 if none is.

        A binary search of each block, all queries at once: in a block, earliest_ms <= by_ms holds for a
        prefix, the versions up to the newest one committed by then.
        """
        earliest = self.earliest_ms
        newest, last = first - 1, end - 1  # the search keeps earliest[first:newest + 1] <= by_ms
        for shift in reversed(range(int((end - first).max(initial=0)).bit_length())):
            # A step past the block's end tries its last version: if that one holds, so does all of the block.
            at = np.minimum(newest + (1 << shift), last)
            newest = np.where(earliest[at] <= by_ms, at, newest)
        return np.where(newest >= first, newest, -1)


def key_numbers(key: np.ndarray) -> np.ndarray:
    """Number the keys of ``key`` (sorted): 0 for the first, 1 for the next, ..."""
    numbers = np.zeros(len(key), dtype=np.int32 if len(key) < 2**31 else np.int64)
    np.cumsum(key[1:] != key[:-1], out=numbers[1:])
    return numbers


def _table_range(values: np.ndarray, size: int) -> tuple[int | None, int]:
    """Return the range [low, high] of a table indexed by the integers ``values`` (by ``value - low``), if
    it has fewer than ``size`` entries; else (None, 0). It starts at 0 when that is as good: the values
    then index it as they are."""
    if values.dtype.kind not in "iu" or not len(values):
        return None, 0
    low, high = int(values.min()), int(values.max())
    if high - low >= size:
        return None, 0
    return (0 if low >= 0 and high < size else low), high


def _table_index(values: np.ndarray, low: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the positions of ``values`` in a table of ``size`` entries from ``low`` (any position for a
    value outside it), and which values are inside it."""
    at = np.clip(values, low, low + size - 1)  # subtracting low from it cannot overflow
    inside = at == values
    return (at - low if low else at), inside


def _repeated(op_ids: np.ndarray) -> ValueError:
    """The error for writes that share op ids, naming the first few (in the order of ``op_ids``)."""
    index = pd.Index(op_ids)
    repeated = index[index.duplicated()].unique()[:5].tolist()
    return ValueError(f"op_id must be unique; the writes repeat op ids {repeated}")


def _missed_versions(versions: Versions, keys, start_ms, low, high) -> np.ndarray:
    """Count, for each stale read, the versions of rank in (low, high] committed before it, in a sweep of
    commits and read starts by (key, time).

    A Fenwick tree over version ranks, filled with commits in sweep order, answers each count. Only the
    commits of a rank some read asks about enter it: usually few, so the Python loop stays short.
    """
    size = len(versions.key)
    asked = np.cumsum(np.bincount(low + 1, minlength=size + 1) - np.bincount(high + 1, minlength=size + 1))
    updates = np.flatnonzero((asked[:size] > 0) & ~np.isnan(versions.commit_ms))
    # The sort is stable, so a commit at a read's start comes before it and counts. A read's ranks
    # (low, high] are of its own key, so the commits of other keys it meets in the sweep never count.
    sweep = by_key(
        np.concatenate([versions.key[updates], keys]), np.concatenate([versions.commit_ms[updates], start_ms])
    )
    tree = [0] * (size + 1)

    def prefix(i: int) -> int:  # commits with rank < i
        total = 0
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total

    rank_of_update, low, high = updates.tolist(), low.tolist(), high.tolist()
    result = np.zeros(len(keys), dtype=np.int64)
    for event in sweep.tolist():
        if event < len(updates):
            i = rank_of_update[event] + 1
            while i < len(tree):
                tree[i] += 1
                i += i & -i
        else:
            j = event - len(updates)
            result[j] = prefix(high[j] + 1) - prefix(low[j] + 1)
    return result
