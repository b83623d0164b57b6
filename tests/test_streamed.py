"""The streamed (out-of-core) run path gives what the in-memory one gives, piece by piece and end to end.

A run longer than ``chunk_ops`` operations streams its history to a scratch folder (qsim.streamed);
its ops rows, summary (but ``runtime``), timeline and nodes must be those of the same run held in
memory. The pieces are checked too: the recorder's hand-over in op_id order, the accumulators of
qsim.checks.digest, qsim.checks.timeline and qsim.checks.recovery under any chunking, and the
per-key checks over key buckets.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import qsim
from qsim.checks.consistency import Consistency, anomaly_columns
from qsim.checks.digest import Staleness, Summary, measured
from qsim.checks.durability import durability_summary
from qsim.checks.metrics import staleness_summary, summarize
from qsim.checks.recovery import Recovery, recovery
from qsim.checks.staleness import check_staleness
from qsim.checks.timeline import FaultSides, Timeline, availability_timeline, fault_windows_summary
from qsim.history import ops_frame
from qsim.model.build import build
from qsim.model.recorder import Recorder
from qsim.model.replica import Replica
from qsim.rng import RandomStreams
from qsim.scenario.load import read_scenario_data, scenario_from_dict
from qsim.spool import RECORD, to_columns
from qsim.streamed import HotKeys, KeyChecks, Spill, by_op_range, verdict_frame

from .conftest import SCENARIOS

CHUNK = 997  # a prime: chunk edges fall at every phase of every pattern in the history


def scenario(name: str, *overrides: str) -> qsim.Scenario:
    return qsim.load_scenario(SCENARIOS / f"{name}.yaml", overrides)


def skewed_amnesia() -> qsim.Scenario:
    """amnesia.yaml, node coordinators, Zipf keys, n3's clock 100 ms behind: both kinds of lost writes."""
    data = read_scenario_data(SCENARIOS / "amnesia.yaml", ["duration=25s", "quorum.coordinator=random"])
    data["workload"]["keys"] = {"count": 1000, "popularity": "zipf", "s": 1.0}
    data["faults"] = [
        *data["faults"],
        {"at": "500ms", "clock_skew": "n3", "offset": "-100ms", "until": "24s"},
    ]
    return scenario_from_dict(data)


def as_json(value) -> str:
    """A canonical text of ``value`` (NaN equals NaN here, and tuples equal lists)."""
    return json.dumps(value, sort_keys=True)


def without_runtime(summary: dict) -> dict:
    return {name: part for name, part in json.loads(json.dumps(summary)).items() if name != "runtime"}


def assert_same_run(memory: qsim.RunResult, streamed: qsim.RunResult, chunk: int = CHUNK) -> None:
    """The streamed result is the in-memory one: ops rows and dtypes, summary but runtime, tables."""
    assert memory.ops is not None and streamed.ops is None, "the streamed path was not taken"
    ops = pd.read_parquet(streamed.ops_file)
    pd.testing.assert_frame_equal(ops, memory.ops)
    assert pq.ParquetFile(streamed.ops_file).num_row_groups == math.ceil(len(ops) / chunk)
    assert without_runtime(streamed.summary) == without_runtime(memory.summary)
    assert streamed.summary["runtime"]["ops"] == memory.summary["runtime"]["ops"] == len(ops)
    for table in ("timeline", "nodes", "faults"):
        pd.testing.assert_frame_equal(getattr(streamed, table), getattr(memory, table))
    assert streamed.error == memory.error


def run_both(sc: qsim.Scenario, tmp_path: Path, chunk: int = CHUNK) -> tuple[qsim.RunResult, qsim.RunResult]:
    return qsim.simulate(sc), qsim.simulate(sc, scratch=tmp_path / "scratch", chunk_ops=chunk)


# --- end to end, every shipped scenario -----------------------------------------------------------

