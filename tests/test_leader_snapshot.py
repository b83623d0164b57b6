"""Log compaction and snapshots of the leader protocol: bounded logs, snapshot installs, safety kept."""

from __future__ import annotations

import pytest

import qsim
from qsim.checks.linearizability import check_linearizability
from qsim.model.build import build
from qsim.model.leader.election import LEADER
from qsim.rng import RandomStreams
from tests.test_leader import BASE, CHAOS, scenario

EVERY = 200  # quorum.leader.snapshot_every in these tests: compactions every few hundred entries


def _run(s: qsim.Scenario, seed: int = 1):
    model = build(s, RandomStreams(seed))
    model.run()
    return model


def test_logs_stay_bounded_and_every_node_keeps_up():
    s = scenario({"snapshot_every": EVERY}, workload={**BASE["workload"], "max_ops": 6000}, duration="40s")
    model = _run(s)
    nodes = model.protocol.nodes
    for node in nodes:
        assert node.base > 0  # it compacted
        # At most 2 x EVERY applied entries since the last compaction, plus what is not applied yet.
        assert len(node.log) <= 2 * EVERY + (node.base + len(node.log) - 1 - node.applied) + 1
        assert node.where is None or len(node.where) <= len(node.log)  # made at a leader's first retry
    leader = max(nodes, key=lambda node: node.applied)
    # Followers learn the last commit index with the next AppendEntries: within a few entries.
    assert all(leader.commit - node.commit <= 20 for node in nodes)
    assert model.protocol.summary()["leader"]["snapshots_sent"] == 0  # nobody fell behind


@pytest.mark.parametrize("amnesia", [False, True])
def test_a_follower_back_after_the_leader_compacted_gets_a_snapshot(amnesia):
    s = scenario({"snapshot_every": EVERY}, faults=[{"at": 0, "clock_skew": "n1", "offset": 0}])
    model = build(s, RandomStreams(1))
    model.faults.start()
    for process in model.background:
        process.start()
    model.workload.start()
    model.env.run(until=1000)
    protocol = model.protocol
    leader = next(n for n in protocol.nodes if n.role == LEADER)
    follower = next(n.index for n in protocol.nodes if n.index != leader.index)
    model.network.crash(follower)
    model.replicas[follower].crash()
    protocol.orphan(follower)
    model.env.run(until=6000)  # 200 operations a second: the leader compacts past the follower
    compacted = leader.base
    assert compacted > protocol.nodes[follower].applied
    model.network.recover(follower)
    model.replicas[follower].recover(amnesia)
    protocol.recovered(follower, amnesia)
    model.env.run(until=8000)
    back = protocol.nodes[follower]
    assert leader.snapshots_sent >= 1 and back.base >= compacted  # it took a snapshot, not the log
    assert back.commit >= leader.commit - 20  # and caught up (20: what a heartbeat brings at most)
    assert all(back.replica.store.get(key, (0,))[0] <= back.applied for key in range(5))


@pytest.mark.parametrize("seed", [1, 2])
def test_compaction_keeps_every_safety_property_under_chaos(seed):
    s = scenario({"snapshot_every": 20}, **CHAOS, workload={**BASE["workload"], "max_ops": 2500})
    result = qsim.simulate(s, seed=seed, reraise=True)
    section, ops = result.summary["leader"], result.ops
    assert section["commit_conflicts"] == 0 and section["max_leaders_per_term"] == 1
    assert result.summary["durability"]["lost_writes"] == 0
    assert check_linearizability(ops).violations == 0 and not ops["stale"].any()
    assert section["snapshots_sent"] > 0  # crashed nodes came back behind the compacted logs
