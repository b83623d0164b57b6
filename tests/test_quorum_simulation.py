"""Quorum systems simulated against their analysis (issue 14, section 4).

With a strategy other than ``selection`` every key is on every node, and each attempt of fan-out
``quorum`` draws its quorum from the strategy independently of the others. Whether an attempt asks
node i is then a Bernoulli trial with the node's analytic load p_i as probability, so over A
attempts the measured fraction has standard error sqrt(p_i (1 - p_i) / A): the tests below ask for
agreement within 3 of them. Availability under random crashes is a long-run fraction of time, and
successive operations see the same up/down state: its tolerance comes from independent replicate
seeds (as in tests/test_availability_theory.py).

The systems used throughout (nodes n1, n2, ... in order):

- GRID_2X3: rows {n1,n2,n3}, {n4,n5,n6} read; a write takes one node of every row (9 quorums).
- WEIGHTED: votes n1=3, n2..n5=1 (7 in all); reads need 3 votes: {n1} or any 3 of n2..n5 (5
  quorums); writes need 5: n2..n5 hold only 4, so n1 and any 2 of the others (6 quorums).
- EXPRESSIONS: reads "n1*n2 + n3*n4*n5"; the writes are its minimal dual, one node of each read
  quorum: {a, b} with a in {n1, n2} and b in {n3, n4, n5} (6 quorums).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import qsim
from qsim.errors import ScenarioError
from qsim.quorums import load as ql
from qsim.scenario.systems import quorum_system

GRID_2X3 = {"kind": "grid", "rows": 2, "cols": 3, "read": "row", "write": "row_cover"}
GRID_3X3 = {"kind": "grid", "rows": 3, "cols": 3, "read": "row", "write": "row_cover"}
VOTES = {"n1": 3, "n2": 1, "n3": 1, "n4": 1, "n5": 1}
WEIGHTED = {"kind": "weighted", "votes": VOTES, "read_votes": 3, "write_votes": 5}
EXPRESSIONS = {"kind": "expressions", "read": "n1*n2 + n3*n4*n5"}
MAJORITY_5 = {"kind": "threshold"}  # with quorum n = 5, r = w = quorum (3)
FAN_QUORUM = {"read_fanout": "quorum", "write_fanout": "quorum"}
Z = 3.0  # standard errors allowed between a measured load and the analytic one


def spec(
    system: dict,
    nodes: int | list,
    read_fraction: float = 0.5,
    *,
    duration: str = "3s",
    rate: str = "4000/s",
    **quorum,
) -> dict:
    """A leaderless scenario on a fast constant network (100 us a message), fan-outs given in ``quorum``."""
    return {
        "name": "quorum-simulation",
        "duration": duration,
        "cluster": {"nodes": nodes},
        "network": {"latency": "100us"},
        "quorum": quorum | {"system": system},
        "workload": {
            "read_fraction": read_fraction,
            "arrival": {"type": "poisson", "rate": rate},
            "keys": {"count": 100},
        },
    }


def simulate(data: dict, seed: int = 1) -> qsim.RunResult:
    """Run ``data`` with the real simulator and insist that it ran."""
    result = qsim.simulate(qsim.scenario_from_dict(data), seed=seed)
    assert result.error is None, result.error
    return result


def names(count: int) -> list[str]:
    return [f"n{i}" for i in range(1, count + 1)]


# --- 1. measured load against the analytic load --------------------------------------------------


def grid_2x3_uniform(read_fraction: float) -> dict[str, float]:
    """Uniform over 2 rows: a read asks each node with probability 1/2; uniform over the 9 writes
    (one of 3 in each row): each node 1/3. So every node's load is fr/2 + (1 - fr)/3:
    fr = 0 -> 1/3, 0.25 -> 3/8, 0.5 -> 5/12, 1 -> 1/2."""
    return dict.fromkeys(names(6), read_fraction / 2 + (1 - read_fraction) / 3)


def grid_3x3_optimal() -> dict[str, float]:
    """A read (a row) and a write (one node per row) each ask 3 of the 9 nodes, so the loads of any
    strategy add up to 3 and the largest is at least 3/9. Uniform reaches 1/3 at every node, so the
    optimal load is 1/3, and any strategy that reaches it has every node at exactly 1/3 (a node below
    would push another above). This holds at every read fraction, 0.9 included."""
    return dict.fromkeys(names(9), 1 / 3)


def weighted_uniform(read_fraction: float) -> dict[str, float]:
    """Reads: {n1} is 1 of 5 quorums; each other node is in 3 of the 4 triples, 3/5 of the reads.
    Writes: n1 is in all 6; each other node in 3 of the 6 pairs, 1/2. At fr = 0.5:
    n1 0.5/5 + 0.5 = 0.6, the others 0.5 x 3/5 + 0.5/2 = 0.55."""
    strong = read_fraction / 5 + (1 - read_fraction)
    weak = read_fraction * 3 / 5 + (1 - read_fraction) / 2
    return {"n1": strong} | dict.fromkeys(names(5)[1:], weak)


def weighted_optimal() -> dict[str, float]:
    """At fr = 0.5: every write asks n1, so n1's load is 0.5 a + 0.5 with a = P(read {n1}). The
    triples carry the other reads: those four nodes' loads add up to 0.5 (1 - a) x 3 + 0.5 x 2, so
    the largest is at least 0.375 (1 - a) + 0.25. max(0.5 a + 0.5, 0.625 - 0.375 a) is least at
    a = 1/7, where both are 4/7, and there the four loads must all equal their mean 4/7: every node
    serves 4/7 of the operations (below uniform's 0.6 at n1)."""
    return dict.fromkeys(names(5), 4 / 7)


def expressions_uniform() -> dict[str, float]:
    """Reads {n1,n2} or {n3,n4,n5}, 1/2 each: every node 1/2 of the reads. Writes, 6 pairs: n1 and
    n2 are in 3 each (1/2), n3, n4, n5 in 2 each (1/3). At fr = 0.5: n1, n2 0.25 + 0.25 = 1/2;
    n3..n5 0.25 + 1/6 = 5/12."""
    return dict.fromkeys(["n1", "n2"], 0.5) | dict.fromkeys(["n3", "n4", "n5"], 5 / 12)


def majority_uniform() -> dict[str, float]:
    """Any 3 of 5, uniform over the C(5,3) = 10 triples, reads and writes alike: each node is in
    C(4,2) = 6 of them, load 3/5 at every read fraction."""
    return dict.fromkeys(names(5), 3 / 5)


LOAD_CASES = [
    pytest.param(
        GRID_2X3 | {"strategy": "uniform"}, 6, fr, {}, grid_2x3_uniform(fr), id=f"grid2x3-uniform-{fr}"
    )
    for fr in (0.0, 0.25, 0.5, 1.0)
] + [
    pytest.param(
        GRID_3X3 | {"strategy": "optimal"}, 9, 0.9, {}, grid_3x3_optimal(), id="grid3x3-optimal-0.9"
    ),
    pytest.param(
        WEIGHTED | {"strategy": "uniform"}, 5, 0.5, {}, weighted_uniform(0.5), id="weighted-uniform"
    ),
    pytest.param(WEIGHTED | {"strategy": "optimal"}, 5, 0.5, {}, weighted_optimal(), id="weighted-optimal"),
    pytest.param(EXPRESSIONS | {"strategy": "uniform"}, 5, 0.5, {}, expressions_uniform(), id="expressions"),
    pytest.param(
        MAJORITY_5 | {"strategy": "uniform"},
        5,
        0.5,
        {"n": 5, "r": "quorum", "w": "quorum"},
        majority_uniform(),
        id="majority-of-5",
    ),
]


@pytest.mark.parametrize(("system", "nodes", "read_fraction", "quorum", "expected"), LOAD_CASES)
def test_measured_load_matches_the_analytic_load(system, nodes, read_fraction, quorum, expected):
    """Each node's measured load is within 3 SE of the hand-derived load (see the functions above),
    the summary's own analytic load is that load, and the oracle's per-node checks all agree."""
    result = simulate(spec(system, nodes, read_fraction, **FAN_QUORUM, **quorum))
    section = result.summary["quorum_system"]
    attempts = section["attempts"]
    assert attempts == len(result.ops) > 10_000  # no retries: one attempt an operation
    for name, p in expected.items():
        node = section["nodes"][name]
        se = math.sqrt(p * (1 - p) / attempts)
        assert node["analytic_load"] == pytest.approx(p, abs=1e-9), name
        assert node["se"] == pytest.approx(se, rel=1e-9), name
        assert abs(node["load"] - p) < Z * se, (name, node["load"], p, se)
    assert section["load"] == pytest.approx(max(expected.values()), abs=1e-9)
    checks = result.summary["oracle"]
    assert {c["quantity"] for c in checks} >= {f"load of {name}" for name in expected}
    assert all(c["agrees"] for c in checks), [c for c in checks if not c["agrees"]]


@pytest.mark.parametrize(
    ("system", "nodes", "read_fraction", "expected"),
    [(GRID_3X3, 9, 0.9, grid_3x3_optimal()), (WEIGHTED, 5, 0.5, weighted_optimal())],
    ids=["grid3x3", "weighted"],
)
def test_the_lp_strategy_has_the_hand_derived_loads(system, nodes, read_fraction, expected):
    """qsim.quorums.load's optimal strategy for the scenario's system gives the loads derived by hand."""
    scenario = qsim.scenario_from_dict(spec(system | {"strategy": "optimal"}, nodes, read_fraction))
    built = quorum_system(scenario)
    strategy = ql.optimal_strategy(built.n, built.reads, built.writes, read_fraction)
    loads = ql.node_load(built.n, strategy, read_fraction)
    assert loads == pytest.approx([expected[name] for name in built.names], abs=1e-6)


# --- 2. availability under random crashes ---------------------------------------------------------

UP = 0.8  # mttf / (mttf + mttr) below


def availability_spec(system: dict, nodes: int, duration: str, rate: str) -> dict:
    """Fan-out all on both sides: an operation succeeds iff the nodes up when it starts hold a quorum.

    The network (1 us) is far faster than a crash cycle (mttf 20 ms, mttr 5 ms: up 80% of the time),
    and many short cycles keep the replicates' spread small.
    """
    data = spec(system | {"strategy": "uniform"}, nodes, 0.5, duration=duration, rate=rate, timeout="5ms")
    data["network"] = {"latency": "1us"}
    data["faults"] = [
        {
            "random_crashes": "all",
            "mttf": {"dist": "exponential", "mean": 20.0},
            "mttr": {"dist": "exponential", "mean": 5.0},
        }
    ]
    return data


def grid_availability() -> tuple[float, float]:
    """A row is up with a^3; a read needs one of two rows: 1 - (1 - 0.8^3)^2 = 0.761856. A write
    needs a node up in every row: (1 - 0.2^3)^2 = 0.984064."""
    return 1 - (1 - UP**3) ** 2, (1 - (1 - UP) ** 3) ** 2


def weighted_availability() -> tuple[float, float]:
    """Reads: n1 up (0.8), or n1 down and at least 3 of the 4 others up (0.8^4 + 4 x 0.8^3 x 0.2 =
    0.8192): 0.8 + 0.2 x 0.8192 = 0.96384. Writes: n1 up and at least 2 of the 4 others
    (1 - 0.2^4 - 4 x 0.8 x 0.2^3 = 0.9728): 0.8 x 0.9728 = 0.77824."""
    others_three = UP**4 + 4 * UP**3 * (1 - UP)
    others_two = 1 - (1 - UP) ** 4 - 4 * UP * (1 - UP) ** 3
    return UP + (1 - UP) * others_three, UP * others_two


def assert_matches(replicates: list[float], expected: float) -> None:
    """|mean - expected| < 4 standard errors of the mean over the replicates, which must be small."""
    mean = float(np.mean(replicates))
    standard_error = float(np.std(replicates, ddof=1) / np.sqrt(len(replicates)))
    assert 0 < standard_error < 0.02
    assert abs(mean - expected) < 4 * standard_error, (mean, expected, standard_error)


def check_availability(system: dict, nodes: int, expected: tuple[float, float], seeds, duration, rate):
    """Reads' availability against the read availability, writes' against the write availability."""
    built = quorum_system(qsim.scenario_from_dict(availability_spec(system, nodes, duration, rate)))
    analytic = ql.availability(built.n, built.reads, built.writes, [UP] * built.n)
    assert (analytic.read, analytic.write) == pytest.approx(expected, abs=1e-12)
    reads, writes = [], []
    for seed in seeds:
        summary = simulate(availability_spec(system, nodes, duration, rate), seed).summary
        assert summary["quorum_system"]["availability"]["read"] == pytest.approx(expected[0])
        assert summary["faults"]["count"] > 100 * nodes  # many crash cycles of every node
        reads.append(summary["reads"]["availability"])
        writes.append(summary["writes"]["availability"])
    assert_matches(reads, expected[0])
    assert_matches(writes, expected[1])


def test_weighted_availability_under_random_crashes():
    """Fast: five replicates of 4 s (1000 ops/s) of the weighted system."""
    check_availability(WEIGHTED, 5, weighted_availability(), range(1, 6), "4s", "1000/s")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("system", "nodes", "expected"),
    [(GRID_2X3, 6, grid_availability()), (WEIGHTED, 5, weighted_availability())],
    ids=["grid2x3", "weighted"],
)
def test_availability_under_random_crashes(system, nodes, expected):
    """Ten replicates of 10 s (2000 ops/s) of each system."""
    check_availability(system, nodes, expected, range(1, 11), "10s", "2000/s")


