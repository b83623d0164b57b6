"""The leader-based (Raft-style) protocol's settings: ``quorum.leader``, and its cross-field rules.

The group is every node of the cluster: with ``quorum.protocol: leader``, ``quorum.n`` is the
number of nodes (set so when left out; any other value is refused). Election quorum Q1 and
replication quorum Q2 default to a majority of the group; Flexible Paxos (Howard et al. 2016)
needs only Q1 + Q2 > N, which is enforced.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from qsim.distributions import Dist, Duration, Int
from qsim.scenario.base import Model
from qsim.scenario.limits import MAX_N

READ_MODES = ("leader", "read_index", "lease", "follower")


class Leader(Model):
    """Raft-style election, log replication and reads (used with ``quorum.protocol: leader``)."""

    election_timeout: Dist = Field(
        default_factory=lambda: {"dist": "uniform", "low": 150.0, "high": 300.0},
        description="a follower that hears no leader for a draw of this starts an election, ms",
    )
    heartbeat: Duration = Field(50.0, gt=0, description="the leader's AppendEntries interval, ms")
    election_quorum: Int | None = Field(None, ge=1, description="votes to win (Q1); null = majority")
    replication_quorum: Int | None = Field(
        None, ge=1, description="holders for an entry to commit (Q2), leader included; null = majority"
    )
    pre_vote: bool = Field(False, description="ask for votes without a new term first (Raft 9.6)")
    check_quorum: bool = Field(
        True, description="a leader that hears no election quorum for an election timeout steps down"
    )
    read_mode: Literal["leader", "read_index", "lease", "follower"] = Field(
        "leader",
        description="leader: reads go through the log; read_index: the leader confirms its "
        "leadership with a heartbeat round, then answers; lease: the leader answers at once while "
        "its lease holds (by its own clock), else as read_index; follower: any node answers at once",
    )
    lease: Duration | None = Field(
        None,
        gt=0,
        description="read_mode lease: how long after a heartbeat round that N - Q1 followers "
        "acknowledged the leader answers reads alone, by its clock, ms; null = the lower end of "
        "election_timeout (the longest safe lease; longer is unsafe)",
    )
    max_batch: Int = Field(64, ge=1, le=1_000_000, description="log entries per AppendEntries at most")
    snapshot_every: Int = Field(
        10_000,
        ge=1,
        le=1_000_000_000,
        description="a node compacts its log (keeping a snapshot: its store) once it has applied "
        "twice this many entries since the last compaction, keeping the last this many",
    )

    def quorums(self, nodes: int) -> tuple[int, int]:
        """Return (Q1, Q2) for a group of ``nodes``, majorities where not given."""
        majority = nodes // 2 + 1
        q1 = self.election_quorum if self.election_quorum is not None else majority
        q2 = self.replication_quorum if self.replication_quorum is not None else majority
        return q1, q2


def leader_problems(protocol: str, n: int, leader: Leader, nodes: int) -> list[tuple[str, str]]:
    """Return (path, message) for the leader protocol's rules against the ``nodes`` of the cluster."""
    if protocol != "leader":
        return []
    if nodes > MAX_N:
        return [
            (
                "cluster.nodes",
                f"{nodes} nodes: with protocol: leader every node holds the log, and a group has at "
                f"most {MAX_N} nodes",
            )
        ]
    found = []
    if n < nodes:  # larger n is reported by the rule every protocol shares
        found.append(
            (
                "quorum.n",
                f"{n} is not the number of nodes ({nodes}): with protocol: leader every node holds "
                "the log; leave quorum.n out or give the node count",
            )
        )
    shortest = shortest_election_timeout(leader)
    if shortest < MIN_TIMEOUT_MS:
        found.append(
            (
                "quorum.leader.election_timeout",
                f"draws as short as {shortest:.3g} ms; an election timeout must be at least "
                f"{MIN_TIMEOUT_MS:g} ms (and should be longer than a vote's round trip), or nodes "
                "stand for election again and again without end",
            )
        )
    if leader.heartbeat < MIN_TIMEOUT_MS / 10:
        found.append(
            ("quorum.leader.heartbeat", f"{leader.heartbeat:g} ms is shorter than {MIN_TIMEOUT_MS / 10:g} ms")
        )
    q1, q2 = leader.quorums(nodes)
    for field, value in (("election_quorum", q1), ("replication_quorum", q2)):
        if value > nodes:
            found.append((f"quorum.leader.{field}", f"{value} is larger than the number of nodes ({nodes})"))
    if leader.read_mode == "lease" and not leader.check_quorum:
        found.append(
            (
                "quorum.leader.check_quorum",
                "false, but read_mode: lease needs it: followers that heard a leader within the "
                "lease must ignore vote requests, or a new leader could commit while the old one "
                "still answers reads from its lease",
            )
        )
    if q1 + q2 <= nodes:
        found.append(
            (
                "quorum.leader.replication_quorum",
                f"election_quorum (Q1 = {q1}) + replication_quorum (Q2 = {q2}) = {q1 + q2} is not "
                f"larger than the number of nodes (N = {nodes}): an election quorum could miss a "
                "committed entry; Q1 + Q2 > N is needed",
            )
        )
    return found


