"""Each fault kind against its documented meaning (qsim.scenario.faults), on tiny exact scenarios.

The scenarios have constant 1 ms links and one client with one operation at a time, so every
outcome and every latency is known in advance: an operation that needs every replica takes 2 ms
(request, reply) unless a fault is in its way.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import qsim
from qsim.errors import ScenarioError

QUORUM_TIMEOUT = "timeout: quorum not reached"
COORDINATOR_CRASHED = "timeout: the coordinator crashed"
REQUEST_LOST = "timeout: the request never reached the coordinator"

BASE = {
    "name": "faults",
    "duration": "100ms",
    "cluster": {"nodes": 3},
    "network": {"latency": "1ms"},
    "quorum": {"n": 3, "r": 3, "w": 3, "timeout": "10ms"},
    "workload": {"arrival": {"type": "closed", "think_time": "5ms"}, "clients": 1, "keys": {"count": 5}},
}
# Two nodes in two regions; the client sits with n1 in region a.
TWO_REGIONS = {
    "cluster": {"nodes": [{"name": "n1", "region": "a"}, {"name": "n2", "region": "b"}]},
    "quorum": {"n": 2, "r": 2, "w": 2},
    "workload": {"client_regions": ["a"]},
}


def tiny(*faults: dict, **sections) -> dict:
    """BASE with ``faults``; each keyword updates that section of BASE (or replaces a scalar)."""
    spec = {key: dict(value) if isinstance(value, dict) else value for key, value in BASE.items()}
    for section, fields in sections.items():
        spec[section] = {**spec[section], **fields} if isinstance(fields, dict) else fields
    return {**spec, "faults": list(faults)}


def two_regions(*faults: dict, **sections) -> dict:
    """The two-region layout, with further section updates."""
    merged = {key: {**value, **sections.pop(key, {})} for key, value in TWO_REGIONS.items()}
    return tiny(*faults, **merged, **sections)


def run(spec: dict, seed: int = 1) -> qsim.RunResult:
    result = qsim.simulate(qsim.scenario_from_dict(spec), seed=seed)
    assert result.error is None
    return result


def dropped(result: qsim.RunResult) -> dict[str, int]:
    """Messages dropped, by kind, leaving out the kinds with none."""
    return {kind: c["dropped"] for kind, c in result.summary["messages"].items() if c["dropped"]}


def starting(ops: pd.DataFrame, start_ms: float, end_ms: float) -> pd.Series:
    """Which operations started in [start_ms, end_ms)."""
    return ops["start_ms"].between(start_ms, end_ms, inclusive="left")


# --- crash -------------------------------------------------------------------------------------


def test_a_node_crashed_for_good_receives_nothing():
    crashed = run(tiny({"at": 0, "crash": "n2"}))
    healthy = run(tiny())
    assert crashed.summary["nodes"]["n2"]["messages"] == 0
    assert crashed.summary["nodes"]["n1"]["messages"] == len(crashed.ops) > 0
    assert healthy.summary["nodes"]["n2"]["messages"] == len(healthy.ops)


@pytest.mark.parametrize(("quorum", "fails_inside"), [(3, True), (2, False)])
def test_a_crash_fails_the_operations_that_need_the_node_during_its_window_only(quorum, fails_inside):
    result = run(tiny({"at": 30, "crash": "n2", "recover_at": 60}, quorum={"r": quorum, "w": quorum}))
    ops = result.ops
    inside = starting(ops, 30, 60)
    assert inside.sum() >= 2 and (~inside).sum() >= 8
    assert ops.loc[~inside, "ok"].all()
    if fails_inside:
        assert not ops.loc[inside, "ok"].any()
        assert set(ops.loc[inside, "error"]) == {QUORUM_TIMEOUT}
        assert (ops.loc[inside, "latency_ms"] == 10).all()  # they waited for the timeout
    else:
        assert ops.loc[inside, "ok"].all()


def local_coordinator(*faults: dict, **sections) -> dict:
    """n1 alone in region a coordinates everything for the client there; n2, n3 are in b."""
    nodes = [{"name": "n1", "region": "a"}, {"name": "n2", "region": "b"}, {"name": "n3", "region": "b"}]
    quorum = {"n": 3, "r": 2, "w": 2, "coordinator": "local", **sections.pop("quorum", {})}
    workload = {"client_regions": ["a"], **sections.pop("workload", {})}
    return tiny(*faults, cluster={"nodes": nodes}, quorum=quorum, workload=workload, **sections)


def test_an_operation_whose_coordinator_crashes_mid_flight_times_out():
    # 10 ms links: the request reaches n1 at 10, replies come back at 30, the client hears at 40.
    slow = {"network": {"latency": "10ms"}, "quorum": {"timeout": "100ms"}, "workload": {"max_ops": 1}}
    healthy = run(local_coordinator(**slow)).ops.iloc[0]
    assert healthy["ok"] and healthy["latency_ms"] == 40 and healthy["coordinator"] == "n1"
    # n1 crashes at 15, after it sent the requests: n2 and n3 reply, but to a dead coordinator.
    op = run(local_coordinator({"at": 15, "crash": "n1", "recover_at": 20}, **slow)).ops.iloc[0]
    assert not op["ok"] and op["error"] == COORDINATOR_CRASHED
    assert op["coordinator"] == "n1" and op["end_ms"] == 100


def test_an_operation_sent_to_a_crashed_coordinator_fails_with_request_lost():
    # The first operation ends at 4 ms; n1 crashes at 5, with nothing in flight, for good.
    result = qsim.simulate(qsim.scenario_from_dict(local_coordinator({"at": 5, "crash": "n1"})))
    assert result.error is None
    ops = result.ops
    assert ops["ok"].iloc[0] and ops["end_ms"].iloc[0] == 4
    assert len(ops) > 3 and set(ops["error"].iloc[1:]) == {REQUEST_LOST}


@pytest.mark.parametrize("amnesia", [False, True])
def test_amnesia_empties_the_store_of_a_recovered_node(amnesia):
    # One node holds the only copy of the only key; it is down from 20 to 30 ms.
    crash = {"at": 20, "crash": "n1", "recover_at": 30, "amnesia": amnesia}
    spec = tiny(
        crash,
        cluster={"nodes": 1},
        quorum={"n": 1, "r": 1, "w": 1},
        workload={"arrival": {"type": "closed", "think_time": "3ms"}, "keys": {"count": 1}},
    )
    ops = run(spec).ops
    last_write = ops.loc[(ops["kind"] == "write") & ops["ok"] & (ops["end_ms"] < 20), "op_id"].max()
    next_write = ops.loc[(ops["kind"] == "write") & (ops["start_ms"] >= 30), "start_ms"].min()
    reads = ops[(ops["kind"] == "read") & ops["start_ms"].between(30, next_write, inclusive="left")]
    assert len(reads) >= 1 and reads["ok"].all()
    if amnesia:
        assert (reads["version"] == -1).all() and reads["stale"].all()
    else:
        assert (reads["version"] == last_write).all() and not reads["stale"].any()


# --- partition ---------------------------------------------------------------------------------


@pytest.mark.parametrize("coordinator", ["client", "local"])
def test_nothing_crosses_a_partition_until_it_heals(coordinator):
    result = run(
        two_regions(
            {"at": 20, "partition": [["a"], ["b"]], "heal_at": 60}, quorum={"coordinator": coordinator}
        )
    )
    ops = result.ops
    inside, before, after = starting(ops, 20, 60), ops["end_ms"] < 20, ops["start_ms"] >= 60
    assert inside.sum() >= 2 and before.sum() >= 2 and after.sum() >= 3
    assert not ops.loc[inside, "ok"].any() and set(ops.loc[inside, "error"]) == {QUORUM_TIMEOUT}
    assert ops.loc[before | after, "ok"].all()
    assert set(dropped(result)) <= {"write_request", "read_request"}


@pytest.mark.parametrize(
    ("cut_from", "lost"),
    [
        ("a", {"write": "write_request", "read": "read_request"}),
        ("b", {"write": "write_ack", "read": "read_response"}),
    ],
)
def test_a_one_way_partition_cuts_only_messages_from_the_first_group(cut_from, lost):
    # R = W = 1 with fan-out to both: n1, on the client's side, always answers. Operations last
    # 2 ms and start 7 ms apart, so none straddles the window's edges.
    other = "b" if cut_from == "a" else "a"
    partition = {"at": 10, "partition": [[cut_from], [other]], "heal_at": 80, "one_way": True}
    result = run(two_regions(partition, quorum={"r": 1, "w": 1}))
    ops = result.ops
    assert ops["ok"].all()
    inside = ops[starting(ops, 10, 80)]
    counts = inside["kind"].value_counts()
    assert counts["read"] > 0 and counts["write"] > 0
    assert dropped(result) == {lost[kind]: int(counts[kind]) for kind in ("read", "write")}


@pytest.mark.parametrize(
    ("groups", "winners"),
    [
        (["majority", "minority"], {"n1", "n2", "n3"}),
        (["majority"], {"n1", "n2", "n3"}),
        (["minority"], {"n1", "n2", "n3"}),
        ([["n4", "n5"]], {"n1", "n2", "n3"}),
        ([["n1", "n2"]], {"n3", "n4", "n5"}),
    ],
)
def test_majority_is_the_first_half_plus_one_nodes_and_minority_the_rest(groups, winners):
    # Every key on all 5 nodes, W = R = 3, a random node coordinates; clients reach everyone.
    spec = tiny(
        {"at": 0, "partition": groups},
        cluster={"nodes": 5},
        quorum={"n": 5, "coordinator": "random"},
        workload={"keys": {"count": 1}},
        duration="300ms",
    )
    ops = run(spec).ops
    coordinated_by_winner = ops["coordinator"].isin(winners)
    assert coordinated_by_winner.sum() >= 5 and (~coordinated_by_winner).sum() >= 5
    assert (ops["ok"] == coordinated_by_winner).all()


def in_flight(heal_at: float) -> dict:
    """One write at 0 over 10 ms links; the partition starts at 5, while its requests fly."""
    return two_regions(
        {"at": 5, "partition": [["a"], ["b"]], "heal_at": heal_at},
        network={"latency": "10ms"},
        quorum={"timeout": "50ms"},
        workload={"read_fraction": 0, "max_ops": 1},
    )


def test_a_message_in_flight_across_the_cut_when_a_partition_starts_is_lost():
    result = run(in_flight(heal_at=30))
    assert not result.ops["ok"].iloc[0]
    assert dropped(result) == {"write_request": 1}


def test_a_message_in_flight_when_a_partition_starts_is_lost_even_if_it_heals_first():
    result = run(in_flight(heal_at=8))  # the request to n2 was in flight at 5 and lands at 10
    assert dropped(result) == {"write_request": 1}
    assert not result.ops["ok"].iloc[0]


# --- degrade -----------------------------------------------------------------------------------


def expected_latency(start_ms: float, extra_ms: float, window: tuple[float, float]) -> float:
    """Two 1 ms hops; a hop sent during ``window`` takes ``extra_ms`` more."""
    now = start_ms
    for _ in range(2):
        now += 1 + (extra_ms if window[0] <= now < window[1] else 0)
    return now - start_ms


def test_degrade_adds_its_latency_to_messages_sent_during_its_window_only():
    result = run(
        tiny({"at": 20, "until": 40, "degrade": "all", "latency": "5ms"}, quorum={"timeout": "50ms"})
    )
    ops = result.ops
    expected = [expected_latency(start, 5, (20, 40)) for start in ops["start_ms"]]
    assert ops["latency_ms"].tolist() == expected
    assert {2, 12} <= set(expected) and ops["ok"].all()


def latencies_after_start(spec: dict) -> set[float]:
    """The latencies of operations but the first: a fault at 0 begins after the first messages leave."""
    ops = run(spec).ops
    return set(ops.loc[ops["start_ms"] > 0, "latency_ms"])


@pytest.mark.parametrize(("quorum", "latency_ms"), [(3, 12), (2, 2)])
def test_degrading_one_node_slows_its_links_only(quorum, latency_ms):
    degrade = {"at": 0, "degrade": "n2", "latency": "5ms"}
    assert latencies_after_start(tiny(degrade, quorum={"r": quorum, "w": quorum, "timeout": "50ms"})) == {
        latency_ms
    }


def test_degrade_with_loss_one_drops_every_message_on_its_links():
    result = run(tiny({"at": 20, "until": 60, "degrade": "n2", "loss": 1.0}))
    ops = result.ops
    inside = starting(ops, 20, 60)
    assert inside.sum() >= 2
    assert not ops.loc[inside, "ok"].any() and ops.loc[~inside, "ok"].all()
    assert (ops.loc[~inside, "latency_ms"] == 2).all()
    assert sum(dropped(result).values()) == inside.sum()  # one request to n2 per operation


def test_a_degraded_pair_of_regions_slows_both_directions_between_them():
    pair = {"at": 0, "degrade": ["a", "b"], "latency": "5ms"}
    assert latencies_after_start(two_regions(pair, quorum={"timeout": "50ms"})) == {12}
    assert latencies_after_start(two_regions(pair, quorum={"r": 1, "w": 1})) == {2}


# --- slow --------------------------------------------------------------------------------------


def test_slow_multiplies_the_service_time_of_requests_served_during_its_window():
    spec = tiny(
        {"at": 20, "until": 60, "slow": "n2", "factor": 3},
        cluster={"nodes": 3, "replica": {"service_time": "2ms"}},
    )
    ops = run(spec).ops
    arrival = ops["start_ms"] + 1
    served_slowly = arrival.between(20, 60, inclusive="left")
    assert served_slowly.sum() >= 2 and (~served_slowly).sum() >= 4
    assert (ops["latency_ms"] == np.where(served_slowly, 2 + 6, 2 + 2)).all()


# --- clock skew --------------------------------------------------------------------------------


def skewed_local_writers(offset: str | None) -> dict:
    """One writer per region, coordinated by its region's node; n1's clock is ``offset`` off."""
    return two_regions(
        *([{"at": 0, "clock_skew": "n1", "offset": offset}] if offset else []),
        quorum={"r": 1, "w": 1, "coordinator": "local", "timeout": "50ms"},
        workload={"clients": 2, "client_regions": ["a", "b"], "keys": {"count": 1}, "read_fraction": 0},
        duration="60ms",
    )


def test_a_skewed_coordinator_stamps_its_writes_with_its_own_clock():
    ops = run(skewed_local_writers("-50ms")).ops
    begun = ops["start_ms"] + 1  # the request reaches the coordinator 1 ms after the client sent it
    offset = np.where(ops["coordinator"] == "n1", -50, 0)
    assert set(ops["coordinator"]) == {"n1", "n2"}
    assert (ops["ts_ms"] - begun == offset).all()


def test_clock_skew_of_a_region_shifts_its_clients_clocks_during_the_window_only():
    skew = {"at": 20, "until": 40, "clock_skew": "a", "offset": "7ms"}
    ops = run(two_regions(skew, workload={"read_fraction": 0})).ops
    skewed = starting(ops, 20, 40)
    assert skewed.sum() >= 2 and (~skewed).sum() >= 4
    assert (ops["ts_ms"] - ops["start_ms"] == np.where(skewed, 7, 0)).all()


@pytest.mark.parametrize(("offset", "lost"), [(None, False), ("-50ms", True), ("50ms", True)])
def test_a_skewed_clock_makes_last_writer_wins_drop_later_writes(offset, lost):
    lww_lost = run(skewed_local_writers(offset)).summary["durability"]["lww_lost_updates"]
    assert (lww_lost > 0) == lost


def test_a_fault_from_time_zero_applies_to_the_operations_issued_at_time_zero():
    spec = tiny(
        {"at": 0, "degrade": "all", "latency": "5ms"},
        {"at": 0, "clock_skew": "default", "offset": "3ms"},
        quorum={"timeout": "50ms"},
        workload={"read_fraction": 0},
    )
    first = run(spec).ops.iloc[0]
    assert first["start_ms"] == 0
    assert (first["latency_ms"], first["ts_ms"]) == (12, 3)


# --- random crashes ----------------------------------------------------------------------------

EXPONENTIAL = {"dist": "exponential", "mean": 20}


def random_crashes(**fault) -> qsim.RunResult:
    nodes = [{"name": f"n{i}", "region": "a" if i <= 2 else "b"} for i in range(1, 5)]
    base = {"random_crashes": "all", "at": 100, "mttf": EXPONENTIAL, "mttr": EXPONENTIAL}
    spec = tiny(
        {"at": 0, "crash": "n1", "recover_at": 10},
        {**base, **fault},
        cluster={"nodes": nodes},
        quorum={"r": 2, "w": 2},
        workload={"arrival": {"type": "poisson", "rate": "2000/s"}},
        duration="500ms",
    )
    return run(spec)


def test_random_crashes_alternate_up_and_down_per_node_from_at_to_until():
    faults = random_crashes(until=400).faults
    random = faults[faults["params"].map(lambda p: "random_crashes" in json.loads(p))]
    assert set(random["kind"]) == {"crash"} and set(random["target"]) == {"n1", "n2", "n3", "n4"}
    assert len(random) == len(faults) - 1 and len(random) > 12
    assert [json.loads(p)["random_crashes"] for p in random["params"]] == [1] * len(random)
    assert sorted(random["fault_id"]) == list(range(2, 2 + len(random)))  # after the scenario's faults
    assert random["start_ms"].between(100, 400, inclusive="left").all()
    for _, crashes in random.sort_values("start_ms").groupby("target"):
        starts, ends = crashes["start_ms"].to_numpy(), crashes["end_ms"].to_numpy()
        assert (ends > starts).all() and (starts[1:] >= ends[:-1]).all()  # down, up, down, ...


def test_correlated_random_crashes_take_a_region_down_together():
    independent = random_crashes(until=400).faults.iloc[1:]
    correlated = random_crashes(until=400, correlated="region").faults.iloc[1:]
    assert set(correlated["target"]) == {"n1,n2", "n3,n4"} and len(correlated) > 6
    assert independent["start_ms"].nunique() == len(independent)


# --- the faults table and the ops' faults column -----------------------------------------------


def test_the_faults_table_has_a_row_per_fault_that_started():
    spec = tiny(
        {"at": 10, "crash": "n1", "recover_at": 20},
        {"at": 5000, "crash": "n2"},  # after the run
        {"at": 15, "partition": [["n1", "n2"], "minority"]},
        {"at": 30, "until": 40, "degrade": ["n1", "n3"], "loss": 0.5},
        {"at": 50, "slow": "n3", "factor": 2, "until": 9000},
        {"at": 60, "clock_skew": "default", "offset": "-2ms", "until": 70},
        quorum={"r": 1, "w": 1},
        cluster={"replica": {"service_time": "0.1ms"}},  # a slow fault needs a service time
    )
    faults = run(spec).faults
    expected = pd.DataFrame(
        {
            "fault_id": [0, 2, 3, 4, 5],
            "kind": ["crash", "partition", "degrade", "slow", "clock_skew"],
            "target": ["n1", "n1,n2 | minority", "n1-n3", "n3", "default"],
            "start_ms": [10.0, 15.0, 30.0, 50.0, 60.0],
            "end_ms": [20.0, np.nan, 40.0, np.nan, 70.0],
        }
    )
    columns = list(expected.columns)
    pd.testing.assert_frame_equal(
        faults[columns].reset_index(drop=True), expected, check_dtype=False, check_column_type=False
    )
    assert json.loads(faults["params"].iloc[0]) == {"amnesia": False, "recover_at": 20.0}


def test_each_operation_lists_the_faults_active_while_it_ran():
    spec = tiny(
        {"at": 20, "until": 40, "slow": "n1", "factor": 2},
        {"at": 30, "until": 50, "degrade": "all", "latency": "1ms"},
        quorum={"r": 1, "w": 1},
        cluster={"replica": {"service_time": "0.1ms"}},
    )
    ops = run(spec).ops
    start, end = ops["start_ms"], ops["end_ms"]
    slow = (start < 40) & (end >= 20)
    degraded = (start < 50) & (end >= 30)
    expected = np.select([slow & degraded, slow, degraded], ["0,1", "0", "1"], "")
    assert ops["faults"].tolist() == expected.tolist()
    assert {"", "0", "0,1", "1"} <= set(expected)


# --- determinism -------------------------------------------------------------------------------

RANDOM_FAULTS = tiny(
    {"random_crashes": ["n1", "n2"], "mttf": EXPONENTIAL, "mttr": {"dist": "exponential", "mean": 5}},
    {"at": 100, "partition": [["n3"]], "heal_at": 200},
    {"at": 150, "until": 300, "degrade": "n2", "latency": {"dist": "exponential", "mean": 2}, "loss": 0.1},
    cluster={"nodes": 4},
    network={"latency": {"dist": "exponential", "mean": 1}},
    quorum={"r": 2, "w": 2},
    workload={"arrival": {"type": "poisson", "rate": "2000/s"}, "clients": 3},
    duration="400ms",
)


def test_faults_replay_identically_from_the_same_seed():
    first, second = run(RANDOM_FAULTS, seed=7), run(RANDOM_FAULTS, seed=7)
    pd.testing.assert_frame_equal(first.ops, second.ops)
    pd.testing.assert_frame_equal(first.faults, second.faults)
    assert len(first.faults) > 5 and not first.ops["ok"].all()


def test_another_seed_draws_other_faults():
    first, other = run(RANDOM_FAULTS, seed=7), run(RANDOM_FAULTS, seed=8)
    assert not first.faults["start_ms"].equals(other.faults["start_ms"])
    assert not first.ops["latency_ms"].equals(other.ops["latency_ms"])


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "path", "words"),
    [
        ({"at": 10, "crash": "n9"}, "faults.1.crash", "unknown node 'n9'"),
        ({"at": 10, "crash": "n2", "recover_at": 10}, "faults.1.recover_at", "not after at"),
        ({"at": 10, "partition": [["n1"]], "heal_at": "5ms"}, "faults.1.heal_at", "not after at"),
        ({"at": 10, "recover_at": 20}, "faults.1", "exactly one of the keys"),
        ({"at": 10, "crash": "n1", "slow": "n2", "factor": 2}, "faults.1", "exactly one of the keys"),
        (
            {"at": 10, "partition": [["n1", "n2"], ["n2", "n3"]]},
            "faults.1.partition.1",
            "is also in group",
        ),
        ({"at": 10, "partition": [["n1"], ["mars"]]}, "faults.1.partition.1", "unknown node or region"),
        ({"at": 10, "degrade": "all", "until": 20}, "faults.1.latency", "give latency"),
        ({"at": 10, "degrade": ["n1", "mars"], "loss": 0.1}, "faults.1.degrade", "'mars'"),
        ({"at": 10, "slow": "n1", "factor": 0}, "faults.1.factor", "greater than 0"),
        ({"at": 10, "clock_skew": "n1", "offset": "1ms", "until": 1}, "faults.1.until", "not after at"),
        ({"random_crashes": ["n1", "x"], "mttf": "1s", "mttr": "1s"}, "faults.1.random_crashes", "'x'"),
    ],
)
def test_a_bad_fault_is_rejected_at_its_path(fault, path, words):
    with pytest.raises(ScenarioError) as info:
        qsim.scenario_from_dict(tiny({"at": 1, "crash": "n1"}, fault))
    assert any(line.startswith(f"{path}:") and words in line for line in info.value.problems), (
        info.value.problems
    )


def test_a_node_named_in_one_group_and_brought_by_its_region_in_another_is_rejected():
    with pytest.raises(ScenarioError):
        qsim.scenario_from_dict(two_regions({"at": 10, "partition": [["a"], ["n1"]]}))


def test_random_crashes_ending_before_they_start_are_rejected():
    fault = {"random_crashes": "all", "at": 100, "until": 50, "mttf": "1ms", "mttr": "1ms"}
    with pytest.raises(ScenarioError) as info:
        qsim.scenario_from_dict(tiny(fault))
    assert any(line.startswith("faults.0.until:") for line in info.value.problems)