SHORT = {  # name: (scenario and overrides, what the run must hold for the comparison to mean something)
    "random faults": (
        ("random-failures", "duration=8s"),
        lambda r: len(r.faults) >= 5 and (~r.ops["ok"]).sum() > 50,
    ),
    "probe workload": (
        ("pbs-probe", "workload.arrival.trials=300"),
        lambda r: r.ops["probe_delay_ms"].notna().sum() == 300 * 6 and r.summary["staleness"]["stale"] > 0,
    ),
    "multi-region": (
        ("multi-region-levels", "duration=3s"),
        lambda r: len({node.region for node in r.scenario.cluster.nodes}) > 1,
    ),
    "warm-up": (
        ("eventual-consistency", "duration=1200ms", "warmup=300ms"),  # stale reads in and after it
        lambda r: r.ops["warmup"].sum() > CHUNK and (r.ops["stale"] & r.ops["warmup"]).sum() > 0,
    ),
}


@pytest.mark.parametrize("case", SHORT.values(), ids=SHORT.keys())
def test_a_short_run_streamed_is_the_run_in_memory(case, tmp_path):
    name, meaningful = case
    memory, streamed = run_both(scenario(*name), tmp_path)
    assert len(memory.ops) > 3 * CHUNK and meaningful(memory)
    assert_same_run(memory, streamed)


def test_lost_writes_and_faults_streamed_are_those_in_memory(tmp_path):
    memory, streamed = run_both(skewed_amnesia(), tmp_path)
    durability = memory.summary["durability"]
    assert durability["lost_writes"] > 0 and durability["lww_lost_updates"] > 0
    assert memory.summary["staleness"]["stale"] > 0
    assert_same_run(memory, streamed)


def test_a_run_shorter_than_a_chunk_stays_in_memory(tmp_path):
    sc = scenario("quickstart", "duration=300ms", "warmup=0")
    result = qsim.simulate(sc, scratch=tmp_path / "scratch", chunk_ops=1 << 20)
    assert not (tmp_path / "scratch" / "ops.parquet").exists()
    assert result.ops is not None and result.ops_file is None
    pd.testing.assert_frame_equal(result.ops, qsim.simulate(sc).ops)


# The shipped scenarios the short cases above already stream, cut down (or, amnesia, made harsher).
COVERED = {"random-failures", "pbs-probe", "multi-region-levels", "eventual-consistency", "amnesia"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "path", sorted(p for p in SCENARIOS.glob("*.yaml") if p.stem not in COVERED), ids=lambda p: p.stem
)
def test_every_shipped_scenario_streamed_is_the_run_in_memory(path, tmp_path):
    # Each chunk costs a few tens of ms of fixed work per stage: 997 would triple the longest runs.
    chunk = 4999
    assert_same_run(*run_both(qsim.load_scenario(path), tmp_path, chunk), chunk)


# --- a run that fails part-way --------------------------------------------------------------------


def failing_after(monkeypatch, writes: int):
    """Make the ``writes``-th write a replica applies (counted afresh for each run) raise."""
    original = Replica._write

    def run(sc: qsim.Scenario, **options) -> qsim.RunResult:
        calls = itertools.count(1)

        def apply_write(self, message):
            if next(calls) == writes:
                raise RuntimeError("injected failure in Replica._write")
            return original(self, message)

        monkeypatch.setattr(Replica, "_write", apply_write)
        try:
            return qsim.simulate(sc, **options)
        finally:
            monkeypatch.setattr(Replica, "_write", original)

    return run


def test_a_failed_run_gives_the_same_partial_results_streamed(tmp_path, monkeypatch):
    run = failing_after(monkeypatch, 1500)  # about op 5,000 of quickstart's 20,000
    sc = scenario("quickstart")
    memory, streamed = run(sc), run(sc, scratch=tmp_path / "scratch", chunk_ops=CHUNK)
    assert memory.error.startswith("RuntimeError: injected failure")
    assert 3 * CHUNK < len(memory.ops) < 20_000
    assert_same_run(memory, streamed)


