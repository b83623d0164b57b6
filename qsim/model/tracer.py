"""Message tracing for sequence diagrams: every message of the first operations of a run.

Off unless asked (``simulate(..., trace_messages=N)``), so normal runs stay fast. It records the
messages of operations 0..N-1, and background traffic (hints, anti-entropy) sent before those N
operations have all ended.
"""

from __future__ import annotations

_NAN = float("nan")


class Tracer:
    """Keeps [op_id, kind, src, dst, sent_ms, delivered_ms, dropped, reason, attempt] per message."""

    def __init__(self, limit: int):
        self._limit = limit
        self._open = limit  # traced operations not yet ended
        self.records: list[list] = []

    def wants(self, op) -> bool:
        """Whether a message of ``op`` (None: background traffic) is traced."""
        return op.id < self._limit if op is not None else self._open > 0

    def sent(self, op, kind: int, src: int, dst: int, now: float) -> int:
        """Record a message sent now; return its trace id."""
        if op is None:
            self.records.append([-1, kind, src, dst, now, _NAN, False, "", -1])
        else:
            self.records.append([op.id, kind, src, dst, now, _NAN, False, "", op.attempt])
        return len(self.records) - 1

    def delivered(self, trace_id: int, now: float) -> None:
        self.records[trace_id][5] = now

    def dropped(self, trace_id: int, reason: str) -> None:
        self.records[trace_id][6] = True
        self.records[trace_id][7] = reason

    def ended(self, op) -> None:
        """An operation ended: tracing of background traffic stops after the last traced one."""
        if op.id < self._limit:
            self._open -= 1