# --- 3. threshold through n/r/w and through quorum.system ----------------------------------------

THRESHOLD_VARIANTS = {
    "fanout-all": ({}, None),
    "fanout-quorum-random": (FAN_QUORUM | {"replica_selection": "random"}, None),
    "crash-sloppy": (
        FAN_QUORUM | {"failover": "sloppy", "timeout": "50ms"},
        {"at": "500ms", "crash": "n2", "recover_at": "1500ms"},
    ),
}


@pytest.mark.parametrize("variant", THRESHOLD_VARIANTS)
def test_threshold_system_is_the_old_n_r_w(variant):
    """N=3, R=W=2 on 5 nodes, with and without ``system: {kind: threshold}`` (strategy selection):
    the same seed gives the same ops table and the same messages."""
    options, fault = THRESHOLD_VARIANTS[variant]
    quorum = {"n": 3, "r": 2, "w": 2} | options
    old = spec(MAJORITY_5, 5, duration="2s", rate="2000/s", **quorum)
    del old["quorum"]["system"]
    new = spec(MAJORITY_5, 5, duration="2s", rate="2000/s", **quorum)
    for data in (old, new):
        data["faults"] = [fault] if fault else []
    before, after = simulate(old, seed=7), simulate(new, seed=7)
    assert len(before.ops) > 3000
    assert before.ops.equals(after.ops)
    assert before.summary["messages"] == after.summary["messages"]
    if fault:
        assert not before.ops["ok"].all()  # the crash did something


