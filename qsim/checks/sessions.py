"""The session-guarantee checkers (Terry et al. 1994): a pure function of the operation history.

A session is a client; each key is a register, so the guarantees are checked per (client, key).
Only operations that are ok take part (a failed write may or may not have happened; a failed read
returned nothing), and a read whose version is not a write of its key in the table is left out.

- Session order: within one client, a precedes b iff ``a.end_ms < b.start_ms`` (strictly). A
  client may have operations in flight at once; those are unordered.
- Version order: the writes of a key (ok or not) by (ts_ms, client, op_id); the initial value
  (version -1) is older than every write; a read's version is the version of the write it returned.
- read-your-writes: a read r of key k, preceded in its session by a write w of k, returns a version
  older than w's.
- monotonic reads: a read r2, preceded in its session by a read r1 of the same key, returns a
  version older than r1's.
- monotonic writes: a write w2, preceded in its session by a write w1 of the same key, is ordered
  before w1 in version order (so w1 overwrites it: the session's later write is lost).
- writes-follow-reads: a write w, preceded in its session by a read r of the same key, is ordered
  before the version r returned.

Each violation is a pair (earlier op, later op). Counting rule: one violation per later operation
per kind (the later operation is the one that broke the guarantee, however many earlier operations
it disregarded). Its witness is the earlier operation with the newest version among those it
should have respected; ties go to the one that ended last (then the larger op_id). ``flags`` mark
every operation that takes part in some violating pair, earlier and later alike.

The checks sweep all sessions at once. An operation's value, ``session * (writes + 1) + rank + 1``
(rank: its version's place in version order, -1 for the initial value), orders the versions of a
session and grows from one session to the next. Forwards, over the ends listed by (session, end_ms,
op_id), the running maximum value of the earlier kind gives each later operation, where it starts,
the newest version it should have respected; the latest end holding that maximum is its witness.
Backwards, over the starts listed by (session, start_ms), the running minimum value of the later
kind tells each earlier operation, where it ends, whether some later one disregarded it. One stable
sort merges the two lists, which places each start among the ends and each end among the starts. A
forward sweep depends only on the earlier kind, so two serve the four guarantees; a backward sweep
depends only on the later kind, and runs only for a guarantee with a violation (every violating
pair has a broken later operation, so without one no earlier operation was disregarded).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qsim.checks.anomaly import Anomaly
from qsim.checks.order import by_key
from qsim.checks.register import codes, first_with_id, operation_times

# kind -> (kind of the earlier operation, kind of the later one); True = write.
GUARANTEES = {
    "read_your_writes": (True, False),
    "monotonic_reads": (False, False),
    "monotonic_writes": (True, True),
    "writes_follow_reads": (False, True),
}


@dataclass
class Sessions:
    """What :func:`check_sessions` found.

    Attributes:
        flags: kind -> bool array aligned with the rows of ``ops``: the row takes part in a
            violation of that kind (as the earlier or the later operation).
        counts: kind -> violations (one per later operation).
        sessions_checked: clients with at least one ok operation.
        anomalies: the first ``keep`` violations per kind, in order of the later operation.
    """

    flags: dict[str, np.ndarray]
    counts: dict[str, int]
    sessions_checked: int
    anomalies: list[Anomaly] = field(default_factory=list)


def check_sessions(ops: pd.DataFrame, *, keep: int = 100) -> Sessions:
    """Check read-your-writes, monotonic reads, monotonic writes and writes-follow-reads.

    Args:
        ops: the history, with at least op_id, client, kind, key, start_ms, end_ms, ok, version
            and ts_ms (see :data:`qsim.history.OPS_COLUMNS`).
        keep: how many anomalies of each kind to describe.

    Returns:
        The flags, counts and first anomalies of each kind (see the module docstring).
    """
    table = _Table(ops)
    # Each sweep serves two guarantees (see the module docstring); cached, each runs at most once.
    newest, oldest = functools.cache(table.newest_before), functools.cache(table.oldest_after)
    flags, counts, anomalies = {}, {}, []
    for kind, (earlier_writes, later_writes) in GUARANTEES.items():
        broken = (table.start_write == later_writes) & (newest(earlier_writes) > table.start_value)
        flags[kind] = np.zeros(len(ops), dtype=bool)
        counts[kind] = int(broken.sum())
        # Every violating pair has a broken later op: with none, no earlier op was disregarded either.
        if counts[kind]:
            disregarded = (table.end_write == earlier_writes) & (oldest(later_writes) < table.end_value)
            flags[kind][table.rows[table.by_start[broken]]] = True
            flags[kind][table.rows[table.by_end[disregarded]]] = True
            anomalies += [_anomaly(kind, table, w, x) for w, x in table.first(broken, earlier_writes, keep)]
    return Sessions(flags, counts, table.sessions, anomalies)


class _Table:
    """The ok operations that can be checked, as arrays, listed by start and by end within sessions.

    Operations are indexed by their position in ``rows``; sessions, the (client, key) pairs, are
    numbered in sorted order. ``by_start`` lists the ops by (session, start_ms) and ``by_end`` by
    (session, end_ms, op_id); ``start_value``, ``start_write``, ``end_value`` and ``end_write`` are
    their values (see the module docstring) and kinds in those orders. With the two lists merged in
    (session, time) order, a start before an end at equal times (an op that ends when another
    starts does not precede it), ``ends_before`` counts the ends before each start (in ``by_start``
    order) and ``starts_before`` the starts before each end (in ``by_end`` order).
    """

    def __init__(self, ops: pd.DataFrame) -> None:
        is_write = (ops["kind"] == "write").to_numpy()
        rank, self.write_ts = _version_ranks(ops, is_write)
        self.rows = np.flatnonzero(ops["ok"].to_numpy(dtype=bool) & (rank >= -1))
        rows = self.rows if len(self.rows) < len(ops) else slice(None)  # all rows: views, not copies
        is_write, self.rank = is_write[rows], rank[rows]
        self.op_id, self.client, self.key, self.version = (
            ops[name].to_numpy()[rows] for name in ("op_id", "client", "key", "version")
        )
        start, end = operation_times(ops)
        self.start, end = start[rows], end[rows]
        self.by_start, session, self.sessions = _by_session(self.client, self.key, self.start)
        self.by_end, self.ends_before, self.starts_before = _merge(
            self.by_start, session, self.start, end, self.op_id
        )
        # Values stay below len(ops) * (writes + 1): no int64 overflow below 3e9 operations.
        session = session * (len(self.write_ts) + 1) + 1
        self.start_value, self.end_value = (
            session + self.rank[self.by_start],
            session + self.rank[self.by_end],
        )
        self.start_write, self.end_write = is_write[self.by_start], is_write[self.by_end]

    def newest_before(self, writes: bool) -> np.ndarray:
        """Per op of ``by_start``: the largest value of the writes (or reads) that ended before it
        started, or -1."""
        value = np.where(self.end_write == writes, self.end_value, -1)
        return np.maximum.accumulate(np.append(-1, value))[self.ends_before]

    def oldest_after(self, writes: bool) -> np.ndarray:
        """Per op of ``by_end``: the smallest value of the writes (or reads) that started after it
        ended, or int64's max."""
        none = np.iinfo(np.int64).max
        value = np.append(np.where(self.start_write == writes, self.start_value, none), none)
        return np.minimum.accumulate(value[::-1])[::-1][self.starts_before]

    def first(self, broken: np.ndarray, writes: bool, keep: int) -> list[tuple[int, int]]:
        """The first ``keep`` (witness, later op) pairs, in order of the later op's (start_ms, op_id).

        ``broken`` marks the later ops of ``by_start``; ``writes`` is the kind of the earlier ones.
        """
        later = self.by_start[broken]
        order = np.lexsort((later, self.op_id[later], self.start[later]))[:keep]
        is_earlier = self.end_write == writes
        value = np.where(is_earlier, self.end_value, -1)
        # Of the ends before an op, the latest to reach the running maximum is the latest holding the
        # newest version the op should have respected: by_end puts last the one that ended last
        # (then the larger op_id).
        newest = is_earlier & (value == np.maximum.accumulate(value))
        latest = np.maximum.accumulate(np.where(newest, np.arange(len(value)), -1))
        witness = self.by_end[latest[self.ends_before[broken][order] - 1]]
        return list(zip(witness.tolist(), later[order].tolist(), strict=True))


