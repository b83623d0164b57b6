"""When availability comes back after each fault: a pure function of the ops and faults tables.

See :mod:`qsim.checks.timeline` for the tables. :func:`recovery` judges a whole history at once;
:class:`Recovery` the same history given in chunks in order of start_ms, keeping only the
operations that some fault still has to judge (a streamed run's digest feeds it chunk by chunk).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qsim.checks.digest import Chunk
from qsim.checks.timeline import column_lists, op_intervals


def recovery(
    ops: pd.DataFrame,
    faults: pd.DataFrame,
    window_ms: float,
    *,
    tolerance: float = 0.01,
    include_warmup: bool = False,
) -> list[dict]:
    """Return, for each fault that ended, when availability came back to its level before the faults.

    Exact, from the operations (no rounding to windows). The baseline is the availability of the
    operations that ended before the first fault started (1.0 when there are none, or no faults).
    A span [x, x + window_ms) is back when operations start in it and at least baseline -
    tolerance of them are ok. A fault that ended at end_ms has recovered at the earliest x that
    is either end_ms itself or the start of an operation after end_ms, whose span is back. Only
    the operations :func:`qsim.checks.metrics.measured` keeps take part (not the warm-up's), so a fault
    that ended before the first of them started is not judged.

    Args:
        ops: the history (start_ms and end_ms in ms; ok; warmup).
        faults: the faults table.
        window_ms: the span over which availability is judged, ms (the run's ``metrics.window``).
        tolerance: how far below the baseline a span may be and still count as recovered.
        include_warmup: let the warm-up operations take part too.

    Returns:
        One dict per judged fault (a finite end_ms, not before the first counted operation's
        start), by fault_id: fault_id, kind, target, end_ms, recovered_ms (end_ms or an
        operation's start, ms) and time_to_recover_ms (recovered_ms - end_ms); the last two are
        None when availability never came back.
    """
    order = np.argsort(ops["start_ms"].to_numpy(dtype=float), kind="stable")
    scan = Recovery(faults, window_ms, tolerance=tolerance, include_warmup=include_warmup)
    return scan.add(ops.iloc[order]).result()


class Recovery:
    """:func:`recovery` of an ops table given in chunks (``add``) in order of start_ms.

    It keeps only the operations that some fault still has to judge: those from the earliest
    moment a fault's recovery is still open, through one window further.
    """

    def __init__(
        self, faults: pd.DataFrame, window_ms: float, *, tolerance=0.01, include_warmup=False
    ) -> None:
        self._window_ms, self._tolerance, self._include_warmup = window_ms, tolerance, include_warmup
        self._faults = faults.sort_values("fault_id")
        self._first_fault_ms = faults["start_ms"].min() if len(faults) else np.inf
        self._before = [0, 0]  # ok and all operations that ended before the first fault started
        self._first_ms = None  # the first counted operation's start
        ends = self._faults["end_ms"].to_numpy(dtype=float)
        # Per fault: the next moment whose span is to be judged: its end_ms, then operation starts after it.
        self._next = {
            int(f): float(e) for f, e in zip(self._faults["fault_id"], ends, strict=True) if np.isfinite(e)
        }
        self._at_end = dict.fromkeys(self._next, True)  # the next moment judged is the fault's end itself
        self._recovered: dict[int, float | None] = {}
        self._start = np.zeros(0)
        self._ok = np.zeros(0, dtype=bool)

    def add(self, ops: pd.DataFrame | Chunk) -> Recovery:
        """Take the next chunk; return self."""
        if self._faults.empty:  # nothing to judge: no operation is needed (see result)
            return self
        chunk = Chunk.of(ops)
        rows = np.flatnonzero(chunk.rows(include_warmup=self._include_warmup))
        start, end = (times.take(rows) for times in op_intervals(chunk.ops))
        ok = chunk.ok.take(rows)
        if self._first_ms is None and len(start):
            self._first_ms = float(start[0])
        before = end < self._first_fault_ms
        self._before[0] += int(ok[before].sum())
        self._before[1] += int(before.sum())
        self._start, self._ok = np.concatenate([self._start, start]), np.concatenate([self._ok, ok])
        # Operations that start at the last start seen may go on in the next chunk: judge below it.
        self._judge(self._start[-1] if len(self._start) else -np.inf)
        return self

    def _threshold(self) -> float:
        ok, count = self._before
        baseline = ok / count if count and len(self._faults) else 1.0
        return baseline - self._tolerance

    def _judge(self, complete_below: float) -> None:
        """Judge the open faults' moments x whose span [x, x + window) ends by ``complete_below``.

        Every operation that starts before ``complete_below`` has been added. A fault's moments
        are its end_ms, then, while not recovered, the starts after it.
        """
        if not self._next:  # every fault judged, or none: no operation is needed any more
            self._start, self._ok = self._start[:0], self._ok[:0]
            return
        start, window_ms = self._start, self._window_ms
        ok_before = np.concatenate([[0], np.cumsum(self._ok)])
        threshold = self._threshold()
        judged = int(np.searchsorted(start + window_ms, complete_below, side="right"))
        good = None  # for each judged start, whether its span is back: made when first needed
        for fault, x in list(self._next.items()):
            if self._at_end[fault]:
                if x + window_ms > complete_below:
                    continue
                if _good_spans(start, ok_before, np.array([x]), window_ms, threshold)[0]:
                    self._done(fault, x)
                    continue
                self._at_end[fault] = False  # from now on x is the last moment judged: starts after it
            after = int(np.searchsorted(start[:judged], x, side="right"))
            if good is None:
                good = _good_spans(start, ok_before, start[:judged], window_ms, threshold)
            later = np.flatnonzero(good[after:])
            if later.size:
                self._done(fault, float(start[after + later[0]]))
            elif judged > after:
                self._next[fault] = float(start[judged - 1])
        keep = [
            np.searchsorted(start, x, side="left" if self._at_end[fault] else "right")
            for fault, x in self._next.items()
        ]
        drop = int(min(keep, default=len(start)))
        self._start, self._ok = start[drop:], self._ok[drop:]

    def _done(self, fault: int, recovered_ms: float | None) -> None:
        self._recovered[fault] = recovered_ms
        del self._next[fault]

    def result(self) -> list[dict]:
        """One dict per judged fault, by fault_id (see :func:`recovery`)."""
        self._judge(np.inf)
        first_ms = self._first_ms if self._first_ms is not None else -np.inf
        results = []
        faults = zip(*column_lists(self._faults, "fault_id", "kind", "target", "end_ms"), strict=True)
        for fault_id, kind, target, end_ms in faults:
            if not np.isfinite(end_ms) or end_ms < first_ms:
                continue  # still active at the end, or over before the first counted operation
            recovered = self._recovered.get(int(fault_id))
            results.append(
                {
                    "fault_id": int(fault_id),
                    "kind": str(kind),
                    "target": str(target),
                    "end_ms": float(end_ms),
                    "recovered_ms": recovered,
                    "time_to_recover_ms": None if recovered is None else recovered - end_ms,
                }
            )
        return results


def _good_spans(
    start: np.ndarray, ok_before: np.ndarray, x: np.ndarray, window_ms: float, threshold: float
) -> np.ndarray:
    """Return, for each x, whether operations start in [x, x + window_ms) and enough of them are ok.

    ``start`` is sorted; ``ok_before[i]`` is how many of the first i operations were ok.
    """
    first = np.searchsorted(start, x, side="left")
    last = np.searchsorted(start, x + window_ms, side="left")
    count = last - first
    ok = ok_before[last] - ok_before[first]
    availability = np.divide(ok, count, out=np.zeros(len(count)), where=count > 0)
    return (count > 0) & (availability >= threshold)