# --- 4. failover with a system --------------------------------------------------------------------

CRASH_MS, TIMEOUT_MS = 1000.0, 50.0


def crash_spec(system: dict, nodes: int, recover: bool = False, **quorum) -> dict:
    """n1 crashes at 1 s of 3 s (2000 ops/s, half reads); a timeout of 50 ms; suspicion outlasts the run."""
    crash = {"at": f"{CRASH_MS:g}ms", "crash": "n1"} | ({"recover_at": "2s"} if recover else {})
    data = spec(
        system | {"strategy": "uniform"},
        nodes,
        rate="2000/s",
        timeout=f"{TIMEOUT_MS:g}ms",
        suspicion="10s",
        **FAN_QUORUM | quorum,
    )
    data["faults"] = [crash]
    return data


def assert_avoided_after_detection(result, node: str, p: float) -> None:
    """``node`` was asked by a fraction p of the attempts before the crash, and by none once it was
    suspected: every attempt that could still ask it started before the crash plus one timeout (its
    first lost request's deadline). So its requests lie between p x (attempts before the crash) and
    p x (attempts before crash + timeout), each within 3 SE."""
    starts = result.ops["start_ms"]
    before, detected = int((starts < CRASH_MS).sum()), int((starts < CRASH_MS + TIMEOUT_MS + 1).sum())
    requests = result.summary["quorum_system"]["nodes"][node]["requests"]
    low = p * before - Z * math.sqrt(before * p * (1 - p))
    high = p * detected + Z * math.sqrt(detected * p * (1 - p))
    assert low < requests < high, (requests, low, high)
    assert requests < 0.5 * p * len(result.ops)  # far below the uniform share over the whole run