# --- the recorder's hand-over ---------------------------------------------------------------------


def operation(op_id: int) -> SimpleNamespace:
    """An operation as the recorder reads it; every field a function of its id."""
    return SimpleNamespace(
        id=op_id, start=op_id * 0.5, commit=op_id * 0.5 + 3, ts=op_id * 0.5 + 1, client=op_id % 7,
        key=op_id % 101, write=op_id % 3 == 0, replies=op_id % 4, attempt=op_id % 2,
        coordinator=op_id % 5 - 1,
    )  # fmt: skip


class Sink:
    """Takes the recorder's hand-overs and checks each continues the last without a gap."""

    def __init__(self) -> None:
        self.chunks: list[dict[str, np.ndarray]] = []
        self.next_id = 0

    def __call__(self, columns: dict[str, np.ndarray]) -> None:
        ids = columns["op_id"]
        assert len(ids) and (ids == self.next_id + np.arange(len(ids))).all()
        self.next_id += len(ids)
        self.chunks.append(columns)

    def ids(self) -> np.ndarray:
        return np.concatenate([chunk["op_id"] for chunk in self.chunks])


def record_all(recorder: Recorder, order: np.ndarray) -> int:
    """Record the operations in ``order``; return the most records the recorder held at once."""
    most = 0
    for op_id in order.tolist():
        op = operation(op_id)
        recorder.record(op, op.start + 2, op_id % 6, op_id - 1)
        most = max(most, len(recorder))
    return most


def test_a_record_keeps_every_field_exactly_at_the_edges_of_its_type():
    recorder = Recorder()
    edge = SimpleNamespace(
        id=2**31 - 1, start=1e300, commit=float("nan"), ts=-0.0, client=2**31 - 1, key=2**31 - 1,
        write=True, replies=127, attempt=126, coordinator=-1,
    )  # fmt: skip
    recorder.record(operation(5), 7.25, 5, -1)
    recorder.record(edge, float("inf"), 0, 2**31 - 1)
    recorder.record(operation(3), 4.0, 1, -(2**31))
    columns = recorder.columns()
    assert len(recorder) == 3 and recorder.nbytes() == 3 * 54
    assert columns["op_id"].tolist() == [3, 5, 2**31 - 1]  # in op_id order, whatever the finish order
    last = {name: values[2].item() for name, values in columns.items()}
    assert last == {
        "op_id": 2**31 - 1, "client": 2**31 - 1, "is_write": True, "key": 2**31 - 1, "start_ms": 1e300,
        "end_ms": float("inf"), "error_code": 0, "replies": 127, "attempts": 127, "version": 2**31 - 1,
        "commit_ms": last["commit_ms"], "ts_ms": 0.0, "coordinator": -1,
    }  # fmt: skip
    assert np.isnan(last["commit_ms"]) and np.signbit(columns["ts_ms"][2])
    first = {name: values[0].item() for name, values in columns.items()}
    assert first == {
        "op_id": 3, "client": 3, "is_write": True, "key": 3, "start_ms": 1.5, "end_ms": 4.0,
        "error_code": 1, "replies": 3, "attempts": 2, "version": -(2**31), "commit_ms": 4.5,
        "ts_ms": 2.5, "coordinator": 2,
    }  # fmt: skip


def finish_order(count: int, lag: int, rng: np.random.Generator) -> np.ndarray:
    """Ids 0..count-1 in an order where each finishes at most ``lag`` places from its start order."""
    return np.argsort(np.arange(count) + rng.uniform(0, lag, count), kind="stable")


