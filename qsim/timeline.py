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

from qsim.metrics import measured


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
    start, end = _op_intervals(ops)
    labels = np.full(len(ops), "", dtype=object)
    for fault in faults.sort_values("fault_id").itertuples():
        hit = _overlaps(start, end, fault.start_ms, fault.end_ms)
        labels[hit] = labels[hit] + f",{fault.fault_id}"
    return pd.Series(labels, index=ops.index, dtype="string").str.removeprefix(",")


def _op_intervals(ops: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return the operations' start and end, ms; a NaN end becomes the start."""
    start = ops["start_ms"].to_numpy(dtype=float)
    return start, np.fmax(ops["end_ms"].to_numpy(dtype=float), start)


def _overlaps(start: np.ndarray, end: np.ndarray, fault_start_ms: float, fault_end_ms: float) -> np.ndarray:
    """Return which closed intervals [start, end] share a moment with [fault_start_ms, fault_end_ms)."""
    fault_end = np.inf if np.isnan(fault_end_ms) else fault_end_ms
    return (fault_start_ms <= end) & (start < fault_end) & (fault_start_ms < fault_end)


def _in_any_fault(ops: pd.DataFrame, faults: pd.DataFrame) -> np.ndarray:
    start, end = _op_intervals(ops)
    inside = np.zeros(len(ops), dtype=bool)
    for fault in faults.itertuples():
        inside |= _overlaps(start, end, fault.start_ms, fault.end_ms)
    return inside


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
    as are those of the warm-up (see :func:`qsim.metrics.measured`).

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
    if window_ms <= 0:
        raise ValueError(f"window_ms must be positive, got {window_ms}")
    ops = measured(ops, include_warmup=include_warmup)
    position = (ops["start_ms"].to_numpy(dtype=float) - start_ms) / window_ms
    if end_ms is None:
        count = int(np.floor(position.max(initial=-1.0))) + 1
    else:
        count = int(np.ceil((end_ms - start_ms) / window_ms))
    count = max(count, 0)
    window = np.floor(position).astype(np.int64)
    kept = (window >= 0) & (window < count)
    if end_ms is not None:
        kept &= ops["start_ms"].to_numpy(dtype=float) < end_ms  # the last window is cut at end_ms
    ops, window = ops[kept], window[kept]

    is_read = (ops["kind"] == "read").to_numpy()
    ok = ops["ok"].to_numpy(dtype=bool)
    stale = ops["stale"].astype("boolean")
    checked = stale.notna().to_numpy() & is_read

    def per_window(mask: np.ndarray) -> np.ndarray:
        return np.bincount(window[mask], minlength=count)

    starts = start_ms + window_ms * np.arange(count)
    frame = pd.DataFrame(
        {
            "window_start_ms": starts,
            "window_end_ms": np.minimum(starts + window_ms, np.inf if end_ms is None else end_ms),
            "reads": per_window(is_read),
            "reads_ok": per_window(is_read & ok),
            "writes": per_window(~is_read),
            "writes_ok": per_window(~is_read & ok),
        }
    )
    # pandas makes 0 / 0 NaN, silently: a window with no operations of that kind.
    frame["availability"] = (frame["reads_ok"] + frame["writes_ok"]) / (frame["reads"] + frame["writes"])
    frame["read_availability"] = frame["reads_ok"] / frame["reads"]
    frame["write_availability"] = frame["writes_ok"] / frame["writes"]
    frame["reads_checked"] = per_window(checked)
    frame["stale_reads"] = per_window(checked & stale.fillna(False).to_numpy(dtype=bool))
    frame["stale_fraction"] = frame["stale_reads"] / frame["reads_checked"]
    return frame


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
    the operations :func:`qsim.metrics.measured` keeps take part (not the warm-up's), so a fault
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
    ops = measured(ops, include_warmup=include_warmup)
    threshold = _baseline(ops, faults) - tolerance
    order = np.argsort(ops["start_ms"].to_numpy(dtype=float), kind="stable")
    start = ops["start_ms"].to_numpy(dtype=float)[order]
    ok_before = np.concatenate([[0], np.cumsum(ops["ok"].to_numpy(dtype=bool)[order])])
    good = _good_spans(start, ok_before, start, window_ms, threshold)
    results = []
    first_ms = start[0] if start.size else -np.inf
    for fault in faults.sort_values("fault_id").itertuples():
        if not np.isfinite(fault.end_ms) or fault.end_ms < first_ms:
            continue  # still active at the end, or over before the first counted operation
        recovered = _recovered_ms(start, ok_before, good, fault.end_ms, window_ms, threshold)
        results.append(
            {
                "fault_id": int(fault.fault_id),
                "kind": str(fault.kind),
                "target": str(fault.target),
                "end_ms": float(fault.end_ms),
                "recovered_ms": recovered,
                "time_to_recover_ms": None if recovered is None else recovered - fault.end_ms,
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


def _recovered_ms(
    start: np.ndarray,
    ok_before: np.ndarray,
    good: np.ndarray,
    end_ms: float,
    window_ms: float,
    threshold: float,
) -> float | None:
    """Return end_ms if its span is back, else the start of the first later operation whose span is."""
    if _good_spans(start, ok_before, np.array([end_ms]), window_ms, threshold)[0]:
        return float(end_ms)
    after = np.searchsorted(start, end_ms, side="right")
    later = np.flatnonzero(good[after:])
    return float(start[after + later[0]]) if later.size else None


def _baseline(ops: pd.DataFrame, faults: pd.DataFrame) -> float:
    """Return the availability of the operations that ended before the first fault started."""
    if faults.empty:
        return 1.0
    _, end = _op_intervals(ops)
    before = ops["ok"].to_numpy(dtype=bool)[end < faults["start_ms"].min()]
    return float(before.mean()) if before.size else 1.0


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
    ops = measured(ops, include_warmup=include_warmup)
    inside = _in_any_fault(ops, faults)
    return {"inside": _side_summary(ops[inside]), "outside": _side_summary(ops[~inside])}


def _side_summary(ops: pd.DataFrame) -> dict:
    is_read = (ops["kind"] == "read").to_numpy()
    ok = ops["ok"].to_numpy(dtype=bool)
    stale = ops["stale"].astype("boolean")[is_read]
    checked = int(stale.notna().sum())
    stale_count = int(stale.sum())
    return {
        "ops": len(ops),
        "availability": _fraction(ok.sum(), len(ok)),
        "read_availability": _fraction(ok[is_read].sum(), is_read.sum()),
        "write_availability": _fraction(ok[~is_read].sum(), (~is_read).sum()),
        "reads_checked": checked,
        "stale": stale_count,
        "stale_fraction": _fraction(stale_count, checked),
    }


def _fraction(part: int, whole: int) -> float | None:
    return float(part) / float(whole) if whole else None