def after_detection(result, kind: str):
    """The operations of ``kind`` started once every coordinator suspects n1."""
    ops = result.ops
    return ops[(ops["kind"] == kind) & (ops["start_ms"] > CRASH_MS + TIMEOUT_MS + 1)]


def test_strict_failover_avoids_a_crashed_node_when_a_quorum_without_it_exists():
    """2x3 grid, uniform, n1 crashed: row {n4,n5,n6} still reads and {n2|n3} x {n4|n5|n6} still write,
    so once n1 is suspected no attempt asks it (its load 5/12 before), and only operations that
    started within a timeout of the crash fail."""
    result = simulate(crash_spec(GRID_2X3, 6))
    assert_avoided_after_detection(result, "n1", 5 / 12)
    failed = result.ops[~result.ops["ok"]]
    assert 0 < len(failed) < 0.05 * len(result.ops)
    assert failed["start_ms"].between(CRASH_MS - TIMEOUT_MS, CRASH_MS + TIMEOUT_MS + 1).all()
    assert result.summary["availability"] > 0.97


def test_strict_failover_keeps_asking_a_node_in_every_write_quorum():
    """Weighted, n1 crashed: every write quorum holds n1, so strict failover sends the drawn quorum
    anyway and every write fails, while reads go to the triples of n2..n5 and all succeed."""
    result = simulate(crash_spec(WEIGHTED, 5))
    writes, reads = after_detection(result, "write"), after_detection(result, "read")
    assert len(writes) > 1000 and not writes["ok"].any()
    assert len(reads) > 1000 and reads["ok"].all()
    requests = result.summary["quorum_system"]["nodes"]["n1"]["requests"]
    assert requests > len(writes)  # each of them asked n1


