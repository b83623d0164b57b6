"""Failover and repair under faults, each against what it promises.

Strict, sloppy and shrunk quorums through partitions and crashes; durability with and without
amnesia; retries; read repair; anti-entropy; the failure detector.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import qsim
from qsim.model.leaderless.ring import Ring
from qsim.scenario.schema import Cluster

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
HEAL_MS = 9000.0


def run(spec: dict, seed: int = 1) -> qsim.RunResult:
    result = qsim.simulate(qsim.scenario_from_dict({"name": "failover", **spec}), seed=seed)
    assert result.error is None
    return result


def sent(result: qsim.RunResult, kind: str) -> int:
    return result.summary["messages"][kind]["sent"]


def stale_fraction(ops: pd.DataFrame, start_ms: float, end_ms: float = np.inf) -> float:
    """The stale share of the checked reads that started in [start_ms, end_ms)."""
    reads = ops[(ops["kind"] == "read") & ops["start_ms"].between(start_ms, end_ms, inclusive="left")]
    checked = reads["stale"].dropna()
    assert len(checked) > 300
    return float(checked.mean())


# --- a 2-vs-3 partition: strict vs sloppy (scenarios/sloppy-handoff.yaml) ----------------------


@functools.cache
def handoff(failover: str, faults: bool = True, repair: bool = True) -> qsim.RunResult:
    """sloppy-handoff.yaml on a shorter timeline: left {n1, n2} cut off from right from 4 s to 9 s.

    1000 keys instead of 200, so that new writes alone take seconds to overwrite what the
    partition left behind and the repairs have something to do.
    """
    overrides = [
        f"quorum.failover={failover}",
        "duration=16s",
        "faults.0.at=4s",
        f"faults.0.heal_at={HEAL_MS:g}ms",
        "workload.keys.count=1000",
    ]
    if not faults:
        overrides.append("faults=[]")
    if not repair:
        overrides += ["repair.hinted_handoff=false", "repair.read_repair='off'"]
    result = qsim.simulate(qsim.load_scenario(SCENARIOS / "sloppy-handoff.yaml", overrides))
    assert result.error is None
    return result


def reachable(result: qsim.RunResult) -> np.ndarray:
    """Per operation: do W (= R = 2) of its key's replicas sit on its client's side of the cut?"""
    scenario = result.scenario
    nodes = scenario.cluster.nodes
    ring = Ring([node.name for node in nodes], scenario.cluster.vnodes, scenario.quorum.n)
    left = {i for i, node in enumerate(nodes) if node.region == "left"}
    on_left = np.array([len(left.intersection(ring.replicas(key))) for key in result.ops["key"]])
    client_left = np.array(scenario.client_regions)[result.ops["client"]] == "left"
    return np.where(client_left, on_left, scenario.quorum.n - on_left) >= scenario.quorum.w


def during_partition(ops: pd.DataFrame) -> pd.Series:
    """Operations that started during the partition (and, with a 50 ms timeout, ended in it)."""
    return ops["start_ms"].between(4000, HEAL_MS - 50, inclusive="left")


def test_strict_quorums_fail_exactly_the_keys_a_side_cannot_reach_during_a_partition():
    result = handoff("strict")
    ops, can_reach = result.ops, reachable(result)
    inside = during_partition(ops)
    assert (inside & can_reach).sum() > 1000 and (inside & ~can_reach).sum() > 1000
    assert (ops.loc[inside, "ok"] == can_reach[inside]).all()
    assert ops.loc[ops["start_ms"] >= HEAL_MS + 100, "ok"].all()
    assert sent(result, "hint") == 0


def test_sloppy_quorums_serve_unreachable_keys_through_stand_ins_holding_hints():
    result = handoff("sloppy")
    ops = result.ops
    cut_off = during_partition(ops) & ~reachable(result)
    # Only the operations that time out before a suspicion (2 s) begins, or renews, fail.
    assert ops.loc[cut_off, "ok"].mean() > 0.95
    hints = result.summary["messages"]["hint"]
    assert hints["sent"] > 0 and hints["delivered"] > 0  # handed off once the partition healed


def test_after_the_heal_handoff_and_read_repair_bring_staleness_back_to_the_no_fault_level():
    healed, baseline = handoff("sloppy").ops, handoff("sloppy", faults=False).ops
    unrepaired = handoff("sloppy", repair=False).ops
    assert stale_fraction(healed, 4000, HEAL_MS) > 0.2  # writes landed on stand-ins
    late = HEAL_MS + 3000
    assert stale_fraction(healed, late) <= stale_fraction(baseline, late) + 0.001
    assert stale_fraction(unrepaired, late) > stale_fraction(healed, late) + 0.02  # the control


# --- strict quorums, durable replicas, amnesia -------------------------------------------------

TWO_SIDES = [{"name": "w1", "region": "west"}, {"name": "w2", "region": "west"}] + [
    {"name": f"e{i}", "region": "east"} for i in (1, 2, 3)
]
STORMY = {
    "duration": "4s",
    "cluster": {"nodes": TWO_SIDES},
    "network": {"latency": {"dist": "exponential", "mean": 1}},
    "quorum": {"n": 3, "r": 2, "w": 2, "timeout": "20ms", "suspicion": "200ms"},
    "workload": {
        "arrival": {"type": "poisson", "rate": "3000/s"},
        "clients": 4,
        "client_regions": ["west", "east"],
        "read_fraction": 0.7,
        "keys": {"count": 20, "popularity": "zipf", "s": 1.0},
    },
    "faults": [
        {"at": "500ms", "crash": "w1", "recover_at": "1500ms"},
        {"at": "1000ms", "crash": "e2", "recover_at": "2000ms"},
        {"at": "2200ms", "partition": [["west"], ["east"]], "heal_at": "3000ms"},
        {"at": "2800ms", "crash": "e3", "recover_at": "3500ms"},
    ],
}


@pytest.mark.parametrize(("failover", "stale"), [("strict", False), ("sloppy", True)])
def test_through_crashes_and_a_partition_strict_quorums_never_read_stale_and_sloppy_ones_do(failover, stale):
    summary = run({**STORMY, "quorum": {**STORMY["quorum"], "failover": failover}}).summary
    assert summary["staleness"]["reads_checked"] > 5000
    assert summary["faults"]["inside"]["availability"] < 0.99  # the faults did get in the way
    assert (summary["staleness"]["stale"] > 0) == stale


def amnesiac_majority(amnesia: bool) -> dict:
    """n1 misses the writes of 10-50 ms; then n2 and n3, which hold them, crash for 5 ms."""
    return {
        "duration": "150ms",
        "cluster": {"nodes": 3},
        "network": {"latency": "1ms"},
        "quorum": {"n": 3, "r": 2, "w": 2, "timeout": "10ms"},
        "workload": {
            "arrival": {"type": "closed", "think_time": "2ms"},
            "keys": {"count": 1},
            "read_fraction": 0.8,
        },
        "faults": [
            {"at": 10, "crash": "n1", "recover_at": 50},
            {"at": 50, "crash": "n2", "recover_at": 55, "amnesia": amnesia},
            {"at": 50, "crash": "n3", "recover_at": 55, "amnesia": amnesia},
        ],
    }


@pytest.mark.parametrize("amnesia", [False, True])
def test_a_quorum_that_forgot_acknowledged_writes_returns_an_older_version(amnesia):
    ops = run(amnesiac_majority(amnesia)).ops
    after = ops[ops["start_ms"] >= 55]
    first_write = after.index[after["kind"] == "write"][0]
    reads = after.loc[: first_write - 1]
    assert len(reads) >= 2 and reads["ok"].all()
    assert (reads["stale"] == amnesia).all()


@pytest.mark.parametrize("amnesia", [False, True])
def test_writes_every_replica_forgot_are_lost(amnesia):
    crashes = [{"at": 60, "crash": f"n{i}", "recover_at": 65, "amnesia": amnesia} for i in (1, 2, 3)]
    spec = {**amnesiac_majority(amnesia), "faults": crashes, "workload": {"keys": {"count": 200}}}
    spec["workload"]["arrival"] = {"type": "closed", "think_time": "1ms"}
    result = run(spec)
    durability = result.summary["durability"]
    assert durability["acknowledged_writes"] > 20
    assert (durability["lost_writes"] > 0) == amnesia
    if amnesia:
        ops = result.ops
        writes = ops[(ops["kind"] == "write") & ops["ok"]]
        rewritten = set(ops.loc[(ops["kind"] == "write") & (ops["start_ms"] >= 65), "key"])
        forgotten = writes[(writes["start_ms"] < 60) & ~writes["key"].isin(rewritten)]
        assert durability["lost_writes"] == len(forgotten)


def test_shrunk_quorums_read_stale_where_strict_ones_on_the_same_timeline_do_not():
    path = SCENARIOS / "shrink-pitfall.yaml"
    shrunk = qsim.simulate(qsim.load_scenario(path)).summary
    strict = qsim.simulate(qsim.load_scenario(path, ["quorum.failover=strict"])).summary
    assert shrunk["staleness"]["stale"] > 100
    assert strict["staleness"]["stale"] == 0 and strict["staleness"]["reads_checked"] > 10_000
    assert shrunk["availability"] > strict["availability"]  # what shrinking buys, at that price


@functools.cache
def one_crash(shrink: str, seed: int = 1) -> qsim.RunResult:
    """shrink-one-crash.yaml: N = 5, R = W = 3 with quorum fan-out; n3 crashes at 5 s for good."""
    return qsim.simulate(qsim.load_scenario(SCENARIOS / "shrink-one-crash.yaml", [f"quorum.shrink={shrink}"]),
                         seed=seed)  # fmt: skip


def test_dropping_failed_members_reads_stale_after_one_crash_and_the_majority_rule_does_not():
    dropped, majority = one_crash("drop").ops, one_crash("majority").ops
    for ops in (dropped, majority):
        assert stale_fraction(ops, 1000, 5000) == 0  # 3 + 3 > 5 before the crash
    assert stale_fraction(majority, 5000) == 0  # a majority of the 4 survivors: 3 + 3 > 4
    after = dropped[(dropped["start_ms"] > 5500) & dropped["ok"]]
    assert (after["replies"] == 2).mean() > 0.95  # R and W fell from 3 to 2
    assert stale_fraction(dropped, 5000) > 0.1


@pytest.mark.parametrize("seed", [1, 2])
def test_dropped_quorums_miss_the_last_write_as_often_as_two_random_pairs_of_four_are_disjoint(seed):
    # Well after the crash each write went to 2 random survivors of 4 and each read asks 2 random
    # survivors: a read is stale when its pair misses the latest write's pair, 1 / C(4, 2) = 1/6.
    # Writes to one key rarely overlap (200 keys, ~300 writes/s, ~2 ms each), so the bias is small.
    ops = one_crash("drop", seed).ops
    stale = ops.loc[(ops["kind"] == "read") & (ops["start_ms"] > 7000), "stale"].dropna()
    p = 1 / 6
    assert abs(stale.mean() - p) < 4 * np.sqrt(p * (1 - p) / len(stale))


# --- retries -----------------------------------------------------------------------------------


LOSS = 0.2


def lossy(retries: int, **quorum) -> dict:
    """N = 3, R = W = 2 with every message lost with probability LOSS; a 2 ms round trip."""
    return {
        "duration": "2s",
        "cluster": {"nodes": 3},
        "network": {"latency": "1ms", "loss": LOSS},
        "quorum": {
            "n": 3,
            "r": 2,
            "w": 2,
            "timeout": "5ms",
            "retries": retries,
            "retry_backoff": "3ms",
            **quorum,
        },
        "workload": {"arrival": {"type": "poisson", "rate": "1000/s"}, "keys": {"count": 100}},
    }


@functools.cache
def lossy_run(retries: int) -> qsim.RunResult:
    return run(lossy(retries))


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_each_retry_is_one_more_independent_chance_on_a_lossy_network(retries):
    # An attempt succeeds when 2 of 3 replicas get the request and their reply through.
    replica = (1 - LOSS) ** 2
    attempt = 3 * replica**2 * (1 - replica) + replica**3
    expected = 1 - (1 - attempt) ** (retries + 1)
    ops = lossy_run(retries).ops
    assert abs(ops["ok"].mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / len(ops))


def test_retries_raise_availability_on_a_lossy_network():
    assert lossy_run(0).summary["availability"] < 0.75 < 0.95 < lossy_run(2).summary["availability"]


def test_a_retried_operation_makes_at_most_retries_plus_one_attempts_and_waits_the_backoff():
    ops = lossy_run(2).ops
    assert set(ops["attempts"]) == {1, 2, 3}
    ok = ops[ops["ok"]]
    # Attempt a starts after a - 1 timeouts (5 ms) and backoffs 3, 6, ... ms; it takes 2 ms.
    attempts = ok["attempts"].to_numpy()
    expected = (attempts - 1) * 5 + 3 * (2 ** (attempts - 1) - 1) + 2
    assert ok["latency_ms"].to_numpy() == pytest.approx(expected, abs=1e-9)  # start times are random
    assert (ops.loc[~ops["ok"], "attempts"] == 3).all()


def test_a_retry_with_no_replica_suspected_needs_the_full_quorum_again():
    # One client: when a retry begins, every suspicion (20 ms) from earlier deadlines has expired,
    # as the backoff (30 ms) is longer. So a retry must collect the configured R = W = 3 replies.
    spec = lossy(1, r=3, w=3, failover="shrink", suspicion="20ms", retry_backoff="30ms")
    spec["network"]["loss"] = 0.1
    spec["workload"] = {"arrival": {"type": "closed", "think_time": "1ms"}, "keys": {"count": 5}}
    ops = run(spec).ops
    retried = ops[ops["ok"] & (ops["attempts"] > 1)]
    assert len(retried) > 10
    assert (retried["replies"] == 3).all()


# --- read repair and anti-entropy --------------------------------------------------------------

NEAR_FAR = {"latency": "1ms", "regions": [{"between": ["near", "far"], "latency": "3ms"}]}


def lagging_replica(order: list[str], far: tuple[str, ...] = ("a1",), **repair) -> dict:
    """Replica a1 misses the writes of 0-200 ms; the other two crash at 700 ms.

    N = 3, R = W = 1 with fan-out to all; the client is near, and the ``far`` nodes answer it
    last. From 200 to 700 ms reads reach all three; after 700 ms only a1 answers, so a read then
    is stale exactly where a1 never caught up.
    """
    return {
        "duration": "900ms",
        "cluster": {"nodes": [{"name": name, "region": "far" if name in far else "near"} for name in order]},
        "network": NEAR_FAR,
        "quorum": {"n": 3, "r": 1, "w": 1, "timeout": "20ms"},
        "repair": repair,
        "workload": {
            "arrival": {"type": "closed", "think_time": "1ms"},
            "client_regions": ["near"],
            "keys": {"count": 20},
            "read_fraction": 0.9,
        },
        "faults": [
            {"at": 0, "crash": "a1", "recover_at": 200},
            {"at": 700, "crash": "b1"},
            {"at": 700, "crash": "c1"},
        ],
    }


def stale_reads_from_a1(result: qsim.RunResult) -> int:
    ops = result.ops
    reads = ops[(ops["kind"] == "read") & (ops["start_ms"] >= 700)]
    assert len(reads) > 20 and reads["ok"].all()
    return int(reads["stale"].sum())


A1_LAST = ["b1", "c1", "a1"]


@pytest.mark.parametrize("mode", ["off", "background", "foreground"])
def test_read_repair_brings_a_replica_that_missed_writes_up_to_date(mode):
    result = run(lagging_replica(A1_LAST, read_repair=mode))
    repaired = mode != "off"
    assert (sent(result, "read_repair") > 0) == repaired
    assert (stale_reads_from_a1(result) == 0) == repaired


@pytest.mark.parametrize(("mode", "repair_ms"), [("foreground", 2.0), ("background", 0.0)])
def test_foreground_read_repair_delays_the_read_by_the_repair_round_trip(mode, repair_ms):
    # N = R = 3, W = 2, one key: n3 misses the writes of 10-30 ms; the first read after its
    # recovery finds it behind (every later write reaches all three again).
    spec = {
        "duration": "120ms",
        "cluster": {"nodes": 3},
        "network": {"latency": "1ms"},
        "quorum": {"n": 3, "r": 3, "w": 2, "timeout": "10ms"},
        "repair": {"read_repair": mode},
        "workload": {"arrival": {"type": "closed", "think_time": "2ms"}, "keys": {"count": 1}},
        "faults": [{"at": 10, "crash": "n3", "recover_at": 30}],
    }
    result = run(spec)
    ops = result.ops
    reads = ops[(ops["kind"] == "read") & ops["ok"]]
    repairing = reads["op_id"] == reads.loc[reads["start_ms"] >= 30, "op_id"].iloc[0]
    assert sent(result, "read_repair") >= 1
    assert (reads["latency_ms"] == np.where(repairing, 2 + repair_ms, 2)).all()
    assert sent(result, "read_repair_ack") == (1 if repair_ms else 0)


def test_read_repair_fixes_a_stale_replica_that_answered_first():
    # a1 is now the near replica: with R = 1 its stale answer completes the read, and b1 and c1
    # answer later with the newest version.
    result = run(lagging_replica(A1_LAST, far=("b1", "c1"), read_repair="background"))
    ops = result.ops
    assert ops.loc[ops["start_ms"].between(200, 700), "stale"].sum() > 0
    assert sent(result, "read_repair") > 0


@pytest.mark.parametrize("interval", [None, "50ms"])
def test_anti_entropy_brings_a_replica_that_missed_writes_up_to_date(interval):
    repair = {"anti_entropy": {"interval": interval}} if interval else {}
    result = run(lagging_replica(A1_LAST, **repair))
    assert (sent(result, "anti_entropy") > 0) == bool(interval)
    assert (stale_reads_from_a1(result) == 0) == bool(interval)


def test_anti_entropy_repairs_a_replica_listed_first():
    result = run(lagging_replica(["a1", "b1", "c1"], anti_entropy={"interval": "50ms"}))
    assert stale_reads_from_a1(result) == 0


def test_read_repair_off_can_be_written_plainly_in_yaml(tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text("name: plain\nrepair:\n  read_repair: off\n")
    assert qsim.load_scenario(path).repair.read_repair == "off"


# --- the failure detector ----------------------------------------------------------------------

NODES = ["n1", "n2", "n3", "n4"]
RING = Ring(NODES, Cluster().vnodes, 3)
OWNER = NODES[RING.replicas(0)[0]]  # the first replica of key 0
STAND_IN = NODES[RING.preference(0)[3]]  # the next node on the ring, its stand-in


def detector(failover: str, duration: str = "300ms") -> qsim.RunResult:
    """Writes of key 0 needing all N = 3 replicas, one at a time; OWNER is down from 50 to 150 ms."""
    return run(
        {
            "duration": duration,
            "cluster": {"nodes": 4},
            "network": {"latency": "1ms"},
            "quorum": {"n": 3, "r": 3, "w": 3, "timeout": "10ms", "failover": failover, "suspicion": "100ms"},
            "repair": {"handoff_interval": "20ms"},
            "workload": {
                "arrival": {"type": "closed", "think_time": "3ms"},
                "keys": {"count": 1},
                "read_fraction": 0,
            },
            "faults": [{"at": 50, "crash": OWNER, "recover_at": 150}],
        }
    )


def test_without_failover_every_write_needing_the_crashed_replica_fails():
    ops = detector("strict").ops
    down = ops["start_ms"].between(50, 150, inclusive="left")
    assert (ops["ok"] == ~down).all()


def test_a_replica_is_suspected_after_a_deadline_and_written_around_until_suspicion_expires():
    result = detector("sloppy")
    ops = result.ops
    # The write at 50 ms times out at 60 and the owner is suspected until 160: later writes go to
    # the stand-in with a hint, and from 160 to the recovered owner again.
    assert ops.loc[~ops["ok"], "start_ms"].tolist() == [50.0]
    assert sent(result, "hint") > 0 and result.summary["messages"]["hint"]["delivered"] > 0
    shorter = detector("sloppy", duration="200ms")  # the same run, stopped earlier
    assert sent(result, "hint") == sent(shorter, "hint")  # no new hints after 200 ms
    nodes, earlier = result.summary["nodes"], shorter.summary["nodes"]
    assert nodes[STAND_IN]["messages"] == earlier[STAND_IN]["messages"] > 0
    assert nodes[OWNER]["messages"] > earlier[OWNER]["messages"]


# --- the shipped amnesia and anti-entropy scenarios --------------------------------------------


def shipped(name: str, *overrides: str) -> qsim.RunResult:
    result = qsim.simulate(qsim.load_scenario(SCENARIOS / f"{name}.yaml", list(overrides)))
    assert result.error is None
    return result


def stale_starts(ops: pd.DataFrame) -> pd.Series:
    return ops.loc[(ops["kind"] == "read") & (ops["stale"] == True), "start_ms"]  # noqa: E712


def test_amnesia_scenario_loses_acknowledged_writes_and_reads_stale_only_after_the_amnesia():
    forgetful = shipped("amnesia")
    assert forgetful.summary["durability"]["lost_writes"] > 50
    stale = stale_starts(forgetful.ops)
    assert len(stale) > 100 and stale.min() >= 12_000  # n1 came back empty at 12 s
    durable = shipped("amnesia", "faults.0.amnesia=false", "faults.1.amnesia=false")
    assert durable.summary["durability"]["lost_writes"] == 0
    assert durable.summary["staleness"]["stale"] == 0


def test_anti_entropy_scenario_ends_the_stale_reads_at_its_first_round_after_the_recovery():
    repaired = stale_starts(shipped("anti-entropy").ops)
    assert len(repaired) > 10
    assert repaired.min() >= 14_500 and repaired.max() < 16_000 + 10  # rounds every 4 s
    unrepaired = stale_starts(shipped("anti-entropy", "repair.anti_entropy=null").ops)
    assert (unrepaired >= 20_000).sum() > 100
