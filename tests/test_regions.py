"""Replicas per region (quorum.replicas) and the per-region consistency levels.

local_one / local_quorum count replies from the coordinator's region only; each_quorum needs a
majority in every region holding replicas. Seeds are pinned; constant latencies give exact answers.
"""

from __future__ import annotations

import pytest

import qsim
from qsim.model.leaderless.ring import Ring

EAST = [f"e{i}" for i in range(3)]
WEST = [f"w{i}" for i in range(3)]
WAN_MS = 40.0


def nodes() -> list[dict]:
    return [{"name": n, "region": "east"} for n in EAST] + [{"name": n, "region": "west"} for n in WEST]


def scenario(quorum: dict) -> qsim.Scenario:
    return qsim.scenario_from_dict({"name": "regions", "cluster": {"nodes": nodes()}, "quorum": quorum})


def run(spec: dict, seed: int = 1) -> qsim.RunResult:
    result = qsim.simulate(qsim.scenario_from_dict({"name": "regions", **spec}), seed=seed)
    assert result.error is None
    return result


# --- placement and its validation ----------------------------------------------------------------


def test_each_key_has_the_given_number_of_replicas_in_each_region():
    names = EAST + WEST
    regions = ["east"] * 3 + ["west"] * 3
    ring = Ring(names, 64, 3, regions, {"east": 2, "west": 1})
    for key in range(2000):
        replicas = ring.replicas(key)
        assert sorted(regions[node] for node in replicas) == ["east", "east", "west"]
        # NetworkTopologyStrategy: the first nodes of each region along the key's ring walk.
        walk = ring.preference(key)
        assert set(replicas) == {
            *[n for n in walk if regions[n] == "east"][:2],
            *[n for n in walk if regions[n] == "west"][:1],
        }
    assert len({ring.replicas(key) for key in range(2000)}) > 6  # keys spread over the nodes


def test_n_defaults_to_the_sum_of_the_replicas_per_region():
    quorum = scenario({"replicas": {"east": 2, "west": 1}, "r": "quorum", "w": "all"}).quorum
    assert (quorum.n, quorum.r, quorum.w) == (3, 2, 3)


def test_an_n_other_than_the_sum_of_the_replicas_is_rejected():
    with pytest.raises(qsim.ScenarioError) as error:
        scenario({"replicas": {"east": 2, "west": 1}, "n": 4})
    assert [p for p in error.value.problems if p.startswith("quorum.n:")], error.value.problems


@pytest.mark.parametrize(
    "replicas", [{"east": 2, "south": 1}, {"east": 4}], ids=["no-nodes", "too-few-nodes"]
)
def test_replicas_in_a_region_without_enough_nodes_are_rejected(replicas):
    with pytest.raises(qsim.ScenarioError) as error:
        scenario({"replicas": replicas, "r": 1, "w": "all"})
    assert [p for p in error.value.problems if p.startswith("quorum.replicas")], error.value.problems


@pytest.mark.parametrize("field", ["r", "w"])
def test_a_per_region_level_needs_replicas_per_region(field):
    with pytest.raises(qsim.ScenarioError) as error:
        scenario({field: "local_quorum"})
    assert [p for p in error.value.problems if p.startswith(f"quorum.{field}:")], error.value.problems


@pytest.mark.parametrize("level", ["local_one", "local_quorum", "each_quorum"])
def test_level_names_are_accepted_for_r_and_w(level):
    quorum = scenario({"replicas": {"east": 3, "west": 3}, "r": level, "w": level}).quorum
    assert (quorum.n, quorum.r, quorum.w) == (6, level, level)


def test_an_unknown_level_name_is_still_rejected():
    with pytest.raises(qsim.ScenarioError) as error:
        scenario({"replicas": {"east": 3, "west": 3}, "r": "two"})
    assert [p for p in error.value.problems if p.startswith("quorum.r:") and "'two'" in p], (
        error.value.problems
    )


# --- levels: staleness and latency across a WAN ----------------------------------------------------


def two_regions(r, w, client_regions=("east", "west")) -> dict:
    """Three replicas of every key in each region, 40 ms apart; coordinators in the client's region.

    Fifty Zipf-popular keys, so most reads follow a recent write, often one from the other region.
    """
    return {
        "duration": "3s",
        "warmup": "200ms",
        "cluster": {"nodes": nodes()},
        "network": {
            "latency": {"dist": "exponential", "mean": 0.5},
            "regions": [
                {"between": ["east", "west"], "latency": {"dist": "exponential", "mean": 2, "shift": WAN_MS}}
            ],
        },
        "quorum": {
            "replicas": {"east": 3, "west": 3},
            "r": r,
            "w": w,
            "coordinator": "local",
            "timeout": 500,
        },
        "workload": {
            "arrival": {"type": "poisson", "rate": 1500},
            "clients": 4,
            "client_regions": list(client_regions),
            "read_fraction": 0.7,
            "keys": {"count": 50, "popularity": "zipf", "s": 1.0},
        },
    }


@pytest.mark.parametrize(("r", "w"), [("local_quorum", "each_quorum"), ("quorum", "quorum")])
def test_reads_that_meet_every_write_quorum_are_never_stale(r, w):
    summary = run(two_regions(r, w)).summary
    assert summary["availability"] == 1.0
    assert summary["staleness"]["reads_checked"] > 2500
    assert summary["staleness"]["stale"] == 0


