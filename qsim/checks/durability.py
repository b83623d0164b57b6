"""Durability checkers: acknowledged writes that were lost, and updates that last-writer-wins discarded.

Pure functions of the ops table and of ``held``, the versions replicas hold at the end of a run (one
row per copy: key, version = op_id of a write; hints held for another node count too). Versions of
a key are ordered by (ts_ms, client, op_id), as last-writer-wins orders them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qsim.checks.staleness import Versions, key_numbers


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
    versions = _versions(ops)
    lost = _lost(versions, ops["ok"].to_numpy(dtype=bool)[versions.rows], held)
    return ops.iloc[np.sort(versions.rows[lost])]


def _versions(ops: pd.DataFrame) -> Versions:
    """The writes of ``ops`` in version order."""
    return Versions(ops, np.flatnonzero((ops["kind"] == "write").to_numpy()))


def _lost(versions: Versions, ok: np.ndarray, held: pd.DataFrame) -> np.ndarray:
    """Return which versions are lost writes (a mask by rank).

    Args:
        versions: the writes in version order.
        ok: which of them were acknowledged, by rank.
        held: the copies held at the end of the run.
    """
    held_rank = _held_ranks(held, versions)
    # A write is lost when the newest held version of its key is older: ranks of a key are contiguous.
    block = key_numbers(versions.key)
    newest_held = np.full(len(ok), -1, dtype=held_rank.dtype)  # no cast: np.maximum.at is fast
    np.maximum.at(newest_held, block[held_rank], held_rank)
    return ok & (newest_held[block] < np.arange(len(ok), dtype=held_rank.dtype))


def _held_ranks(held: pd.DataFrame, versions: Versions) -> np.ndarray:
    """Return the version ranks of the held copies, checking each is a write of its key."""
    rank = versions.rank_of(held["version"].to_numpy(dtype=np.int64))
    valid = rank >= 0
    valid[valid] = versions.key[rank[valid]] == held["key"].to_numpy()[valid]
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
    versions = _versions(ops)
    lost_rows, newer_rows = _lww_lost(ops, versions)
    return ops.iloc[lost_rows].assign(overwritten_by=ops["op_id"].to_numpy()[newer_rows])


def _lww_lost(ops: pd.DataFrame, versions: Versions) -> tuple[np.ndarray, np.ndarray]:
    """Return the rows of the lost updates, increasing, and of the newest version committed before each."""
    start = ops["start_ms"].to_numpy(dtype=float)[versions.rows]
    # W2 is lost when a newer version of its key committed before W2 started: when the earliest commit
    # among the versions after it in its key's block is before its start.
    earliest_newer = versions.earliest_ms[1:]
    overtaken = earliest_newer < start[:-1]
    if np.isnan(start).any():  # a NaN start comes after every commit, as a sort by time puts it
        overtaken |= np.isnan(start[:-1]) & ~np.isnan(earliest_newer)
    same_key = versions.key[1:] == versions.key[:-1]
    lost = np.flatnonzero(overtaken & same_key & ~np.isnan(versions.commit_ms[:-1]))
    if not len(lost):
        return lost, lost
    _, end = versions.blocks(versions.key[lost])
    newer = versions.newest_committed(lost + 1, end, _just_before(start[lost]))
    by_row = np.argsort(versions.rows[lost])
    return versions.rows[lost[by_row]], versions.rows[newer[by_row]]


def _just_before(ms: np.ndarray) -> np.ndarray:
    """Return the latest times strictly before ``ms``: a commit at or before one is strictly before ``ms``.

    A NaN in ``ms`` comes after every time (as a sort by time puts it); -inf after none (NaN: never).
    """
    before = np.nextafter(ms, -np.inf)
    before[np.isnan(ms)] = np.inf
    before[ms == -np.inf] = np.nan
    return before


def durability_summary(ops: pd.DataFrame, held: pd.DataFrame) -> dict:
    """Return acknowledged_writes, lost_writes, lost_fraction (None without any) and lww_lost_updates.

    Args:
        ops: the history.
        held: the versions held at the end of the run (see :func:`lost_writes`).
    """
    versions = _versions(ops)
    ok = ops["ok"].to_numpy(dtype=bool)[versions.rows]
    acknowledged = int(np.count_nonzero(ok))
    lost = int(np.count_nonzero(_lost(versions, ok, held)))
    return {
        "acknowledged_writes": acknowledged,
        "lost_writes": lost,
        "lost_fraction": lost / acknowledged if acknowledged else None,
        "lww_lost_updates": len(_lww_lost(ops, versions)[0]),
    }
