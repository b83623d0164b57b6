"""The leader-based (Raft-style) protocol: validation, safety, liveness and elections, on the real model.

Runs go through :func:`qsim.simulate`, or, where a test must crash whichever node leads at a
moment, through the model itself (:func:`qsim.model.build.build`), driven step by step.
"""

from __future__ import annotations

import statistics

import pytest

import qsim
from qsim.checks.linearizability import check_linearizability
from qsim.errors import ScenarioError
from qsim.model.build import build
from qsim.model.leader.election import LEADER
from qsim.model.leader.metrics import MAX_INTERVALS, LeaderMetrics
from qsim.rng import RandomStreams

BASE = {
    "name": "leader",
    "duration": "10s",
    "network": {"latency": {"dist": "exponential", "mean": 5}},
    "quorum": {"protocol": "leader", "timeout": "500ms", "retries": 2},
    "workload": {"arrival": {"type": "poisson", "rate": 200}, "clients": 8, "keys": {"count": 5}},
}
# Random crashes of every node, a minority and a one-node partition, and 1% loss: the safety runs.
CHAOS = {
    "network": {"latency": {"dist": "exponential", "mean": 5}, "loss": 0.01},
    "faults": [
        {"random_crashes": "all", "mttf": "4s", "mttr": "1s"},
        {"at": "3s", "partition": [["n1", "n2"], ["n3", "n4", "n5"]], "heal_at": "5s"},
        {"at": "7s", "partition": [["n3"], ["n1", "n2", "n4", "n5"]], "heal_at": "8s"},
    ],
}
NO_OP_FAULT = {"at": 0, "clock_skew": "n1", "offset": 0}  # faults on: the checked network path


def scenario(leader: dict | None = None, **sections) -> qsim.Scenario:
    """BASE with each keyword's section updated, and ``quorum.leader`` set to ``leader``."""
    data = {key: dict(value) if isinstance(value, dict) else value for key, value in BASE.items()}
    for key, value in sections.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key in data else value
    if leader is not None:
        data["quorum"] = {**data["quorum"], "leader": leader}
    return qsim.scenario_from_dict(data)


# --- the scenario -----------------------------------------------------------------------------


def test_defaults_make_the_group_every_node():
    s = scenario()
    assert s.quorum.n == 5 and s.quorum.leader.quorums(5) == (3, 3)
    assert s.quorum.leader.read_mode == "leader" and s.quorum.leader.check_quorum


def test_quorums_that_need_not_meet_are_refused_naming_the_fields():
    with pytest.raises(ScenarioError) as caught:
        scenario({"election_quorum": 2, "replication_quorum": 3})
    text = str(caught.value)
    assert "quorum.leader.replication_quorum" in text
    assert "election_quorum (Q1 = 2) + replication_quorum (Q2 = 3) = 5" in text and "N = 5" in text
    scenario({"election_quorum": 4, "replication_quorum": 2})  # 4 + 2 > 5: Flexible Paxos allows it


def test_a_quorum_larger_than_the_group_and_a_partial_group_are_refused():
    with pytest.raises(ScenarioError, match=r"quorum\.leader\.election_quorum: 6 is larger"):
        scenario({"election_quorum": 6})
    with pytest.raises(ScenarioError, match=r"quorum\.n: 3 is not the number of nodes"):
        scenario(quorum={**BASE["quorum"], "n": 3})


def test_settings_of_the_other_protocol_are_warned_about():
    warned = qsim.scenario.consistency_warnings(scenario(quorum={**BASE["quorum"], "r": 1}))
    assert warned == ["quorum.r: does nothing with protocol: leader (leaderless setting)"]
    leaderless = {**BASE["quorum"], "protocol": "leaderless", "leader": {"heartbeat": "20ms"}}
    assert any(
        "quorum.leader" in line for line in qsim.scenario.consistency_warnings(scenario(quorum=leaderless))
    )


# --- runs without faults ----------------------------------------------------------------------


def test_a_calm_run_elects_once_and_answers_every_operation():
    result = qsim.simulate(scenario(), reraise=True)
    ops, section = result.ops, result.summary["leader"]
    assert ops["ok"].all() and len(ops) > 1000
    assert (section["elections"], section["terms"], section["leader_changes"]) == (1, 1, 1)
    without = section["time_without_leader_ms"]
    assert (
        without["count"] == 1 and without["intervals"][0]["from_ms"] == 0.0 and without["open_since"] is None
    )
    assert 150 <= without["total"] < 400  # one election timeout, then a vote round and a commit
    assert result.summary["messages"]["append_entries"]["sent"] > 0
    writes = ops[ops["kind"] == "write"]
    assert (writes["commit_ms"] <= writes["end_ms"]).all() and writes["ts_ms"].is_unique


