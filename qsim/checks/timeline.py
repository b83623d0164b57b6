"""Availability and staleness over time, and around faults: pure functions of the ops and faults tables.

The faults table has one row per injected fault: fault_id, kind ('crash', 'partition', 'degrade',
'slow', 'clock_skew'), target, start_ms, end_ms (NaN: lasted until the end of the run) and params
(JSON). A fault is active on [start_ms, end_ms); an operation occupies [start_ms, end_ms].
Operations that started in the warm-up (the ops table's ``warmup`` column) are left out unless a
function is asked to ``include_warmup``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qsim.checks.digest import Chunk, checked_reads
from qsim.history import string_column


def active_faults(ops: pd.DataFrame, faults: pd.DataFrame) -> pd.Series:
    """Return, per operation, the ids of the faults active at some moment of it.

    A fault overlaps an operation when [fault start_ms, fault end_ms) and [op start_ms, op end_ms]
    share a moment. A fault with a NaN end_ms lasts forever; an operation with a NaN end_ms counts
    as ending at its start_ms; a fault with end_ms <= start_ms is empty and overlaps nothing.

    Args:
        ops: the history (start_ms and end_ms in ms).
        faults: the faults table (fault_id, start_ms and end_ms in ms).

    Returns:
        A string Series aligned with ``ops``: the overlapping fault_ids, ascending and
        comma-separated, or '' when there are none.
    """
    if faults.empty:  # one empty label per row: a string array of the rows' own is slow to make
        return pd.Series(string_column([""], np.zeros(len(ops), np.int8)), index=ops.index)
    start, end = op_intervals(ops)
    labels = np.full(len(ops), "", dtype=object)
    columns = column_lists(faults.sort_values("fault_id"), "fault_id", "start_ms", "end_ms")
    for fault_id, fault_start, fault_end in zip(*columns, strict=True):
        hit = _overlaps(start, end, fault_start, fault_end)
        labels[hit] = labels[hit] + f",{fault_id}"
    return pd.Series(labels, index=ops.index, dtype="string").str.removeprefix(",")


def column_lists(frame: pd.DataFrame, *names: str) -> list[list]:
    """The named columns as lists of Python values: what ``itertuples`` gives, without its namedtuple
    class made per call."""
    return [frame[name].tolist() for name in names]


def op_intervals(ops: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return the operations' start and end, ms; a NaN end becomes the start."""
    start = ops["start_ms"].to_numpy(dtype=float)
    return start, np.fmax(ops["end_ms"].to_numpy(dtype=float), start)


def _overlaps(start: np.ndarray, end: np.ndarray, fault_start_ms: float, fault_end_ms: float) -> np.ndarray:
    """Return which closed intervals [start, end] share a moment with [fault_start_ms, fault_end_ms)."""
    fault_end = np.inf if np.isnan(fault_end_ms) else fault_end_ms
    return (fault_start_ms <= end) & (start < fault_end) & (fault_start_ms < fault_end)


