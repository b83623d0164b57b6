"""The linearizability checker against a brute-force reference, hand-written histories and a simulation."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qsim
from qsim.checks.linearizability import check_linearizability
from qsim.checks.staleness import check_staleness
from qsim.checks.zones import count_dominated

METHODS = ("zones", "search")


def history(*rows: tuple) -> pd.DataFrame:
    """Rows are (kind, key, start_ms, end_ms, ok, version); op_id = row number, a write's ts_ms = start."""
    records = [
        {
            "op_id": op_id,
            "client": op_id,
            "kind": kind,
            "key": key,
            "start_ms": float(start),
            "end_ms": float(end),
            "ok": ok,
            "version": op_id if kind == "write" else version,
            "ts_ms": float(start) if kind == "write" else math.nan,
        }
        for op_id, (kind, key, start, end, ok, version) in enumerate(rows)
    ]
    frame = pd.DataFrame.from_records(
        records, columns=["op_id", "client", "kind", "key", "start_ms", "end_ms", "ok", "version", "ts_ms"]
    )
    frame["kind"] = pd.Categorical(frame["kind"], ["read", "write"])
    return frame


def verdicts(ops: pd.DataFrame, method: str, **options) -> dict[int, str]:
    keys = check_linearizability(ops, method=method, **options).keys
    return dict(zip(keys["key"].tolist(), keys["verdict"].tolist(), strict=True))


# The reference: every order of every choice of failed writes that take effect.


def brute_force(ops: pd.DataFrame) -> dict[int, str]:
    """Each key's verdict by trying every order consistent with real time of every choice of writes."""
    found = {}
    for key, group in ops.groupby("key"):
        rows = [row for row in group.itertuples() if row.kind == "write" or row.ok]
        failed = [row for row in rows if row.kind == "write" and not row.ok]
        choices = itertools.chain.from_iterable(
            itertools.combinations(failed, k) for k in range(len(failed) + 1)
        )
        linear = any(
            _some_order([row for row in rows if row not in failed or row in chosen], -1) for chosen in choices
        )
        found[key] = "valid" if linear else "invalid"
    return found


def _end(row) -> float:
    return math.inf if row.kind == "write" and not row.ok else row.end_ms  # a failed write never ended


def _some_order(remaining: list, value: int) -> bool:
    """Whether the operations can follow in some order, the register holding ``value`` first."""
    if not remaining:
        return True
    for row in remaining:
        if any(_end(other) < row.start_ms for other in remaining if other is not row):
            continue  # something that ended before it started is still to come
        if row.kind == "read" and row.version != value:
            continue
        rest = [other for other in remaining if other is not row]
        if _some_order(rest, row.op_id if row.kind == "write" else value):
            return True
    return False


@st.composite
def small_histories(draw, max_ops: int = 8) -> pd.DataFrame:
    """Up to ``max_ops`` operations on one or two keys, integer times so that ends and starts tie."""
    n = draw(st.integers(1, max_ops))
    keys = draw(st.sampled_from([1, 1, 2]))
    ok = st.sampled_from([True, True, True, False])
    shape = [
        (draw(st.sampled_from(["read", "write"])), draw(st.integers(0, keys - 1)), draw(st.integers(0, 8)))
        for _ in range(n)
    ]
    rows = []
    for kind, key, start in shape:
        same = [i for i, (k, kk, _) in enumerate(shape) if k == "write" and kk == key]
        other = [i for i, (k, kk, _) in enumerate(shape) if k == "write" and kk != key]
        version = draw(st.sampled_from([-1, -1, *same, *same, *same, *other, 99]))
        rows.append((kind, key, start, start + draw(st.integers(0, 4)), draw(ok), version))
    return history(*rows)


@settings(max_examples=700, deadline=None)
@given(small_histories())
def test_both_methods_give_the_brute_force_verdict(ops):
    expected = brute_force(ops)
    for method in METHODS:
        assert verdicts(ops, method) == expected, method