def test_sloppy_failover_writes_to_stand_ins_that_hand_off_hints():
    """Weighted, n1 crashed from 1 s to 2 s, hinted handoff on: a write's n1 is replaced by another of
    n2..n5, which keeps a hint; the writes succeed, n1 is asked no more, and after n1 recovers the
    stand-ins send it their hints (messages of kind hint, acknowledged)."""
    data = crash_spec(WEIGHTED, 5, recover=True, failover="sloppy")
    data["repair"] = {"hinted_handoff": True}
    result = simulate(data)
    writes = after_detection(result, "write")
    assert len(writes) > 1000 and writes["ok"].all()
    assert (writes["replies"] == 3).all()  # n1's place taken, not dropped
    assert_avoided_after_detection(result, "n1", weighted_uniform(0.5)["n1"])
    hints, acks = result.summary["messages"]["hint"], result.summary["messages"]["hint_ack"]
    assert hints["delivered"] > 0 and acks["delivered"] == hints["delivered"]


def test_shrink_drop_completes_with_the_survivors_of_a_quorum():
    """Weighted, n1 crashed, shrink with drop: every write quorum {n1, a, b} has the suspect n1, so a
    write goes to {a, b} and completes with those 2 replies; n1 is asked no more."""
    result = simulate(crash_spec(WEIGHTED, 5, failover="shrink", shrink="drop"))
    writes = after_detection(result, "write")
    assert len(writes) > 1000 and writes["ok"].all()
    assert (writes["replies"] == 2).all()
    assert_avoided_after_detection(result, "n1", weighted_uniform(0.5)["n1"])
    assert result.summary["writes"]["availability"] > 0.97


# --- 5. latency_optimal -----------------------------------------------------------------------------


def far_node_spec(strategy: str) -> dict:
    """Majority of 5 (any 3), n5 in region far, 20 ms from the others and from the clients."""
    nodes = [{"name": name, "region": "far" if name == "n5" else "near"} for name in names(5)]
    data = spec(
        MAJORITY_5 | {"strategy": strategy}, nodes, duration="2s", rate="2000/s", n=5, r="quorum", w="quorum"
    )
    data["quorum"] |= FAN_QUORUM
    data["network"]["regions"] = [{"between": ["near", "far"], "latency": "20ms"}]
    data["workload"]["client_regions"] = ["near"]
    return data


def test_latency_optimal_avoids_a_far_node():
    """The triples of n1..n4 answer in 0.2 ms, any with n5 in 40 ms. latency_optimal spreads over
    those 4 triples (each near node in 3: load 3/4) and never asks n5; uniform asks n5 in 6 of 10
    triples, so its mean read takes about 0.6 x 40 = 24 ms."""
    fast = simulate(far_node_spec("latency_optimal")).summary
    uniform = simulate(far_node_spec("uniform")).summary
    loads = fast["quorum_system"]["nodes"]
    assert loads["n5"]["requests"] == 0 and loads["n5"]["analytic_load"] == 0
    attempts = fast["quorum_system"]["attempts"]
    for name in names(4):
        assert abs(loads[name]["load"] - 0.75) < Z * math.sqrt(0.75 * 0.25 / attempts)
    assert fast["reads"]["latency_ms"]["mean"] < 1.0
    assert uniform["reads"]["latency_ms"]["mean"] > 20 * fast["reads"]["latency_ms"]["mean"]
    assert uniform["quorum_system"]["nodes"]["n5"]["load"] > 0.5


