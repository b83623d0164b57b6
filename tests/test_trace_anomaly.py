"""Tracing around consistency anomalies: the witness the checkers name is traced whole, the diagram
outlines and letters its operations and tells its note, and a run without one says so."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_rgba

import qsim
from qsim.checks.anomaly import KINDS, Anomaly
from qsim.checks.linearizability import check_linearizability
from qsim.checks.sessions import check_sessions
from qsim.cli import main
from qsim.output.diagram import ANOMALY_COLOURS, sequence_diagram
from qsim.tracing import choose_for_anomalies, describe, first_anomalies, witness_ops

QUICKSTART = Path(__file__).resolve().parent.parent / "scenarios" / "quickstart.yaml"
# N=3, R=W=2, fan-out all, four writers on three hot keys, lognormal links with a long tail, no
# read repair: a read can see a write in flight and a later read an older value (a new-old
# inversion). Seed 3 has five linearizability violations in these 2 s, the first at 126 ms.
INVERSIONS = [
    *(QUICKSTART, "--seed", 3, "--set", "duration=2s", "--set", "warmup=0"),
    *("--set", "quorum.read_fanout=all", "--set", "repair.read_repair=off"),
    *("--set", "workload.keys.count=3", "--set", "workload.read_fraction=0.5", "--set", "workload.clients=4"),
    *("--set", "network.latency={dist: lognormal, median: 1ms, sigma: 1.5}"),
]
# R=W=1 over three nodes, closed-loop clients whose operations each pick a coordinator at random:
# in these 2 s, 7 read-your-writes and 1 monotonic-reads violations (and 29 of linearizability).
SESSIONS = [
    *(QUICKSTART, "--set", "duration=2s", "--set", "warmup=0", "--set", "cluster.nodes=3"),
    *("--set", "quorum.r=1", "--set", "quorum.w=1", "--set", "quorum.coordinator=random"),
    *("--set", "workload.arrival={type: closed}", "--set", "workload.clients=4"),
    *("--set", "workload.keys.count=3", "--set", "workload.read_fraction=0.7"),
    *("--set", "network.latency={dist: lognormal, median: 1ms, sigma: 0.8}"),
]
ONE_REPLICA = [QUICKSTART, "--set", "duration=300ms", "--set", "warmup=0", "--set", "quorum.n=1"]
ONE_REPLICA += ["--set", "quorum.r=1", "--set", "quorum.w=1"]


def invoke(*args) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def traced(tmp_path: Path, name: str, *args) -> tuple[qsim.SavedRun, str]:
    """Run the CLI with ``args`` into ``tmp_path/name`` (no plots); the run and what it printed."""
    result = invoke("run", *args, "--no-plots", "--out", tmp_path / name)
    assert result.exit_code == 0, result.output
    assert (tmp_path / name / "sequence.png").is_file() and (tmp_path / name / "sequence.svg").is_file()
    return qsim.load_run(tmp_path / name), result.output


def traced_ids(run: qsim.SavedRun) -> set[int]:
    return set(run.messages["op_id"]) - {-1}


def anomaly_of(record: dict) -> Anomaly:
    return Anomaly(record["kind"], record["key"], tuple(record["ops"]), record["note"], record["client"])


def version_order(ops: pd.DataFrame, version: int) -> tuple:
    """Where a version comes among its key's: the initial value first, then by (ts_ms, client, op_id)."""
    if version < 0:
        return (-np.inf, -1, -1)
    write = ops.set_index("op_id").loc[version]
    return (write["ts_ms"], write["client"], version)


def linearizable(history: pd.DataFrame) -> bool:
    """Brute force: some order of the operations (a failed write may be left out, and never ends)
    keeps real time and has every ok read return the latest write before it (-1 if none)."""
    reads = list(history[(history["kind"] == "read") & history["ok"]].itertuples(index=False))
    writes = history[history["kind"] == "write"]
    must, may = list(writes[writes["ok"]].itertuples(index=False)), list(writes[~writes["ok"]].itertuples())
    for size in range(len(may) + 1):
        for extra in itertools.combinations(may, size):
            for order in itertools.permutations(reads + must + list(extra)):
                if _keeps_real_time(order) and _reads_latest(order):
                    return True
    return False


def _keeps_real_time(order) -> bool:
    ends = [op.end_ms if op.ok else np.inf for op in order]
    return all(not ends[j] < order[i].start_ms for i, j in itertools.combinations(range(len(order)), 2))


def _reads_latest(order) -> bool:
    latest = -1
    for op in order:
        if op.kind == "write":
            latest = op.op_id
        elif op.version != latest:
            return False
    return True


def bar(figure, op_id: int):
    [box] = figure.findobj(lambda artist: artist.get_gid() == f"op:{op_id}")
    return box


def label(figure, op_id: int) -> str:
    [text] = figure.findobj(lambda artist: artist.get_gid() == f"op-label:{op_id}")
    return text.get_text()


def legend_texts(figure) -> list[str]:
    return [text.get_text() for legend in figure.legends for text in legend.get_texts()]


