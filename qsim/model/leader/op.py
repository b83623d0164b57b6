"""A client operation of the leader protocol, and one attempt of it.

The recorder reads the operation (``start``, ``commit``, ``ts``, ``replies``, ``attempt``,
``coordinator``); each attempt has its own deadline, so a retry never disturbs the timer of the
attempt before it. Log entries hold the operation itself, so a write's ``ts`` and ``commit`` are
set wherever the leader learns them, whichever attempt the client is on.

For this protocol ``ts`` is the write's **log index** (a position, not a time): versions are
(log index, client, op_id), so ordering writes by (ts_ms, client, op_id) is the log's order.
``commit`` is the time the leader learned the entry committed (ms).
"""

from __future__ import annotations

_NAN = float("nan")


class Op:
    """One client operation (what the recorder reads)."""

    __slots__ = ("attempt", "client", "commit", "coordinator", "done", "id", "key", "on_done",
                 "replies", "start", "ts", "write")  # fmt: skip

    def __init__(self, op_id: int, client: int, write: bool, key: int, start: float, on_done):
        self.id = op_id
        self.client = client
        self.write = write
        self.key = key
        self.start = start
        self.on_done = on_done
        self.commit = self.ts = _NAN
        self.attempt = 0  # attempts made so far, less one
        self.replies = 0  # 1 once answered
        self.coordinator = -1  # the node that answered, or was tried last
        self.done = False


class Attempt:
    """One attempt of an operation: the node it went to, its deadline, and whether it ended."""

    __slots__ = (
        "arrived",
        "attempt",
        "deadline",
        "done",
        "id",
        "message",
        "node",
        "op",
        "orphaned",
        "redirects",
    )

    def __init__(self, op: Op, node: int):
        self.op = op
        self.id = op.id  # the tracer reads id and attempt
        self.attempt = op.attempt
        self.node = node
        self.done = self.arrived = self.orphaned = False
        self.redirects = 0  # redirects followed at once (stale leaders can send a client in circles)
        self.message = None  # the request as it arrived (the answer goes back in it)
