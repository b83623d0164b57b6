"""A run's history analysed out of core: records spilled to disk, checked per key, written in op_id order.

The recorder hands finished operations on in op_id order (:class:`qsim.model.recorder.Recorder`);
they are appended to a spool file. After the run:

1. the spool is split by key into buckets of about ``chunk_ops`` operations each, and each bucket
   (every operation of its keys) gets the checks that look at a key's whole history: staleness
   (:mod:`qsim.checks.staleness`), linearizability and the session guarantees (:mod:`qsim.checks`), lost
   writes (:mod:`qsim.checks.durability`) and the hot keys;
2. the checked records are split by op_id into ranges of the same size, and each range, in op_id
   order, becomes the rows of ``ops.parquet`` (one row group each) and feeds the digest
   (:mod:`qsim.checks.digest`) that makes the summary and the timeline.

Every step holds one bucket or one range at a time, so memory is bounded by ``chunk_ops`` (and by
the operations of the busiest key), not by the length of the run. The rows and every number are the
ones the in-memory path gives: the checks are per key, and the digest does not depend on chunking.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from qsim.checks.consistency import Consistency, bits_to_flags, flags_to_bits
from qsim.checks.durability import durability_summary
from qsim.checks.register import codes
from qsim.checks.staleness import check_staleness
from qsim.history import add_probe_delays, ops_frame
from qsim.scenario.limits import CHUNK_OPS
from qsim.spool import RECORD, Partition, RecordFile, to_columns, to_records


class Spill:
    """The scratch folder of one streamed run: the spool and the partitions made from it."""

    def __init__(self, folder: Path, chunk_ops: int = CHUNK_OPS) -> None:
        self.folder, self.chunk_ops = folder, chunk_ops
        folder.mkdir(parents=True, exist_ok=True)
        self.spool = RecordFile(folder / "spool.bin")

    def append(self, columns: dict[str, np.ndarray]) -> None:
        """Take a hand-over of the recorder (the sink of :class:`Recorder`)."""
        self.spool.append(to_records(columns))

    def by_key(self) -> Partition:
        """Split the spool into key buckets of about ``chunk_ops`` operations; remove the spool."""
        buckets = Partition(self.folder, "key", max(1, math.ceil(self.spool.count / self.chunk_ops)))
        count = len(buckets.files)
        for records in self.spool.chunks(self.chunk_ops):
            buckets.add(records, records["key"] % count)
        self.spool.remove()
        return buckets


class KeyChecks:
    """The checks over each key's whole history: staleness, consistency, durability and hot keys.

    Each part it is given holds every operation of its keys: a key bucket of a streamed run, or the
    whole history of a run held in memory.

    Args:
        held: the versions replicas hold at the end of the run (key, version), all keys.
        warmup_ms: operations that start before it are warm-up ones.
        names: the node names.
        partial: the run stopped on an error, so some held versions are of writes never recorded.
    """

    def __init__(self, held: pd.DataFrame, warmup_ms: float, names: list[str], *, partial=False) -> None:
        self._held, self._warmup_ms, self._names, self._partial = held, warmup_ms, names, partial
        self.durability = {"acknowledged_writes": 0, "lost_writes": 0, "lww_lost_updates": 0}
        self.hot = HotKeys()
        self.consistency = Consistency()

    def check(self, records: np.ndarray) -> np.ndarray:
        """Return the records of some keys (every operation of those keys), with their verdicts set."""
        records = records[np.argsort(records["op_id"], kind="stable")]
        verdicts = self.verdicts(ops_frame(to_columns(records), self._names))
        checked = verdicts["stale"].notna().to_numpy()
        records["stale"] = np.where(checked, verdicts["stale"].fillna(False).to_numpy(bool), -1)
        records["k"] = verdicts["k"].fillna(0).to_numpy(np.int64)
        records["t_ms"] = verdicts["t_ms"].to_numpy()
        records["anomalies"] = flags_to_bits(verdicts)
        return records

    def verdicts(self, ops: pd.DataFrame) -> pd.DataFrame:
        """Check the operations of some keys (all of them); return their verdict columns.

        The columns are those of :func:`qsim.checks.staleness.check_staleness` and the anomaly columns of
        :mod:`qsim.checks.consistency`, aligned with ``ops``; durability, hot keys and the
        consistency counts add up over the parts checked.
        """
        key = ops["key"].to_numpy()
        among = _among(self._held["key"].to_numpy(), key)
        held = self._held if among.all() else self._held[among]  # in memory: every key is among them
        if self._partial:  # copies of writes that never finished: the history stops before them
            held = held[held["version"].isin(ops.loc[ops["kind"] == "write", "op_id"])]
        for name, value in durability_summary(ops, held).items():
            if name in self.durability:
                self.durability[name] += value
        counted = ops["start_ms"].to_numpy() >= self._warmup_ms
        is_write = (ops["kind"] == "write").to_numpy()
        if counted.all():
            self.hot.count(key, is_write)
        else:
            self.hot.count(key[counted], is_write[counted])
        return pd.concat([check_staleness(ops), self.consistency.add(ops)], axis=1)

    def durability_summary(self) -> dict:
        """The summary's ``durability`` section over every key checked."""
        acknowledged = self.durability["acknowledged_writes"]
        lost = self.durability["lost_writes"]
        return {
            "acknowledged_writes": acknowledged,
            "lost_writes": lost,
            "lost_fraction": lost / acknowledged if acknowledged else None,
            "lww_lost_updates": self.durability["lww_lost_updates"],
        }


