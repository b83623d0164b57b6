"""The ops table as one read/write register per key: which write each read returned.

Both linearizability methods start here. Reads that failed returned nothing and are left out. A
read whose value no write of its key has, and a read that ended before the write it returned
started, break linearizability on their own (see :class:`Registers`); the checks leave them out of
the rest. A failed write that no remaining read returned is left out too: it may take effect
"never", and a write no read returned changes nothing a read saw, so if any order of the other
operations works, that order with this write never taking effect is one the definition allows.
A failed write that some read returned must have taken effect before each of those reads, so it
is kept, and real time puts no operation after it: it never ended.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

INITIAL = -1  # the version a read returns when no write has taken effect
NONE = np.iinfo(np.int64).max  # in a table of rows: no row
REQUIRED = ("op_id", "kind", "key", "start_ms", "end_ms", "ok", "version")


@dataclass(frozen=True)
class Registers:
    """A history's columns in row order, each read's write, and the rows the checks use.

    Attributes:
        op_id, key, start, end, is_write, ok, version: the ops columns (start and end in ms).
        key_index: each row's key as 0..K-1 (the position of its key in ``keys``).
        keys: the distinct keys, sorted.
        source: reads that returned a value: the row of the write, or -1 for the initial value;
            -2 for every other row.
        future: rows of reads that ended before the write they returned started.
        future_write: the row of that write, for each of them.
        unknown: rows of ok reads of a version that no write of their key has.
        live: rows the zone and search checks use (see the module docstring).
        earliest: each row's position in the order of (start_ms, op_id): "earlier" in reports.
        age: writes: position in the version order (ts_ms, client, op_id); -1 for reads.
    """

    op_id: np.ndarray
    key: np.ndarray
    start: np.ndarray
    end: np.ndarray
    is_write: np.ndarray
    ok: np.ndarray
    version: np.ndarray
    key_index: np.ndarray
    keys: np.ndarray
    source: np.ndarray
    future: np.ndarray
    future_write: np.ndarray
    unknown: np.ndarray
    live: np.ndarray
    earliest: np.ndarray
    age: np.ndarray

    @property
    def failed_write(self) -> np.ndarray:
        """Rows that are writes which failed or timed out (they may never have taken effect)."""
        return self.is_write & ~self.ok


def operation_times(ops: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return start_ms and end_ms of ``ops``, refusing what no history has.

    Raises:
        ValueError: naming the first few op ids whose start or end is not a finite number, or that
            end before they start (a checker's verdict on them would mean nothing).
    """
    start = ops["start_ms"].to_numpy(np.float64)
    end = ops["end_ms"].to_numpy(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        # A sum is finite only if every term is: the usual history needs no mask of its bad rows.
        if np.isfinite(start.sum()) and np.isfinite(end.sum()) and not (end < start).any():
            return start, end
        bad = ~np.isfinite(start) | ~np.isfinite(end) | (end < start)
    if bad.any():
        ids = ops["op_id"].to_numpy()[bad][:5].tolist()
        raise ValueError(
            f"start_ms and end_ms must be finite with end_ms >= start_ms; {int(bad.sum())} operations "
            f"are not (op ids {', '.join(map(str, ids))}{', ...' if bad.sum() > 5 else ''})"
        )
    return start, end


def registers(ops: pd.DataFrame) -> Registers:
    """Return the registers of ``ops`` (a DataFrame with at least the columns of ``REQUIRED``)."""
    missing = [name for name in REQUIRED if name not in ops.columns]
    if missing:
        raise ValueError(f"the ops table lacks the columns {', '.join(missing)}")
    op_id = ops["op_id"].to_numpy(np.int64)
    key = ops["key"].to_numpy(np.int64)
    start, end = operation_times(ops)
    is_write = (ops["kind"] == "write").to_numpy(bool)
    ok = ops["ok"].to_numpy(bool)
    keys, key_index = codes(key)
    version = ops["version"].to_numpy(np.int64)
    source, live, future, future_write, unknown = _sources(op_id, key, start, end, is_write, ok, version)
    earliest = _positions(op_id, start)
    age = _ages(ops, op_id, is_write)
    return Registers(
        op_id,
        key,
        start,
        end,
        is_write,
        ok,
        version,
        key_index,
        keys,
        source,
        future,
        future_write,
        unknown,
        live,
        earliest,
        age,
    )


def _sources(op_id, key, start, end, is_write, ok, version) -> tuple[np.ndarray, ...]:
    """Return (source, live, future, future_write, unknown) as :class:`Registers` defines them."""
    reads = np.flatnonzero(~is_write & ok)  # rows, not a mask: indexing by a mask is much slower
    wanted = version[reads]
    write = first_with_id(op_id, np.flatnonzero(is_write), wanted)  # -1 (a row ``found`` masks) if none
    found = (write >= 0) & (key[write] == key[reads])
    early = found & (end[reads] < start[write])
    good = found & ~early
    initial = wanted == INITIAL
    source = np.full(len(op_id), -2, np.int64)
    source[reads] = np.where(initial, INITIAL, np.where(good, write, -2))
    live = is_write & ok
    live[write[good & ~initial]] = True  # writes that a read returned
    live[reads] = good | initial  # reads that returned a write's value or the initial one
    return source, live, reads[early], write[early], reads[~found & ~initial]


def _positions(op_id: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Each row's position in the order of (start_ms, op_id) (``start`` has no NaN)."""
    if _increasing(op_id, strictly=True) and _increasing(start):
        return np.arange(len(op_id))  # rows already in that order, as a simulation records them
    position = np.empty(len(op_id), np.int64)
    position[np.lexsort((op_id, start))] = np.arange(len(op_id))
    return position


def _ages(ops: pd.DataFrame, op_id: np.ndarray, is_write: np.ndarray) -> np.ndarray:
    """Each write's position in the version order (ts_ms, client, op_id); -1 for reads."""
    writes = np.flatnonzero(is_write)
    names = [name for name in ("client", "ts_ms") if name in ops.columns]
    first = (ops[names[-1]].to_numpy() if names else op_id)[writes]  # the order's first column
    age = np.full(len(op_id), -1, np.int64)
    if first.dtype.kind in "iuf" and _increasing(first, strictly=True):
        age[writes] = np.arange(len(writes))  # the first column alone orders the writes
    else:
        columns = [op_id[writes]] + [ops[name].to_numpy()[writes] for name in names]
        age[writes[np.lexsort(columns)]] = np.arange(len(writes))
    return age


def _increasing(values: np.ndarray, strictly: bool = False) -> bool:
    """Whether ``values`` increase (never decrease, unless ``strictly``); False if one is NaN."""
    later, earlier = values[1:], values[:-1]
    return bool(np.all(later > earlier) if strictly else np.all(later >= earlier))


def dense_rank(key: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Rank (key, time) pairs as 0, 1, 2, ...: key first, equal pairs share a rank.

    Keys must be exact as floats (below 2**53 in size) and times not NaN.
    """
    pair = np.empty(len(key), complex)  # complex numbers sort by real part, then imaginary part
    pair.real, pair.imag = key, time
    # The order of np.lexsort((time, key)), by timsort: quick on the sorted runs pairs usually come in.
    order = np.argsort(pair, kind="stable")
    pair = pair[order]
    new = np.ones(len(order), bool)
    new[1:] = pair[1:] != pair[:-1]
    rank = np.empty(len(order), np.int64)
    rank[order] = np.cumsum(new) - 1
    return rank


def first_with_id(op_id: np.ndarray, rows: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """For each of ``wanted``, the first of ``rows`` (increasing) whose op_id it is, or -1; by a table."""
    ids = op_id[rows]
    low, high = (int(ids.min()), int(ids.max())) if len(rows) else (0, -1)
    kinds = {ids.dtype.kind, rows.dtype.kind, wanted.dtype.kind}
    if kinds != {"i"} or high - low >= 2 * (len(rows) + len(wanted)):  # sparse ids: a table by code
        ids, code = codes(np.concatenate([ids, wanted]))
        first = np.full(len(ids), len(rows))
        np.minimum.at(first, code[: len(rows)], np.arange(len(rows)))
        return np.append(rows, -1)[first[code[len(rows) :]]]
    # first[id - low]: the first row with that id, NONE if none; the extra last slot, span, stands
    # for every id outside [low, high].
    span = high - low + 1
    first = np.full(span + 1, NONE)
    ids -= low  # a copy, and within [0, span)
    np.minimum.at(first, ids, rows)
    slot = wanted.astype(np.int64)
    outside = (slot < low) | (slot > high)
    slot -= low  # may wrap around only where outside
    slot[outside] = span
    row = first[slot]
    row[row == NONE] = -1
    return row


def codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``np.unique(values, return_inverse=True)`` of integers, by a table when their range is small."""
    low, high = (int(values.min()), int(values.max())) if len(values) else (0, 0)
    if len(values) == 0 or high - low >= 2 * len(values):
        return np.unique(values, return_inverse=True)
    if low >= 0 and high < 2 * len(values) and values.dtype.kind in "iu":
        low = 0  # a table from 0 is as small, and the values index it without an offset
    offset = values - low if low else values
    present = np.zeros(high - low + 1, bool)
    present[offset] = True
    return np.flatnonzero(present) + low, (np.cumsum(present) - 1)[offset]