MIN_TIMEOUT_MS = 1.0  # the shortest election timeout accepted (a tenth of it: the shortest heartbeat)


def shortest_election_timeout(leader: Leader) -> float:
    """About the shortest election timeout: the smallest of 1000 draws (fixed seed), ms."""
    import numpy as np  # here, not at the top: checking a leaderless scenario needs none of numpy

    return float(leader.election_timeout.sample(np.random.default_rng(0), 1000).min())


def group_size(data: object) -> object:
    """Let quorum.n default to the node count when ``quorum.protocol`` is ``leader`` (raw input)."""
    if not isinstance(data, dict) or not isinstance(data.get("quorum"), dict):
        return data
    quorum = data["quorum"]
    if quorum.get("protocol") != "leader" or "n" in quorum:
        return data
    cluster = data.get("cluster", {})
    nodes = cluster.get("nodes", 5) if isinstance(cluster, dict) else None
    if isinstance(nodes, list | tuple):
        count = len(nodes)
    elif isinstance(nodes, int) and not isinstance(nodes, bool):
        count = nodes
    else:
        return data  # an unusual node count (text, float) is checked by its field; n keeps its default
    if count > MAX_N:
        return data  # too large a group: leader_problems names cluster.nodes, not a derived quorum.n
    return {**data, "quorum": {**quorum, "n": count}}


# Settings of the leaderless protocol, and what they are with nothing said: with protocol: leader
# another value changes nothing, and is warned about.
LEADERLESS_QUORUM = (
    "r",
    "w",
    "read_fanout",
    "write_fanout",
    "replica_selection",
    "ewma_alpha",
    "ewma_reset",
    "hedge",
    "replicas",
    "coordinator",
    "failover",
    "shrink",
    "suspicion",
)
LEADERLESS_REPAIR = ("read_repair", "hinted_handoff", "handoff_interval", "anti_entropy")


def protocol_warnings(scenario) -> list[str]:
    """Settings of one protocol given to the other: they do nothing."""
    quorum, repair = scenario.quorum, scenario.repair
    if quorum.protocol != "leader":
        if quorum.leader != Leader():
            return ["quorum.leader: applies to protocol: leader only; with leaderless it does nothing"]
        return []
    found = _lease_warnings(quorum.leader) + _heartbeat_warnings(quorum.leader)
    found += [
        f"quorum.{name}: does nothing with protocol: leader (leaderless setting)"
        for name in LEADERLESS_QUORUM
        if getattr(quorum, name) != type(quorum).model_fields[name].get_default(call_default_factory=True)
    ]
    found += [
        f"repair.{name}: does nothing with protocol: leader (leaderless setting)"
        for name in LEADERLESS_REPAIR
        if getattr(repair, name) != type(repair).model_fields[name].get_default(call_default_factory=True)
    ]
    return found


def _lease_warnings(leader: Leader) -> list[str]:
    """A lease with another read mode does nothing; one longer than an election timeout is unsafe."""
    if leader.lease is None:
        return []
    if leader.read_mode != "lease":
        return [
            f"quorum.leader.lease: does nothing with read_mode: {leader.read_mode} (read_mode: lease uses it)"
        ]
    shortest = shortest_election_timeout(leader)
    if leader.lease <= shortest:
        return []
    return [
        f"quorum.leader.lease: {leader.lease:g} ms is longer than the shortest election timeout (about "
        f"{shortest:.4g} ms): a new leader can commit writes while the old one still answers reads from "
        "its lease, so lease reads may be stale (not linearizable)"
    ]


def _heartbeat_warnings(leader: Leader) -> list[str]:
    """A heartbeat as long as the shortest election timeout lets idle followers stand for election."""
    shortest = shortest_election_timeout(leader)
    if leader.heartbeat < shortest:
        return []
    return [
        f"quorum.leader.heartbeat: {leader.heartbeat:g} ms is not shorter than the shortest election "
        f"timeout (about {shortest:.4g} ms): when there are no writes to carry, followers time out "
        "between heartbeats and depose their leader"
    ]
