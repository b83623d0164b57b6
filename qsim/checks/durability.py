"""Durability checkers: acknowledged writes that were lost, and updates that last-writer-wins discarded.

Pure functions of the ops table and of ``held``, the versions replicas hold at the end of a run (one
row per copy: key, version = op_id of a write; hints held for another node count too). Versions of
a key are ordered by (ts_ms, client, op_id), as last-writer-wins orders them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qsim.checks.staleness import VersionRanks


def lost_writes(ops: pd.DataFrame, held: pd.DataFrame) -> pd.DataFrame:
    """Return the acknowledged writes that no replica holds any more, nor anything newer.

    An ok write w of key k is lost if no held version of k is w or newer than w: a newer version
    supersedes it. Held versions of failed writes count like any other.

    Args:
        ops: the history (kind, key, ok, op_id, client, ts_ms in ms).
        held: one row per copy held at the end of the run: key, version.

    Returns:
        The rows of ``ops`` for the lost writes, in their order in ``ops``.

    Raises:
        ValueError: when a held version is not a write of that key in ``ops``.
    """
    writes = np.flatnonzero((ops["kind"] == "write").to_numpy())
    key = ops["key"].to_numpy()
    order, rank_of = _version_ranks(ops, writes)
    held_rank = _held_ranks(held, rank_of, key[order])

    # A key's versions occupy ranks [its first rank, block_end); look for a held one at or above w's.
    write_keys = key[order]
    block_end = np.searchsorted(write_keys, write_keys, side="right")
    rank = np.arange(len(order))
    newer_or_same_held = np.searchsorted(held_rank, block_end) - np.searchsorted(held_rank, rank)
    lost = ops["ok"].to_numpy(dtype=bool)[order] & (newer_or_same_held == 0)
    return ops.iloc[np.sort(order[lost])]


def _version_ranks(ops: pd.DataFrame, writes: np.ndarray) -> tuple[np.ndarray, VersionRanks]:
    """Return the writes sorted by (key, version order), and a lookup from op_id to that rank (-1: none).

    A key's versions occupy one contiguous block of ranks, and ranks grow with the key.
    """
    op_id = ops["op_id"].to_numpy()
    columns = (ops["op_id"], ops["client"], ops["ts_ms"], ops["key"])
    order = writes[np.lexsort([column.to_numpy()[writes] for column in columns])]
    return order, VersionRanks(op_id[order])


def _held_ranks(held: pd.DataFrame, rank_of: VersionRanks, write_keys: np.ndarray) -> np.ndarray:
    """Return the sorted version ranks of the held copies, checking each is a write of its key."""
    version = held["version"].to_numpy(dtype=np.int64)
    rank = rank_of(version)
    valid = rank >= 0
    valid[valid] = write_keys[rank[valid]] == held["key"].to_numpy()[valid]
    if not valid.all():
        bad = held[~valid].head(5).to_dict("records")
        raise ValueError(f"held versions that are not writes of their key in ops: {bad}")
    return np.sort(rank)


def lww_lost_updates(ops: pd.DataFrame) -> pd.DataFrame:
    """Return committed writes that last-writer-wins discarded although they came last in real time.

    A committed write W2 of key k is a lost update when another committed write W1 of k committed
    before W2 started (W1.commit_ms < W2.start_ms) and yet W2's version is older than W1's: a
    reader will never see W2. Clock skew between coordinators causes this.

    Args:
        ops: the history (kind, key, start_ms and commit_ms in ms, op_id, client, ts_ms in ms).

    Returns:
        The rows of ``ops`` for those W2, in their order in ``ops``, with a column
        ``overwritten_by``: the op_id of the newest version among those W1.
    """
    commit = ops["commit_ms"].to_numpy(dtype=float)
    is_write = (ops["kind"] == "write").to_numpy()
    order, _ = _version_ranks(ops, np.flatnonzero(is_write & ~np.isnan(commit)))
    start = ops["start_ms"].to_numpy(dtype=float)
    newest = _newest_committed_before_start(ops["key"].to_numpy()[order], start[order], commit[order])

    # Ranks grow with the key, so a rank carried over from an earlier key (or -1: no commit yet) is
    # below every rank of this key and never counts as newer.
    lost = newest > np.arange(len(order))
    lost_rows, newer_rows = order[lost], order[newest[lost]]
    by_row = np.argsort(lost_rows)
    overwritten_by = ops["op_id"].to_numpy()[newer_rows[by_row]]
    return ops.iloc[lost_rows[by_row]].assign(overwritten_by=overwritten_by)


def _newest_committed_before_start(key: np.ndarray, start: np.ndarray, commit: np.ndarray) -> np.ndarray:
    """Return, per write in version-rank order, the highest rank committed strictly before it started.

    The arrays are in rank order (sorted by key). The result is -1 when nothing committed before,
    and may be a rank of an earlier key when nothing of its own key did.
    """
    count = len(key)
    # Sweep starts and commits in (key, time) order, a start before a commit at the same time. One
    # argsort of a packed int64 code (below 4 * count**2: no overflow) is several times faster than
    # np.lexsort on floats.
    block = np.cumsum(np.diff(key, prepend=key[:1]) != 0)  # the key's number
    _, time_rank = np.unique(np.concatenate([start, commit]), return_inverse=True)
    is_commit = np.repeat([0, 1], count)
    sweep = np.argsort((np.tile(block, 2) * (time_rank.max(initial=0) + 1) + time_rank) * 2 + is_commit)
    newest_so_far = np.maximum.accumulate(np.concatenate([np.full(count, -1), np.arange(count)])[sweep])
    at_start = sweep < count
    newest = np.empty(count, dtype=np.int64)
    newest[sweep[at_start]] = newest_so_far[at_start]
    return newest


def durability_summary(ops: pd.DataFrame, held: pd.DataFrame) -> dict:
    """Return acknowledged_writes, lost_writes, lost_fraction (None without any) and lww_lost_updates.

    Args:
        ops: the history.
        held: the versions held at the end of the run (see :func:`lost_writes`).
    """
    acknowledged = int(((ops["kind"] == "write") & ops["ok"]).sum())
    lost = len(lost_writes(ops, held))
    return {
        "acknowledged_writes": acknowledged,
        "lost_writes": lost,
        "lost_fraction": lost / acknowledged if acknowledged else None,
        "lww_lost_updates": len(lww_lost_updates(ops)),
    }