def _by_session(client: np.ndarray, key: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The ops by (client, key, start_ms), their sessions in that order, and the number of clients.

    Sessions, the (client, key) pairs, are numbered 0, 1, 2, ... in sorted order.
    """
    clients, client = codes(client)
    keys, key = codes(key)
    pair = client * len(keys) + key  # below n ** 2
    by_start = by_key(pair, start)  # it sorts by start_ms first: quick on the sorted runs they come in
    pair = pair[by_start]
    return by_start, np.cumsum(np.diff(pair, prepend=pair[:1]) != 0), len(clients)


def _merge(
    by_start: np.ndarray, session: np.ndarray, start: np.ndarray, end: np.ndarray, op_id: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``by_end``, ``ends_before`` and ``starts_before`` (see :class:`_Table`).

    ``by_start`` lists the ops by (session, start_ms), and ``session`` gives their sessions in that
    order. One stable sort of the starts followed by the ends, by (session, time), merges them (at
    equal times the starts, listed first, stay first) and sorts the ends. Ends at equal times keep
    the order they are listed in, which must be by op_id, as ``by_end`` decides witnesses. Listed by
    start, they come nearly sorted (quick for timsort), and in op_id order if op ids grow with
    start_ms in each session (they number a client's operations as it issues them); otherwise they
    are listed by (session, end_ms, op_id) first.
    """
    n = len(by_start)
    listed = by_start
    if not np.all((np.diff(op_id[by_start]) > 0) | (np.diff(session) != 0)):
        of_op = np.empty(n, dtype=np.int64)
        of_op[by_start] = session
        listed = by_key(of_op, op_id, end)
    order = np.argsort(_session_times(session, start[by_start], end[listed]), kind="stable")
    # The i-th start is at place starts[i] of the merged order, after starts[i] - i ends; so for ends.
    starts, ends = np.flatnonzero(order < n), np.flatnonzero(order >= n)
    count = np.arange(n)
    return listed[order[ends] - n], starts - count, ends - count


def _session_times(session: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(session, start_ms) then (session, end_ms) as complex numbers, which sort by real part then
    imaginary part; sessions, below n, are exact as floats."""
    n = len(session)
    times = np.empty(2 * n, dtype=complex)
    times.real[:n] = times.real[n:] = session
    times.imag[:n], times.imag[n:] = start, end
    return times


def _version_ranks(ops: pd.DataFrame, is_write: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the rank of its version among all writes in version order; and the writes' ts_ms by rank.

    Ranks are global, so they compare correctly only within a key; -1 is the initial value and -2
    marks a read whose version is not a write of its key in the table.
    """
    op_id, key, ts = ops["op_id"].to_numpy(), ops["key"].to_numpy(), ops["ts_ms"].to_numpy()
    writes = np.flatnonzero(is_write)
    order = writes[np.lexsort((op_id[writes], ops["client"].to_numpy()[writes], ts[writes]))]
    rank = np.full(len(ops), -2, dtype=np.int64)
    rank[order] = np.arange(len(order))
    reads = np.flatnonzero(~is_write)
    wanted = ops["version"].to_numpy()[reads].astype(np.int64)
    row = first_with_id(op_id, writes, wanted)  # each read's write; -1 (a row ``found`` masks) if none
    found = (row >= 0) & (key[row] == key[reads])
    rank[reads] = np.where(found, rank[row], -2)
    rank[reads[wanted == -1]] = -1
    return rank, ts[order]


def _anomaly(kind: str, table: _Table, earlier: int, later: int) -> Anomaly:
    """Describe the violation (earlier, later) in one sentence."""
    t = table
    client, key = int(t.client[later]), int(t.key[later])
    a, b = int(t.op_id[earlier]), int(t.op_id[later])
    after = f"(which started after {a} ended)"
    if kind == "read_your_writes":
        note = (
            f"client {client} wrote key {key} in write {a}, then read {b} {after} returned {_older(t, later)}"
        )
    elif kind == "monotonic_reads":
        note = (
            f"client {client} read key {key} twice: read {a} returned {_returned(t, earlier)}, "
            f"then read {b} {after} returned {_older(t, later)}"
        )
    elif kind == "monotonic_writes":
        note = (
            f"client {client} wrote key {key} twice: write {a}, then write {b} {after}, but {b} is "
            f"ordered before {a} (ts_ms {_ts(t, later):g} vs {_ts(t, earlier):g}), so {a} overwrites it"
        )
    else:
        version = int(t.version[earlier])
        note = (
            f"client {client} read key {key} in read {a}, which returned write {version}, then wrote "
            f"write {b} {after}, which is ordered before write {version} "
            f"(ts_ms {_ts(t, later):g} vs {_ts(t, earlier):g})"
        )
    return Anomaly(kind, key, (a, b), note, client)


def _returned(t: _Table, read: int) -> str:
    version = int(t.version[read])
    return "the initial value" if version < 0 else f"write {version}"


def _older(t: _Table, read: int) -> str:
    version = int(t.version[read])
    return "the initial value" if version < 0 else f"the older write {version}"


def _ts(t: _Table, op: int) -> float:
    """The ts_ms of the write an op is or returned (ok or not, so looked up among all writes)."""
    return float(t.write_ts[t.rank[op]])
