"""The durability checkers against hand-written histories and brute-force references."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from qsim.checks.durability import durability_summary, lost_writes, lww_lost_updates

NAN = float("nan")


def history(*rows: tuple) -> pd.DataFrame:
    """Rows are (kind, key, start_ms, ok, ts_ms, commit_ms[, client]); op_id is the row number."""
    records = []
    for op_id, (kind, key, start, ok, ts, commit, *client) in enumerate(rows):
        records.append(
            {
                "op_id": op_id,
                "client": client[0] if client else 0,
                "kind": kind,
                "key": key,
                "start_ms": start,
                "ok": ok,
                "version": op_id if kind == "write" else -1,
                "ts_ms": ts,
                "commit_ms": commit,
            }
        )
    columns = ["op_id", "client", "kind", "key", "start_ms", "ok", "version", "ts_ms", "commit_ms"]
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame["kind"] = pd.Categorical(frame["kind"], ["read", "write"])
    return frame.astype({"op_id": "int64", "client": "int32", "key": "int64", "ok": bool, "version": "int64"})


def held(*copies: tuple[int, int]) -> pd.DataFrame:
    """Copies are (key, version)."""
    return pd.DataFrame(copies, columns=["key", "version"], dtype="int64")


def write(key: int, ts: float, *, ok: bool = True, client: int = 0) -> tuple:
    """A committed (if ok) write started at its timestamp, committing 1 ms later."""
    return ("write", key, ts, ok, ts, ts + 1 if ok else NAN, client)


# lost_writes


def test_a_held_newer_version_supersedes_older_acknowledged_writes():
    ops = history(write(1, 1.0), write(1, 2.0), write(1, 3.0))
    assert lost_writes(ops, held((1, 2))).empty


def test_an_acknowledged_write_newer_than_everything_held_is_lost():
    ops = history(write(1, 1.0), write(1, 2.0), write(1, 3.0))
    assert lost_writes(ops, held((1, 0), (1, 1), (1, 1))).op_id.tolist() == [2]


def test_a_held_version_of_a_failed_write_counts_with_its_rank():
    ops = history(write(1, 1.0), write(1, 5.0, ok=False), write(1, 3.0))
    assert lost_writes(ops, held((1, 1))).empty
    assert lost_writes(ops, held((1, 0))).op_id.tolist() == [2]  # the failed write is never lost


def test_keys_are_independent_and_a_key_with_no_copies_loses_everything():
    ops = history(write(2, 1.0), write(1, 9.0), write(2, 2.0), ("read", 1, 3.0, True, NAN, NAN))
    result = lost_writes(ops, held((1, 1)))
    assert result.op_id.tolist() == [0, 2]
    assert lost_writes(ops, held()).op_id.tolist() == [0, 1, 2]


def test_equal_timestamps_are_ordered_by_client_then_op_id():
    ops = history(write(1, 1.0, client=7), write(1, 1.0, client=3), write(1, 1.0, client=3))
    assert lost_writes(ops, held((1, 1))).op_id.tolist() == [0, 2]  # (1, 3, 1) < (1, 3, 2) < (1, 7, 0)
    assert lost_writes(ops, held((1, 2))).op_id.tolist() == [0]
    assert lost_writes(ops, held((1, 0))).empty


def test_lost_writes_are_the_rows_of_ops_with_their_index():
    ops = history(write(1, 1.0), write(1, 2.0))
    ops.index = [10, 20]
    result = lost_writes(ops, held((1, 0)))
    assert result.index.tolist() == [20]
    assert result.columns.tolist() == ops.columns.tolist()


@pytest.mark.parametrize("copy", [(1, 5), (1, -1), (2, 0), (1, 1)])
def test_a_held_version_that_is_not_a_write_of_its_key_is_an_error(copy):
    ops = history(write(1, 1.0), ("read", 1, 2.0, True, NAN, NAN))
    with pytest.raises(ValueError, match="held versions"):
        lost_writes(ops, held(copy))


# lww_lost_updates


def test_a_skewed_clock_makes_a_later_write_lose():
    ops = history(
        ("write", 1, 0.0, True, 10.0, 2.0),  # W1: its coordinator's clock runs 10 ms ahead
        ("write", 1, 5.0, True, 5.0, 7.0),  # W2 starts after W1 committed, with an older timestamp
    )
    result = lww_lost_updates(ops)
    assert result.op_id.tolist() == [1]
    assert result.overwritten_by.tolist() == [0]
    assert result.columns.tolist() == [*ops.columns, "overwritten_by"]


def test_a_commit_exactly_at_the_start_is_not_before_it():
    ops = history(("write", 1, 0.0, True, 10.0, 5.0), ("write", 1, 5.0, True, 5.0, 7.0))
    assert lww_lost_updates(ops).empty


def test_concurrent_writes_are_not_lost_updates():
    ops = history(("write", 1, 0.0, True, 10.0, 6.0), ("write", 1, 5.0, True, 5.0, 7.0))
    assert lww_lost_updates(ops).empty


def test_only_committed_writes_count_on_either_side():
    ops = history(
        ("write", 1, 0.0, False, 10.0, NAN),  # never committed: does not overwrite
        ("write", 1, 5.0, True, 5.0, 7.0),
        ("write", 1, 8.0, False, 6.0, NAN),  # older than W 1 but never committed: not reported
    )
    assert lww_lost_updates(ops).empty


def test_a_committed_but_failed_write_counts():
    ops = history(("write", 1, 0.0, False, 10.0, 2.0), ("write", 1, 5.0, False, 5.0, 7.0))
    assert lww_lost_updates(ops).op_id.tolist() == [1]


def test_overwritten_by_is_the_newest_version_not_the_latest_commit():
    ops = history(
        ("write", 1, 0.0, True, 30.0, 1.0),
        ("write", 1, 0.0, True, 20.0, 3.0),
        ("write", 1, 10.0, True, 10.0, 11.0),
    )
    result = lww_lost_updates(ops)
    assert result.op_id.tolist() == [2] and result.overwritten_by.tolist() == [0]


def test_a_newer_version_in_an_earlier_key_does_not_carry_over():
    ops = history(("write", 1, 0.0, True, 100.0, 1.0), ("write", 2, 5.0, True, 5.0, 6.0))
    assert lww_lost_updates(ops).empty


def test_timestamp_ties_are_broken_by_client():
    ops = history(("write", 1, 0.0, True, 5.0, 1.0, 9), ("write", 1, 2.0, True, 5.0, 3.0, 4))
    assert lww_lost_updates(ops).overwritten_by.tolist() == [0]
    swapped = history(("write", 1, 0.0, True, 5.0, 1.0, 4), ("write", 1, 2.0, True, 5.0, 3.0, 9))
    assert lww_lost_updates(swapped).empty


def test_no_writes():
    ops = history(("read", 1, 0.0, True, NAN, NAN))
    assert lww_lost_updates(ops).empty and "overwritten_by" in lww_lost_updates(ops)
    assert lost_writes(ops, held()).empty


# durability_summary


def test_the_summary_counts_plain_numbers():
    ops = history(
        write(1, 1.0),
        write(1, 2.0),
        write(2, 1.0, ok=False),
        ("write", 3, 0.0, True, 10.0, 2.0),
        ("write", 3, 5.0, True, 5.0, 7.0),
    )
    summary = durability_summary(ops, held((1, 0), (2, 2), (3, 3)))
    assert summary == {
        "acknowledged_writes": 4,
        "lost_writes": 1,
        "lost_fraction": 0.25,
        "lww_lost_updates": 1,
    }
    json.dumps(summary)
    assert durability_summary(history(), held())["lost_fraction"] is None


# Against the definitions, computed the slow and obvious way.


def version_order(ops: pd.DataFrame) -> dict[int, tuple]:
    return {w.op_id: (w.ts_ms, w.client, w.op_id) for w in ops.itertuples() if w.kind == "write"}


def reference_lost_writes(ops: pd.DataFrame, copies: pd.DataFrame) -> list[int]:
    order = version_order(ops)
    kept = [(c.key, order[c.version]) for c in copies.itertuples()]
    return [
        w.op_id
        for w in ops.itertuples()
        if w.kind == "write" and w.ok and not any(k == w.key and v >= order[w.op_id] for k, v in kept)
    ]


def reference_lww(ops: pd.DataFrame) -> dict[int, int]:
    order = version_order(ops)
    committed = [w for w in ops.itertuples() if w.kind == "write" and not np.isnan(w.commit_ms)]
    result = {}
    for w2 in committed:
        before = [w1 for w1 in committed if w1.key == w2.key and w1.commit_ms < w2.start_ms]
        newest = max(before, key=lambda w1: order[w1.op_id], default=None)
        if newest is not None and order[newest.op_id] > order[w2.op_id]:
            result[w2.op_id] = newest.op_id
    return result


def random_run(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small shuffled history with sparse op_ids, skewed timestamps and ties, and held copies."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(0, 31))
    start = rng.integers(0, 16, size).astype(float)
    is_write = rng.random(size) < 0.75
    commit = np.where(rng.random(size) < 0.2, NAN, start + rng.integers(0, 5, size))
    ops = pd.DataFrame(
        {
            "op_id": 100 + 3 * np.arange(size),
            "client": rng.integers(0, 3, size).astype(np.int32),
            "kind": pd.Categorical.from_codes(is_write.astype(np.int8), ["read", "write"]),
            "key": rng.integers(0, 3, size),
            "start_ms": start,
            "ok": ~np.isnan(commit) & (rng.random(size) < 0.85),
            "ts_ms": np.where(is_write, start + rng.integers(-4, 5, size), NAN),  # clock skew
            "commit_ms": np.where(is_write, commit, NAN),
        }
    )
    ops["version"] = np.where(is_write, ops["op_id"], -1)
    ops = ops.iloc[rng.permutation(size)]
    writes = ops[ops["kind"] == "write"]
    chosen = rng.integers(0, len(writes), int(rng.integers(0, 9))) if len(writes) else []
    return ops, writes.iloc[chosen][["key", "version"]].reset_index(drop=True)


def in_ops_order(result: pd.DataFrame, ops: pd.DataFrame) -> bool:
    return result.index.tolist() == [i for i in ops.index if i in set(result.index)]


SEEDS = range(250)


def test_lost_writes_match_the_brute_force_definition():
    for seed in SEEDS:
        ops, copies = random_run(seed)
        result = lost_writes(ops, copies)
        assert sorted(result.op_id) == sorted(reference_lost_writes(ops, copies)), seed
        assert in_ops_order(result, ops), seed


def test_lww_lost_updates_match_the_brute_force_definition():
    for seed in SEEDS:
        ops, _ = random_run(seed)
        result = lww_lost_updates(ops)
        assert dict(zip(result.op_id, result.overwritten_by, strict=True)) == reference_lww(ops), seed
        assert in_ops_order(result, ops), seed