@pytest.mark.parametrize(("chunk", "lag"), [(1, 1), (7, 30), (64, 20), (500, 50), (1000, 3000)])
def test_records_finishing_out_of_order_are_handed_on_in_op_id_order(chunk, lag):
    rng = np.random.default_rng(chunk)
    count = 4000
    sink = Sink()
    recorder = Recorder(sink, chunk)
    most = record_all(recorder, finish_order(count, lag, rng))
    # What is held: a chunk, or the records after the oldest unfinished operation (within 2 lags).
    assert most <= max(chunk, 4 * lag)
    assert recorder.handed == sum(len(c["op_id"]) for c in sink.chunks) > count - 3 * lag - chunk
    recorder.close()
    assert len(recorder) == 0 and recorder.handed == count
    np.testing.assert_array_equal(sink.ids(), np.arange(count))
    everything = {name: np.concatenate([c[name] for c in sink.chunks]) for name in sink.chunks[0]}
    expected = Recorder()
    record_all(expected, np.arange(count))  # without a sink: the reference, in order
    for name, values in expected.columns().items():
        np.testing.assert_array_equal(everything[name], values, err_msg=name)
        assert everything[name].dtype == values.dtype, name


def test_a_long_operation_holds_back_the_hand_over_and_nothing_is_lost():
    count, chunk, slow = 5000, 100, 40
    order = np.array([i for i in range(count) if i != slow] + [slow])  # op 40 ends last
    sink, sorts = Sink(), itertools.count()
    recorder = Recorder(sink, chunk)
    columns = recorder.columns

    def sorted_columns() -> dict[str, np.ndarray]:  # each hand-over sorts every record held
        next(sorts)
        return columns()

    recorder.columns = sorted_columns
    record_all(recorder, order[:-1])
    assert recorder.handed == slow and len(recorder) == count - 1 - slow  # held behind op 40
    record_all(recorder, order[-1:])
    recorder.close()
    np.testing.assert_array_equal(sink.ids(), np.arange(count))
    # While held back, the recorder waits for twice as many records each time instead of sorting
    # the held ones again at every record: a handful of sorts (log2(5000 / 100) + 2), not 4,900.
    assert next(sorts) <= 10


def test_close_hands_on_the_rest_and_a_recorder_without_records_hands_nothing():
    sink = Sink()
    recorder = Recorder(sink, 1000)
    recorder.close()
    assert sink.chunks == []
    record_all(recorder, np.array([2, 0, 1]))
    assert sink.chunks == []  # fewer than a chunk: all still held
    recorder.close()
    np.testing.assert_array_equal(sink.ids(), [0, 1, 2])


# --- the accumulators do not depend on how the table is cut ---------------------------------------


FAULTY = {
    "random-failures": ("random-failures", "duration=20s"),
    "sloppy-handoff": ("sloppy-handoff", "duration=25s"),
}


@pytest.fixture(scope="module", params=FAULTY.values(), ids=FAULTY.keys())
def faulty(request) -> qsim.RunResult:
    return qsim.simulate(scenario(*request.param))


