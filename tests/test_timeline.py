"""Availability and staleness over time and around faults, on hand-written tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from qsim.timeline import active_faults, availability_timeline, fault_windows_summary, recovery

NAN = float("nan")


def history(*rows: tuple) -> pd.DataFrame:
    """Rows are (kind, start_ms, end_ms, ok[, stale]); op_id is the row number, stale NA if left out."""
    records = []
    for op_id, (kind, start, end, ok, *stale) in enumerate(rows):
        records.append(
            {
                "op_id": op_id,
                "kind": kind,
                "start_ms": start,
                "end_ms": end,
                "ok": ok,
                "stale": stale[0] if stale else None,
            }
        )
    frame = pd.DataFrame.from_records(records, columns=["op_id", "kind", "start_ms", "end_ms", "ok", "stale"])
    frame["kind"] = pd.Categorical(frame["kind"], ["read", "write"])
    frame["start_ms"] = frame["start_ms"].astype(float)
    frame["end_ms"] = frame["end_ms"].astype(float)
    frame["ok"] = frame["ok"].astype(bool)
    frame["stale"] = frame["stale"].astype("boolean")
    return frame


def fault_table(*rows: tuple) -> pd.DataFrame:
    """Rows are (kind, start_ms, end_ms); fault_id is the row number."""
    return pd.DataFrame(
        {
            "fault_id": np.arange(len(rows), dtype=np.int64),
            "kind": [row[0] for row in rows],
            "target": [f"n{i}" for i in range(len(rows))],
            "start_ms": np.array([row[1] for row in rows], dtype=float),
            "end_ms": np.array([row[2] for row in rows], dtype=float),
            "params": ["{}"] * len(rows),
        }
    )


NO_FAULTS = fault_table()


# active_faults


def test_a_fault_starting_exactly_at_the_op_end_overlaps_it():
    ops = history(("read", 0.0, 10.0, True))
    assert active_faults(ops, fault_table(("crash", 10.0, 20.0))).tolist() == ["0"]


def test_a_fault_ending_exactly_at_the_op_start_does_not_overlap_it():
    ops = history(("read", 10.0, 12.0, True))
    assert active_faults(ops, fault_table(("crash", 0.0, 10.0))).tolist() == [""]


def test_a_fault_inside_an_op_and_an_op_inside_a_fault_overlap():
    ops = history(("read", 0.0, 10.0, True), ("write", 4.0, 5.0, False))
    assert active_faults(ops, fault_table(("slow", 3.0, 6.0))).tolist() == ["0", "0"]


def test_a_fault_with_no_end_lasts_forever():
    ops = history(("read", 0.0, 1.0, True), ("read", 1e9, 1e9 + 1, True))
    assert active_faults(ops, fault_table(("partition", 0.5, NAN))).tolist() == ["0", "0"]


def test_an_op_with_no_end_is_the_instant_of_its_start():
    ops = history(("write", 5.0, NAN, False), ("write", 5.0, NAN, False), ("write", 5.0, NAN, False))
    faults = fault_table(("crash", 5.0, 6.0), ("crash", 3.0, 5.0), ("crash", 5.5, 7.0))
    assert active_faults(ops, faults).tolist() == ["0", "0", "0"]


def test_an_empty_fault_interval_overlaps_nothing():
    ops = history(("read", 0.0, 10.0, True))
    assert active_faults(ops, fault_table(("clock_skew", 5.0, 5.0))).tolist() == [""]


def test_ids_are_ascending_comma_separated_and_aligned_with_the_ops_index():
    ops = history(("read", 0.0, 10.0, True), ("read", 20.0, 30.0, True), ("read", 50.0, 60.0, True))
    ops.index = [7, 3, 5]
    faults = fault_table(("crash", 25.0, 40.0), ("slow", 0.0, NAN), ("degrade", 9.0, 21.0))
    result = active_faults(ops, faults.iloc[::-1])  # given in any order
    assert result.dtype == "string"
    assert result.index.tolist() == [7, 3, 5]
    assert result.tolist() == ["1,2", "0,1,2", "1"]


def test_no_faults_means_empty_strings():
    ops = history(("read", 0.0, 10.0, True), ("write", 1.0, 2.0, True))
    result = active_faults(ops, NO_FAULTS)
    assert result.dtype == "string" and result.tolist() == ["", ""]


# availability_timeline


def test_every_window_appears_with_exact_counts():
    ops = history(
        ("read", 0.0, 1.0, True, False),
        ("read", 5.0, 6.0, False),
        ("write", 9.9, 30.0, True),
        ("read", 12.0, 13.0, True, True),
        ("read", 35.0, 36.0, True),  # ok but unchecked (no commit before it)
        ("write", 39.0, 40.0, False),
    )
    timeline = availability_timeline(ops, 10.0)
    assert timeline.columns.tolist() == [
        "window_start_ms",
        "window_end_ms",
        "reads",
        "reads_ok",
        "writes",
        "writes_ok",
        "availability",
        "read_availability",
        "write_availability",
        "reads_checked",
        "stale_reads",
        "stale_fraction",
    ]
    assert timeline["window_start_ms"].tolist() == [0.0, 10.0, 20.0, 30.0]
    assert timeline["window_end_ms"].tolist() == [10.0, 20.0, 30.0, 40.0]
    assert timeline["reads"].tolist() == [2, 1, 0, 1]
    assert timeline["reads_ok"].tolist() == [1, 1, 0, 1]
    assert timeline["writes"].tolist() == [1, 0, 0, 1]
    assert timeline["writes_ok"].tolist() == [1, 0, 0, 0]
    np.testing.assert_array_equal(timeline["availability"], [2 / 3, 1.0, NAN, 0.5])
    np.testing.assert_array_equal(timeline["read_availability"], [0.5, 1.0, NAN, 1.0])
    np.testing.assert_array_equal(timeline["write_availability"], [1.0, NAN, NAN, 0.0])
    assert timeline["reads_checked"].tolist() == [1, 1, 0, 0]
    assert timeline["stale_reads"].tolist() == [0, 1, 0, 0]
    np.testing.assert_array_equal(timeline["stale_fraction"], [0.0, 1.0, NAN, NAN])


def test_the_default_end_includes_the_window_of_the_last_start_even_on_a_boundary():
    ops = history(("read", 3.0, 4.0, True), ("read", 20.0, 21.0, True))
    timeline = availability_timeline(ops, 10.0)
    assert timeline["window_start_ms"].tolist() == [0.0, 10.0, 20.0]
    assert timeline["reads"].tolist() == [1, 0, 1]


def test_explicit_bounds_are_start_inclusive_and_end_exclusive():
    ops = history(("read", 3.0, 4.0, True), ("read", 10.0, 11.0, True), ("write", 40.0, 41.0, True))
    timeline = availability_timeline(ops, 10.0, start_ms=5.0, end_ms=35.0)
    assert timeline["window_start_ms"].tolist() == [5.0, 15.0, 25.0]  # the last one reaches past 35
    assert timeline["reads"].tolist() == [1, 0, 0]  # 3.0 is before the start; 40.0 after the end
    assert timeline["writes"].sum() == 0
    exact = availability_timeline(ops, 10.0, end_ms=40.0)
    assert exact["window_start_ms"].tolist() == [0.0, 10.0, 20.0, 30.0]


def test_no_ops_gives_no_windows_unless_an_end_is_given():
    ops = history()
    assert availability_timeline(ops, 10.0).empty
    timeline = availability_timeline(ops, 10.0, end_ms=20.0)
    assert timeline["reads"].tolist() == [0, 0]
    assert timeline["availability"].isna().all() and timeline["stale_fraction"].isna().all()


def test_the_window_must_have_a_positive_width():
    with pytest.raises(ValueError, match="window_ms"):
        availability_timeline(history(("read", 0.0, 1.0, True)), 0.0)


# recovery


def windows(*availability: tuple[int, int], width: float = 10.0) -> pd.DataFrame:
    """A timeline from (ok, ops) per window, all operations reads."""
    ops = [total for _, total in availability]
    ok = [good for good, _ in availability]
    return pd.DataFrame(
        {
            "window_start_ms": width * np.arange(len(ops)),
            "window_end_ms": width * np.arange(1, len(ops) + 1),
            "reads": ops,
            "reads_ok": ok,
            "writes": 0,
            "writes_ok": 0,
            "availability": [g / t if t else NAN for g, t in availability],
        }
    )


def test_recovery_is_the_first_window_back_at_the_baseline_skipping_empty_windows():
    # Baseline: windows ending by 20 (the first fault's start): 18 of 20 ok = 0.9.
    timeline = windows((10, 10), (8, 10), (0, 10), (1, 10), (0, 0), (895, 1000), (9, 10))
    faults = fault_table(("crash", 20.0, 25.0))
    assert recovery(timeline, faults) == [
        {
            "fault_id": 0,
            "kind": "crash",
            "target": "n0",
            "end_ms": 25.0,
            "recovered_ms": 50.0,  # 0.895 >= 0.9 - 0.01, after the empty window at 40
            "time_to_recover_ms": 25.0,
        }
    ]
    assert recovery(timeline, faults, tolerance=0.0)[0]["recovered_ms"] == 60.0


def test_a_window_starting_exactly_at_the_fault_end_can_be_the_recovery():
    timeline = windows((10, 10), (0, 10), (10, 10))
    [result] = recovery(timeline, fault_table(("partition", 10.0, 20.0)))
    assert (result["recovered_ms"], result["time_to_recover_ms"]) == (20.0, 0.0)


def test_a_fault_that_never_recovers_and_faults_without_end():
    timeline = windows((10, 10), (5, 10), (5, 10))
    faults = fault_table(("slow", 10.0, 15.0), ("crash", 12.0, NAN))
    [result] = recovery(timeline, faults)  # the crash never ended: left out
    assert result["fault_id"] == 0
    assert result["recovered_ms"] is None and result["time_to_recover_ms"] is None


def test_the_baseline_is_one_without_windows_before_the_first_fault():
    timeline = windows((5, 10), (95, 100), (99, 100))
    faults = fault_table(("degrade", 30.0, 35.0), ("crash", 5.0, 12.0))  # the crash starts first
    results = recovery(timeline, faults)
    assert [r["fault_id"] for r in results] == [0, 1]
    assert results[0]["recovered_ms"] is None  # nothing starts at or after 35
    assert results[1]["recovered_ms"] == 20.0  # 0.95 < 0.99 at 10; 0.99 at 20
    assert recovery(timeline, NO_FAULTS) == []


# fault_windows_summary


def test_the_summary_splits_ops_by_whether_a_fault_overlaps_them():
    ops = history(
        ("read", 0.0, 1.0, True, False),
        ("write", 2.0, 3.0, True),
        ("read", 10.0, 12.0, False),  # inside: the fault starts at its end
        ("read", 13.0, 14.0, True, True),
        ("read", 15.0, 16.0, True, False),
        ("write", 19.0, 25.0, False),
        ("read", 20.0, 21.0, True),  # outside: the fault ended at its start
    )
    summary = fault_windows_summary(ops, fault_table(("crash", 12.0, 20.0)))
    assert summary == {
        "inside": {
            "ops": 4,
            "availability": 0.5,
            "read_availability": 2 / 3,
            "write_availability": 0.0,
            "reads_checked": 2,
            "stale": 1,
            "stale_fraction": 0.5,
        },
        "outside": {
            "ops": 3,
            "availability": 1.0,
            "read_availability": 1.0,
            "write_availability": 1.0,
            "reads_checked": 1,
            "stale": 0,
            "stale_fraction": 0.0,
        },
    }
    json.dumps(summary)
    assert all(type(value) in (int, float) for value in summary["inside"].values())


def test_without_faults_everything_is_outside_and_undefined_inside():
    ops = history(("read", 0.0, 1.0, True), ("write", 2.0, 3.0, False))
    summary = fault_windows_summary(ops, NO_FAULTS)
    assert summary["inside"] == {
        "ops": 0,
        "availability": None,
        "read_availability": None,
        "write_availability": None,
        "reads_checked": 0,
        "stale": 0,
        "stale_fraction": None,
    }
    assert summary["outside"]["ops"] == 2 and summary["outside"]["availability"] == 0.5
    assert summary["outside"]["stale_fraction"] is None
    json.dumps(summary)
