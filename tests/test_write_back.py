"""Write-back (ABD) reads: a read answers only once W replicas hold the version it returns.

``repair.read_repair: write_back`` (qsim.model.leaderless.readrepair). The invariant is watched inside the
model, the latencies are checked where constant links make them exact, and the consistency they
buy is checked on the ops table: no stale read, and no linearizability violation with R + W > N.
"""

from __future__ import annotations

import numpy as np
import pytest

import qsim
from qsim.checks.linearizability import check_linearizability
from qsim.checks.sessions import check_sessions
from qsim.errors import ScenarioError
from qsim.model.build import build
from qsim.model.recorder import OK
from qsim.rng import RandomStreams

# N = 3, R = W = 2, fan-out all, lognormal links, concurrent writers on 5 hot keys at 2000 ops/s.
HOT = {
    "duration": "2s",
    "cluster": {"nodes": 3, "replica": {"service_time": {"dist": "exponential", "mean": 0.1}}},
    "network": {"latency": {"dist": "lognormal", "median": 1, "sigma": 0.5}},
    "quorum": {"n": 3, "r": 2, "w": 2, "read_fanout": "all", "write_fanout": "all"},
    "workload": {
        "arrival": {"type": "poisson", "rate": "2000/s"},
        "clients": 8,
        "read_fraction": 0.5,
        "keys": {"count": 5},
    },
}


def hot(mode: str, duration: str = "2s", sigma: float = 0.5, **quorum) -> qsim.Scenario:
    """The hot-key scenario with ``read_repair: mode``, links of that ``sigma`` and ``quorum`` overrides."""
    spec = {**HOT, "name": "write-back", "duration": duration, "repair": {"read_repair": mode}}
    spec["network"] = {"latency": {"dist": "lognormal", "median": 1, "sigma": sigma}}
    spec["quorum"] = {**HOT["quorum"], **quorum}
    return qsim.scenario_from_dict(spec)


def simulate(scenario: qsim.Scenario) -> qsim.RunResult:
    result = qsim.simulate(scenario)
    assert result.error is None
    return result


def sent(result: qsim.RunResult, kind: str) -> int:
    return result.summary["messages"][kind]["sent"]


def ok_reads(result: qsim.RunResult):
    ops = result.ops
    return ops[(ops["kind"] == "read") & ops["ok"]]


# --- the invariant: W holders when the read answers ---------------------------------------------


def holders_at_answer(scenario: qsim.Scenario) -> np.ndarray:
    """For each ok read that returned a version: how many replicas of its pool held it (or newer).

    Counted when the client records the answer, from the replicas' stores (they only move forward).
    """
    model = build(scenario, RandomStreams(scenario.seed))
    record, replicas, counts = model.recorder.record, model.replicas, []

    def watched(op, end_ms: float, error: int, version: int) -> None:
        if not op.write and error == OK and op.best is not None:
            held = [replicas[node].store.get(op.key) for node in op.pool]
            counts.append(sum(v is not None and v >= op.best for v in held))
        record(op, end_ms, error, version)

    model.recorder.record = watched
    model.run()
    return np.array(counts)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"r": 1, "w": 3},
        {"r": 1, "w": 3, "sigma": 1.5},  # heavy tails: a replica's response and ack may both come first
        {"r": 1, "w": 2, "read_fanout": "quorum", "coordinator": "random"},
        {"r": 3, "w": 3, "replica_selection": "least_outstanding"},
    ],
    ids=["r2w2", "r1w3", "r1w3-heavy-tails", "r1w2-quorum-fanout-node-coordinators", "r3w3-counting"],
)
def test_a_write_back_read_answers_only_when_w_replicas_hold_its_version(changes):
    w = changes.get("w", 2)
    held = holders_at_answer(hot("write_back", **changes))
    assert len(held) > 1000
    assert held.min() >= w
    unrepaired = holders_at_answer(hot("off", **changes))
    assert (unrepaired < w).any()  # the control: without write-back, some reads answer early