def test_per_kind_latency_applies_to_the_new_message_kinds():
    slow = scenario(network={"latency": "1ms", "kinds": {"append_ack": "20ms"}}, workload={"max_ops": 50})
    fast = scenario(network={"latency": "1ms"}, workload={"max_ops": 50})
    latency = {
        name: qsim.simulate(s, reraise=True).ops["latency_ms"].median()
        for name, s in (("slow", slow), ("fast", fast))
    }
    assert latency["slow"] > latency["fast"] + 15  # a write waits for a follower's ack


def test_batches_carry_several_entries_to_a_node_catching_up():
    busy = {"arrival": {"type": "poisson", "rate": "5000/s"}, "max_ops": 8000}
    away = [{"at": "500ms", "crash": "n1", "recover_at": "1s"}]
    sent = {}
    for batch in (1, 64):
        result = qsim.simulate(scenario({"max_batch": batch}, workload=busy, faults=away), reraise=True)
        assert result.ops["ok"].mean() > 0.95
        sent[batch] = result.summary["messages"]["append_entries"]["sent"]
    assert sent[64] < sent[1] - 1000  # n1 missed about 2500 entries


# --- safety -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("read_mode", ["leader", "read_index"])
def test_leader_reads_stay_linearizable_through_crashes_partitions_and_loss(seed, read_mode):
    result = qsim.simulate(scenario({"read_mode": read_mode}, **CHAOS), seed=seed, reraise=True)
    ops, section = result.ops, result.summary["leader"]
    assert section["elections"] > 3 and section["leader_changes"] > 1  # the faults did bite
    assert section["max_leaders_per_term"] == 1
    assert section["commit_conflicts"] == 0
    assert result.summary["durability"]["lost_writes"] == 0
    assert check_linearizability(ops).violations == 0
    assert not ops["stale"].any()
    assert 0.8 < ops["ok"].mean() < 1


@pytest.mark.parametrize("seed", [1, 2])
def test_committed_entries_are_never_lost_or_changed_with_durable_logs(seed):
    model = _model(scenario(**CHAOS, workload={**BASE["workload"], "max_ops": 1500}), seed)
    model.run()
    protocol = model.protocol
    committed = protocol.committed
    assert len(committed) > 1000 and protocol.commit_conflicts == 0
    for node in protocol.nodes:
        for index in range(1, node.commit + 1):
            term, op = node.log[index]
            assert committed[index] == (term, op.id if op is not None else None)
    assert all(len(nodes) == 1 for nodes in protocol.metrics.leaders_by_term.values())


def test_amnesia_of_voters_loses_committed_writes_and_breaks_one_leader_per_term():
    amnesia = [{"random_crashes": "all", "mttf": "500ms", "mttr": "200ms", "amnesia": True}]
    result = qsim.simulate(scenario(faults=amnesia, duration="3s"), reraise=True)
    assert result.summary["durability"]["lost_writes"] > 0
    assert result.summary["leader"]["max_leaders_per_term"] > 1


@pytest.mark.parametrize("seed", [1, 2])
def test_follower_reads_are_stale_and_not_linearizable(seed):
    result = qsim.simulate(scenario({"read_mode": "follower"}, **CHAOS), seed=seed, reraise=True)
    ops = result.ops
    assert ops["stale"].sum() > 20
    assert check_linearizability(ops).violations > 0


# --- liveness ---------------------------------------------------------------------------------


def _model(s: qsim.Scenario, seed: int):
    return build(s, RandomStreams(seed))


def _started(s: qsim.Scenario, seed: int):
    """The model of ``s``, its processes started but no client issuing (elections only)."""
    model = _model(s, seed)
    model.faults.start()
    for process in model.background:
        process.start()
    return model


def _leader(model) -> int | None:
    leaders = [n for n in model.protocol.nodes if n.role == LEADER and not model.network.down[n.index]]
    return max(leaders, key=lambda n: n.term).index if leaders else None


def _crash(model, node: int) -> None:
    """Crash ``node`` now, as the fault injector does."""
    model.network.crash(node)
    model.replicas[node].crash()
    model.protocol.orphan(node)


