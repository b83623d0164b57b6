"""Linearizability of each key as a read/write register: a pure function of the ops table.

A key's history is linearizable if some total order of its operations, consistent with real time
(an operation that ended before another started, ``a.end_ms < b.start_ms``, comes first; equal
times are concurrent), has every read return the latest write before it, or the initial value -1
if there is none. A write that failed may take effect at any time after its start, or never. Reads
that failed are ignored. Every write writes a unique value, its op id.

Two methods give the same verdicts. ``"zones"`` (the default) is the exact O(n log n) test of
:mod:`qsim.checks.zones` and names the operations behind every violation; ``"search"`` is the
Wing & Gong / Lowe search of :mod:`qsim.checks.wgl`, one key at a time within ``budget_s``
(a key out of budget is "unknown"), an independent check that gives verdicts and a rough witness.

One violation is one of:

- a read from the future: an ok read that ended before the write whose value it returned started;
- a read of a value never written: an ok read of a version that no write of its key has;
- zones: a conflicting pair of clusters of a key (a cluster is a write, or the initial value, with
  the reads that returned it): an operation of each ended before an operation of the other
  started, so neither can come first. It is a *new-old inversion* when a read showed the other
  cluster's value before the late read began, and a *stale read* when the other write itself had
  finished by then. A read that returned a value k writes out of date conflicts with each of
  those k writes: k violations;
- search: a key without violations of the first two kinds that has no linearization: one per key.

A key is invalid iff it has a violation; counts include every violation, also those beyond ``keep``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from qsim.checks.anomaly import Anomaly
from qsim.checks.register import Registers, registers
from qsim.checks.wgl import INVALID, UNKNOWN, VALID, Search
from qsim.checks.zones import NO_ROW, Clusters, clusters, first_pairs, witness_rows

KIND = "linearizability"
METHODS = ("zones", "search")
SEARCH_NAMED = 12  # operations a search witness names at most


@dataclass(frozen=True)
class Linearizability:
    """The verdict on a history, per key, with the operations that show each violation.

    Attributes:
        flags: aligned with the rows of the ops table: the operation takes part in a witness.
        keys: one row per key: key, ops (rows of the key), verdict ('valid', 'invalid' or
            'unknown') and violations.
        anomalies: the first ``keep`` violations, in order of their earliest operation (by
            start_ms, then op_id), as :class:`Anomaly` of kind "linearizability".
        keys_checked, keys_invalid, keys_unknown: counts of keys.
        violations: every violation, as the module docstring defines one.
    """

    flags: np.ndarray
    keys: pd.DataFrame
    anomalies: list[Anomaly]
    keys_checked: int
    keys_invalid: int
    keys_unknown: int
    violations: int


def check_linearizability(
    ops: pd.DataFrame, *, method: str = "zones", budget_s: float = 5.0, keep: int = 100
) -> Linearizability:
    """Check every key of ``ops`` for linearizability as a read/write register.

    Args:
        ops: the history, with at least op_id, kind, key, start_ms, end_ms, ok and version
            (ts_ms and client, when present, order writes for the notes).
        method: "zones" (exact, with witnesses) or "search" (Wing & Gong with Lowe's memoization).
        budget_s: the search's time per key, wall seconds; a key out of it is "unknown".
        keep: how many anomalies to return (all are counted).

    Raises:
        ValueError: for an unknown method or missing columns.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    reg = registers(ops)
    flags = np.zeros(len(reg.op_id), bool)
    per_key = np.zeros(len(reg.keys), np.int64)
    found = _singles(reg, flags, per_key, keep)
    if method == "zones":
        verdict = _zones(reg, flags, per_key, keep, found)
    else:
        verdict = _search(reg, flags, per_key, budget_s, found)
    found.sort(key=lambda item: item[0])
    table = pd.DataFrame(
        {
            "key": reg.keys,
            "ops": np.bincount(reg.key_index, minlength=len(reg.keys)),
            "verdict": verdict,
            "violations": per_key,
        }
    )
    return Linearizability(
        flags=flags,
        keys=table,
        anomalies=[anomaly for _, anomaly in found[:keep]],
        keys_checked=len(reg.keys),
        keys_invalid=int((verdict == INVALID).sum()),
        keys_unknown=int((verdict == UNKNOWN).sum()),
        violations=int(per_key.sum()),
    )


def _singles(reg: Registers, flags: np.ndarray, per_key: np.ndarray, keep: int) -> list[tuple[int, Anomaly]]:
    """Count and flag the reads from the future and of values never written; return the first ``keep``."""
    flags[reg.future] = flags[reg.future_write] = flags[reg.unknown] = True
    single = np.concatenate([reg.future, reg.unknown])
    per_key += np.bincount(reg.key_index[single], minlength=len(per_key))
    earliest = np.concatenate(
        [np.minimum(reg.earliest[reg.future], reg.earliest[reg.future_write]), reg.earliest[reg.unknown]]
    )
    found = []
    for position in np.argsort(earliest, kind="stable")[:keep].tolist():
        if position < len(reg.future):
            anomaly = _future_anomaly(reg, int(reg.future[position]), int(reg.future_write[position]))
        else:
            anomaly = _unknown_anomaly(reg, int(single[position]))
        found.append((int(earliest[position]), anomaly))
    return found


def _zones(reg, flags, per_key, keep, found) -> np.ndarray:
    """Count, flag and list the conflicting pairs of clusters; return each key's verdict."""
    cl = clusters(reg)
    involved = np.flatnonzero(cl.conflicts > 0)
    pairs = np.bincount(cl.key_index[involved], weights=cl.conflicts[involved], minlength=len(per_key))
    per_key += pairs.astype(np.int64) // 2  # each pair counted from both sides
    flags[witness_rows(cl, involved)] = True
    found += [(int(cl.earliest[i]), _pair_anomaly(reg, cl, i, j)) for i, j in first_pairs(cl, keep)]
    return _verdicts(per_key)


def _search(reg, flags, per_key, budget_s, found) -> np.ndarray:
    """Search every key that has no violation yet; return each key's verdict."""
    verdict = _verdicts(per_key)
    search = Search(reg)
    for key_index in np.flatnonzero(per_key == 0).tolist():
        verdict[key_index], stuck = search.key(key_index, budget_s)
        if verdict[key_index] == INVALID:
            per_key[key_index] = 1
            flags[stuck] = True
            found.append((int(reg.earliest[stuck].min()), _search_anomaly(reg, stuck)))
    return verdict


def _verdicts(per_key: np.ndarray) -> np.ndarray:
    """Each key's verdict from its violations so far, as objects (the search may set "unknown")."""
    return np.array([VALID, INVALID], dtype=object)[(per_key > 0).astype(np.intp)]


def _future_anomaly(reg: Registers, read: int, write: int) -> Anomaly:
    """A read that ended before the write whose value it returned started."""
    note = (
        f"read from the future: read {reg.op_id[read]} returned write {reg.op_id[write]}'s value but ended"
        f" (at {reg.end[read]:g} ms) before that write started (at {reg.start[write]:g} ms)"
    )
    return Anomaly(KIND, int(reg.key[read]), (int(reg.op_id[read]), int(reg.op_id[write])), note)


def _unknown_anomaly(reg: Registers, read: int) -> Anomaly:
    """A read of a version that no write of its key has."""
    note = (
        f"read of a value never written: read {reg.op_id[read]} returned version {reg.version[read]},"
        f" which no write of key {reg.key[read]} wrote"
    )
    return Anomaly(KIND, int(reg.key[read]), (int(reg.op_id[read]),), note)


def _pair_anomaly(reg: Registers, cl: Clusters, i: int, j: int) -> Anomaly:
    """Two clusters that conflict, told as: a read returned A's value after B's had been seen."""
    a, b = _orient(reg, cl, i, j)
    late, seen, write_b = cl.starter[a], cl.ender[b], cl.write[b]
    write_a, shown, next_b = cl.write[a], cl.ender[a], cl.starter[b]
    older = write_a == NO_ROW or (write_b != NO_ROW and reg.age[write_a] < reg.age[write_b])
    kind = "stale read" if seen == write_b else "new-old inversion"
    value = (
        "the initial value"
        if write_a == NO_ROW
        else f"{'the older ' if older else ''}write {reg.op_id[write_a]}'s value"
    )
    note = f"{kind}: {_name(reg, late)} started after {_had(reg, seen, write_b)}, yet returned {value}"
    if write_a != NO_ROW:  # the initial value was in effect before anything: no need to say so
        note += f"; {_had(reg, shown, write_a)} before {_started(reg, next_b, write_b)}"
    rows = [late, seen, write_b, write_a, shown, next_b]
    ops = tuple(dict.fromkeys(int(reg.op_id[row]) for row in rows if row != NO_ROW))
    return Anomaly(KIND, int(reg.keys[cl.key_index[i]]), ops, note)


def _orient(reg: Registers, cl: Clusters, i: int, j: int) -> tuple[int, int]:
    """Return (a, b): a's value is the one read late, the older of the two when both were read late."""
    age = [reg.age[cl.write[c]] if cl.write[c] != NO_ROW else -1 for c in (i, j)]
    a, b = (i, j) if age[0] <= age[1] else (j, i)
    # Only a forward zone's latest start is surely a read; a backward zone's may be its write.
    return (b, a) if cl.starter[a] == cl.write[a] else (a, b)


def _name(reg: Registers, row: int) -> str:
    return f"{'write' if reg.is_write[row] else 'read'} {reg.op_id[row]}"


def _had(reg: Registers, row: int, write: int) -> str:
    """How ``row`` showed ``write``'s value: by finishing it, or by returning it."""
    if row == write:
        return f"write {reg.op_id[write]} had finished"
    value = "the initial value" if write == NO_ROW else f"write {reg.op_id[write]}'s value"
    return f"read {reg.op_id[row]} had returned {value}"


def _started(reg: Registers, row: int, write: int) -> str:
    if row == write:
        return f"write {reg.op_id[write]} started"
    return f"read {reg.op_id[row]}, which returned write {reg.op_id[write]}'s value, started"


def _search_anomaly(reg: Registers, stuck: np.ndarray) -> Anomaly:
    """A stretch of a key's operations, with no pause, that fits no order after the earlier ones."""
    stuck = stuck[np.argsort(reg.earliest[stuck], kind="stable")]
    ids = reg.op_id[stuck].tolist()
    named = "" if len(ids) <= SEARCH_NAMED else f" (the first {SEARCH_NAMED} named)"
    note = (
        f"no linearization (search): the {len(ids)} operations from op {ids[0]} to op {ids[-1]},"
        f" which overlap with no pause between them, fit no order after the key's earlier ones{named}"
    )
    return Anomaly(KIND, int(reg.key[stuck[0]]), tuple(ids[:SEARCH_NAMED]), note)
