"""The session-guarantee checkers against hand-written histories, a brute-force reference and the model."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qsim
from qsim.checks.sessions import check_sessions

NAN = float("nan")
KINDS = ("read_your_writes", "monotonic_reads", "monotonic_writes", "writes_follow_reads")
# (earlier kind, later kind) -> the guarantee a violating pair of them breaks.
GUARANTEE = {
    ("write", "read"): "read_your_writes",
    ("read", "read"): "monotonic_reads",
    ("write", "write"): "monotonic_writes",
    ("read", "write"): "writes_follow_reads",
}


def history(*rows: tuple) -> pd.DataFrame:
    """Rows are (client, kind, key, start_ms, end_ms, ok, version or ts_ms); op_id is the row number.

    The last field is a read's version (the op_id it returned, -1: the initial value) or a write's ts_ms.
    """
    records = []
    for op_id, (client, kind, key, start, end, ok, last) in enumerate(rows):
        write = kind == "write"
        records.append(
            {
                "op_id": op_id,
                "client": client,
                "kind": kind,
                "key": key,
                "start_ms": float(start),
                "end_ms": float(end),
                "ok": ok,
                "version": op_id if write else last,
                "ts_ms": float(last) if write else NAN,
            }
        )
    frame = pd.DataFrame.from_records(records)
    frame["kind"] = pd.Categorical(frame["kind"], ["read", "write"])
    return frame


def pairs(ops: pd.DataFrame, kind: str) -> list[tuple[int, ...]]:
    return [a.ops for a in check_sessions(ops).anomalies if a.kind == kind]


def flagged(ops: pd.DataFrame, kind: str) -> list[int]:
    return ops["op_id"][check_sessions(ops).flags[kind]].tolist()


def test_read_your_writes_read_misses_own_write():
    ops = history(
        (0, "write", 1, 0, 2, True, 1.0),
        (0, "read", 1, 3, 4, True, -1),
        (1, "read", 1, 3, 4, True, -1),  # another client: not its write
    )
    result = check_sessions(ops)
    assert pairs(ops, "read_your_writes") == [(0, 1)]
    assert result.counts == {
        "read_your_writes": 1,
        "monotonic_reads": 0,
        "monotonic_writes": 0,
        "writes_follow_reads": 0,
    }
    assert flagged(ops, "read_your_writes") == [0, 1]
    note = result.anomalies[0].note
    assert "client 0" in note and "write 0" in note and "read 1" in note and "initial value" in note
    assert (result.anomalies[0].client, result.anomalies[0].key) == (0, 1)


def test_monotonic_reads_second_read_goes_back():
    ops = history(
        (5, "write", 2, 0, 1, True, 1.0),
        (5, "write", 2, 0, 1, True, 2.0),
        (3, "read", 2, 2, 3, True, 1),
        (3, "read", 2, 4, 5, True, 0),
    )
    assert pairs(ops, "monotonic_reads") == [(2, 3)]
    assert flagged(ops, "monotonic_reads") == [2, 3]
    assert [k for k in KINDS if check_sessions(ops).counts[k]] == ["monotonic_reads"]
    note = check_sessions(ops).anomalies[0].note
    assert note == (
        "client 3 read key 2 twice: read 2 returned write 1, then read 3 (which started after 2 ended) "
        "returned the older write 0"
    )


def test_monotonic_writes_later_write_ordered_first():
    # The session's second write carries an older timestamp (a skewed clock): the first overwrites it.
    ops = history((0, "write", 1, 0, 1, True, 10.0), (0, "write", 1, 2, 3, True, 9.0))
    assert pairs(ops, "monotonic_writes") == [(0, 1)]
    assert flagged(ops, "monotonic_writes") == [0, 1]


def test_writes_follow_reads_write_ordered_before_what_was_read():
    ops = history(
        (1, "write", 4, 0, 1, True, 10.0),
        (0, "read", 4, 2, 3, True, 0),
        (0, "write", 4, 4, 5, True, 5.0),
    )
    assert pairs(ops, "writes_follow_reads") == [(1, 2)]
    assert flagged(ops, "writes_follow_reads") == [1, 2]
    assert check_sessions(ops).counts["monotonic_writes"] == 0  # the writes are different sessions


def test_equal_timestamps_are_ordered_by_client_then_op_id():
    # Same ts: client 0's write is ordered before client 1's, whatever the op ids.
    ops = history(
        (1, "write", 1, 0, 1, True, 5.0),
        (0, "write", 1, 0, 1, True, 5.0),
        (0, "read", 1, 2, 3, True, 0),
        (0, "read", 1, 4, 5, True, 1),
    )
    assert pairs(ops, "monotonic_reads") == [(2, 3)]
    assert pairs(ops, "read_your_writes") == []


def test_a_well_behaved_history_has_none():
    ops = history(
        (0, "write", 1, 0, 2, True, 1.0),
        (0, "read", 1, 1, 3, True, -1),  # concurrent with the write: unordered
        (0, "read", 1, 2, 4, True, -1),  # starts when the write ends: not after it
        (0, "read", 1, 5, 6, True, 0),
        (0, "write", 1, 7, 8, True, 3.0),
        (0, "read", 1, 9, 10, True, 4),
        (1, "read", 1, 11, 12, True, -1),  # another session
        (0, "read", 1, 11, 12, False, -1),  # failed: returned nothing
        (0, "write", 2, 11, 12, True, 0.5),  # another key: its order does not matter
    )
    result = check_sessions(ops)
    assert result.counts == dict.fromkeys(KINDS, 0)
    assert not any(flags.any() for flags in result.flags.values())
    assert result.anomalies == [] and result.sessions_checked == 2


def test_one_violation_per_later_op_with_the_newest_version_as_witness():
    ops = history(
        (0, "write", 1, 0, 1, True, 1.0),
        (0, "write", 1, 0, 1, True, 3.0),
        (0, "write", 1, 0, 1, True, 2.0),
        (0, "read", 1, 2, 3, True, -1),
        (0, "read", 1, 4, 5, True, -1),
    )
    result = check_sessions(ops)
    assert result.counts["read_your_writes"] == 2
    assert pairs(ops, "read_your_writes") == [(1, 3), (1, 4)]
    assert flagged(ops, "read_your_writes") == [0, 1, 2, 3, 4]


def test_failed_ops_and_unknown_versions_take_no_part():
    ops = history(
        (0, "write", 1, 0, 1, False, 1.0),  # may or may not have happened
        (0, "read", 1, 2, 3, True, -1),
        (0, "write", 1, 4, 5, True, 2.0),
        (0, "read", 1, 6, 7, True, 99),  # no such write: left out
        (0, "read", 1, 8, 9, True, 0),  # returns the failed write, older than write 2
    )
    assert pairs(ops, "read_your_writes") == [(2, 4)]
    assert flagged(ops, "read_your_writes") == [2, 4]
    assert check_sessions(ops, keep=0).anomalies == []


def test_empty_history():
    result = check_sessions(history((0, "read", 1, 0, 1, False, -1)).iloc[:0])
    assert result.counts == dict.fromkeys(KINDS, 0) and result.sessions_checked == 0


def reference(ops: pd.DataFrame) -> dict[str, set[tuple[int, int]]]:
    """Every violating (earlier, later) pair per kind, from the definitions, over every ordered pair."""
    writes = ops[ops["kind"] == "write"]
    order = {w.op_id: (w.ts_ms, w.client, w.op_id) for w in writes.itertuples()}

    def version(op) -> tuple:
        if op.kind == "write":
            return order[op.op_id]
        return (-math.inf,) if op.version == -1 else order[op.version]

    found = {kind: set() for kind in KINDS}
    done = [op for op in ops.itertuples() if op.ok]
    for a in done:
        for b in done:
            same_session = a.client == b.client and a.key == b.key
            if same_session and a.end_ms < b.start_ms and version(b) < version(a):
                found[GUARANTEE[(a.kind, b.kind)]].add((a.op_id, b.op_id))
    return found


@st.composite
def random_histories(draw):
    size, clients, keys = draw(st.integers(1, 10)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    shapes = []
    for _ in range(size):
        start = draw(st.integers(0, 12))
        shapes.append(
            (
                draw(st.integers(0, clients - 1)),
                draw(st.sampled_from(["read", "write"])),
                draw(st.integers(0, keys - 1)),
                start,
                start + draw(st.integers(0, 4)),
                draw(st.integers(0, 4)) > 0,
            )
        )
    written = {}
    for op_id, shape in enumerate(shapes):
        if shape[1] == "write":
            written.setdefault(shape[2], []).append(op_id)
    rows = [
        (
            *shape,
            draw(st.integers(0, 6))
            if shape[1] == "write"
            else draw(st.sampled_from([-1, *written.get(shape[2], [])])),
        )
        for shape in shapes
    ]
    return history(*rows)


@settings(max_examples=500, deadline=None)
@given(random_histories())
def test_matches_the_brute_force_definition(ops):
    expected = reference(ops)
    result = check_sessions(ops, keep=len(ops))
    ends = dict(zip(ops["op_id"], ops["end_ms"], strict=True))
    for kind in KINDS:
        later = {b for _, b in expected[kind]}
        anomalies = {a.ops: a for a in result.anomalies if a.kind == kind}
        assert result.counts[kind] == len(later) == len(anomalies)
        assert {b for _, b in anomalies} == later
        in_pairs = {op for pair in expected[kind] for op in pair}
        assert set(ops["op_id"][result.flags[kind]]) == in_pairs
        for earlier, b in anomalies:
            assert (earlier, b) in expected[kind]
            candidates = [a for a, x in expected[kind] if x == b]
            newest = max(candidates, key=lambda a: (version_of(ops, a), ends[a], a))
            assert earlier == newest


def version_of(ops: pd.DataFrame, op_id: int) -> tuple:
    """The version order key of what op ``op_id`` wrote or read."""
    version = int(ops["version"][op_id])
    if version < 0:
        return (-math.inf,)
    write = ops.iloc[version]
    return (write["ts_ms"], write["client"], version)


def simulated(n: int, fanout: str, coordinator: str) -> pd.DataFrame:
    """R=W=1 closed-loop clients on three hot keys; each operation picks its replicas at random."""
    spec = {
        "name": "sessions",
        "duration": "2s",
        "cluster": {"nodes": 3},
        "network": {"latency": {"dist": "lognormal", "median": "1ms", "sigma": 0.8}},
        "quorum": {
            "n": n,
            "r": 1,
            "w": 1,
            "read_fanout": fanout,
            "write_fanout": "all",
            "replica_selection": "random",
            "coordinator": coordinator,
        },
        "workload": {"arrival": {"type": "closed"}, "clients": 4, "read_fraction": 0.7, "keys": {"count": 3}},
    }
    result = qsim.simulate(qsim.scenario_from_dict(spec), seed=1)
    assert result.error is None
    return result.ops


def assert_really_violates(ops: pd.DataFrame, kind: str, pair: tuple[int, ...]) -> None:
    """Check a reported pair against the definitions, from the ops table alone."""
    by_id = ops.set_index("op_id")
    earlier, later = by_id.loc[pair[0]], by_id.loc[pair[1]]
    assert earlier["ok"] and later["ok"]
    assert (earlier["client"], earlier["key"]) == (later["client"], later["key"])
    assert earlier["end_ms"] < later["start_ms"]
    assert (earlier["kind"], later["kind"]) == {v: k for k, v in GUARANTEE.items()}[kind]
    assert version_of(ops, int(later["version"])) < version_of(ops, int(earlier["version"]))


@pytest.mark.parametrize(("fanout", "coordinator"), [("quorum", "client"), ("all", "random")])
def test_r_w_one_over_three_replicas_breaks_read_your_writes_and_monotonic_reads(fanout, coordinator):
    ops = simulated(3, fanout, coordinator)
    assert np.array_equal(ops["op_id"], np.arange(len(ops)))  # version_of looks writes up by row
    result = check_sessions(ops)
    assert result.sessions_checked == 4
    for kind in ("read_your_writes", "monotonic_reads"):
        assert result.counts[kind] > 0
        first = next(a for a in result.anomalies if a.kind == kind)
        assert_really_violates(ops, kind, first.ops)


def test_one_replica_cannot_break_a_session_guarantee():
    result = check_sessions(simulated(1, "all", "random"))
    assert result.counts == dict.fromkeys(KINDS, 0)
    assert result.sessions_checked == 4