@settings(max_examples=150, deadline=None)
@given(small_histories())
def test_flags_and_counts_follow_the_verdicts(ops):
    result = check_linearizability(ops)
    keys = result.keys.set_index("key")
    assert result.flags.shape == (len(ops),)
    for key, row in keys.iterrows():
        flagged = result.flags[(ops["key"] == key).to_numpy()].any()
        assert (row["verdict"] == "invalid") == (row["violations"] > 0) == flagged
    assert result.violations == keys["violations"].sum() >= len(result.anomalies)
    assert result.keys_invalid == (keys["verdict"] == "invalid").sum()
    for anomaly in result.anomalies:
        named = ops[ops["op_id"].isin(anomaly.ops)]
        assert len(named) == len(anomaly.ops) and (named["key"] == anomaly.key).all()
        assert result.flags[named.index].all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=40), st.data())
def test_dominance_counts_match_counting_by_hand(points, data):
    queries = data.draw(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=20))
    px, py = (np.array([p[i] for p in points], np.int64) for i in (0, 1))
    qx, qy = (np.array([q[i] for q in queries], np.int64) for i in (0, 1))
    expected = [sum(1 for x, y in points if x < a and y > b) for a, b in queries]
    assert count_dominated(px, py, qx, qy).tolist() == expected


# Larger histories, out of the brute force's reach: the two methods agree.


def linearized_history(rng: np.random.Generator, n: int, keys: int, bad: float) -> pd.DataFrame:
    """Ops taking effect at a random point of their interval; then a share ``bad`` of reads is corrupted."""
    start = rng.integers(0, n, n).astype(float)
    end = start + rng.integers(0, 6, n)
    key = rng.integers(0, keys, n)
    is_write = rng.random(n) < 0.4
    ok = rng.random(n) < 0.9
    point = start + rng.random(n) * (end - start)
    failed = is_write & ~ok
    point[failed] = np.where(
        rng.random(failed.sum()) < 0.3, np.inf, start[failed] + rng.exponential(8, failed.sum())
    )
    version = np.arange(n)
    latest: dict[int, int] = {}
    for op in np.argsort(point, kind="stable"):
        if is_write[op]:
            latest[key[op]] = op if np.isfinite(point[op]) else latest.get(key[op], -1)
        else:
            version[op] = latest.get(key[op], -1)
    for op in np.flatnonzero(~is_write & (rng.random(n) < bad)):
        writes = np.flatnonzero(is_write & (key == key[op]))
        version[op] = rng.choice(np.append(writes, -1))
    kinds = np.where(is_write, "write", "read")
    rows = zip(kinds, key, start, end, ok, version, strict=True)
    return history(*((k, int(kk), s, e, bool(o), int(v)) for k, kk, s, e, o, v in rows))


def test_the_methods_agree_on_larger_histories():
    rng = np.random.default_rng(12)
    seen = {"valid": 0, "invalid": 0}
    for trial in range(60):
        bad = (0.0, 0.02, 0.1)[trial % 3]
        ops = linearized_history(rng, int(rng.integers(30, 201)), int(rng.integers(1, 4)), bad)
        zones = verdicts(ops, "zones")
        assert verdicts(ops, "search", budget_s=20.0) == zones
        if bad == 0:
            assert set(zones.values()) == {"valid"}
        for verdict in zones.values():
            seen[verdict] += 1
    assert seen["valid"] > 30 and seen["invalid"] > 30


# Hand-written histories.


def test_a_sequential_history_is_linearizable():
    ops = history(
        ("read", 0, 0, 1, True, -1),
        ("write", 0, 2, 3, True, 1),
        ("read", 0, 4, 5, True, 1),
        ("write", 0, 6, 7, True, 3),
        ("read", 0, 8, 9, True, 3),
    )
    for method in METHODS:
        result = check_linearizability(ops, method=method)
        assert result.violations == 0 and not result.flags.any() and result.anomalies == []
        assert result.keys["verdict"].tolist() == ["valid"]


