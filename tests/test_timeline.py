"""Availability and staleness over time and around faults, on hand-written tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import qsim
from qsim.checks.recovery import recovery
from qsim.checks.timeline import active_faults, availability_timeline, fault_windows_summary
from qsim.output import plots

from .conftest import SCENARIOS

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


@pytest.mark.parametrize("window_ms", [1000.0, 0.01])  # 0.01: far more windows than operations
def test_counts_match_counting_each_window_by_hand(window_ms):
    ops = qsim.simulate(qsim.load_scenario(SCENARIOS / "eventual-consistency.yaml", ["duration=3s"])).ops
    timeline = availability_timeline(ops, window_ms)
    counted = ops[~ops["warmup"]]
    window = np.floor(counted["start_ms"].to_numpy() / window_ms).astype(np.int64)
    assert len(timeline) == window.max() + 1
    is_read, ok = (counted["kind"] == "read").to_numpy(), counted["ok"].to_numpy()
    checked = counted["stale"].notna().to_numpy()
    stale = counted["stale"].fillna(False).to_numpy(bool)
    expected = {
        "reads": is_read,
        "reads_ok": is_read & ok,
        "writes": ~is_read,
        "writes_ok": ~is_read & ok,
        "reads_checked": is_read & checked,
        "stale_reads": is_read & stale,
    }
    for name, member in expected.items():
        by_hand = np.bincount(window[member], minlength=len(timeline))
        np.testing.assert_array_equal(timeline[name].to_numpy(), by_hand, err_msg=name)
    assert timeline["stale_reads"].sum() > 0  # the comparison covers stale reads too


def test_the_default_end_includes_the_window_of_the_last_start_even_on_a_boundary():
    ops = history(("read", 3.0, 4.0, True), ("read", 20.0, 21.0, True))
    timeline = availability_timeline(ops, 10.0)
    assert timeline["window_start_ms"].tolist() == [0.0, 10.0, 20.0]
    assert timeline["reads"].tolist() == [1, 0, 1]


def test_explicit_bounds_are_start_inclusive_and_end_exclusive():
    ops = history(("read", 3.0, 4.0, True), ("read", 10.0, 11.0, True), ("write", 33.0, 34.0, True))
    timeline = availability_timeline(ops, 10.0, start_ms=5.0, end_ms=32.0)
    assert timeline["window_start_ms"].tolist() == [5.0, 15.0, 25.0]
    assert timeline["window_end_ms"].tolist() == [15.0, 25.0, 32.0]  # the last one is cut at the end
    assert timeline["reads"].tolist() == [1, 0, 0]  # 3.0 is before the start; 33.0 after the end
    assert timeline["writes"].sum() == 0
    exact = availability_timeline(ops, 10.0, end_ms=40.0)
    assert exact["window_start_ms"].tolist() == [0.0, 10.0, 20.0, 30.0]
    assert exact["writes"].tolist() == [0, 0, 0, 1]


def test_no_ops_gives_no_windows_unless_an_end_is_given():
    ops = history()
    assert availability_timeline(ops, 10.0).empty
    timeline = availability_timeline(ops, 10.0, end_ms=20.0)
    assert timeline["reads"].tolist() == [0, 0]
    assert timeline["availability"].isna().all() and timeline["stale_fraction"].isna().all()


def test_the_warm_up_is_left_out_unless_asked_for():
    ops = history(("read", 1.0, 2.0, False), ("read", 4.0, 5.0, True), ("write", 12.0, 13.0, True))
    ops["warmup"] = ops["start_ms"] < 3.0
    timeline = availability_timeline(ops, 10.0)
    assert timeline["reads"].tolist() == [1, 0] and timeline["reads_ok"].tolist() == [1, 0]
    everything = availability_timeline(ops, 10.0, include_warmup=True)
    assert everything["reads"].tolist() == [2, 0] and everything["reads_ok"].tolist() == [1, 0]
    faults = fault_table(("crash", 0.0, 20.0))
    assert fault_windows_summary(ops, faults)["inside"]["ops"] == 2
    assert fault_windows_summary(ops, faults, include_warmup=True)["inside"]["ops"] == 3


def test_the_window_must_have_a_positive_width():
    with pytest.raises(ValueError, match="window_ms"):
        availability_timeline(history(("read", 0.0, 1.0, True)), 0.0)


# recovery


def reads(*rows: tuple[float, bool]) -> list[tuple]:
    """History rows of reads (start_ms, ok), each lasting 0.5 ms."""
    return [("read", start, start + 0.5, ok) for start, ok in rows]


def test_recovery_is_the_first_operation_whose_span_is_back_not_a_window_edge():
    # Baseline: the ten reads that ended before the crash started at 20: 9 ok = 0.9.
    before = reads(*((float(t), t != 3) for t in range(10)))
    after = reads((26.0, False), (27.0, False), (28.0, False), (31.5, True), (32.5, True), (44.0, True))
    faults = fault_table(("crash", 20.0, 25.0))
    assert recovery(history(*before, *after), faults, 10.0) == [
        {
            "fault_id": 0,
            "kind": "crash",
            "target": "n0",
            "end_ms": 25.0,
            "recovered_ms": 31.5,  # [31.5, 41.5) is all ok; every earlier span holds a failure
            "time_to_recover_ms": 6.5,
        }
    ]


def test_the_tolerance_lets_a_span_a_little_below_the_baseline_count():
    # Baseline 1.0; after the fault, 99 of 100 reads in [30, 40) are ok, then all.
    after = reads(*((30.0 + t / 10, t != 50) for t in range(100)), (45.0, True))
    ops = history(*reads((0.0, True)), *after)
    faults = fault_table(("partition", 10.0, 30.0))
    assert recovery(ops, faults, 10.0)[0]["recovered_ms"] == 30.0  # 0.99 >= 1.0 - 0.01
    assert recovery(ops, faults, 10.0, tolerance=0.0)[0]["recovered_ms"] == 35.1  # after the failure


def test_a_fault_with_no_effect_recovers_at_its_end_exactly():
    ops = history(*reads(*((float(t), True) for t in range(0, 40, 3))))
    [result] = recovery(ops, fault_table(("crash", 12.3, 17.9)), 10.0)
    assert (result["recovered_ms"], result["time_to_recover_ms"]) == (17.9, 0.0)


def test_a_fault_that_never_recovers_and_faults_without_end():
    ops = history(*reads((0.0, True), (11.0, False), (16.0, True), (17.0, False)))
    faults = fault_table(("slow", 10.0, 15.0), ("crash", 12.0, NAN))
    [result] = recovery(ops, faults, 10.0)  # the crash never ended: left out
    assert result["fault_id"] == 0
    assert result["recovered_ms"] is None and result["time_to_recover_ms"] is None


def test_the_baseline_is_one_without_operations_done_before_the_first_fault():
    ops = history(*reads((6.0, False), (13.0, False), (21.0, True), (40.0, True)))
    faults = fault_table(("degrade", 30.0, 35.0), ("crash", 5.0, 12.0))  # the crash starts first
    results = recovery(ops, faults, 10.0)
    assert [r["fault_id"] for r in results] == [0, 1]
    assert results[0]["recovered_ms"] == 35.0  # [35, 45) holds one read, ok
    assert results[1]["recovered_ms"] == 21.0  # 1.0, not the 0.0 of the read at 6 (it overlaps)
    assert recovery(ops, NO_FAULTS, 10.0) == []


def test_recovery_leaves_out_the_warm_up_and_the_faults_over_before_it():
    ops = history(*reads((1.0, False), (2.0, False), (6.0, True), (8.5, False), (9.0, True), (30.0, True)))
    ops["warmup"] = ops["start_ms"] < 5.0
    faults = fault_table(("crash", 3.5, 4.0), ("crash", 7.0, 8.0))
    [result] = recovery(ops, faults, 10.0)  # fault 0 ended before the first counted operation
    assert (result["fault_id"], result["recovered_ms"]) == (1, 9.0)  # baseline 1.0: none ended by 3.5
    everything = recovery(ops, faults, 10.0, include_warmup=True)
    assert [r["recovered_ms"] for r in everything] == [4.0, 8.0]  # baseline 0.0: the two failed reads


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


# on real runs


def test_a_probe_runs_timeline_covers_the_operations_after_its_duration():
    scenario = qsim.load_scenario(
        SCENARIOS / "pbs-probe.yaml", ["workload.arrival.trials=100", "duration=500ms"]
    )
    result = qsim.simulate(scenario)
    ops, timeline = result.ops, result.timeline
    assert ops["start_ms"].max() > 2 * scenario.duration  # the probe went on past its duration
    assert timeline["reads"].sum() + timeline["writes"].sum() == len(ops)
    assert timeline["window_start_ms"].iloc[-1] <= ops["start_ms"].max() < timeline["window_end_ms"].iloc[-1]
    [axes] = plots.availability_timeline(timeline, result.faults).axes
    last = timeline.iloc[-1]
    assert axes.lines[0].get_xdata().max() == (last["window_start_ms"] + last["window_end_ms"]) / 2000


def test_a_plain_runs_timeline_ends_at_its_duration():
    scenario = qsim.load_scenario(SCENARIOS / "quickstart.yaml", ["duration=2500ms", "warmup=0"])
    timeline = qsim.simulate(scenario).timeline
    assert timeline["window_start_ms"].tolist() == [0.0, 1000.0, 2000.0]
    assert timeline["window_end_ms"].tolist() == [1000.0, 2000.0, 2500.0]  # [0, duration), no further


def test_a_run_shorter_than_a_window_is_drawn_over_its_duration_only():
    scenario = qsim.load_scenario(SCENARIOS / "quickstart.yaml", ["duration=50ms", "warmup=0"])
    result = qsim.simulate(scenario)
    [window] = result.timeline.itertuples()
    assert (window.window_start_ms, window.window_end_ms) == (0.0, 50.0)
    assert window.reads + window.writes == len(result.ops)
    for draw in (plots.availability_timeline, plots.staleness_timeline):
        [axes] = draw(result.timeline, result.faults).axes
        assert axes.get_xlim() == pytest.approx((0.0, 0.05))  # the run, not a 1 s window
        for line in axes.lines:
            assert line.get_xdata().tolist() == pytest.approx([0.025])  # the middle of [0, 50 ms)


def test_a_crash_without_effect_recovers_the_moment_it_ends_on_a_real_run():
    # Strict quorums of 2 of 3 survive one crash; it ends at 1.7 s, inside a 1 s window.
    scenario = qsim.scenario_from_dict(
        {
            "name": "harmless-crash",
            "duration": "3s",
            "warmup": "200ms",
            "cluster": {"nodes": 5},
            "network": {"latency": {"dist": "exponential", "mean": 1}},
            "quorum": {"n": 3, "r": 2, "w": 2, "timeout": "100ms"},
            "workload": {"arrival": {"type": "poisson", "rate": "1000/s"}},
            "faults": [{"at": "1.2s", "crash": "n2", "recover_at": "1.7s"}],
        }
    )
    result = qsim.simulate(scenario)
    assert result.ops["ok"].all()
    [recovered] = result.summary["faults"]["recovery"]
    assert (recovered["recovered_ms"], recovered["time_to_recover_ms"]) == (1700.0, 0.0)