@pytest.fixture(scope="module")
def inversion(tmp_path_factory) -> tuple[qsim.SavedRun, str, Path]:
    folder = tmp_path_factory.mktemp("inversion")
    run, output = traced(folder, "run", *INVERSIONS, "--trace-around", "nonlinearizable")
    return run, output, folder / "run"


def test_the_first_linearizability_violation_is_traced_whole_with_its_writes(inversion):
    run, output, _ = inversion
    [record] = run.manifest["trace"]["anomalies"]
    first = check_linearizability(run.ops, keep=1).anomalies[0]  # tracing changed no outcome
    assert record == first.as_dict() and record["kind"] == "linearizability"
    witness = run.ops[run.ops["op_id"].isin(record["ops"])]
    assert not linearizable(witness)  # the witness alone shows it, by brute force
    assert (witness["key"] == record["key"]).all()
    reads = witness[witness["kind"] == "read"]
    returned = set(reads.loc[reads["version"] >= 0, "version"])
    assert set(record["ops"]) | returned <= traced_ids(run)  # its messages, and its writes'
    rest = run.ops[run.ops["op_id"].isin(traced_ids(run) - set(record["ops"]) - returned)]
    assert len(rest) == 10 - len(set(record["ops"]) | returned)  # the default N, with the witness
    for op in rest.itertuples():  # the key's operations that ran alongside the witness
        assert op.key == record["key"]
        assert ((witness["start_ms"] < op.end_ms) & (witness["end_ms"] > op.start_ms)).any()
    assert "operations around the first linearizability violation" in output
    assert record["note"] in output


def test_the_diagram_outlines_and_letters_the_witness_and_tells_its_note(inversion):
    run, _, folder = inversion
    [record] = run.manifest["trace"]["anomalies"]
    figure = sequence_diagram(run.messages, run.faults, run.ops)
    for op_id in record["ops"]:  # lettered A: the first anomaly the checkers name among these
        assert bar(figure, op_id).get_edgecolor() == to_rgba(ANOMALY_COLOURS["linearizability"])
        assert bar(figure, op_id).get_linewidth() > 2
        assert "A" in label(figure, op_id).rsplit("[", 1)[1]
    outlined = {to_rgba(colour) for colour in ANOMALY_COLOURS.values()}
    for op_id in traced_ids(run):  # an operation in no lettered anomaly is not outlined as one
        if "[" not in label(figure, op_id):
            assert bar(figure, op_id).get_edgecolor() not in outlined
    [told] = [text for text in legend_texts(figure) if text.startswith("A  linearizability violation: ")]
    assert told.replace("\n", " ") == f"A  linearizability violation: {record['note']}"
    svg = (folder / "sequence.svg").read_text()
    assert f"op-label:{record['ops'][0]}" in svg and "linearizability violation" in svg


def test_describe_gives_one_line_with_the_note(inversion):
    run, _, _ = inversion
    [record] = run.manifest["trace"]["anomalies"]
    focus = run.manifest["trace"]["op_id"]
    line = describe(run.ops, focus, anomaly_of(record))
    assert "\n" not in line and line.startswith(f"op {focus}: a ") and line.endswith(record["note"])
    assert run.manifest["trace"]["focus"] == line
    assert "in a linearizability violation" in describe(run.ops, focus)  # from the ops columns


@pytest.fixture(scope="module")
def sessions(tmp_path_factory) -> tuple[qsim.SavedRun, str]:
    return traced(tmp_path_factory.mktemp("sessions"), "run", *SESSIONS, "--trace-around", "monotonic-reads")


KIND = "monotonic_reads"


def test_the_first_monotonic_reads_violation_is_traced(sessions):
    run, output = sessions
    [record] = run.manifest["trace"]["anomalies"]
    assert record["kind"] == "monotonic_reads" and len(record["ops"]) == 2
    first = next(a for a in check_sessions(run.ops, keep=1).anomalies if a.kind == "monotonic_reads")
    assert record == first.as_dict()
    by_id = run.ops.set_index("op_id")
    earlier, later = by_id.loc[record["ops"][0]], by_id.loc[record["ops"][1]]
    assert earlier["kind"] == later["kind"] == "read"
    assert earlier["client"] == later["client"] == record["client"]
    assert earlier["end_ms"] < later["start_ms"]  # the session ordered them...
    assert version_order(run.ops, int(later["version"])) < version_order(run.ops, int(earlier["version"]))
    writes = {int(v) for v in (earlier["version"], later["version"]) if v >= 0}
    assert set(record["ops"]) | writes <= traced_ids(run)  # ...and the writes they returned are traced
    assert f"monotonic-reads violation: {record['note']}" in output.replace("\n", "")
    figure = sequence_diagram(run.messages, run.faults, run.ops)
    for op_id in record["ops"]:  # outlined in its colour: the bar's edge, or one more around it
        outlines = figure.findobj(
            lambda a, op_id=op_id: a.get_gid() in (f"op:{op_id}", f"op-outline:{KIND}:{op_id}")
        )
        assert to_rgba(ANOMALY_COLOURS[KIND]) in [outline.get_edgecolor() for outline in outlines]
        assert label(figure, op_id).endswith("]")


