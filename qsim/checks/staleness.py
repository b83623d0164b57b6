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
            "t_ms": np.where(checked, t_ms, np.nan),
        },
        index=ops.index,
    )


def _check(ops, reads, writes, stale, checked, k, t_ms) -> None:
    key = ops["key"].to_numpy()
    op_id = ops["op_id"].to_numpy()
    commit = ops["commit_ms"].to_numpy()
    start = ops["start_ms"].to_numpy()

    # Rank every write by (key, version order); a key's versions occupy one contiguous block.
    order = writes[
        np.lexsort(
            (op_id[writes], ops["client"].to_numpy()[writes], ops["ts_ms"].to_numpy()[writes], key[writes])
        )
    ]
    write_keys = key[order]
    rank_of = VersionRanks(op_id[order])

    read_keys = key[reads]
    block_start = np.searchsorted(write_keys, read_keys, side="left")
    version = ops["version"].to_numpy()[reads]
    read_rank = np.where(version >= 0, rank_of(version), block_start - 1)

    # Sweep commits and read starts in (key, time) order; a commit at the read's start counts.
    committed_rank = np.flatnonzero(~np.isnan(commit[order]))
    committed = order[committed_rank]
    event_key = np.concatenate([key[committed], read_keys])
    event_time = np.concatenate([commit[committed], start[reads]])
    event_is_read = np.concatenate([np.zeros(len(committed), bool), np.ones(len(reads), bool)])
    sweep = np.lexsort((event_is_read, event_time, event_key))
    ranks = np.concatenate([committed_rank, np.full(len(reads), -1)])[sweep]
    newest_so_far = np.maximum.accumulate(ranks)  # ranks grow with key, so this stays within a key

    read_slot = np.empty(len(reads), dtype=np.int64)
    read_slot[sweep[event_is_read[sweep]] - len(committed)] = np.flatnonzero(event_is_read[sweep])
    newest = newest_so_far[read_slot]
    has_commit = newest >= block_start
    commit_of_rank = np.full(len(order), np.nan)
    commit_of_rank[committed_rank] = commit[committed]

    is_stale = has_commit & (read_rank < newest)
    checked[reads] = has_commit
    stale[reads] = is_stale
    t_ms[reads[has_commit]] = start[reads[has_commit]] - commit_of_rank[newest[has_commit]]
    k[reads] = 0
    if is_stale.any():
        k[reads[is_stale]] = _missed_versions(
            sweep,
            event_is_read,
            ranks,
            read_slot[is_stale],
            read_rank[is_stale],
            block_start[is_stale],
            write_keys,
            read_keys[is_stale],
        )


class VersionRanks:
    """The rank of each write in version order, looked up by op_id, in memory proportional to the writes.

    Args:
        op_ids: the writes' op_ids in rank order.
    """

    def __init__(self, op_ids: np.ndarray) -> None:
        self._order = np.argsort(op_ids, kind="stable")
        self._ids = op_ids[self._order]

    def __call__(self, op_ids: np.ndarray) -> np.ndarray:
        """The ranks of the writes ``op_ids`` (-1 for an id that is not one of them)."""
        position = np.minimum(np.searchsorted(self._ids, op_ids), max(len(self._ids) - 1, 0))
        found = (self._ids[position] == op_ids) if len(self._ids) else np.zeros(np.shape(op_ids), bool)
        return np.where(found, self._order[position] if len(self._ids) else -1, -1)


def _missed_versions(
    sweep, event_is_read, ranks, slots, read_rank, block_start, write_keys, keys
) -> np.ndarray:
    """Count, for each stale read, the versions newer than it returned committed by its start.

    A Fenwick tree over version ranks, filled with commits in sweep order, answers each count.
    """
    block_end = np.searchsorted(write_keys, keys, side="right")
    tree = [0] * (len(write_keys) + 1)

    def prefix(i: int) -> int:  # commits with rank < i
        total = 0
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total

    wanted = dict(zip(slots.tolist(), range(len(slots)), strict=True))
    result = np.zeros(len(slots), dtype=np.int64)
    is_read = event_is_read[sweep]
    for slot in range(max(wanted) + 1):
        if not is_read[slot]:
            i = int(ranks[slot]) + 1
            while i < len(tree):
                tree[i] += 1
                i += i & -i
        elif slot in wanted:
            j = wanted[slot]
            result[j] = prefix(int(block_end[j])) - prefix(int(read_rank[j]) + 1)
    return result
