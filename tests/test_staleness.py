"""The staleness checker against hand-written histories and a brute-force reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qsim.checks.staleness import check_staleness

NAN = float("nan")


def history(*rows: tuple) -> pd.DataFrame:
    """Rows are (kind, key, start_ms, ok, version, ts_ms, commit_ms[, client]); op_id is the row number."""
    records = []
    for op_id, row in enumerate(rows):
        kind, key, start, ok, version, ts, commit, *client = row
        records.append(
            {
                "op_id": op_id,
                "client": client[0] if client else 0,
                "kind": kind,
                "key": key,
                "start_ms": start,
                "ok": ok,
                "version": op_id if kind == "write" else version,
                "ts_ms": ts,
                "commit_ms": commit,
            }
        )
    frame = pd.DataFrame.from_records(records)
    frame["kind"] = pd.Categorical(frame["kind"], ["read", "write"])
    return frame


def verdict(ops: pd.DataFrame, op_id: int) -> tuple:
    checked = check_staleness(ops).iloc[op_id]
    if pd.isna(checked["stale"]):
        return (None, None, None)
    return (bool(checked["stale"]), int(checked["k"]), float(checked["t_ms"]))


def test_read_of_the_newest_commit_is_fresh():
    ops = history(("write", 1, 0.0, True, 0, 0.0, 5.0), ("read", 1, 6.0, True, 0, NAN, NAN))
    assert verdict(ops, 1) == (False, 0, 1.0)


def test_read_that_misses_the_only_commit_is_stale_with_k_one():
    ops = history(("write", 1, 0.0, True, 0, 0.0, 5.0), ("read", 1, 6.0, True, -1, NAN, NAN))
    assert verdict(ops, 1) == (True, 1, 1.0)


def test_k_counts_committed_versions_newer_than_the_one_returned():
    ops = history(
        ("write", 1, 0.0, True, 0, 1.0, 2.0),
        ("write", 1, 0.0, True, 0, 2.0, 3.0),
        ("write", 1, 0.0, True, 0, 3.0, 4.0),
        ("write", 1, 0.0, True, 0, 4.0, 100.0),  # commits after the read starts: not missed
        ("read", 1, 10.0, True, 0, NAN, NAN),
    )
    assert verdict(ops, 4) == (True, 2, 6.0)


def test_a_read_of_a_version_missing_from_the_history_misses_only_its_own_key():
    # Key 1's write 0 commits; key 2's reads returned version 99, a write the history lacks (cut off).
    ops = history(
        ("write", 1, 0.0, True, 0, 1.0, 2.0),
        ("write", 2, 0.0, True, 0, 1.0, 3.0),
        ("write", 2, 0.0, True, 0, 2.0, 4.0),
        ("read", 2, 10.0, True, 99, NAN, NAN),
    )
    assert verdict(ops, 3) == (True, 2, 6.0)  # both versions of key 2, none of key 1


@pytest.mark.parametrize("returned", [0, 3])  # key 1's write, ordered before key 2's; key 3's, after
def test_a_read_of_another_keys_write_misses_every_version_of_its_own_key(returned):
    # Key 2's read returned a write of another key: no version of key 2, so it missed both of them.
    ops = history(
        ("write", 1, 0.0, True, 0, 1.0, 2.0),
        ("write", 2, 0.0, True, 0, 1.0, 3.0),
        ("write", 2, 0.0, True, 0, 2.0, 4.0),
        ("write", 3, 0.0, True, 0, 1.0, 2.0),
        ("read", 2, 10.0, True, returned, NAN, NAN),
    )
    assert verdict(ops, 4) == (True, 2, 6.0)


def test_writes_with_repeated_op_ids_are_refused():
    ops = history(
        ("write", 1, 0.0, True, 0, 1.0, 2.0),
        ("write", 1, 0.0, True, 0, 2.0, 3.0),
        ("read", 1, 5.0, True, 7, NAN, NAN),
    )
    ops["op_id"] = [7, 7, 8]
    with pytest.raises(ValueError, match="op_id must be unique"):
        check_staleness(ops)


def test_version_order_not_commit_order_decides_the_newest():
    # B (ts 2) commits at 5, before A (ts 1) commits at 7; B is the newer version.
    ops = history(
        ("write", 1, 0.0, True, 0, 1.0, 7.0),
        ("write", 1, 0.0, True, 0, 2.0, 5.0),
        ("read", 1, 8.0, True, 0, NAN, NAN),  # returns A
        ("read", 1, 6.0, True, 1, NAN, NAN),  # returns B
    )
    assert verdict(ops, 2) == (True, 1, 3.0)  # t from B's commit, the newest version
    assert verdict(ops, 3) == (False, 0, 1.0)


def test_an_uncommitted_newer_version_is_fresh():
    ops = history(
        ("write", 1, 0.0, True, 0, 1.0, 5.0),
        ("write", 1, 0.0, False, 0, 3.0, NAN),  # failed, never committed, but applied somewhere
        ("read", 1, 8.0, True, 1, NAN, NAN),
    )
    assert verdict(ops, 2) == (False, 0, 3.0)


def test_a_commit_at_the_read_start_counts_as_before_it():
    ops = history(("write", 1, 0.0, True, 0, 0.0, 5.0), ("read", 1, 5.0, True, -1, NAN, NAN))
    assert verdict(ops, 1) == (True, 1, 0.0)


def test_reads_with_no_prior_commit_and_failed_reads_are_unchecked():
    ops = history(
        ("read", 1, 1.0, True, -1, NAN, NAN),
        ("write", 1, 0.0, True, 0, 0.0, 5.0),
        ("read", 1, 9.0, False, -1, NAN, NAN),
        ("read", 2, 9.0, True, -1, NAN, NAN),  # another key: nothing committed there
    )
    assert verdict(ops, 0) == (None, None, None)
    assert verdict(ops, 2) == (None, None, None)
    assert verdict(ops, 3) == (None, None, None)


def test_equal_timestamps_are_ordered_by_writer_then_op_id():
    ops = history(
        ("write", 1, 0.0, True, 0, 1.0, 2.0, 7),
        ("write", 1, 0.0, True, 0, 1.0, 2.0, 3),
        ("read", 1, 5.0, True, 1, NAN, NAN),  # returns the write of client 3: older than client 7's
        ("read", 1, 5.0, True, 0, NAN, NAN),
    )
    assert verdict(ops, 2) == (True, 1, 3.0)
    assert verdict(ops, 3) == (False, 0, 3.0)


def test_writes_are_never_checked():
    ops = history(("write", 1, 0.0, True, 0, 0.0, 1.0), ("write", 1, 2.0, True, 0, 2.0, 3.0))
    result = check_staleness(ops)
    assert result["stale"].isna().all() and result["k"].isna().all() and result["t_ms"].isna().all()


def reference(ops: pd.DataFrame) -> list[tuple]:
    """The definition in DESIGN.md, computed the slow and obvious way."""
    writes = ops[ops["kind"] == "write"]
    order = {row.op_id: (row.ts_ms, row.client, row.op_id) for row in writes.itertuples()}
    verdicts = []
    for row in ops.itertuples():
        if row.kind != "read" or not row.ok:
            verdicts.append((None, None, None))
            continue
        committed = writes[(writes["key"] == row.key) & (writes["commit_ms"] <= row.start_ms)]
        if committed.empty:
            verdicts.append((None, None, None))
            continue
        newest = max(committed.itertuples(), key=lambda w: order[w.op_id])
        returned = order[row.version] if row.version >= 0 else (-np.inf,)
        missed = sum(order[w.op_id] > returned for w in committed.itertuples())
        verdicts.append((missed > 0, missed, row.start_ms - newest.commit_ms))
    return verdicts


@st.composite
def random_histories(draw):
    size = draw(st.integers(1, 40))
    rows, write_ids = [], {}
    for op_id in range(size):
        key = draw(st.integers(0, 2))
        start = float(draw(st.integers(0, 20)))
        if draw(st.booleans()):
            ts = start + draw(st.integers(0, 2))
            commit = NAN if draw(st.integers(0, 4)) == 0 else ts + draw(st.integers(0, 5))
            rows.append(("write", key, start, commit == commit, 0, ts, commit, draw(st.integers(0, 2))))
            write_ids.setdefault(key, []).append(op_id)
        else:
            candidates = [-1, *write_ids.get(key, [])]
            version = draw(st.sampled_from(candidates))
            rows.append(("read", key, start, draw(st.integers(0, 5)) > 0, version, NAN, NAN))
    return history(*rows)


@settings(max_examples=300, deadline=None)
@given(random_histories())
def test_matches_the_brute_force_definition(ops):
    expected = reference(ops)
    result = check_staleness(ops)
    for op_id, (stale, k, t) in enumerate(expected):
        row = result.iloc[op_id]
        if stale is None:
            assert pd.isna(row["stale"]) and pd.isna(row["k"]) and np.isnan(row["t_ms"])
        else:
            assert (bool(row["stale"]), int(row["k"])) == (stale, k)
            assert row["t_ms"] == pytest.approx(t)