@pytest.mark.parametrize("failover", ["strict", "sloppy"])
def test_the_invariant_holds_through_crashes_loss_and_retries(failover):
    spec = {**HOT, "name": "write-back-faults", "cluster": {**HOT["cluster"], "nodes": 4}}
    spec["repair"] = {"read_repair": "write_back"}
    spec["quorum"] = {
        **HOT["quorum"],
        **{"timeout": "20ms", "retries": 1, "retry_backoff": "5ms"},
        **{"failover": failover, "suspicion": "50ms"},
    }
    spec["network"] = {**HOT["network"], "loss": 0.02}
    spec["faults"] = [{"at": "500ms", "crash": "n1", "recover_at": "1200ms"}]
    held = holders_at_answer(qsim.scenario_from_dict(spec))
    assert len(held) > 1000 and held.min() >= 2


# --- latency and messages, exact with constant links ---------------------------------------------


def near_far(mode: str, r: int, w: int) -> qsim.Scenario:
    """a1, b1 1 ms from the client, c1 4 ms (writes to c1 take 20 ms, so c1 lags); one hot key."""
    nodes = [
        {"name": "a1", "region": "near"},
        {"name": "b1", "region": "near"},
        {"name": "c1", "region": "far"},
    ]
    spec = {
        "name": "near-far",
        "duration": "3s",
        "cluster": {"nodes": nodes},
        "network": {
            "latency": "1ms",
            "regions": [
                {"from": "near", "to": "far", "latency": "4ms", "kinds": {"write_request": "20ms"}},
                {"from": "far", "to": "near", "latency": "4ms"},
            ],
        },
        "quorum": {"n": 3, "r": r, "w": w, "read_fanout": "all", "write_fanout": "all"},
        "repair": {"read_repair": mode},
        "workload": {
            "arrival": {"type": "poisson", "rate": "100/s"},
            "clients": 2,
            "client_regions": ["near"],
            "read_fraction": 0.5,
            "keys": {"count": 1},
        },
    }
    return qsim.scenario_from_dict(spec)


def test_with_w_all_a_read_that_found_c1_behind_waits_the_extra_round_trip():
    # R = 1 answers at 2 ms (a near replica); W = 3 needs c1: its own response at 8 ms if it holds
    # the version, else the write-back's acknowledgement at 2 + 8 = 10 ms.
    reads = ok_reads(simulate(near_far("write_back", r=1, w=3)))
    versioned = reads["version"] >= 0
    latency = reads["latency_ms"].round(9)
    assert (latency[~versioned] == 2).all()
    assert set(latency[versioned]) == {8.0, 10.0}
    assert (latency == 10).sum() > 20  # c1 was behind: the extra round trip
    unrepaired = ok_reads(simulate(near_far("off", r=1, w=3)))
    assert (unrepaired["latency_ms"].round(9) == 2).all()


def test_reads_whose_responses_already_hold_w_copies_send_nothing_more():
    # One closed-loop client, constant links: every write reaches all three replicas before the
    # next operation, so every read finds them agreeing, and R = W = 2 responses are W holders.
    spec = {
        "name": "agreeing",
        "duration": "1s",
        "cluster": {"nodes": 3},
        "network": {"latency": "1ms"},
        "quorum": {"n": 3, "r": 2, "w": 2},
        "workload": {"arrival": {"type": "closed", "think_time": "3ms"}, "keys": {"count": 3}},
    }
    results = {
        mode: simulate(qsim.scenario_from_dict({**spec, "repair": {"read_repair": mode}}))
        for mode in ("off", "write_back")
    }
    back = results["write_back"]
    assert (back.ops["version"] >= 0).sum() > 100
    assert sent(back, "read_repair") == 0 and sent(back, "read_repair_ack") == 0
    assert back.ops["latency_ms"].tolist() == results["off"].ops["latency_ms"].tolist()


# --- what it buys: no stale read with R + W > N, at a latency cost --------------------------------


@pytest.mark.parametrize(("r", "w"), [(2, 2), (1, 3), (3, 1)])
def test_no_read_is_stale_with_r_plus_w_above_n_and_reads_wait_only_when_w_is_not_reached(r, w):
    back, off = simulate(hot("write_back", r=r, w=w)), simulate(hot("off", r=r, w=w))
    reads = ok_reads(back)
    assert len(reads) > 1500 and reads["stale"].notna().sum() > 1000
    assert reads["stale"].sum() == 0
    slower = reads["latency_ms"].mean() / ok_reads(off)["latency_ms"].mean()
    if w == 1:  # any version a read returns is held by the replica that answered with it
        assert sent(back, "read_repair_ack") == 0 and slower == pytest.approx(1, abs=0.02)
    else:
        assert sent(back, "read_repair_ack") > 0 and slower > 1.03


