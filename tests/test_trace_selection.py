"""Tracing the operations that matter: around a stale read, a failed operation or a given op id,
and a diagram of 20 operations whose labels stay readable."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from matplotlib.colors import to_rgba

import qsim
from qsim.cli import main
from qsim.output.diagram import sequence_diagram
from qsim.tracing import choose_ops, missed_writes, traced_run

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
# The first stale read of eventual-consistency (seed 1) is op 175, at 32 ms.
STALE = [SCENARIOS / "eventual-consistency.yaml", "--set", "duration=100ms", "--set", "warmup=0"]
# R = N: reads of n2's keys fail while n2 is down from 20 ms.
# From 2.5 s the left region is cut off; the first stale read (op 548) returns nothing and so
# misses every write to its key so far: 40 writes over 2.5 s.
SLOPPY = [
    SCENARIOS / "sloppy-handoff.yaml",
    *("--set", "duration=2.8s", "--set", "warmup=0", "--set", "workload.keys.count=5"),
    *("--set", "workload.arrival.rate=200/s", "--set", "faults=[{at: 2.5s, partition: [[left], [right]]}]"),
]
FAILING = ["duration=150ms", "warmup=0", "quorum.r=3", "faults=[{at: 20ms, crash: n2, recover_at: 100ms}]"]


def invoke(*args) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def traced(tmp_path: Path, name: str, *args) -> qsim.SavedRun:
    """Run the CLI with ``args`` into ``tmp_path/name`` (no plots) and load the run."""
    result = invoke("run", *args, "--no-plots", "--out", tmp_path / name)
    assert result.exit_code == 0, result.output
    assert "too many to read" not in result.stderr  # 10 operations read well
    return qsim.load_run(tmp_path / name)


def op_box(figure, op_id: int):
    [box] = figure.findobj(lambda artist: artist.get_gid() == f"op:{op_id}")
    return box


def op_label(figure, op_id: int) -> str:
    [label] = figure.findobj(lambda artist: artist.get_gid() == f"op-label:{op_id}")
    return label.get_text()


def test_tracing_around_the_first_stale_read_traces_it_and_the_write_it_missed(tmp_path):
    run = traced(tmp_path, "stale", *STALE, "--trace-around", "stale")  # 10 operations by default
    stale = run.ops.loc[run.ops["stale"].fillna(False).astype(bool), "op_id"]
    first = int(stale.min())
    missed = missed_writes(run.ops, first)
    assert missed  # a stale read missed at least one committed write...
    newest = missed[0]
    read = run.ops.set_index("op_id").loc[first]
    write = run.ops.set_index("op_id").loc[newest]
    assert write["key"] == read["key"] and write["commit_ms"] <= read["start_ms"]  # ...of its key, before it
    assert run.ops.set_index("op_id").loc[read["version"], "commit_ms"] < write["commit_ms"]  # it read older
    traced_ids = set(run.messages["op_id"]) - {-1}
    assert {first, newest, int(read["version"])} <= traced_ids and len(traced_ids) == 10
    assert run.manifest["trace"]["op_id"] == first
    # the diagram (drawn although --no-plots) marks the read stale and the write as the one it missed
    assert (tmp_path / "stale" / "sequence.png").is_file()
    figure = sequence_diagram(run.messages, run.faults, run.ops)
    assert op_box(figure, first).get_facecolor() == to_rgba("gold")
    assert op_label(figure, first).startswith(f"op {first} read key {read['key']}: stale")
    assert f"missed op {newest}" in op_label(figure, first)
    assert f"missed by op {first}" in op_label(figure, newest)


@pytest.fixture(scope="module")
def failing() -> qsim.RunResult:
    """crash-recover made to fail reads, traced around its first failed operation (library calls)."""
    scenario = qsim.load_scenario(SCENARIOS / "crash-recover.yaml", FAILING)
    return traced_run(scenario, None, 12, "failed")


def test_tracing_around_the_first_failed_operation(failing):
    run = failing
    first = int(run.ops.loc[~run.ops["ok"], "op_id"].min())
    failed = run.ops.set_index("op_id").loc[first]
    traced_ids = set(run.messages["op_id"]) - {-1}
    assert first in traced_ids and len(traced_ids) == 12
    overlapping = run.ops[(run.ops["start_ms"] < failed["end_ms"]) & (run.ops["end_ms"] > failed["start_ms"])]
    assert traced_ids <= set(overlapping["op_id"])  # 100 ms of timeout overlaps many more than 12
    figure = sequence_diagram(run.messages, run.faults, run.ops)
    assert op_box(figure, first).get_facecolor() == to_rgba("salmon")
    assert op_label(figure, first).startswith(f"op {first} read key {failed['key']}: failed (timeout")


def test_failed_operations_are_drawn_inside_the_axes(failing):
    run = failing
    figure = sequence_diagram(run.messages, run.faults, run.ops)
    renderer = figure.canvas.get_renderer()
    figure.draw_without_rendering()
    [axes] = figure.axes
    inside = axes.get_window_extent(renderer).padded(0.5)
    failed = run.ops.loc[~run.ops["ok"] & run.ops["op_id"].isin(run.messages["op_id"]), "op_id"]
    assert len(failed) >= 2
    for op_id in failed:
        for gid in (f"op:{op_id}", f"op-label:{op_id}", f"op-leader:{op_id}"):
            [artist] = figure.findobj(lambda artist, gid=gid: artist.get_gid() == gid)
            extent = artist.get_window_extent(renderer)
            assert inside.x0 <= extent.x0 and extent.x1 <= inside.x1, gid
            assert inside.y0 <= extent.y0 and extent.y1 <= inside.y1, gid
        box = op_box(figure, op_id)  # the whole bar, to when it gave up
        end_ms = run.ops.set_index("op_id").loc[op_id, "end_ms"]
        assert box.get_y() + box.get_height() == pytest.approx(end_ms)


def test_tracing_around_a_given_op_id(tmp_path):
    run = traced(tmp_path, "op", *STALE, "--trace-around", 60, "--trace-messages", 5)
    assert set(run.messages["op_id"]) - {-1} == set(choose_ops(run.ops, 60, 5))
    assert run.manifest["trace"]["op_id"] == 60
    assert op_label(sequence_diagram(run.messages, run.faults, run.ops), 60).startswith("op 60 ")


def test_without_a_stale_read_it_says_so_and_fails(tmp_path):
    strict = [SCENARIOS / "strict-quorum.yaml", "--set", "duration=50ms", "--set", "warmup=0"]
    result = invoke("run", *strict, "--trace-around", "stale", "--out", tmp_path / "none")
    assert result.exit_code == 1
    assert "no stale read in this run" in result.output
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--trace-around", "linearizable"], "expected an op id or one of stale, failed"),
        (["--trace-around", "stale", "--trace-messages", 0], "give N of 1 or more, or leave it out"),
        (["--trace-messages", 0], "--trace-messages 0 traces nothing and draws no diagram"),
        (["--trace-around", 10**6], "op 1000000 is not in this run"),
    ],
)
def test_bad_trace_requests_are_refused_clearly(tmp_path, args, message):
    result = invoke("run", *STALE, *args, "--out", tmp_path / "bad")
    assert result.exit_code != 0 and message in result.output


def test_a_read_that_missed_many_writes_leaves_room_for_what_ran_around_it(tmp_path):
    run = traced(tmp_path, "sloppy", *SLOPPY, "--trace-around", "stale")  # 10 operations
    read_id = run.manifest["trace"]["op_id"]
    missed = missed_writes(run.ops, read_id)
    assert len(missed) > 10  # every one would fill the diagram with old writes
    traced_ids = set(run.messages["op_id"]) - {-1}
    assert len(traced_ids) == 10 and read_id in traced_ids
    assert traced_ids & set(missed) == set(missed[:3])  # the newest it missed, and the next two
    read_start = run.ops.set_index("op_id").loc[read_id, "start_ms"]
    others = run.ops[run.ops["op_id"].isin(traced_ids - set(missed[:3]))]
    assert (others["start_ms"] - read_start).abs().max() < 50  # the rest ran around the read


def test_more_operations_than_read_well_are_drawn_with_a_warning(tmp_path):
    one_replica = ["--set", "cluster.nodes=1", "--set", "quorum.n=1"]  # few messages per operation
    many = invoke(
        "run", *STALE, *one_replica, "--trace-messages", 41, "--no-plots", "--out", tmp_path / "many"
    )
    assert many.exit_code == 0, many.output
    assert "warning: the sequence diagram draws 41 operations, too many to read" in many.stderr
    assert "messages.parquet has every message" in many.stderr
    assert (tmp_path / "many" / "sequence.png").is_file()  # drawn all the same


def test_tracing_a_set_of_op_ids_changes_no_outcome():
    scenario = qsim.load_scenario(SCENARIOS / "eventual-consistency.yaml", ["duration=60ms", "warmup=0"])
    plain = qsim.simulate(scenario)
    ids = choose_ops(plain.ops, 175, 20)
    again = qsim.simulate(scenario, trace_ops=ids)
    pd.testing.assert_frame_equal(plain.ops, again.ops)
    assert set(again.messages["op_id"]) - {-1} == set(ids)


def test_twenty_operation_labels_do_not_overlap_or_leave_the_axes():
    probe = qsim.load_scenario(SCENARIOS / "pbs-probe.yaml", ["workload.arrival.trials=10"])
    run = traced_run(probe, None, 20)
    figure = sequence_diagram(run.messages, run.faults, run.ops)
    renderer = figure.canvas.get_renderer()
    figure.draw_without_rendering()
    [axes] = figure.axes
    inside = axes.get_window_extent(renderer)
    labels = [t for t in axes.texts if (t.get_gid() or "").startswith("op-label:")]
    assert len(labels) == 20
    boxes = [label.get_window_extent(renderer) for label in labels]
    for box in boxes:
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
    for (a, box_a), (b, box_b) in itertools.combinations(zip(labels, boxes, strict=True), 2):
        assert not box_a.overlaps(box_b), (a.get_text(), b.get_text())
    shown = np.array([t.get_window_extent(renderer).extents for t in axes.texts if t.get_visible()])
    x0, y0, x1, y1 = (shown[:, [i]] for i in range(4))
    crossing = (x0 < x1.T) & (x1 > x0.T) & (y0 < y1.T) & (y1 > y0.T)  # every visible text, pairwise
    assert np.argwhere(np.triu(crossing, k=1)).size == 0


def test_choose_ops_puts_the_explanation_first_then_the_nearest_in_time():
    # key 1: op 0 writes (commits 1.0), op 2 writes (commits 3.0); op 4 reads at 5.0 and returns op 0's
    ops = pd.DataFrame(
        {
            "op_id": np.arange(8),
            "client": [0, 1, 0, 1, 0, 1, 0, 1],
            "kind": ["write", "read", "write", "read", "read", "read", "read", "write"],
            "key": [1, 9, 1, 9, 1, 9, 1, 1],
            "start_ms": [0.0, 0.5, 2.0, 4.9, 5.0, 5.2, 5.5, 30.0],
            "end_ms": [1.0, 1.5, 3.0, 5.1, 6.0, 5.4, 6.5, 31.0],
            "ok": [True] * 8,
            "version": [0, -1, 2, -1, 0, -1, 2, 7],
            "ts_ms": [0.0, np.nan, 2.0, np.nan, np.nan, np.nan, np.nan, 30.0],
            "commit_ms": [1.0, np.nan, 3.0, np.nan, np.nan, np.nan, np.nan, 31.0],
            "stale": pd.array([pd.NA, pd.NA, pd.NA, pd.NA, True, pd.NA, False, pd.NA], dtype="boolean"),
        }
    )
    assert missed_writes(ops, 4) == [2]
    # the read, the write it missed, the one it returned, then op 6 (same key, overlapping)
    assert choose_ops(ops, 4, 4) == [0, 2, 4, 6]
    assert choose_ops(ops, 4, 5) == [0, 2, 3, 4, 6]  # op 3 starts nearest to 5.0 of the rest
    assert choose_ops(ops, 4, 1) == [4]
    assert choose_ops(ops, 4, 100) == list(range(8))
