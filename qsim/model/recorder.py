"""Flat, typed per-operation records, written once when an operation ends.

Columns live in ``array.array`` buffers (about 54 bytes an operation) and become numpy arrays at
the end; the DataFrame is built outside the model (:mod:`qsim.history`).
"""

from __future__ import annotations

from array import array

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
    """Append-only columns of finished operations, in the order they finish."""

    def __init__(self):
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

    def __len__(self) -> int:
        return len(self._coordinator)

    def nbytes(self) -> int:
        """Bytes of the records themselves (the buffers' spare growth capacity is not counted)."""
        return sum(
            a.buffer_info()[1] * a.itemsize
            for a in (self._times, self._ints, self._smalls, self._coordinator)
        )

    def columns(self) -> dict[str, np.ndarray]:
        """Return the records as numpy columns sorted by op_id."""
        times = np.frombuffer(self._times, dtype=np.float64).reshape(-1, 4)
        ints = np.frombuffer(self._ints, dtype=np.int32).reshape(-1, 4)
        smalls = np.frombuffer(self._smalls, dtype=np.int8).reshape(-1, 4)
        coordinator = np.frombuffer(self._coordinator, dtype=np.int16)
        order = np.argsort(ints[:, 0], kind="stable")
        return {
            "op_id": ints[order, 0].astype(np.int64),
            "client": ints[order, 1],
            "is_write": smalls[order, 0].astype(bool),
            "key": ints[order, 2].astype(np.int64),
            "start_ms": times[order, 0],
            "end_ms": times[order, 1],
            "error_code": smalls[order, 1],
            "replies": smalls[order, 2],
            "attempts": smalls[order, 3],
            "version": ints[order, 3].astype(np.int64),
            "commit_ms": times[order, 2],
            "ts_ms": times[order, 3],
            "coordinator": coordinator[order],
        }
