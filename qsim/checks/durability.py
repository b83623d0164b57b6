"""Durability checkers: acknowledged writes that were lost, and updates that last-writer-wins discarded.

Pure functions of the ops table and of ``held``, the versions replicas hold at the end of a run (one
row per copy: key, version = op_id of a write; hints held for another node count too). Versions of
a key are ordered by (ts_ms, client, op_id), as last-writer-wins orders them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qsim.checks.order import by_key
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
    return ops.iloc[_lost(ops, held, writes, _version_order(ops, writes))]


def _lost(ops: pd.DataFrame, held: pd.DataFrame, writes: np.ndarray, by_version: np.ndarray) -> np.ndarray:
    """Return the rows of the lost writes, increasing.

    Args:
        ops: the history.
        held: the copies held at the end of the run.
        writes: the rows of the writes, increasing.
        by_version: the positions in ``writes`` sorted by (key, version order).
    """
    order = writes[by_version]
    rank = np.empty(len(writes), dtype=np.int64)
    rank[by_version] = np.arange(len(writes))
    write_keys = ops["key"].to_numpy()[order]
    held_rank = _held_ranks(held, VersionRanks(ops["op_id"].to_numpy()[writes], rank), write_keys)

    # A write is lost when the newest held version of its key is older: ranks of a key are contiguous.
    block = np.cumsum(np.diff(write_keys, prepend=write_keys[:1]) != 0)  # the key's number
    newest_held = np.full(len(writes), -1)
    np.maximum.at(newest_held, block[held_rank], held_rank)
    lost = ops["ok"].to_numpy(dtype=bool)[order] & (newest_held[block] < np.arange(len(writes)))
    return writes[lost[rank]]


def _version_order(ops: pd.DataFrame, writes: np.ndarray) -> np.ndarray:
    """Return the positions in ``writes`` sorted by (key, version order).

    A key's versions then occupy one contiguous block of ranks, and ranks grow with the key.
    """
    columns = (ops["op_id"], ops["client"], ops["ts_ms"])
    return by_key(ops["key"].to_numpy()[writes], *(column.to_numpy()[writes] for column in columns))


def _held_ranks(held: pd.DataFrame, rank_of: VersionRanks, write_keys: np.ndarray) -> np.ndarray:
    """Return the version ranks of the held copies, checking each is a write of its key."""
    version = held["version"].to_numpy(dtype=np.int64)
    rank = rank_of(version)
    valid = rank >= 0
    valid[valid] = write_keys[rank[valid]] == held["key"].to_numpy()[valid]
    if not valid.all():
        bad = held[~valid].head(5).to_dict("records")
        raise ValueError(f"held versions that are not writes of their key in ops: {bad}")
    return rank


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
    writes = np.flatnonzero((ops["kind"] == "write").to_numpy())
    lost_rows, newer_rows = _lww_lost(ops, writes, _version_order(ops, writes))
    return ops.iloc[lost_rows].assign(overwritten_by=ops["op_id"].to_numpy()[newer_rows])


def _lww_lost(ops: pd.DataFrame, writes: np.ndarray, by_version: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the rows of the lost updates, increasing, and of the newest version committed before each.

    Args:
        ops: the history.
        writes: the rows of the writes, increasing.
        by_version: the positions in ``writes`` sorted by (key, version order).
    """
    commit = ops["commit_ms"].to_numpy(dtype=float)[writes]
    committed = np.flatnonzero(~np.isnan(commit))  # positions in writes, in row order
    ranked = by_version[~np.isnan(commit[by_version])]  # the same, in version order
    rank = np.empty(len(writes), dtype=np.int64)
    rank[ranked] = np.arange(len(ranked))

    # Sweep starts then commits, in row order (nearly in time order: cheap to sort), by (key, time); the
    # sort is stable, so a start comes before a commit at the same time, which does not count.
    count = len(committed)
    key = ops["key"].to_numpy()[writes[committed]]
    time = np.concatenate([ops["start_ms"].to_numpy(dtype=float)[writes[committed]], commit[committed]])
    sweep = by_key(np.concatenate([key, key]), time)
    # Ranks grow with the key, so a rank carried over from an earlier key (or -1: no commit yet) is
    # below every rank of this key and never counts as newer.
    newest_so_far = np.maximum.accumulate(np.concatenate([np.full(count, -1), rank[committed]])[sweep])
    at_start = sweep < count
    newest = np.empty(count, dtype=np.int64)
    newest[sweep[at_start]] = newest_so_far[at_start]

    lost = newest > rank[committed]
    return writes[committed[lost]], writes[ranked[newest[lost]]]


def durability_summary(ops: pd.DataFrame, held: pd.DataFrame) -> dict:
    """Return acknowledged_writes, lost_writes, lost_fraction (None without any) and lww_lost_updates.

    Args:
        ops: the history.
        held: the versions held at the end of the run (see :func:`lost_writes`).
    """
    writes = np.flatnonzero((ops["kind"] == "write").to_numpy())
    acknowledged = int(np.count_nonzero(ops["ok"].to_numpy(dtype=bool)[writes]))
    by_version = _version_order(ops, writes)
    lost = len(_lost(ops, held, writes, by_version))
    return {
        "acknowledged_writes": acknowledged,
        "lost_writes": lost,
        "lost_fraction": lost / acknowledged if acknowledged else None,
        "lww_lost_updates": len(_lww_lost(ops, writes, by_version)[0]),
    }