class _AnyFault:
    """Which closed intervals [start, end] share a moment with some fault (see :func:`_overlaps`).

    One search instead of a pass per fault: an interval overlaps some fault when, of the faults
    that start by its end, the one that ends last ends after its start.
    """

    def __init__(self, faults: pd.DataFrame) -> None:
        fault_start = faults["start_ms"].to_numpy(dtype=float)
        fault_end = faults["end_ms"].to_numpy(dtype=float)
        fault_end = np.where(np.isnan(fault_end), np.inf, fault_end)  # NaN: lasts forever
        nonempty = fault_start < fault_end
        order = np.argsort(fault_start[nonempty])
        self._start, fault_end = fault_start[nonempty][order], fault_end[nonempty][order]
        self._latest_end = np.concatenate([[-np.inf], np.maximum.accumulate(fault_end)])  # of the first i
        self.none = not len(self._start)  # no fault overlaps anything

    def __call__(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        return start < self._latest_end[np.searchsorted(self._start, end, side="right")]


def availability_timeline(
    ops: pd.DataFrame,
    window_ms: float,
    *,
    start_ms: float = 0.0,
    end_ms: float | None = None,
    include_warmup: bool = False,
) -> pd.DataFrame:
    """Return availability and staleness per time window; every window appears, empty ones too.

    Windows are [window_start_ms, window_end_ms), window_ms wide, laid from start_ms; an operation
    belongs to the window holding its start_ms, and operations outside every window are left out,
    as are those of the warm-up (see :func:`qsim.checks.metrics.measured`).

    Args:
        ops: the history (start_ms in ms; ok; kind; stale, NA when unchecked; warmup).
        window_ms: the width of a window, ms.
        start_ms: the start of the first window, ms.
        end_ms: the windows cover [start_ms, end_ms) exactly: the last one ends at end_ms, so it
            is narrower than window_ms when the span is not a whole number of windows. By default
            they run through the (full) window holding the last operation's start.
        include_warmup: count the warm-up operations too.

    Returns:
        One row per window: window_start_ms, window_end_ms, reads, reads_ok, writes, writes_ok,
        availability, read_availability, write_availability (NaN where there were no operations of
        that kind), reads_checked, stale_reads and stale_fraction (NaN when no read was checked).
    """
    timeline = Timeline(window_ms, start_ms=start_ms, end_ms=end_ms, include_warmup=include_warmup)
    return timeline.add(ops).result()


_WINDOW_COUNTS = ("reads", "reads_ok", "writes", "writes_ok", "reads_checked", "stale_reads")
# An operation's class for the window counts: bits read 8, ok 4, staleness checked 2, stale 1. Each
# window count adds up these classes (staleness only of reads).
_CLASSES = np.arange(16)
_READ, _OK, _CHECKED, _STALE = ((_CLASSES & bit) > 0 for bit in (8, 4, 2, 1))
_CLASS_COUNTS = {
    "reads": _READ,
    "reads_ok": _READ & _OK,
    "writes": ~_READ,
    "writes_ok": ~_READ & _OK,
    "reads_checked": _READ & _CHECKED,
    "stale_reads": _READ & _STALE,
}


class Timeline:
    """:func:`availability_timeline` of an ops table given in chunks (``add``), in any order."""

    def __init__(
        self, window_ms: float, *, start_ms: float = 0.0, end_ms: float | None = None, include_warmup=False
    ) -> None:
        if window_ms <= 0:
            raise ValueError(f"window_ms must be positive, got {window_ms}")
        self._window_ms, self._start_ms, self._end_ms = window_ms, start_ms, end_ms
        self._include_warmup = include_warmup
        self._counts = {name: np.zeros(0, dtype=np.int64) for name in _WINDOW_COUNTS}
        self._last = -1.0  # the largest window position of a counted operation (floor: its window)
        self.last_start_ms = -np.inf  # the latest start of any operation, warm-up included

    def add(self, ops: pd.DataFrame | Chunk) -> Timeline:
        """Count a chunk of the ops table; return self."""
        chunk = Chunk.of(ops)
        start = chunk.start_ms
        # fmax skips NaN starts, as the pandas max did (NaN only if every start is NaN).
        self.last_start_ms = max(self.last_start_ms, np.fmax.reduce(start) if len(start) else -np.inf)
        rows = chunk.rows(include_warmup=self._include_warmup)
        position = start - self._start_ms
        position /= self._window_ms
        self._last = max(self._last, position.max(initial=-1.0, where=rows))
        window = np.floor(position, out=position).astype(np.int64)
        kept = rows & (window >= 0)
        if self._end_ms is not None:  # the last window is cut at end_ms
            kept &= (window < self._fixed_count()) & (start < self._end_ms)
        classes = _classes(chunk)
        if not kept.all():
            window, classes = window[kept], classes[kept]
        occupied, counts = _per_window_and_class(window, classes)
        for name, members in _CLASS_COUNTS.items():
            per_window = counts[:, members].sum(axis=1)
            if occupied is not None:  # counted for the occupied windows only: spread them out
                spread = np.zeros(occupied[-1] + 1, np.int64)
                spread[occupied] = per_window
                per_window = spread
            self._counts[name] = _plus(self._counts[name], per_window)
        return self

    def _fixed_count(self) -> int:
        return max(int(np.ceil((self._end_ms - self._start_ms) / self._window_ms)), 0)

    def result(self, end_ms: float | None = None) -> pd.DataFrame:
        """The timeline; ``end_ms`` ends it there instead (no counted operation may start at or after it)."""
        end_ms = self._end_ms if end_ms is None else end_ms
        if end_ms is None:
            count = max(int(np.floor(self._last)) + 1, 0)
        else:
            self._end_ms, count = end_ms, 0
            count = self._fixed_count()
        starts = self._start_ms + self._window_ms * np.arange(count)
        counts = {name: _plus(np.zeros(count, dtype=np.int64), c)[:count] for name, c in self._counts.items()}
        reads, reads_ok, writes, writes_ok = (counts[name] for name in _WINDOW_COUNTS[:4])
        frame = {
            "window_start_ms": starts,
            "window_end_ms": np.minimum(starts + self._window_ms, np.inf if end_ms is None else end_ms),
            **{name: counts[name] for name in _WINDOW_COUNTS[:4]},
        }
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 is NaN: no operations of that kind
            frame["availability"] = (reads_ok + writes_ok) / (reads + writes)
            frame["read_availability"] = reads_ok / reads
            frame["write_availability"] = writes_ok / writes
            frame["reads_checked"] = counts["reads_checked"]
            frame["stale_reads"] = counts["stale_reads"]
            frame["stale_fraction"] = counts["stale_reads"] / counts["reads_checked"]
        return pd.DataFrame(frame, copy=False)


def _classes(chunk: Chunk) -> np.ndarray:
    """Each operation's class (see ``_CLASS_COUNTS``)."""
    checked, stale = (flags.astype(np.uint8) for flags in chunk.staleness)
    return chunk.is_read.astype(np.uint8) << 3 | chunk.ok.astype(np.uint8) << 2 | checked << 1 | stale


def _per_window_and_class(window: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """The operations per window and class, an array (windows, 16), by one bincount of both packed.

    When most windows hold no operation (many short windows), the table would be far larger than
    the operations: then its rows are the occupied windows only, and they come first (else None).
    ``window`` (not negative) is packed in place: the caller's array is used up.
    """
    windows, occupied = int(window.max()) + 1 if len(window) else 0, None
    if windows * len(_CLASSES) > 4 * len(window) + 65_536:  # so window * 16 + class never overflows
        occupied, window = np.unique(window, return_inverse=True)
        windows = len(occupied)
    window *= len(_CLASSES)
    window += classes
    return occupied, np.bincount(window, minlength=windows * len(_CLASSES)).reshape(windows, len(_CLASSES))


def _plus(total: np.ndarray, more: np.ndarray) -> np.ndarray:
    """``total + more``, the shorter padded with zeros."""
    if len(more) > len(total):
        total, more = more, total
    total = total.copy()
    total[: len(more)] += more
    return total


def fault_windows_summary(ops: pd.DataFrame, faults: pd.DataFrame, *, include_warmup: bool = False) -> dict:
    """Compare operations during faults with the others (the warm-up's left out).

    An operation is inside when at least one fault overlaps it (see :func:`active_faults`).

    Args:
        ops: the history.
        faults: the faults table.
        include_warmup: count the warm-up operations too.

    Returns:
        {"inside": {...}, "outside": {...}}, each with ops, availability, read_availability,
        write_availability, reads_checked, stale and stale_fraction: plain Python numbers, None
        where there is nothing to divide by.
    """
    return FaultSides(faults, include_warmup=include_warmup).add(ops).result()


_SIDE_COUNTS = ("ops", "ok", "reads", "reads_ok", "reads_checked", "stale")


class FaultSides:
    """:func:`fault_windows_summary` of an ops table given in chunks (``add``), in any order."""

    def __init__(self, faults: pd.DataFrame, *, include_warmup: bool = False) -> None:
        self._in_any_fault, self._include_warmup = _AnyFault(faults), include_warmup
        self._counts = {side: dict.fromkeys(_SIDE_COUNTS, 0) for side in ("inside", "outside")}

    def add(self, ops: pd.DataFrame | Chunk) -> FaultSides:
        """Count a chunk of the ops table; return self."""
        chunk = Chunk.of(ops)
        rows = chunk.rows(include_warmup=self._include_warmup)
        if self._in_any_fault.none:  # no operation is inside, and its interval need not be made
            inside = np.zeros(len(chunk), bool)
        else:
            inside = self._in_any_fault(*op_intervals(chunk.ops))
        is_read, ok = chunk.is_read, chunk.ok
        checked, stale = checked_reads(chunk, rows & is_read)
        stale = checked[stale]
        for side, where in (("inside", rows & inside), ("outside", rows & ~inside)):
            reads = where & is_read
            masks = (where, where & ok, reads, reads & ok, where.take(checked), where.take(stale))
            for name, mask in zip(_SIDE_COUNTS, masks, strict=True):
                self._counts[side][name] += int(np.count_nonzero(mask))
        return self

    def result(self) -> dict:
        """{"inside": {...}, "outside": {...}} (see :func:`fault_windows_summary`)."""
        return {side: _side_summary(**counts) for side, counts in self._counts.items()}


def _side_summary(ops: int, ok: int, reads: int, reads_ok: int, reads_checked: int, stale: int) -> dict:
    return {
        "ops": ops,
        "availability": _fraction(ok, ops),
        "read_availability": _fraction(reads_ok, reads),
        "write_availability": _fraction(ok - reads_ok, ops - reads),
        "reads_checked": reads_checked,
        "stale": stale,
        "stale_fraction": _fraction(stale, reads_checked),
    }


def _fraction(part: int, whole: int) -> float | None:
    return float(part) / float(whole) if whole else None