def test_a_stale_free_new_old_inversion_is_flagged_with_its_witness():
    # Write 1 is in flight from 2 to 20 (it commits at 15): read 2 sees it, read 3 starts after read 2
    # returned and sees write 0 again. No read is stale (write 1 committed after both began).
    ops = history(
        ("write", 0, 0, 1, True, 0),
        ("write", 0, 2, 20, True, 1),
        ("read", 0, 3, 5, True, 1),
        ("read", 0, 6, 8, True, 0),
    )
    ops["commit_ms"] = [1.0, 15.0, math.nan, math.nan]
    assert not check_staleness(ops)["stale"].any()
    result = check_linearizability(ops)
    assert result.violations == 1 and result.keys_invalid == 1
    [anomaly] = result.anomalies
    assert anomaly.ops[:2] == (3, 2) and set(anomaly.ops) == {0, 1, 2, 3}
    assert anomaly.note.startswith(
        "new-old inversion: read 3 started after read 2 had returned write 1's value"
    )
    assert "older write 0" in anomaly.note
    assert result.flags.tolist() == [True, True, True, True]
    assert verdicts(ops, "search") == {0: "invalid"}


def test_a_read_after_a_newer_write_finished_is_a_stale_read():
    ops = history(("write", 0, 0, 1, True, 0), ("write", 0, 2, 3, True, 1), ("read", 0, 4, 5, True, 0))
    [anomaly] = check_linearizability(ops).anomalies
    assert anomaly.note.startswith("stale read: read 2 started after write 1 had finished")
    assert anomaly.ops == (2, 1, 0)


def test_a_read_k_writes_out_of_date_counts_k_violations():
    writes = [("write", 0, 2 * i, 2 * i + 1, True, i) for i in range(4)]
    result = check_linearizability(history(*writes, ("read", 0, 8, 9, True, 0)))
    assert result.violations == 3 and len(result.anomalies) == 3
    assert check_linearizability(history(*writes, ("read", 0, 8, 9, True, 0)), keep=1).violations == 3


def test_a_read_from_the_future_is_flagged():
    ops = history(("read", 0, 0, 1, True, 1), ("write", 0, 2, 3, True, 1))
    for method in METHODS:
        result = check_linearizability(ops, method=method)
        assert result.violations == 1 and result.flags.tolist() == [True, True]
        assert result.anomalies[0].ops == (0, 1)
        assert result.anomalies[0].note.startswith("read from the future: read 0")


def test_a_read_of_a_value_no_write_of_its_key_wrote_is_flagged():
    ops = history(("write", 1, 0, 1, True, 0), ("read", 0, 2, 3, True, 0), ("read", 0, 2, 3, True, 42))
    result = check_linearizability(ops)
    assert result.keys.set_index("key")["violations"].to_dict() == {0: 2, 1: 0}
    assert [a.ops for a in result.anomalies] == [(1,), (2,)]
    assert all(a.note.startswith("read of a value never written") for a in result.anomalies)


@pytest.mark.parametrize(
    ("read_start", "verdict"),
    [(1.0, "valid"), (1.5, "invalid")],  # a read starting as the write ends is concurrent with it
)
def test_equal_times_are_concurrent(read_start, verdict):
    ops = history(("write", 0, 0, 1, True, 0), ("read", 0, read_start, 2, True, -1))
    for method in METHODS:
        assert verdicts(ops, method) == {0: verdict}


def test_failed_writes_may_take_effect_late_or_never_and_failed_reads_are_ignored():
    ops = history(
        ("write", 0, 0, 1, False, 0),  # failed, read much later: took effect late
        ("write", 0, 2, 3, False, 1),  # failed, never read: never took effect
        ("read", 0, 4, 5, True, -1),
        ("read", 0, 6, 7, True, 0),
        ("read", 0, 8, 9, False, 1),  # failed read: ignored
    )
    for method in METHODS:
        assert verdicts(ops, method) == {0: "valid"}
    seen_then_lost = history(
        ("write", 0, 0, 1, False, 0), ("read", 0, 4, 5, True, 0), ("read", 0, 6, 7, True, -1)
    )
    for method in METHODS:
        assert verdicts(seen_then_lost, method) == {0: "invalid"}


