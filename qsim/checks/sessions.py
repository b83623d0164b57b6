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

Each guarantee is two sweeps over the events of all sessions at once, sorted by (client, key,
time): forwards, the running maximum version of the earlier operations that have ended gives each
later operation its witness; backwards, the running minimum version of the later operations that
have yet to start tells each earlier operation whether some later one disregarded it. Grouping is
one lexsort; a running maximum never leaves its (client, key) because ranks grow with the group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qsim.checks.anomaly import Anomaly
from qsim.checks.register import operation_times

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
    flags, counts, anomalies = {}, {}, []
    for kind, (earlier_writes, later_writes) in GUARANTEES.items():
        earlier = table.is_write == earlier_writes
        later = table.is_write == later_writes
        witness, broken = table.witnesses(earlier, later)
        flagged = table.disregarded(earlier, later)
        flags[kind] = np.zeros(len(ops), dtype=bool)
        flags[kind][table.rows[broken | flagged]] = True
        counts[kind] = int(broken.sum())
        anomalies += [_anomaly(kind, table, w, x) for w, x in table.first(witness, broken, keep)]
    return Sessions(flags, counts, len(np.unique(table.client)), anomalies)


class _Table:
    """The ok operations that can be checked, as arrays, with their version ranks and event sweep."""

    def __init__(self, ops: pd.DataFrame) -> None:
        is_write = (ops["kind"] == "write").to_numpy()
        rank, self.write_ids, self.write_ts = _version_ranks(ops, is_write)
        self.rows = rows = np.flatnonzero(ops["ok"].to_numpy(dtype=bool) & (rank >= -1))
        self.is_write, self.rank = is_write[rows], rank[rows]
        self.op_id, self.client, self.key = (
            ops[name].to_numpy()[rows] for name in ("op_id", "client", "key")
        )
        start, end = operation_times(ops)
        self.start, self.end = start[rows], end[rows]
        self.version, self.ts = ops["version"].to_numpy()[rows], ops["ts_ms"].to_numpy()[rows]
        n = len(self.rows)
        # Rank order: by (client, key, version, end, op_id): a running max picks the newest version.
        self.by_rank = np.lexsort((self.op_id, self.end, self.rank, self.key, self.client))
        self.rank_of = np.empty(n, dtype=np.int64)
        self.rank_of[self.by_rank] = np.arange(n)
        # Events: each op starts (0) and ends (1); at equal times a start comes first, so an op
        # that ends when another starts does not precede it.
        times = np.concatenate([self.start, self.end])
        is_end = np.repeat([False, True], n)
        op = np.tile(np.arange(n), 2)
        order = np.lexsort((is_end, times, self.key[op], self.client[op]))
        self.event_op, self.event_is_end = op[order], is_end[order]

    def witnesses(self, earlier: np.ndarray, later: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per op: the earlier op (index) with the newest version that ended before it began, or -1;
        and whether the op is a later op whose version is older than that witness's."""
        ends = self.event_is_end & earlier[self.event_op]
        newest = np.maximum.accumulate(np.where(ends, self.rank_of[self.event_op], -1))
        starts = ~self.event_is_end & later[self.event_op]
        ops, found = self.event_op[starts], newest[starts]
        witness = np.full(len(self.rows), -1)
        witness[ops] = np.where(found >= 0, self.by_rank[np.maximum(found, 0)], -1)
        witness[ops] = np.where(self._same_session(ops, witness[ops]), witness[ops], -1)
        has = witness >= 0
        broken = has & (self.rank < self.rank[witness])
        return witness, broken

    def disregarded(self, earlier: np.ndarray, later: np.ndarray) -> np.ndarray:
        """Per op: an earlier op that some later op, starting after it ended, returned or wrote older than."""
        # Backwards: groups in reverse, and within one a higher reverse rank is an older version.
        reverse_rank = len(self.rows) - 1 - self.rank_of
        event_op, is_end = self.event_op[::-1], self.event_is_end[::-1]
        starts = ~is_end & later[event_op]
        oldest = np.maximum.accumulate(np.where(starts, reverse_rank[event_op], -1))
        ends = is_end & earlier[event_op]
        ops, found = event_op[ends], oldest[ends]
        other = np.where(found >= 0, self.by_rank[len(self.rows) - 1 - np.maximum(found, 0)], -1)
        flagged = np.zeros(len(self.rows), dtype=bool)
        flagged[ops] = self._same_session(ops, other) & (self.rank[np.maximum(other, 0)] < self.rank[ops])
        return flagged

    def _same_session(self, ops: np.ndarray, others: np.ndarray) -> np.ndarray:
        safe = np.maximum(others, 0)
        return (others >= 0) & (self.client[safe] == self.client[ops]) & (self.key[safe] == self.key[ops])

    def first(self, witness: np.ndarray, broken: np.ndarray, keep: int) -> list[tuple[int, int]]:
        """The first ``keep`` (witness, later op) pairs, in order of the later op's (start_ms, op_id)."""
        later = np.flatnonzero(broken)
        later = later[np.lexsort((self.op_id[later], self.start[later]))][:keep]
        return [(int(witness[x]), int(x)) for x in later]


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
    if len(by_id):
        row = by_id[np.minimum(np.searchsorted(op_id[by_id], wanted), len(by_id) - 1)]
        found = (op_id[row] == wanted) & (key[row] == key[reads])
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
