"""Message tracing records what the network did, and changes nothing about what happens."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import qsim

BASE = {
    "name": "trace",
    "duration": "1s",
    "cluster": {"nodes": 3},
    "network": {"latency": "1ms"},
    "quorum": {"n": 3, "r": 2, "w": 2},
    "workload": {"arrival": {"type": "closed", "think_time": "5ms"}, "clients": 1},
}


def run(spec: dict, trace: int | set[int]) -> qsim.RunResult:
    """Simulate ``spec`` tracing the first ``trace`` operations, or those with these op ids."""
    scenario = qsim.scenario_from_dict(spec)
    if isinstance(trace, set):
        return qsim.simulate(scenario, trace_ops=trace)
    return qsim.simulate(scenario, trace_messages=trace)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {
            "faults": [{"at": "100ms", "crash": "n2", "recover_at": "200ms"}],
            "network": {"latency": {"dist": "exponential", "mean": 1}, "loss": 0.05},
        },
    ],
    ids=["fault-free", "faults-and-loss"],
)
@pytest.mark.parametrize("trace", [10, {3, 8, 9, 13}], ids=["first-10", "chosen-ids"])
def test_tracing_changes_no_outcome(extra, trace):
    spec = {**BASE, **extra}
    traced = run(spec, trace)
    pd.testing.assert_frame_equal(run(spec, 0).ops, traced.ops)
    assert set(traced.messages["op_id"]) - {-1} == (set(range(10)) if trace == 10 else trace)


def test_chosen_operations_are_traced_with_every_attempt():
    spec = {**BASE, "quorum": {**BASE["quorum"], "timeout": "5ms", "retries": 2, "retry_backoff": "1ms"}}
    spec["faults"] = [
        {"at": 0, "crash": "n2"},
        {"at": 0, "crash": "n3"},
    ]  # no quorum: every attempt times out
    messages = run(spec, {2}).messages
    assert set(messages["op_id"]) == {2} and set(messages["attempt"]) == {0, 1, 2}


def test_every_message_of_the_first_operations_is_traced_exactly():
    messages = run(BASE, 3).messages
    assert set(messages["op_id"]) == {0, 1, 2}
    for _, one in messages.groupby("op_id"):
        kinds = one["kind"].value_counts().to_dict()
        # one client coordinates, fans out to all 3 replicas and hears back from all 3
        assert sum(kinds.values()) == 6
        assert set(kinds) in ({"read_request", "read_response"}, {"write_request", "write_ack"})
    assert (messages["delivered_ms"] - messages["sent_ms"]).eq(1.0).all()  # constant 1 ms links
    assert set(messages["src"]) | set(messages["dst"]) == {"clients@default", "n1", "n2", "n3"}
    assert not messages["dropped"].any() and (messages["reason"] == "").all()


def test_dropped_messages_say_why():
    spec = {**BASE, "faults": [{"at": 0, "crash": "n3"}]}
    messages = run(spec, 2).messages
    to_n3 = messages[messages["dst"] == "n3"]
    assert len(to_n3) == 2 and to_n3["dropped"].all() and (to_n3["reason"] == "down").all()
    assert to_n3["delivered_ms"].isna().all()
    assert not messages.loc[messages["dst"] != "n3", "dropped"].any()


def test_a_traced_run_writes_its_messages_and_loads_them_back(tmp_path):
    result = run(BASE, 2)
    saved = qsim.load_run(qsim.write_run(result, tmp_path / "run", plots_too=False))
    pd.testing.assert_frame_equal(saved.messages, result.messages)
    assert qsim.load_run(qsim.write_run(run(BASE, 0), tmp_path / "plain", plots_too=False)).messages is None


def test_no_tracing_means_no_messages():
    assert run(BASE, 0).messages is None
    assert np.isnan(run(BASE, 1).messages["delivered_ms"]).sum() == 0


def test_a_message_lost_at_its_destination_says_when_it_got_there():
    # n2 crashes at 2.5 ms while requests sent before it are in flight (latency 1-3 ms): those
    # are lost on arrival, after the crash, and the diagram must draw them there, not at the send.
    spec = {**BASE, "network": {"latency": {"dist": "uniform", "low": 1, "high": 3}, "loss": 0.2}}
    spec["faults"] = [{"at": "2.5ms", "crash": "n2"}]
    messages = run(spec, 50).messages
    at_node = messages[messages["reason"].isin(["down", "crashed", "partition"])]
    lost = messages[messages["reason"] == "loss"]
    assert len(at_node) and len(lost)
    assert (at_node["lost_ms"] >= 2.5).all() and (at_node["lost_ms"] > at_node["sent_ms"]).all()
    assert lost["lost_ms"].isna().all() and messages.loc[~messages["dropped"], "lost_ms"].isna().all()
