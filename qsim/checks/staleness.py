"""The staleness checker: a pure function of the operation history.

A read that starts at time s is stale if the version it returns is older than the newest version of
its key committed at or before s. Its k is the number of versions committed at or before s that are
newer than the one it returned; its t is s minus the commit time of that newest committed version.
Reads with no committed write before them, and reads that failed, are not checked (null).
Versions are ordered by (ts_ms, client, op_id), as last-writer-wins orders them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qsim.checks.order import by_key


def check_staleness(ops: pd.DataFrame) -> pd.DataFrame:
    """Return columns ``stale`` (boolean), ``k`` (Int64) and ``t_ms`` (float), aligned with ``ops``.

    Args:
        ops: the history, with at least kind, key, start_ms, ok, version, ts_ms, commit_ms,
            client and op_id (see :data:`qsim.history.OPS_COLUMNS`).
    """
    n = len(ops)
    stale = np.zeros(n, dtype=bool)
    checked = np.zeros(n, dtype=bool)
    k = np.zeros(n, dtype=np.int64)
    t_ms = np.full(n, np.nan)

    is_write = (ops["kind"] == "write").to_numpy()
    reads = np.flatnonzero(~is_write & ops["ok"].to_numpy())
    writes = np.flatnonzero(is_write)
    if len(reads) and len(writes):
        _check(ops, reads, writes, stale, checked, k, t_ms)

    return pd.DataFrame(
        {
            "stale": pd.arrays.BooleanArray(stale, mask=~checked),
            "k": pd.arrays.IntegerArray(k, mask=~checked),
            "t_ms": t_ms,
        },
        index=ops.index,
    )


def _check(ops, reads, writes, stale, checked, k, t_ms) -> None:
    key = ops["key"].to_numpy()
    op_id = ops["op_id"].to_numpy()
    commit = ops["commit_ms"].to_numpy()
    start = ops["start_ms"].to_numpy()

    # Rank every write by (key, version order); a key's versions occupy one contiguous block.
    client, ts = ops["client"].to_numpy()[writes], ops["ts_ms"].to_numpy()[writes]
    by_version = by_key(key[writes], op_id[writes], client, ts)
    order = writes[by_version]
    rank = np.empty(len(writes), dtype=np.int64)
    rank[by_version] = np.arange(len(writes))

    # Sweep commits (in row order, nearly in time order: cheap to sort) then read starts, by (key, time);
    # the sort is stable, so a commit at the read's start comes before it and counts.
    committed = ~np.isnan(commit[writes])
    events = np.concatenate([writes[committed], reads])
    sweep = by_key(key[events], np.concatenate([commit[writes[committed]], start[reads]]))
    sweep_rank = np.concatenate([rank[committed], np.full(len(reads), -1)])[sweep]
    newest_so_far = np.maximum.accumulate(sweep_rank)  # ranks grow with key, so this stays within a key
    slot = np.empty(len(reads), dtype=np.int64)  # each read's place in the sweep
    slot[sweep[sweep_rank < 0] - np.count_nonzero(committed)] = np.flatnonzero(sweep_rank < 0)
    newest = newest_so_far[slot]

    # The newest version committed by the read's start is of the read's key, if any of its key is.
    write_keys = key[order]
    read_keys = key[reads]
    has_commit = (newest >= 0) & (write_keys[newest] == read_keys)
    version = ops["version"].to_numpy()[reads]
    read_rank = np.where(version >= 0, VersionRanks(op_id[writes], rank)(version), -1)
    is_stale = has_commit & (read_rank < newest)
    checked[reads] = has_commit
    stale[reads] = is_stale
    t_ms[reads[has_commit]] = start[reads[has_commit]] - commit[order[newest[has_commit]]]
    if is_stale.any():
        # A read that returned nothing (version -1), or a version the history lacks (its write was cut
        # off: a run that stopped on an error), missed every version of its key, from the first one.
        nothing = is_stale & (read_rank < 0)
        read_rank[nothing] = np.searchsorted(write_keys, read_keys[nothing]) - 1
        k[reads[is_stale]] = _missed_versions(
            sweep_rank, len(writes), slot[is_stale], read_rank[is_stale], newest[is_stale]
        )


class VersionRanks:
    """The rank of each write in version order, looked up by op_id, in memory proportional to the writes.

    Args:
        op_ids: the writes' op_ids (unique), in any order.
        ranks: their ranks.
    """

    def __init__(self, op_ids: np.ndarray, ranks: np.ndarray) -> None:
        self._index = pd.Index(op_ids)  # a hash table: no sort, and no binary search per look-up
        if not self._index.is_unique:
            repeated = self._index[self._index.duplicated()].unique()[:5].tolist()
            raise ValueError(f"op_id must be unique; the writes repeat op ids {repeated}")
        self._ranks = np.append(ranks, -1)  # the position of an id not found, -1, picks this last -1

    def __call__(self, op_ids: np.ndarray) -> np.ndarray:
        """The ranks of the writes ``op_ids`` (-1 for an id that is not one of them)."""
        return self._ranks[self._index.get_indexer(op_ids)]


def _missed_versions(sweep_rank, size, slots, low, high) -> np.ndarray:
    """Count, for each stale read, the versions of rank in (low, high] committed before its slot of the sweep.

    A Fenwick tree over version ranks, filled with commits in sweep order, answers each count. Only the
    commits of a rank some read asks about enter it: usually few, so the Python loop stays short.
    """
    asked = np.cumsum(np.bincount(low + 1, minlength=size + 1) - np.bincount(high + 1, minlength=size + 1))
    # The commits before the last read, of a rank some read asks about (a read's -1 picks asked[size]: 0).
    updates = np.flatnonzero(asked[sweep_rank[: slots.max()]] > 0)
    tree = [0] * (size + 1)

    def prefix(i: int) -> int:  # commits with rank < i
        total = 0
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total

    rank_of_update = sweep_rank[updates].tolist()
    low, high = low.tolist(), high.tolist()
    result = np.zeros(len(slots), dtype=np.int64)
    for event in np.argsort(np.concatenate([updates, slots])).tolist():
        if event < len(updates):
            i = rank_of_update[event] + 1
            while i < len(tree):
                tree[i] += 1
                i += i & -i
        else:
            j = event - len(updates)
            result[j] = prefix(high[j] + 1) - prefix(low[j] + 1)
    return result