def chunkings(count: int, seed: int) -> list[list[int]]:
    """Cut points of 0..count: random cuts (repeats give empty chunks), one-row chunks, halves."""
    rng = np.random.default_rng(seed)
    cuts = [
        sorted(rng.integers(0, count + 1, 40).tolist()),
        sorted(rng.integers(0, count + 1, 3).tolist()),
        [1, 2, 3, 4, 5, count - 2, count - 1, count - 1],
        [count // 2],
    ]
    return [[0, *points, count] for points in cuts]


def chunks(ops: pd.DataFrame, cuts: list[int]) -> list[pd.DataFrame]:
    return [ops.iloc[a:b] for a, b in itertools.pairwise(cuts)]


def fed(accumulator, parts: list[pd.DataFrame]):
    for part in parts:
        accumulator.add(part)
    return accumulator


def test_the_history_has_faults_failures_recoveries_and_stale_reads(faulty):
    assert len(faulty.faults) and (~faulty.ops["ok"]).sum() > 20 and faulty.ops["warmup"].sum() > 1000
    recovered = faulty.summary["faults"]["recovery"]
    if faulty.scenario.name == "random-failures":  # N=5, R=W=3: strict quorums, never stale
        assert len(recovered) >= 10 and faulty.summary["faults"]["inside"]["ops"] > 1000
    else:
        assert len(recovered) == 1 and faulty.summary["staleness"]["stale"] > 100
    assert faulty.ops["op_id"].is_monotonic_increasing


@pytest.mark.parametrize("seed", range(2))
def test_the_summary_is_the_same_for_any_chunking(faulty, seed):
    ops = faulty.ops
    whole = as_json(summarize(ops))
    assert as_json(Summary().add(ops).result()) == whole
    for cuts in chunkings(len(ops), seed):
        assert as_json(fed(Summary(), chunks(ops, cuts)).result()) == whole
    for section in ("reads", "writes", "availability", "staleness"):
        assert as_json(faulty.summary[section]) == as_json(json.loads(whole)[section])


def test_staleness_is_the_same_for_any_chunking(faulty):
    reads = measured(faulty.ops)
    reads = reads[reads["kind"] == "read"]
    whole = as_json(staleness_summary(reads))
    for cuts in chunkings(len(reads), 9):
        assert as_json(fed(Staleness(), chunks(reads, cuts)).result()) == whole
    assert json.loads(whole)["stale"] == int((reads["stale"] == True).sum())  # noqa: E712 (NA-aware)


@pytest.mark.parametrize("seed", range(2))
def test_timeline_fault_sides_and_recovery_are_the_same_for_any_chunking(faulty, seed):
    ops, faults = faulty.ops, faulty.faults
    window_ms, end_ms = faulty.scenario.metrics.window, faulty.scenario.duration
    timeline = availability_timeline(ops, window_ms, end_ms=end_ms)
    pd.testing.assert_frame_equal(timeline, faulty.timeline)
    sides, recovered = fault_windows_summary(ops, faults), recovery(ops, faults, window_ms)
    assert as_json(sides) == as_json({k: v for k, v in faulty.summary["faults"].items() if k in sides})
    assert as_json(recovered) == as_json(faulty.summary["faults"]["recovery"])
    for cuts in chunkings(len(ops), seed):
        parts = chunks(ops, cuts)
        pd.testing.assert_frame_equal(fed(Timeline(window_ms), parts).result(end_ms=end_ms), timeline)
        assert as_json(fed(FaultSides(faults), parts).result()) == as_json(sides)
        assert as_json(fed(Recovery(faults, window_ms), parts).result()) == as_json(recovered)


# --- the checks per key over key buckets ----------------------------------------------------------


@pytest.fixture(scope="module")
def history() -> SimpleNamespace:
    """The skewed amnesia run's recorder columns and held versions, straight from the model."""
    sc = skewed_amnesia()
    model = build(sc, RandomStreams(sc.seed), range(0))
    model.run()
    names = [node.name for node in sc.cluster.nodes]
    columns = model.recorder.columns()
    held = pd.DataFrame(model.held_versions())
    ops = ops_frame(columns, names)
    return SimpleNamespace(columns=columns, held=held, names=names, warmup_ms=sc.warmup, ops=ops)


def test_key_buckets_give_the_verdicts_and_durability_of_the_whole_history(history, tmp_path):
    whole = history.ops
    durability = durability_summary(whole, history.held)
    assert durability["lost_writes"] > 10 and durability["lww_lost_updates"] > 10
    spill = Spill(tmp_path, CHUNK)
    count = len(whole)
    for a, b in itertools.pairwise([0, 1, 500, 4321, 4321, 9000, count]):
        spill.append({name: values[a:b] for name, values in history.columns.items()})
    checks = KeyChecks(history.held, history.warmup_ms, history.names)
    ranges = by_op_range(spill.by_key(), checks, tmp_path, CHUNK, count)
    records = np.concatenate([part.read() for part in ranges])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.path.name for p in ranges)  # buckets gone
    records = records[np.argsort(records["op_id"])]
    np.testing.assert_array_equal(records["op_id"] // CHUNK, np.repeat(np.arange(len(ranges.files)),
                                  [part.count for part in ranges]))  # fmt: skip
    for name, values in to_columns(records).items():
        np.testing.assert_array_equal(values, history.columns[name], err_msg=name)
        assert values.dtype == history.columns[name].dtype, name
    pd.testing.assert_frame_equal(verdict_frame(records), whole_verdicts(whole))
    assert checks.durability_summary() == durability
    assert checks.consistency.result() == whole_consistency(whole)
    assert checks.hot.result() == HotKeys().add(measured_by_start(whole, history.warmup_ms)).result()