def _among(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """``np.isin(values, pool)`` for integers, by a table of the pool's range when it is small."""
    if not len(values) or not len(pool):
        return np.zeros(len(values), bool)
    low, high = int(pool.min()), int(pool.max())
    if high - low > 4 * (len(values) + len(pool)):
        return np.isin(values, pool)
    present = np.zeros(high - low + 1, bool)
    present[pool - low] = True
    inside = (values >= low) & (values <= high)
    return inside & present[np.where(inside, values - low, 0)]


class HotKeys:
    """The ten keys with the most counted operations, from parts that each hold whole keys.

    Most operations first, and among equals the smaller key.
    """

    TOP = 10

    def __init__(self) -> None:
        self._top = np.zeros((3, 0), np.int64)  # key, operations, writes of the best keys so far, in order

    def add(self, ops: pd.DataFrame) -> HotKeys:
        """Take the counted operations of some keys (every one of those keys); return self."""
        return self.count(ops["key"].to_numpy(), (ops["kind"] == "write").to_numpy())

    def count(self, keys: np.ndarray, is_write: np.ndarray) -> HotKeys:
        """Take the keys of counted operations and which are writes, of some keys (every operation of
        those keys); return self."""
        low, high = (int(keys.min()), int(keys.max())) if len(keys) else (0, 0)
        if low >= 0 and high < 2 * len(keys):  # counted in a table indexed by the key itself: no sort
            by_kind = np.bincount(keys * 2 + is_write, minlength=2 * (high + 1)).reshape(-1, 2)
            total = by_kind.sum(axis=1)
            keys = np.flatnonzero(total)
            total, writes = total[keys], by_kind[keys, 1]
        else:
            keys, index = codes(keys)
            total = np.bincount(index, minlength=len(keys))
            writes = np.bincount(index[is_write], minlength=len(keys))
        best = _top(keys, total, self.TOP)  # the part's own top: the rest cannot make it
        part = np.array([keys[best], total[best], writes[best]], dtype=np.int64)
        top = np.concatenate([self._top, part], axis=1)
        self._top = top[:, _top(top[0], top[1], self.TOP)]
        return self

    def result(self) -> list[dict]:
        return [
            {"key": key, "ops": total, "reads": total - writes, "writes": writes}
            for key, total, writes in zip(*self._top.tolist(), strict=True)
        ]


def _top(keys: np.ndarray, counts: np.ndarray, size: int) -> np.ndarray:
    """The positions of the ``size`` largest ``counts``, largest first, ties by the smaller key."""
    return np.lexsort((keys, -counts))[:size]


def by_op_range(buckets: Partition, checks: KeyChecks, folder: Path, chunk_ops: int, count: int) -> Partition:
    """Check every key bucket and split the checked records into op_id ranges; remove the buckets."""
    ranges = Partition(folder, "ops", max(1, math.ceil(count / chunk_ops)))
    for bucket in buckets:
        records = checks.check(bucket.read())
        bucket.remove()
        ranges.add(records, np.minimum(records["op_id"] // chunk_ops, len(ranges.files) - 1))
    return ranges


def write_ops(
    ranges: Partition, path: Path, table: Callable[[dict, pd.DataFrame], pd.DataFrame], consume: Callable
) -> None:
    """Write ``ops.parquet`` at ``path``, one row group per op_id range, in op_id order.

    Args:
        table: builds a range's rows from its recorder columns and a function giving the verdict
            columns of its ops frame.
        consume: called with each range's rows (the digest).
    """
    writer = None
    try:
        for part in ranges:
            records = part.read()
            part.remove()
            records = records[np.argsort(records["op_id"], kind="stable")]
            rows = table(to_columns(records), lambda ops, checked=records: verdict_frame(checked))
            arrow = pa.Table.from_pandas(rows, preserve_index=False, schema=writer.schema if writer else None)
            if writer is None:
                writer = pq.ParquetWriter(path, arrow.schema)
            writer.write_table(arrow)
            consume(rows)
    finally:
        if writer is not None:
            writer.close()


def verdict_frame(records: np.ndarray) -> pd.DataFrame:
    """The verdict columns of :meth:`KeyChecks.verdicts` from checked records."""
    checked = records["stale"] >= 0
    return pd.DataFrame(
        {
            "stale": pd.arrays.BooleanArray(records["stale"] == 1, mask=~checked),
            "k": pd.arrays.IntegerArray(records["k"].astype(np.int64), mask=~checked),
            "t_ms": np.where(checked, records["t_ms"], np.nan),
            **bits_to_flags(records["anomalies"]),
        }
    )


__all__ = ["CHUNK_OPS", "RECORD", "HotKeys", "KeyChecks", "Spill", "add_probe_delays", "by_op_range"]
