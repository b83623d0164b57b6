"""Flat, typed per-operation records, written once when an operation ends.

Columns live in ``array.array`` buffers (about 54 bytes an operation) and become numpy arrays at
the end; the DataFrame is built outside the model (:mod:`qsim.history`). A recorder given a
``sink`` keeps at most about ``chunk`` records: it hands them on in op_id order as they become
final, so that a run of any length holds a bounded number of records.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

import numpy as np

# Error codes of an operation; 0 means ok.
OK = 0
QUORUM_TIMEOUT = 1
RESPONSE_LOST = 2
REQUEST_LOST = 3
UNFINISHED = 4
COORDINATOR_CRASHED = 5
ERROR_TEXT = {
    QUORUM_TIMEOUT: "timeout: quorum not reached",
    RESPONSE_LOST: "timeout: quorum reached but the reply never reached the client",
    REQUEST_LOST: "timeout: the request never reached the coordinator",
    UNFINISHED: "unfinished: the simulation stopped first",
    COORDINATOR_CRASHED: "timeout: the coordinator crashed",
}
NO_VERSION = -1


class Recorder:
    """Append-only columns of finished operations, in the order they finish.

    Args:
        sink: called with the columns of :meth:`columns` (sorted by op_id) each time about
            ``chunk`` records have gathered, and at :meth:`close`. Operation ids are handed out
            from 0 in order, and each operation is recorded once, so the records with the ids
            ``next_id, next_id + 1, ...`` that have all arrived are final: the sink receives them
            in op_id order, chunk after chunk, and the few of operations still running after a gap
            wait for the next chunk. Without a sink every record stays here.
        chunk: records per hand-over.
    """

    def __init__(self, sink: Callable[[dict[str, np.ndarray]], None] | None = None, chunk: int = 1 << 18):
        self._sink = sink
        self._chunk = self._limit = chunk
        self.handed = 0  # records handed to the sink so far
        self._next_id = 0  # the lowest op_id not handed on
        self._clear()

    def _clear(self) -> None:
        self._times = array("d")  # start, end, commit, ts per operation (ms; NaN when absent)
        self._ints = array("i")  # op_id, client, key, version (op_id of the write read; -1 none)
        self._smalls = array("b")  # is_write, error code, replies received, attempts
        self._coordinator = array("h")  # node index, or -1 when the client coordinates

    def record(self, op, end_ms: float, error: int, version: int) -> None:
        """Append one finished operation."""
        self._times.extend((op.start, end_ms, op.commit, op.ts))
        self._ints.extend((op.id, op.client, op.key, version))
        self._smalls.extend((op.write, error, op.replies, op.attempt + 1))
        self._coordinator.append(op.coordinator)
        if self._sink is not None and len(self._coordinator) >= self._limit:
            self._hand_over(final_only=True)

    def stream_to(self, sink: Callable[[dict[str, np.ndarray]], None], chunk: int) -> None:
        """From now on hand the records on to ``sink``, about ``chunk`` at a time (see the class)."""
        self._sink, self._chunk, self._limit = sink, chunk, chunk

    def close(self) -> None:
        """Hand every record still held to the sink (the run is over)."""
        if self._sink is not None and len(self):
            self._hand_over(final_only=False)

    def _hand_over(self, *, final_only: bool) -> None:
        columns = self.columns()
        ids = columns["op_id"]
        # The leading ids that run on without a gap from the next one due are final.
        run = ids - self._next_id == np.arange(len(ids))
        ready = len(ids) if not final_only or run.all() else int(np.argmin(run))
        if ready == 0:
            self._limit *= 2  # a long-running operation holds the line: wait for more records
            return
        self._limit = self._chunk
        self._clear()
        for i in range(ready, len(ids)):
            self._keep(columns, i)
        self._sink({name: values[:ready] for name, values in columns.items()})
        self.handed += ready
        self._next_id = int(ids[ready - 1]) + 1

    def _keep(self, columns: dict[str, np.ndarray], i: int) -> None:
        """Record row ``i`` of ``columns`` again (an operation that is not yet final)."""
        self._times.extend(
            (columns["start_ms"][i], columns["end_ms"][i], columns["commit_ms"][i], columns["ts_ms"][i])
        )
        self._ints.extend(
            (
                int(columns["op_id"][i]),
                int(columns["client"][i]),
                int(columns["key"][i]),
                int(columns["version"][i]),
            )
        )
        self._smalls.extend(
            (
                int(columns["is_write"][i]),
                int(columns["error_code"][i]),
                int(columns["replies"][i]),
                int(columns["attempts"][i]),
            )
        )
        self._coordinator.append(int(columns["coordinator"][i]))

    def __len__(self) -> int:
        return len(self._coordinator)

    def nbytes(self) -> int:
        """Bytes of the records themselves (the buffers' spare growth capacity is not counted)."""
        return sum(
            a.buffer_info()[1] * a.itemsize
            for a in (self._times, self._ints, self._smalls, self._coordinator)
        )

    def columns(self) -> dict[str, np.ndarray]:
        """Return the records as numpy columns sorted by op_id.

        Page faults on fresh memory are most of the cost here, so only the columns' own memory is
        touched: the rows are put in order a block at a time (a block of the float fields is 512 kB,
        in cache), and each block's fields are written straight into the columns in their types.
        """
        block_rows = 1 << 14
        types = {"op_id": np.int64, "client": np.int32, "is_write": bool, "key": np.int64,
                 "start_ms": np.float64, "end_ms": np.float64, "error_code": np.int8, "replies": np.int8,
                 "attempts": np.int8, "version": np.int64, "commit_ms": np.float64, "ts_ms": np.float64,
                 "coordinator": np.int16}  # fmt: skip
        fields = [
            (np.frombuffer(self._ints, dtype=np.int32).reshape(-1, 4), ("op_id", "client", "key", "version")),
            (np.frombuffer(self._smalls, dtype=np.int8).reshape(-1, 4),
             ("is_write", "error_code", "replies", "attempts")),
            (np.frombuffer(self._times, dtype=np.float64).reshape(-1, 4),
             ("start_ms", "end_ms", "commit_ms", "ts_ms")),
            (np.frombuffer(self._coordinator, dtype=np.int16).reshape(-1, 1), ("coordinator",)),
        ]  # fmt: skip
        ids = fields[0][0][:, 0]
        low, high = (int(ids.min()), int(ids.max())) if len(ids) else (0, -1)
        order = np.full(len(ids), -1, np.intp) if high - low + 1 == len(ids) else None
        if order is not None:  # ids low .. high, each once unless one repeats: placed, not sorted
            for start in range(0, len(ids), block_rows):
                block = ids[start : start + block_rows]
                order[block - low] = np.arange(start, start + len(block))
        if order is None or order.min(initial=0) < 0:  # gaps, or a repeat left a slot empty
            order = np.argsort(ids, kind="stable")
        columns = {name: np.empty(len(ids), dtype) for name, dtype in types.items()}
        for start in range(0, len(ids), block_rows):
            rows = order[start : start + block_rows]
            for source, names in fields:
                block = source.take(rows, axis=0)
                for i, name in enumerate(names):
                    columns[name][start : start + len(rows)] = block[:, i]  # is_write: nonzero is True
        return columns