@pytest.mark.parametrize("parts", [1, 4])
def test_any_split_into_whole_keys_gives_the_same_checks(history, parts):
    whole = history.ops
    rng = np.random.default_rng(parts)
    part_of_key = rng.integers(0, parts, whole["key"].max() + 1)
    records = np.zeros(len(whole), dtype=RECORD)
    for name, values in history.columns.items():
        records[name] = values
    checks = KeyChecks(history.held, history.warmup_ms, history.names)
    checked = np.concatenate([checks.check(records[part_of_key[records["key"]] == p]) for p in range(parts)])
    checked = checked[np.argsort(checked["op_id"])]
    verdicts = whole_verdicts(whole)
    assert verdicts["stale"].sum() > 20 and verdicts["anomaly_linearizability"].sum() > 20
    pd.testing.assert_frame_equal(verdict_frame(checked), verdicts)
    assert checks.durability_summary() == durability_summary(whole, history.held)
    assert checks.consistency.result() == whole_consistency(whole)


def whole_verdicts(ops: pd.DataFrame) -> pd.DataFrame:
    """The verdict columns of the whole history checked at once."""
    return pd.concat([check_staleness(ops), anomaly_columns(ops)[0]], axis=1)


def whole_consistency(ops: pd.DataFrame) -> dict:
    """The consistency section of the whole history checked at once."""
    consistency = Consistency()
    consistency.add(ops)
    return consistency.result()


def measured_by_start(ops: pd.DataFrame, warmup_ms: float) -> pd.DataFrame:
    return ops[ops["start_ms"] >= warmup_ms]


def top_keys(ops: pd.DataFrame) -> list[dict]:
    """The ten keys with the most operations, ties to the smaller key: counted one by one."""
    counts = {}
    for key, kind in zip(ops["key"].tolist(), ops["kind"].astype(str).tolist(), strict=True):
        entry = counts.setdefault(key, {"key": key, "ops": 0, "reads": 0, "writes": 0})
        entry["ops"] += 1
        entry[kind + "s"] += 1
    return sorted(counts.values(), key=lambda e: (-e["ops"], e["key"]))[:10]


@pytest.mark.parametrize("parts", [2, 7])
def test_hot_keys_over_disjoint_key_parts_are_those_of_the_whole(history, parts):
    ops = measured_by_start(history.ops, history.warmup_ms)
    expected = top_keys(ops)
    assert HotKeys().add(ops).result() == expected
    part_of_key = np.random.default_rng(parts).integers(0, parts, ops["key"].max() + 1)
    hot = HotKeys()
    for p in range(parts):
        hot.add(ops[part_of_key[ops["key"].to_numpy()] == p])
    assert hot.result() == expected


def test_hot_keys_break_ties_by_the_smaller_key_across_parts():
    # 30 keys with 3 operations each and key 77 with 4: the top is 77, then keys 0..8.
    keys = [k for k in range(30) for _ in range(3)] + [77] * 4
    kinds = ["read", "write", "read"] * 30 + ["write"] * 4
    ops = pd.DataFrame({"key": keys, "kind": pd.Categorical(kinds, ["read", "write"])})
    hot = HotKeys()
    for part in (ops[ops["key"] % 2 == 1], ops[ops["key"] % 2 == 0]):  # odd keys first
        hot.add(part)
    assert hot.result() == top_keys(ops)
    assert [e["key"] for e in hot.result()] == [77, *range(9)]