def test_anomalies_traces_the_first_of_each_kind_in_one_run(tmp_path):
    run, output = traced(tmp_path, "all", *SESSIONS, "--trace-around", "anomalies")
    trace = run.manifest["trace"]
    counts = run.summary["consistency"]["sessions"] | {
        "linearizability": run.summary["consistency"]["linearizability"]["violations"]
    }
    found = [kind for kind in KINDS if counts[kind]]
    assert len(found) >= 2  # read-your-writes and monotonic reads at least
    assert [a["kind"] for a in trace["anomalies"] + trace["left_out"]] == found  # one of each kind
    assert trace["kinds_without"] == [kind for kind in KINDS if not counts[kind]]
    assert trace["anomalies"] == [a.as_dict() for a in first_anomalies(run.ops)]
    for record in trace["anomalies"]:
        assert set(witness_ops(run.ops, anomaly_of(record))) <= traced_ids(run)
        assert record["note"] in output
    assert len(traced_ids(run)) <= max(24, len(witness_ops(run.ops, anomaly_of(trace["anomalies"][0]))))
    figure = sequence_diagram(run.messages, run.faults, run.ops)
    told = legend_texts(figure)
    for record in trace["anomalies"]:
        kind_words = record["kind"].replace("_", "-")
        assert any(f"  {kind_words} violation: " in text for text in told)


def test_anomalies_past_the_count_are_left_out_and_named(tmp_path):
    run, output = traced(tmp_path, "few", *SESSIONS, "--trace-around", "anomalies", "--trace-messages", 2)
    trace = run.manifest["trace"]
    assert len(trace["anomalies"]) == 1 and trace["left_out"]  # two operations hold one pair
    assert traced_ids(run) == set(witness_ops(run.ops, anomaly_of(trace["anomalies"][0])))
    assert "left out (too many operations for one diagram; raise --trace-messages)" in output
    for record in trace["left_out"]:
        assert record["note"] in output


@pytest.mark.parametrize(
    ("around", "said"),
    [
        ("monotonic-reads", "no monotonic-reads violation in this run"),
        ("nonlinearizable", "no linearizability violation in this run"),
        ("anomalies", "no consistency anomaly in this run"),
    ],
)
def test_a_run_without_one_says_so_and_fails(tmp_path, around, said):
    result = invoke("run", *ONE_REPLICA, "--trace-around", around, "--out", tmp_path / "none")
    assert result.exit_code == 1
    assert said in result.output and "nothing to trace around" in result.output
    assert not (tmp_path / "none").exists()


def test_the_names_are_offered_when_a_wrong_one_is_given(tmp_path):
    result = invoke("run", *ONE_REPLICA, "--trace-around", "linearizable", "--out", tmp_path / "bad")
    assert result.exit_code != 0
    names = ("nonlinearizable", "read-your-writes", "monotonic-reads", "writes-follow-reads", "anomalies")
    assert all(name in result.output for name in names)


ROW = st.tuples(
    st.integers(0, 1),  # client
    st.booleans(),  # write
    st.integers(0, 1),  # key
    st.floats(0, 20, allow_nan=False),  # start_ms
    st.floats(0.1, 5, allow_nan=False),  # duration, ms
    st.integers(-1, 11),  # a read's version: a row number (kept when it names a write of its key)
)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(ROW, min_size=2, max_size=12), count=st.integers(1, 8))
def test_each_anomaly_chosen_is_whole_and_the_count_is_kept(rows, count):
    ops = history(rows)
    found = first_anomalies(ops)
    if not found:
        return
    ids, kept = choose_for_anomalies(ops, found, count)
    assert kept[0] == found[0] and ids == sorted(set(ids))
    for anomaly in kept:
        assert set(witness_ops(ops, anomaly)) <= set(ids)
    assert len(ids) == min(len(ops), max(count, len(witness_ops(ops, found[0]))))
    for anomaly in found:
        if anomaly not in kept:  # left out only because it did not fit
            assert len(set(ids) | set(witness_ops(ops, anomaly))) > count


def history(rows: list[tuple]) -> pd.DataFrame:
    """An ops table of ``rows`` (op id = row number); a read names a write of its key or the initial value."""
    frame = pd.DataFrame(rows, columns=["client", "write", "key", "start_ms", "duration_ms", "version"])
    writes = set(frame.index[frame["write"]])
    version = [
        i if w else (v if v in writes and frame.loc[v, "key"] == k else -1)
        for i, (w, k, v) in enumerate(zip(frame["write"], frame["key"], frame["version"], strict=True))
    ]
    return pd.DataFrame(
        {
            "op_id": np.arange(len(frame)),
            "client": frame["client"],
            "kind": np.where(frame["write"], "write", "read"),
            "key": frame["key"],
            "start_ms": frame["start_ms"],
            "end_ms": frame["start_ms"] + frame["duration_ms"],
            "ok": True,
            "version": version,
            "ts_ms": np.where(frame["write"], frame["start_ms"], np.nan),
        }
    )
