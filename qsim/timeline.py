"""Availability and staleness over time, and around faults: pure functions of the ops and faults tables.

The faults table has one row per injected fault: fault_id, kind ('crash', 'partition', 'degrade',
'slow', 'clock_skew'), target, start_ms, end_ms (NaN: lasted until the end of the run) and params
(JSON). A fault is active on [start_ms, end_ms); an operation occupies [start_ms, end_ms].
"""

from __future__ import annotations

import numpy as np
import pandas as pd


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
    ops: pd.DataFrame, window_ms: float, *, start_ms: float = 0.0, end_ms: float | None = None
) -> pd.DataFrame:
    """Return availability and staleness per time window; every window appears, empty ones too.

    Windows are [window_start_ms, window_end_ms), window_ms wide, laid from start_ms; an operation
    belongs to the window holding its start_ms, and operations outside every window are left out.

    Args:
        ops: the history (start_ms in ms; ok; kind; stale, NA when unchecked).
        window_ms: the width of a window, ms.
        start_ms: the start of the first window, ms.
        end_ms: the windows cover [start_ms, end_ms), the last one possibly reaching past it. By
            default they run through the window holding the last operation's start.

    Returns:
        One row per window: window_start_ms, window_end_ms, reads, reads_ok, writes, writes_ok,
        availability, read_availability, write_availability (NaN where there were no operations of
        that kind), reads_checked, stale_reads and stale_fraction (NaN when no read was checked).
    """
    if window_ms <= 0:
        raise ValueError(f"window_ms must be positive, got {window_ms}")
    position = (ops["start_ms"].to_numpy(dtype=float) - start_ms) / window_ms
    if end_ms is None:
        count = int(np.floor(position.max(initial=-1.0))) + 1
    else:
        count = int(np.ceil((end_ms - start_ms) / window_ms))
    count = max(count, 0)
    window = np.floor(position).astype(np.int64)
    kept = (window >= 0) & (window < count)
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
            "window_end_ms": starts + window_ms,
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


def recovery(timeline: pd.DataFrame, faults: pd.DataFrame, *, tolerance: float = 0.01) -> list[dict]:
    """Return, for each fault that ended, when availability came back to its level before the faults.

    The baseline is the overall availability of the windows that end at or before the first
    fault's start (1.0 when there are no such windows with operations, or no faults). A fault has
    recovered at the start of the first window starting at or after its end whose availability is
    at least baseline - tolerance; windows without operations are skipped.

    Args:
        timeline: the result of :func:`availability_timeline`.
        faults: the faults table.
        tolerance: how far below the baseline a window may be and still count as recovered.

    Returns:
        One dict per fault with a finite end_ms, by fault_id: fault_id, kind, target, end_ms,
        recovered_ms (a window start, ms) and time_to_recover_ms (recovered_ms - end_ms, at least
        0); the last two are None when availability never came back.
    """
    threshold = _baseline(timeline, faults) - tolerance
    has_ops = (timeline["reads"] + timeline["writes"]) > 0
    good = timeline.loc[has_ops & (timeline["availability"] >= threshold), "window_start_ms"]
    good = np.sort(good.to_numpy(dtype=float))
    results = []
    for fault in faults.sort_values("fault_id").itertuples():
        if not np.isfinite(fault.end_ms):
            continue
        after = good[np.searchsorted(good, fault.end_ms, side="left") :]
        recovered = float(after[0]) if after.size else None
        results.append(
            {
                "fault_id": int(fault.fault_id),
                "kind": str(fault.kind),
                "target": str(fault.target),
                "end_ms": float(fault.end_ms),
                "recovered_ms": recovered,
                "time_to_recover_ms": None if recovered is None else max(recovered - fault.end_ms, 0.0),
            }
        )
    return results


def _baseline(timeline: pd.DataFrame, faults: pd.DataFrame) -> float:
    """Return the availability of the windows that end at or before the first fault starts."""
    if faults.empty:
        return 1.0
    before = timeline[timeline["window_end_ms"] <= faults["start_ms"].min()]
    ops = int((before["reads"] + before["writes"]).sum())
    return float((before["reads_ok"] + before["writes_ok"]).sum() / ops) if ops else 1.0


def fault_windows_summary(ops: pd.DataFrame, faults: pd.DataFrame) -> dict:
    """Compare operations during faults with the others.

    An operation is inside when at least one fault overlaps it (see :func:`active_faults`).

    Args:
        ops: the history.
        faults: the faults table.

    Returns:
        {"inside": {...}, "outside": {...}}, each with ops, availability, read_availability,
        write_availability, reads_checked, stale and stale_fraction: plain Python numbers, None
        where there is nothing to divide by.
    """
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
