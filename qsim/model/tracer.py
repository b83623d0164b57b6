"""Message tracing for sequence diagrams: every message of chosen operations of a run.

Off unless asked (``simulate(..., trace_messages=N)`` or ``trace_ops=ids``), so normal runs stay
fast. It records every message of the chosen operations (all attempts: a retry keeps its op id),
and background traffic (hints, anti-entropy) sent from the first traced message until every
chosen operation has ended.
"""

from __future__ import annotations

from collections.abc import Collection

_NAN = float("nan")


class Tracer:
    """Keeps [op_id, kind, src, dst, sent_ms, delivered_ms, dropped, reason, attempt, lost_ms] per message."""

    def __init__(self, op_ids: Collection[int]):
        """Trace the operations whose ids are in ``op_ids`` (a ``range`` for the first N)."""
        self._ops = op_ids
        self._open = len(op_ids)  # traced operations not yet ended
        self._started = False  # a traced operation has sent its first message
        self.records: list[list] = []

    def wants(self, op) -> bool:
        """Whether a message of ``op`` (None: background traffic) is traced."""
        if op is not None:
            return op.id in self._ops
        return self._started and self._open > 0

    def sent(self, op, kind: int, src: int, dst: int, now: float) -> int:
        """Record a message sent now; return its trace id."""
        if op is None:
            self.records.append([-1, kind, src, dst, now, _NAN, False, "", -1, _NAN])
        else:
            self._started = True
            self.records.append([op.id, kind, src, dst, now, _NAN, False, "", op.attempt, _NAN])
        return len(self.records) - 1

    def delivered(self, trace_id: int, now: float) -> None:
        self.records[trace_id][5] = now

    def dropped(self, trace_id: int, reason: str, now: float = _NAN) -> None:
        """A message was dropped; ``now``: when it hit a dead end (NaN: lost in flight, time unknown)."""
        record = self.records[trace_id]
        record[6], record[7], record[9] = True, reason, now

    def ended(self, op) -> None:
        """An operation ended: tracing of background traffic stops after the last traced one."""
        if op.id in self._ops:
            self._open -= 1
