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

The checks sweep the events of all sessions at once, sorted by (client, key, time): forwards, the
running maximum version of the earlier operations that have ended gives each later operation its
witness; backwards, the running minimum version of the later operations that have yet to start
tells each earlier operation whether some later one disregarded it. A forward sweep depends only on
the earlier kind, so two serve the four guarantees; a backward sweep depends only on the later
kind, and runs only for a guarantee with a violation (every violating pair has a broken later
operation, so without one no earlier operation was disregarded). Sorts are stable, 16 bits a pass.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qsim.checks.anomaly import Anomaly
from qsim.checks.order import by_key
from qsim.checks.register import first_with_id, operation_times

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
        found = newest(earlier_writes)
        broken = (table.start_write == later_writes) & (found > table.newer_than)
        flags[kind] = np.zeros(len(ops), dtype=bool)
        counts[kind] = int(broken.sum())
        # Every violating pair has a broken later op: with none, no earlier op was disregarded either.
        if counts[kind]:
            disregarded = (table.end_write == earlier_writes) & (oldest(later_writes) < table.older_than)
            flags[kind][table.rows[table.start_op[broken]]] = True
            flags[kind][table.rows[table.end_op[disregarded]]] = True
            anomalies += [_anomaly(kind, table, w, x) for w, x in table.first(found, broken, keep)]
    return Sessions(flags, counts, table.sessions, anomalies)


class _Table:
    """The ok operations that can be checked, as arrays, with their version order and event sweep.

    Operations are indexed by their position in ``rows``. Events are ordered by (client, key, time);
    an event's value is ``session * n + position`` (session: its (client, key) numbered in event
    order; position: its op's place in version order), so values grow from one session to the
    next, and within a session they order its ops by (version, end_ms, op_id).
    """

    def __init__(self, ops: pd.DataFrame) -> None:
        is_write = (ops["kind"] == "write").to_numpy()
        rank, self.write_ids, self.write_ts = _version_ranks(ops, is_write)
        self.rows = rows = np.flatnonzero(ops["ok"].to_numpy(dtype=bool) & (rank >= -1))
        is_write, rank = is_write[rows], rank[rows]
        self.op_id, self.client, self.key = (
            ops[name].to_numpy()[rows] for name in ("op_id", "client", "key")
        )
        start, end = operation_times(ops)
        self.start, end = start[rows], end[rows]
        self.version, self.ts = ops["version"].to_numpy()[rows], ops["ts_ms"].to_numpy()[rows]
        n = len(rows)
        clients, distinct = pd.factorize(self.client)
        keys = pd.factorize(self.key)[0]
        group, self.sessions = clients * (keys.max(initial=-1) + 1) + keys, len(distinct)
        # Version order: by (version, end, op_id). The ops of version rank r fill the positions
        # run_end[r + 1] - run[r + 1] to run_end[r + 1] - 1.
        within = np.lexsort((self.op_id, end))
        self.by_version = within[by_key(rank[within] + 1)]
        position = np.empty(n, dtype=np.int64)
        position[self.by_version] = np.arange(n)
        run = np.bincount(rank + 1)
        run_end = np.cumsum(run)
        # Events: op i starts at i and ends at n + i. At equal times a start comes first (the stable
        # sort keeps them first), so an op that ends when another starts does not precede it.
        times = np.concatenate([self.start, end])
        by_time = np.argsort(times, kind="stable")
        events = by_key(np.tile(group, 2)[by_time])  # stable: in time order within a group
        events = by_time[events]
        op, self.is_end = events % n, events >= n
        session = np.cumsum(np.diff(group[op], prepend=group[op[:1]]) != 0)
        self.value, self.event_write = session * n + position[op], is_write[op]
        self.starts, self.ends = np.flatnonzero(~self.is_end), np.flatnonzero(self.is_end)
        self.start_op, self.end_op = op[self.starts], op[self.ends]
        self.start_write, self.end_write = is_write[self.start_op], is_write[self.end_op]
        # Per start (end) event: a value above (below) this is a newer (older) version of its session.
        self.newer_than = session[self.starts] * n + run_end[rank[self.start_op] + 1] - 1
        self.older_than = session[self.ends] * n + (run_end - run)[rank[self.end_op] + 1]

    def newest_before(self, writes: bool) -> np.ndarray:
        """Per start event: the largest value of an end of a write (or read) before it, or -1."""
        value = np.where(self.is_end & (self.event_write == writes), self.value, -1)
        return np.maximum.accumulate(value)[self.starts]

    def oldest_after(self, writes: bool) -> np.ndarray:
        """Per end event: the smallest value of a start of a write (or read) after it, or int64's max."""
        value = np.where(~self.is_end & (self.event_write == writes), self.value, np.iinfo(np.int64).max)
        return np.minimum.accumulate(value[::-1])[::-1][self.ends]

    def first(self, found: np.ndarray, broken: np.ndarray, keep: int) -> list[tuple[int, int]]:
        """The first ``keep`` (witness, later op) pairs, in order of the later op's (start_ms, op_id).

        ``found`` is :meth:`newest_before`; for a broken op it is in its session, so it is the
        witness's position in version order plus a multiple of n.
        """
        later = self.start_op[broken]
        witness = self.by_version[found[broken] % len(self.rows)]
        order = np.lexsort((later, self.op_id[later], self.start[later]))[:keep]
        return [(int(w), int(x)) for w, x in zip(witness[order], later[order], strict=True)]


def _version_ranks(ops: pd.DataFrame, is_write: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, the rank of its version among all writes in version order; and the writes' ids and ts_ms.

    Ranks are global, so they compare correctly only within a key; -1 is the initial value and -2
    marks a read whose version is not a write of its key in the table. The ids come sorted.
    """
    op_id, key, ts = ops["op_id"].to_numpy(), ops["key"].to_numpy(), ops["ts_ms"].to_numpy()
    writes = np.flatnonzero(is_write)
    order = writes[np.lexsort((op_id[writes], ops["client"].to_numpy()[writes], ts[writes]))]
    rank = np.full(len(ops), -2, dtype=np.int64)
    rank[order] = np.arange(len(order))
    by_id = writes[np.argsort(op_id[writes], kind="stable")]
    reads = np.flatnonzero(~is_write)
    wanted = ops["version"].to_numpy()[reads].astype(np.int64)
    row = first_with_id(op_id, writes, wanted)  # each read's write; -1 (a row ``found`` masks) if none
    found = (row >= 0) & (key[row] == key[reads])
    rank[reads] = np.where(found, rank[row], -2)
    rank[reads[wanted == -1]] = -1
    return rank, op_id[by_id], ts[by_id]


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
            f"ordered before {a} (ts_ms {t.ts[later]:g} vs {t.ts[earlier]:g}), so {a} overwrites it"
        )
    else:
        version = int(t.version[earlier])
        note = (
            f"client {client} read key {key} in read {a}, which returned write {version}, then wrote "
            f"write {b} {after}, which is ordered before write {version} "
            f"(ts_ms {t.ts[later]:g} vs {_read_ts(t, earlier):g})"
        )
    return Anomaly(kind, key, (a, b), note, client)


def _returned(t: _Table, read: int) -> str:
    version = int(t.version[read])
    return "the initial value" if version < 0 else f"write {version}"


def _older(t: _Table, read: int) -> str:
    version = int(t.version[read])
    return "the initial value" if version < 0 else f"the older write {version}"


def _read_ts(t: _Table, read: int) -> float:
    """The ts_ms of the write a read returned (ok or not, so looked up among all writes)."""
    return float(t.write_ts[np.searchsorted(t.write_ids, t.version[read])])