# --- 6. validation ----------------------------------------------------------------------------------


def problems(system: dict, nodes: int = 6, **quorum) -> list[str]:
    """The problems scenario_from_dict reports for ``system`` (and further quorum fields)."""
    data = {
        "name": "t",
        "cluster": {"nodes": nodes},
        "quorum": quorum | {"system": system},
        "workload": {"read_fraction": 0.5},
    }
    with pytest.raises(ScenarioError) as caught:
        qsim.scenario_from_dict(data)
    return caught.value.problems


def paths(lines: list[str]) -> set[str]:
    return {line.split(": ", 1)[0] for line in lines}


HEDGE = {"after": "5ms"}


@pytest.mark.parametrize(
    ("system", "nodes", "quorum", "expected"),
    [
        (GRID_2X3 | {"strategy": "selection"}, 6, {}, {"quorum.system.strategy"}),
        # a row of the 2x3 grid survives 1 failure at most: no set of nodes survives any 2
        (
            GRID_2X3 | {"strategy": "optimal", "f": 2},
            6,
            {"hedge": HEDGE},
            {"quorum.system.f", "quorum.hedge"},
        ),
        # least load at fr = 0.5 is 5/12 (see grid_2x3_uniform)
        (GRID_2X3 | {"strategy": "latency_optimal", "max_load": 0.4}, 6, {}, {"quorum.system.max_load"}),
        (WEIGHTED | {"strategy": "uniform"}, 5, {"hedge": HEDGE}, {"quorum.hedge"}),
        (
            {"kind": "threshold", "strategy": "uniform"},
            5,
            {"n": 3, "r": 2, "w": 2, "hedge": HEDGE},
            {"quorum.n", "quorum.hedge"},
        ),
        (
            GRID_2X3 | {"strategy": "selection", "f": 1, "max_load": 0.5},
            6,
            {},
            {"quorum.system.strategy", "quorum.system.f", "quorum.system.max_load"},
        ),
    ],
    ids=[
        "selection-on-grid",
        "f-too-large-and-hedge",
        "max-load-below-optimum",
        "hedge",
        "threshold-n",
        "all-three",
    ],
)
def test_every_problem_is_named_at_once(system, nodes, quorum, expected):
    found = problems(system, nodes, **quorum)
    assert paths(found) == expected, found


def test_system_problems_show_beside_other_fields():
    """A grid with strategy selection and a crash of an unknown node: both reported in one error."""
    data = {
        "name": "t",
        "cluster": {"nodes": 6},
        "quorum": {"system": GRID_2X3 | {"strategy": "selection"}},
        "faults": [{"at": "1s", "crash": "n9"}],
    }
    with pytest.raises(ScenarioError) as caught:
        qsim.scenario_from_dict(data)
    assert paths(caught.value.problems) == {"quorum.system.strategy", "faults.0.crash"}


def test_max_load_at_the_optimum_is_accepted():
    """max_load 5/12 is the 2x3 grid's least load at fr = 0.5: not an error (the bound is inclusive)."""
    qsim.scenario_from_dict(spec(GRID_2X3 | {"strategy": "latency_optimal", "max_load": 5 / 12}, 6))


def test_an_f_resilient_attempt_completes_without_its_slowest_member():
    """optimal with f = 1 on a 2x3 grid: a read goes to a set that still holds a row after any one
    failure, which is both rows (all six nodes), and completes once one whole row has answered; a
    write goes to two nodes of each row and completes with one of each. With n6 slowed to 50 ms a
    reply, an attempt that waited for all its members would take 50 ms whenever it asked n6 (every
    read: n6's load is at least the read fraction, 0.5); waiting for a quorum inside the set, every
    read and write finishes in a few hundred microseconds.
    """
    nodes = [{"name": f"n{i}"} for i in range(1, 6)] + [{"name": "n6", "service_time": "50ms"}]
    data = spec(GRID_2X3 | {"strategy": "optimal", "f": 1}, nodes, duration="1s", rate="200/s", **FAN_QUORUM)
    summary = simulate(data).summary
    assert summary["quorum_system"]["nodes"]["n6"]["load"] > 0.5
    for kind in ("reads", "writes"):
        assert summary[kind]["availability"] == 1.0
        assert summary[kind]["latency_ms"]["p99"] < 5.0, kind