def _failover_ms(s: qsim.Scenario, seed: int, crash_at: float = 2000.0, until: float = 20_000.0) -> float:
    """Crash whoever leads at ``crash_at``; return the time without a leader that follows."""
    model = _started(s, seed)
    model.env.run(until=crash_at)
    leader = _leader(model)
    assert leader is not None
    _crash(model, leader)
    model.env.run(until=until)
    without = model.protocol.summary()["leader"]["time_without_leader_ms"]
    after = [i["to_ms"] - i["from_ms"] for i in without["intervals"] if i["from_ms"] >= crash_at]
    if without["open_since"] is not None:
        return until - without["open_since"]
    assert len(after) == 1 and _leader(model) not in (None, leader)
    return after[0]


def test_a_leader_crash_with_a_majority_up_elects_a_new_leader():
    s = scenario(faults=[NO_OP_FAULT])
    for seed in range(1, 6):
        assert _failover_ms(s, seed) < 1000


def _first_leader_ms(s: qsim.Scenario, seed: int, until: float = 10_000.0) -> float:
    """Time from the start (every node a follower, none has heard anyone) to a serving leader."""
    model = _started(s, seed)
    model.env.run(until=until)
    without = model.protocol.summary()["leader"]["time_without_leader_ms"]
    return until if without["open_since"] == 0.0 else without["intervals"][0]["to_ms"]


def test_a_leader_cut_off_in_a_minority_stops_serving_when_the_cut_begins():
    s = scenario(network={"latency": "5ms"}, faults=[NO_OP_FAULT])
    for seed in (1, 2, 3):
        model = _started(s, seed)
        model.env.run(until=2000)
        old = _leader(model)
        others = [n for n in range(5) if n != old]
        model.network.cut([(old, n) for n in others] + [(n, old) for n in others])
        model.env.run(until=5000)
        section = model.protocol.summary()["leader"]
        first, *_ = [i for i in section["time_without_leader_ms"]["intervals"] if i["from_ms"] > 0]
        start, end = first["from_ms"], first["to_ms"]
        assert first["cause"] in ("step_down", "takeover")  # whichever came first
        assert 2000 - 50 - 10 <= start <= 2000  # the last acks came a heartbeat (50 ms) or less before
        assert end < 2000 + 1000 and _leader(model) in others
        assert model.protocol.nodes[old].role != LEADER  # check quorum: it stepped down


def test_split_votes_repeat_without_randomness_and_not_with_it():
    """Every node starts at once and hears every message after the same 10 ms: randomness breaks ties."""
    symmetric = {"network": {"latency": "10ms"}, "faults": [NO_OP_FAULT]}

    def spread(ms: float) -> qsim.Scenario:
        return scenario({"election_timeout": {"dist": "uniform", "low": 200, "high": 200 + ms}}, **symmetric)

    constant = scenario({"election_timeout": "200ms"}, **symmetric)
    seeds = range(1, 11)
    mean = {ms: statistics.mean(_first_leader_ms(spread(ms), seed) for seed in seeds) for ms in (5, 50)}
    never = [_first_leader_ms(constant, seed) for seed in (1, 2)]
    assert never == [10_000.0, 10_000.0]
    assert never[0] > mean[5] > mean[50] and mean[50] < 1000  # 5 ms < one hop: ties break slowly
    calm = qsim.simulate(constant, reraise=True).summary["leader"]
    assert calm["split_votes"] == calm["elections"] > 10 and calm["leader_changes"] == 0
    print(f"time to a first leader, 10 seeds: 5 ms of randomness {mean[5]:.0f} ms, 50 ms {mean[50]:.0f} ms")


def test_five_nodes_15ms_apart_always_elect_a_new_leader_after_a_leader_crash():
    s = scenario(network={"latency": "15ms"}, faults=[NO_OP_FAULT])
    times = [_failover_ms(s, seed) for seed in range(1, 31)]
    assert max(times) < 2000
    median = statistics.median(times)
    print(
        f"time without a leader after a leader crash, 30 trials: median {median:.0f} ms, "
        f"max {max(times):.0f} ms"
    )


def test_pre_vote_keeps_an_isolated_node_from_raising_its_term():
    cut = [{"at": "1s", "partition": [["n5"], ["n1", "n2", "n3", "n4"]], "heal_at": "4s"}]
    terms = {}
    for pre_vote in (False, True):
        s = scenario({"pre_vote": pre_vote}, faults=cut)
        terms[pre_vote] = qsim.simulate(s, reraise=True).summary["leader"]["terms"]
    assert terms[True] == 1 < terms[False]


# --- the metrics, by hand -----------------------------------------------------------------------