@pytest.mark.parametrize("r", ["local_one", "local_quorum"])
def test_local_reads_miss_local_quorum_writes_made_in_the_other_region(r):
    both = run(two_regions(r, "local_quorum")).summary["staleness"]
    assert both["reads_checked"] > 2500
    assert both["stale"] > 0.1 * both["reads_checked"]  # ~29%: reads within the WAN delay of a write


def test_local_quorum_reads_and_writes_in_one_region_are_never_stale():
    """The control for the test above: the staleness comes from the other region's writes."""
    one = run(two_regions("local_quorum", "local_quorum", client_regions=["east"])).summary["staleness"]
    assert one["reads_checked"] > 2500
    assert one["stale"] == 0


def test_local_quorum_writes_stay_local_and_each_quorum_writes_pay_the_wan():
    local = run(two_regions("local_quorum", "local_quorum")).summary["writes"]["latency_ms"]
    each = run(two_regions("local_quorum", "each_quorum")).summary["writes"]["latency_ms"]
    # Three intra-region round trips of ~1 ms (client, coordinator, replicas): far below the WAN.
    assert local["p50"] < 5
    assert local["p99"] < WAN_MS
    assert each["p50"] >= 2 * WAN_MS


# --- exact latencies with constant links -----------------------------------------------------------

WEST_MS = {"w0": 40.0, "w1": 50.0, "w2": 60.0}  # one way from any east node


def constant_links(r, w) -> dict:
    """1 ms inside a region, and 40, 50, 60 ms from the east nodes to w0, w1, w2.

    Clients are in the east and send to an east coordinator, which is one of the key's replicas
    (0 ms to itself). Round trips from it: {0, 2, 2} ms in the east, {80, 100, 120} ms in the west.
    """
    links = [
        {"between": [east, west], "latency": {"dist": "constant", "value": ms}}
        for east in EAST
        for west, ms in WEST_MS.items()
    ]
    return {
        "duration": "1s",
        "cluster": {"nodes": nodes()},
        "network": {"latency": {"dist": "constant", "value": 1.0}, "links": links},
        "quorum": {"replicas": {"east": 3, "west": 3}, "r": r, "w": w, "coordinator": "local"},
        "workload": {
            "arrival": {"type": "poisson", "rate": 1000},
            "client_regions": ["east"],
            "keys": {"count": 100},
        },
    }


@pytest.mark.parametrize(
    ("r", "w", "read_ms", "write_ms"),
    [
        # 2 ms from the client to the coordinator and back, plus the R-th / W-th round trip counted.
        ("local_one", "local_quorum", 2 + 0.0, 2 + 2.0),  # itself; itself and one neighbour
        ("each_quorum", "each_quorum", 2 + 100.0, 2 + 100.0),  # the west's 2nd-fastest: w1
        ("quorum", "quorum", 2 + 80.0, 2 + 80.0),  # 4 of 6: all the east, then w0
    ],
)
def test_levels_take_exact_latencies_on_constant_links(r, w, read_ms, write_ms):
    ops = run(constant_links(r, w)).ops
    assert ops["ok"].all()
    for kind, expected in (("read", read_ms), ("write", write_ms)):
        latency = ops.loc[ops["kind"] == kind, "latency_ms"]
        assert len(latency) > 400
        assert latency.min() == pytest.approx(expected, abs=1e-9)
        assert latency.max() == pytest.approx(expected, abs=1e-9)


def clients_coordinate(r, w) -> dict:
    """1 ms inside a region; across, requests take 40 ms and replies 30 ms. A client in each region."""
    wan = {
        kind: {"dist": "constant", "value": ms}
        for kind, ms in (
            ("read_request", 40),
            ("write_request", 40),
            ("read_response", 30),
            ("write_ack", 30),
        )
    }
    return {
        "duration": "1s",
        "cluster": {"nodes": nodes()},
        "network": {
            "latency": {"dist": "constant", "value": 1.0},
            "regions": [{"between": ["east", "west"], "kinds": wan}],
        },
        "quorum": {"replicas": {"east": 3, "west": 3}, "r": r, "w": w},
        "workload": {"arrival": {"type": "poisson", "rate": 1000}, "clients": 2, "keys": {"count": 100}},
    }


@pytest.mark.parametrize(
    ("r", "w", "read_ms", "write_ms"),
    [("local_one", "local_quorum", 2.0, 2.0), ("local_quorum", "each_quorum", 2.0, 70.0)],
)
def test_a_client_coordinating_counts_the_replicas_of_its_own_region_as_local(r, w, read_ms, write_ms):
    ops = run(clients_coordinate(r, w)).ops
    assert ops["ok"].all()
    for client in (0, 1):  # client 0 in the east, client 1 in the west
        for kind, expected in (("read", read_ms), ("write", write_ms)):
            latency = ops.loc[(ops["kind"] == kind) & (ops["client"] == client), "latency_ms"]
            assert len(latency) > 200
            assert latency.min() == pytest.approx(expected, abs=1e-9)
            assert latency.max() == pytest.approx(expected, abs=1e-9)