def test_flags_follow_the_rows_whatever_the_index():
    ops = history(
        ("read", 5, 0, 1, True, -1),
        ("write", 0, 0, 1, True, 1),
        ("write", 0, 2, 3, True, 2),
        ("read", 0, 4, 5, True, 1),  # stale: write 2 had finished
    )
    shuffled = ops.iloc[[3, 0, 2, 1]].set_axis([40, 10, 30, 20])
    flags = check_linearizability(shuffled).flags
    assert flags.tolist() == [True, False, True, True]


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method"):
        check_linearizability(history(("read", 0, 0, 1, True, -1)), method="guess")


def test_the_search_says_unknown_within_its_budget_on_a_hard_history():
    # 22 concurrent writes, then two reads of different ones with nothing between: not linearizable,
    # but the search must try the writes' orders before it can say so.
    rows = [("write", 0, 0, 100, True, 0) for _ in range(22)]
    ops = history(*rows, ("read", 0, 101, 102, True, 0), ("read", 0, 103, 104, True, 1))
    started = time.perf_counter()
    result = check_linearizability(ops, method="search", budget_s=0.5)
    assert time.perf_counter() - started < 3.0
    assert result.keys_unknown == 1 and result.keys["verdict"].tolist() == ["unknown"]
    assert verdicts(ops, "zones") == {0: "invalid"}


# A simulation of a strict quorum without read repair.

INVERSIONS = {
    "name": "inversions",
    "duration": "5s",
    "cluster": {"nodes": 3, "replica": {"service_time": {"dist": "exponential", "mean": 0.05}}},
    "network": {"latency": {"dist": "lognormal", "median": 1, "sigma": 1.0}},
    "quorum": {"n": 3, "r": 2, "w": 2, "read_fanout": "all", "write_fanout": "all"},
    "repair": {"read_repair": "off"},
    "workload": {
        "arrival": {"type": "poisson", "rate": "4000/s"},
        "clients": 8,
        "read_fraction": 0.7,
        "keys": {"count": 3, "popularity": "uniform"},
        "max_ops": 10_000,
    },
}


def test_a_strict_quorum_without_read_repair_shows_new_old_inversions():
    ops = qsim.simulate(qsim.scenario_from_dict(INVERSIONS), seed=1, reraise=True).ops
    assert ops["ok"].all()
    result = check_linearizability(ops)
    inversions = [a for a in result.anomalies if a.note.startswith("new-old inversion")]
    assert inversions and result.keys_invalid >= 1
    by_id = ops.set_index("op_id")
    for anomaly in inversions:
        late, seen = by_id.loc[anomaly.ops[0]], by_id.loc[anomaly.ops[1]]
        old, new = late["version"], seen["version"]
        # A read saw the new value and returned before another began, which returned the older one.
        assert late["kind"] == seen["kind"] == "read" and seen["end_ms"] < late["start_ms"]
        assert by_id.loc[old, "ts_ms"] < by_id.loc[new, "ts_ms"]
        assert {old, new} <= set(anomaly.ops)
        # ... and the old value was in effect before the new one: an op showing old ended first.
        shows = by_id.loc[list(anomaly.ops)]
        of_old = shows[shows.index.isin([old]) | (shows["version"] == old) & (shows["kind"] == "read")]
        of_new = shows[shows.index.isin([new]) | (shows["version"] == new) & (shows["kind"] == "read")]
        assert of_old["end_ms"].min() < of_new["start_ms"].max()
    assert result.flags[ops["op_id"].isin(inversions[0].ops).to_numpy()].all()
    assert verdicts(ops, "search") == verdicts(ops, "zones")


@pytest.mark.parametrize(
    ("start", "end"), [(float("nan"), 1.0), (0.0, float("inf")), (2.0, 1.0)], ids=["nan", "inf", "backwards"]
)
def test_times_no_history_has_are_refused_naming_the_op(start, end):
    from qsim.checks.sessions import check_sessions

    ops = pd.DataFrame(
        {
            "op_id": [0, 7],
            "client": [0, 0],
            "kind": ["write", "read"],
            "key": [1, 1],
            "start_ms": [0.0, start],
            "end_ms": [0.5, end],
            "ok": [True, True],
            "version": [0, 0],
            "ts_ms": [0.0, float("nan")],
        }
    )
    for check in (check_linearizability, check_sessions):
        with pytest.raises(ValueError, match=r"op ids 7\)"):
            check(ops)