def test_intervals_without_a_leader_never_overlap_and_their_list_is_bounded():
    last_quorum = {0: 90.0, 1: 0.0}
    metrics = LeaderMetrics(last_quorum.__getitem__, nodes=2)
    metrics.candidate(1)
    metrics.elected(1, 0)
    metrics.serving(1, 0, now=100.0)  # closes [0, 100]
    metrics.stopped(0, at=95.0)  # stepped down; its last quorum predates its serving: from 100
    metrics.candidate(2)
    metrics.candidate(3)
    metrics.elected(3, 1)
    metrics.serving(3, 1, now=400.0)
    last_quorum[1] = 500.0
    metrics.serving(4, 0, now=600.0)  # takes over from a leader that had a quorum at 500
    section = metrics.summary(now=700.0)
    intervals = section["time_without_leader_ms"]["intervals"]
    assert [[i["from_ms"], i["to_ms"], i["cause"]] for i in intervals] == [
        [0.0, 100.0, "start"],
        [100.0, 400.0, "step_down"],
        [500.0, 600.0, "takeover"],
    ]
    assert section["failover_ms"]["count"] == 2 and section["failover_ms"]["max"] == 300.0
    assert [(t["term"], t["node"], t["from_ms"], t["to_ms"]) for t in section["tenures"]] == [
        (1, 0, 100.0, 100.0),
        (3, 1, 400.0, 500.0),
        (4, 0, 600.0, None),
    ]
    assert section["time_without_leader_ms"]["total"] == 500.0
    assert (section["elections"], section["split_votes"], section["terms"], section["leader_changes"]) == (
        3,
        1,
        3,
        3,
    )
    for step in range(MAX_INTERVALS + 10):
        metrics.stopped(0, at=1000.0 + 2 * step)
        metrics.serving(5 + step, 0, now=1001.0 + 2 * step)
    without = metrics.summary(now=10**6)["time_without_leader_ms"]
    assert without["listed"] == MAX_INTERVALS < without["count"] == MAX_INTERVALS + 13


# --- what a user reads --------------------------------------------------------------------------


def test_the_terminal_summary_md_and_report_name_the_protocol_and_its_elections(tmp_path):
    from qsim.output.html_report import render_run
    from qsim.output.report import summary_markdown, terminal_table

    result = qsim.simulate(scenario({"read_mode": "read_index"}, duration="2s"), reraise=True)
    summary = result.summary
    assert summary["quorum"] == {"protocol": "leader", "n": 5, "election_quorum": 3,
                                 "replication_quorum": 3, "read_mode": "read_index"}  # fmt: skip
    assert summary["oracle"] == []  # its models are of leaderless quorums
    elections = summary["leader"]["elections"]
    table = terminal_table(summary, result.manifest)
    assert "leader protocol, N=5 Q1=3 Q2=3, read_index reads" in table
    assert f"leader: {elections} election" in table and "R=" not in table.splitlines()[0]
    assert "## Leader" in summary_markdown(summary, result.manifest)
    html = render_run(qsim.write_run(result, tmp_path / "run", plots_too=False))
    assert "<h2>Leader</h2>" in html and "leader protocol, N=5 Q1=3 Q2=3" in html


# --- service queues -----------------------------------------------------------------------------


def test_with_a_service_time_the_leader_queues_first():
    """Every message waits for a node's server: the leader, which handles the most, is the busiest."""
    queued = {"nodes": 3, "replica": {"service_time": {"dist": "exponential", "mean": 0.1}, "concurrency": 1}}

    def run(rate: float) -> dict:
        s = scenario(cluster=queued, duration="4s", warmup="1s", network={"latency": "1ms"},
                     workload={**BASE["workload"], "arrival": {"type": "poisson", "rate": rate}})  # fmt: skip
        assert not any("service_time" in line for line in qsim.scenario.consistency_warnings(s))
        return qsim.simulate(s, reraise=True).summary

    busy, calm = run(2000), run(200)
    (leader,) = {tenure["node"] for tenure in busy["leader"]["tenures"]}  # no faults: one leader
    utilization = {name: node["utilization"] for name, node in busy["nodes"].items()}
    followers = [u for name, u in utilization.items() if name != leader]
    # The leader serves every client request and an ack per follower per entry; a follower one
    # AppendEntries per entry: about N - 1 = 2 times the work, here 2.8 (clients included).
    assert utilization[leader] > 2 * max(followers) and utilization[leader] > 0.4
    # Queueing: at 10 times the load the median write waits behind other messages.
    assert busy["writes"]["latency_ms"]["p50"] > calm["writes"]["latency_ms"]["p50"] + 0.1
