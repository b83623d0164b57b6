"""Flat, typed per-operation records, written once when an operation ends.

Each record is packed with :mod:`struct` into one growing ``bytearray`` (54 bytes an operation)
and the records become numpy columns at the end; the DataFrame is built outside the model
(:mod:`qsim.history`). A recorder given a ``sink`` keeps at most about ``chunk`` records: it hands
them on in op_id order as they become final, so that a run of any length holds a bounded number of
records.
"""

from __future__ import annotations

import math
import struct
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

# One record, packed with no padding: times in ms (NaN when absent), ids, then the small fields.
# version is the op_id of the write a read returned (NO_VERSION: none); coordinator the node
# index, or -1 when the client coordinates.
_FIELDS = (
    ("start_ms", "d"), ("end_ms", "d"), ("commit_ms", "d"), ("ts_ms", "d"),
    ("op_id", "i"), ("client", "i"), ("key", "i"), ("version", "i"), ("coordinator", "h"),
    ("is_write", "b"), ("error_code", "b"), ("replies", "b"), ("attempts", "b"),
)  # fmt: skip
_LAYOUT = struct.Struct("=" + "".join(code for _, code in _FIELDS))
_RECORD = np.dtype([(name, "=" + code) for name, code in _FIELDS])  # the same bytes, as numpy reads them
# The columns' types, in the order of Recorder.columns.
_COLUMNS = {"op_id": np.int64, "client": np.int32, "is_write": bool, "key": np.int64,
            "start_ms": np.float64, "end_ms": np.float64, "error_code": np.int8, "replies": np.int8,
            "attempts": np.int8, "version": np.int64, "commit_ms": np.float64, "ts_ms": np.float64,
            "coordinator": np.int16}  # fmt: skip
_BLOCK_ROWS = 1 << 13  # records gathered at a time (432 kB: in cache)


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
        self._sink = None
        self._limit = math.inf  # bytes held that start a hand-over (none without a sink)
        if sink is not None:
            self.stream_to(sink, chunk)
        self.handed = 0  # records handed to the sink so far
        self._next_id = 0  # the lowest op_id not handed on
        self._buffer = bytearray()

    def record(self, op, end_ms: float, error: int, version: int) -> None:
        """Append one finished operation."""
        buffer = self._buffer
        buffer += _LAYOUT.pack(
            op.start, end_ms, op.commit, op.ts, op.id, op.client, op.key, version, op.coordinator,
            op.write, error, op.replies, op.attempt + 1,
        )  # fmt: skip
        if len(buffer) >= self._limit:
            self._hand_over(final_only=True)

    def stream_to(self, sink: Callable[[dict[str, np.ndarray]], None], chunk: int) -> None:
        """From now on hand the records on to ``sink``, about ``chunk`` at a time (see the class)."""
        self._sink, self._chunk, self._limit = sink, chunk, chunk * _LAYOUT.size

    def close(self) -> None:
        """Hand every record still held to the sink (the run is over)."""
        if self._sink is not None and len(self):
            self._hand_over(final_only=False)

    def _hand_over(self, *, final_only: bool) -> None:
        records = np.frombuffer(self._buffer, _RECORD)
        order = _by_id(records["op_id"])
        ids = records["op_id"][order]
        # The leading ids that run on without a gap from the next one due are final.
        run = ids - self._next_id == np.arange(len(ids))
        ready = len(ids) if not final_only or run.all() else int(np.argmin(run))
        if ready == 0:
            self._limit *= 2  # a long-running operation holds the line: wait for more records
            return
        self._limit = self._chunk * _LAYOUT.size
        columns = _columns(records, order[:ready])
        kept = records[order[ready:]].tobytes()  # operations not yet final: recorded again
        del records  # the old buffer is freed once no view of it is left
        self._buffer = bytearray(kept)
        self._sink(columns)
        self.handed += ready
        self._next_id = int(ids[ready - 1]) + 1

    def __len__(self) -> int:
        return len(self._buffer) // _LAYOUT.size

    def nbytes(self) -> int:
        """Bytes of the records themselves (the buffer's spare growth capacity is not counted)."""
        return len(self._buffer)

    def columns(self) -> dict[str, np.ndarray]:
        """Return the records as numpy columns sorted by op_id."""
        records = np.frombuffer(self._buffer, _RECORD) if self._buffer else np.empty(0, _RECORD)
        return _columns(records, _by_id(records["op_id"]))


def _by_id(ids: np.ndarray) -> np.ndarray:
    """The order of the records by op_id: placed by id when the ids are a range, else sorted."""
    low, high = (int(ids.min()), int(ids.max())) if len(ids) else (0, -1)
    if high - low + 1 == len(ids):  # ids low .. high, each once unless one repeats: placed, not sorted
        order = np.full(len(ids), -1, np.intp)
        for start in range(0, len(ids), _BLOCK_ROWS):  # a block at a time: no full-size temporaries
            block = ids[start : start + _BLOCK_ROWS]
            order[block - low] = np.arange(start, start + len(block))
        if order.min(initial=0) >= 0:
            return order
    return np.argsort(ids, kind="stable")  # gaps, or a repeat left a slot empty


def _columns(records: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The columns of ``records[rows]``, in their types.

    Page faults on fresh memory are most of the cost here, so only the columns' own memory is
    touched: the rows are gathered a block at a time (in cache), and each block's fields are
    written straight into the columns.
    """
    columns = {name: np.empty(len(rows), dtype) for name, dtype in _COLUMNS.items()}
    for start in range(0, len(rows), _BLOCK_ROWS):
        block = records.take(rows[start : start + _BLOCK_ROWS])
        for name, column in columns.items():
            column[start : start + len(block)] = block[name]  # is_write: nonzero is True
    return columns