# --- linearizability: the register each key is, with and without write-back ----------------------

# Links with sigma 1: heavy enough tails that a write often reaches one replica milliseconds before
# the others, so that one read can see it and a later one not.
SIGMA = 1.0


def linearizability(mode: str, duration: str = "10s", **quorum):
    ops = simulate(hot(mode, duration, sigma=SIGMA, **quorum)).ops
    return ops, check_linearizability(ops)


def test_without_write_back_a_strict_quorum_is_not_linearizable():
    ops, verdict = linearizability("off")
    assert verdict.violations > 0 and verdict.keys_invalid > 0
    named = verdict.anomalies[0].ops
    assert len(named) >= 2 and set(named) <= set(ops["op_id"])


def test_write_back_reads_make_every_key_linearizable():
    ops, verdict = linearizability("write_back")
    assert len(ops) > 19_000 and ops["ok"].all()
    assert verdict.keys_checked == 5 and verdict.keys_unknown == 0
    assert verdict.violations == 0 and verdict.keys_invalid == 0


@pytest.mark.parametrize("mode", ["background", "foreground", "write_back"])
def test_with_r_below_w_only_write_back_is_linearizable(mode):
    # R = 1, W = 3: repairing the one responder (even waiting for it) leaves W - 1 replicas behind.
    _, verdict = linearizability(mode, r=1, w=3)
    assert verdict.keys_unknown == 0
    assert (verdict.violations == 0) == (mode == "write_back")


def test_write_back_reads_stay_linearizable_over_100k_operations():
    ops, verdict = linearizability("write_back", "52s")
    assert len(ops) >= 100_000
    assert verdict.keys_unknown == 0 and verdict.violations == 0 and verdict.keys_invalid == 0
    # Linearizable keys keep every session guarantee; the run's own anomaly columns agree.
    assert check_sessions(ops).counts == dict.fromkeys(SESSION_KINDS, 0)
    assert not ops[[f"anomaly_{kind}" for kind in ("linearizability", *SESSION_KINDS)]].to_numpy().any()


SESSION_KINDS = ("read_your_writes", "monotonic_reads", "monotonic_writes", "writes_follow_reads")


@pytest.mark.parametrize("mode", ["off", "write_back"])
def test_session_guarantees_hold_with_write_back_and_break_without_it_at_r_1(mode):
    # R = 1, W = 3 (R + W > N): without write-back a read can see a write that one replica holds and
    # a later read of the same client miss it; write-back makes W replicas hold it first.
    ops, _ = linearizability(mode, r=1, w=3)
    counts = check_sessions(ops).counts
    if mode == "write_back":
        assert counts == dict.fromkeys(SESSION_KINDS, 0)
    else:
        assert counts["monotonic_reads"] > 0


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "level"), [("r", "local_quorum"), ("w", "each_quorum")])
def test_write_back_refuses_per_region_levels_naming_the_field(field, level):
    nodes = [{"name": "a1", "region": "a"}, {"name": "b1", "region": "b"}, {"name": "b2", "region": "b"}]
    quorum = {"replicas": {"a": 1, "b": 2}, "r": 2, "w": 2, "coordinator": "random", field: level}
    spec = {"name": "levels", "cluster": {"nodes": nodes}, "quorum": quorum}
    qsim.scenario_from_dict({**spec, "repair": {"read_repair": "foreground"}})  # other modes take them
    with pytest.raises(ScenarioError) as error:
        qsim.scenario_from_dict({**spec, "repair": {"read_repair": "write_back"}})
    refusal = f"quorum.{field}: {level} counts replies per region"
    assert [problem for problem in error.value.problems if problem.startswith(refusal)]


@pytest.mark.parametrize("mode", ["background", "foreground", "write_back"])
def test_responses_to_a_read_that_timed_out_before_its_quorum_are_ignored(mode):
    # A 2.5 ms timeout against ~2.2 ms round trips: many reads give up, and their responses come
    # late. Such a read has no newest version to repair with (its late responses once crashed the run).
    model = build(hot(mode, timeout="2.5ms"), RandomStreams(1))
    model.run()
    columns = model.recorder.columns()
    ok = columns["error_code"] == OK
    assert 0.1 < ok.mean() < 0.9
