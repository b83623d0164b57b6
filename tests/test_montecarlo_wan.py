"""The PBS WAN model on the Monte Carlo engine: routes, random coordinators, the DES, the paper.

Tolerances come from the sample sizes (4 standard errors, rank bands); seeds are pinned.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import qsim
from qsim.analysis import montecarlo
from qsim.analysis.montecarlo import applies
from qsim.rng import RandomStreams
from tests.test_montecarlo import assert_same_quantiles, same_proportion

REGIONS = ("a", "b", "c")
NODES = [{"name": f"n{i + 1}", "region": region} for i, region in enumerate(REGIONS)]


def wan_probe(network: dict, r: int, w: int, *, delays=(0,), trials=1000, **quorum) -> qsim.Scenario:
    """Return a probe on one node per region, a client per region, a probe lane per client."""
    return qsim.scenario_from_dict(
        {
            "name": "wan",
            "cluster": {"nodes": NODES},
            "network": network,
            "quorum": {"n": 3, "r": r, "w": w, **quorum},
            "workload": {
                "clients": 3,
                "arrival": {"type": "probe", "delays": list(delays), "trials": trials, "concurrency": 3},
            },
        }
    )


def agree(k1: int, n1: int, k2: int, n2: int) -> bool:
    """Two proportions within 4 standard errors, plus one count of the smaller sample (continuity).

    Stale reads here are rare (1e-4 in some regions), where the normal approximation alone is
    too strict: one stale read in a few hundred is not a disagreement.
    """
    return same_proportion(k1, n1, k2, n2) or abs(k1 / n1 - k2 / n2) <= 1 / min(n1, n2)


def sample(scenario: qsim.Scenario, trials: int, seed: int = 1, **options) -> montecarlo.WarsResult:
    return montecarlo.wars(scenario, trials, RandomStreams(seed).generator("montecarlo"), **options)


# --- routes: constants make every latency exact --------------------------------------------------

CONSTANT_ROUTES = {
    "latency": 1,
    "regions": [
        {"between": ["a", "b"], "latency": 10},
        {"from": "a", "to": "c", "latency": 20},
        {"from": "c", "to": "a", "latency": 30},
        {"between": ["b", "c"], "latency": 7, "kinds": {"write_request": 5}},
    ],
}
# Round trips from the client's region to each replica (request there, reply back), then the
# W-th (R-th) smallest: from a, writes 1+1, 10+10, 20+30 -> 20 (W=2); from b, 20, 2, 5+7 -> 12;
# from c, 30+20, 5+7, 2 -> 12. Reads: from a 2, 20, 50 -> 20; from b 20, 2, 7+7 -> 14; from c -> 14.
WRITE_MS = {"a": 20.0, "b": 12.0, "c": 12.0}
READ_MS = {"a": 20.0, "b": 14.0, "c": 14.0}


def test_each_route_has_its_region_pair_latency():
    result = sample(wan_probe(CONSTANT_ROUTES, 2, 2), 3000)
    assert result.regions == REGIONS
    names = np.array(REGIONS)
    write_regions, read_regions = names[result.write_region[0]], names[result.read_region[0]]
    assert np.array_equal(result.write_latency_ms[0], [WRITE_MS[x] for x in write_regions])
    assert np.array_equal(result.read_latency_ms[0], [READ_MS[x] for x in read_regions])


def test_the_discrete_event_engine_takes_the_same_routes():
    ops = qsim.simulate(wan_probe(CONSTANT_ROUTES, 2, 2, trials=30)).ops
    regions = np.array(REGIONS)[ops["client"].to_numpy()]
    expected = np.where(ops["kind"] == "write", [WRITE_MS[x] for x in regions], [READ_MS[x] for x in regions])
    assert np.allclose(ops["latency_ms"], expected, rtol=0, atol=1e-9)
    assert set(ops["client"]) == {0, 1, 2}


# --- random coordinators ---------------------------------------------------------------------------

WAN = {  # local: exponential, writes slower; remote: 10 ms more each way, b <-> c slower still
    "latency": {"dist": "exponential", "mean": 1.0},
    "kinds": {"write_request": {"dist": "exponential", "mean": 3.0}},
    "regions": [
        {"between": ["a", "b"], "latency": {"dist": "exponential", "mean": 1.0, "shift": 10}},
        {"between": ["a", "c"], "latency": {"dist": "exponential", "mean": 1.0, "shift": 10}},
        {
            "between": ["b", "c"],
            "latency": {"dist": "exponential", "mean": 2.0, "shift": 15},
            "kinds": {"write_request": {"dist": "lognormal", "median": 20, "sigma": 0.5}},
        },
        {"between": ["a", "a"], "latency": {"dist": "exponential", "mean": 0.5}},
    ],
}


def test_writes_and_reads_draw_their_regions_independently_and_uniformly():
    m = 90_000
    result = sample(wan_probe(WAN, 1, 1), m)
    pairs = np.bincount(3 * result.write_region[0] + result.read_region[0], minlength=9)
    p = 1 / 9
    assert np.all(np.abs(pairs - m * p) < 4 * math.sqrt(m * p * (1 - p)))


def test_a_read_from_the_writers_region_is_the_same_trial_as_with_reads_from_the_writer():
    scenario = wan_probe(WAN, 1, 1, delays=(0, 5))
    independent = sample(scenario, 120_000, seed=1)
    writer = sample(scenario, 40_000, seed=2, reads_from="writer")
    assert np.array_equal(writer.write_region, writer.read_region)
    for x in range(3):
        same = (independent.write_region == x) & (independent.read_region == x)
        mine = writer.write_region == x
        for row in range(2):
            k1, n1 = int(independent.fresh[row][same[row]].sum()), int(same[row].sum())
            k2, n2 = int(writer.fresh[row][mine[row]].sum()), int(mine[row].sum())
            assert same_proportion(k1, n1, k2, n2), (REGIONS[x], row)
    # Reading from another region than the write's is what makes WAN reads stale.
    other = independent.write_region != independent.read_region
    assert independent.fresh[0][other[0]].mean() < independent.fresh[0][~other[0]].mean() - 0.2


@pytest.mark.parametrize(("r", "w"), [(1, 1), (2, 1), (1, 2)])
def test_engines_agree_region_by_region(r, w):
    """The DES probe reads from the writing client, so compare with ``reads_from="writer"``, per region."""
    scenario = wan_probe(WAN, r, w, delays=(0, 5, 15), trials=2000)
    ops = qsim.simulate(scenario).ops
    sampled = sample(scenario, 60_000, seed=3, reads_from="writer")
    region = np.array(REGIONS)[ops["client"].to_numpy()]
    for x, name in enumerate(REGIONS):
        here = ops[region == name]
        mine = sampled.write_region == x
        reads = here[(here["kind"] == "read") & here["stale"].notna()]
        for row, t in enumerate(sampled.delays_ms):
            at_t = reads[reads["probe_delay_ms"] == t]
            fresh = sampled.fresh[row][mine[row]]
            assert len(at_t) > 50
            assert agree(int((~at_t["stale"].astype(bool)).sum()), len(at_t), int(fresh.sum()), fresh.size)
        for kind, latency in (("write", sampled.write_latency_ms), ("read", sampled.read_latency_ms)):
            simulated = here.loc[here["kind"] == kind, "latency_ms"].to_numpy()
            assert_same_quantiles(simulated, latency[mine], f"{kind} in {name}")


# --- what the model refuses ------------------------------------------------------------------------


def test_multi_region_refusals_name_every_field():
    nodes = [*NODES, {"name": "n4", "region": "a"}]
    network = {
        "regions": [{"between": ["a", "b"], "latency": 10, "loss": 0.01}],
        "links": [{"between": ["n1", "n2"], "latency": 5}],
    }
    scenario = qsim.scenario_from_dict(
        {
            "name": "refused",
            "cluster": {"nodes": nodes},
            "network": network,
            "quorum": {"n": 3, "r": 1, "w": 1, "read_fanout": "quorum", "replica_selection": "ring"},
            "workload": {"arrival": {"type": "probe", "delays": [0]}},
        }
    )
    fields = [reason.split(":")[0] for reason in applies(scenario)]
    assert fields == [
        "network.regions.0.loss",
        "quorum.n",
        "quorum.replica_selection",
        "network.links",
    ]
    assert applies(wan_probe(WAN, 1, 1)) == [] and applies(wan_probe(CONSTANT_ROUTES, 2, 2)) == []


def test_single_region_scenarios_draw_what_they_drew_before():
    plain = {"latency": {"dist": "exponential", "mean": 1.0}}
    regions = {**plain, "regions": [{"between": ["default", "default"], "latency": plain["latency"]}]}
    one, two = (
        qsim.scenario_from_dict(
            {
                "name": "one",
                "network": network,
                "quorum": {"n": 3, "r": 1, "w": 1},
                "workload": {"arrival": {"type": "probe", "delays": [0, 2]}},
            }
        )
        for network in (plain, regions)
    )
    first, second = sample(one, 500), sample(two, 500)
    assert second.write_region is None and np.array_equal(first.consistent_from_ms, second.consistent_from_ms)


# --- the PBS paper's WAN numbers --------------------------------------------------------------------

# Bailis et al., PBS, VLDB 2012, Table 3 (fits) and section 5: LNKD-DISK delays within a data
# centre (W from LNKD-DISK, A = R = S from LNKD-SSD), 75 ms more each way between data centres,
# reads and writes routed to random data centres, N = 3.
SSD = {
    "dist": "mixture",
    "weights": [91.22, 8.78],
    "components": [
        {"dist": "pareto", "scale": 0.235, "alpha": 10},
        {"dist": "exponential", "mean": 1 / 1.66},
    ],
}
DISK_W = {
    "dist": "mixture",
    "weights": [38, 62],
    "components": [
        {"dist": "pareto", "scale": 1.05, "alpha": 1.51},
        {"dist": "exponential", "mean": 1 / 0.183},
    ],
}
LOCAL = {"write_request": DISK_W, "write_ack": SSD, "read_request": SSD, "read_response": SSD}


def _remote(spec: dict) -> dict:
    return {**spec, "components": [{**part, "shift": 75} for part in spec["components"]]}


PBS_WAN = {
    "latency": 1,  # unused: every kind is given
    "kinds": LOCAL,
    "regions": [
        {"between": pair, "kinds": {kind: _remote(spec) for kind, spec in LOCAL.items()}}
        for pair in (["a", "b"], ["a", "c"], ["b", "c"])
    ],
}
# Table 4, WAN column: 99.9th percentile read and write latency (1M reads and writes) and the t at
# which P(consistent) reaches 99.9% (50,000 reads), as printed.
PAPER = {
    (1, 1): ("3.4", "55.12", "113.0"),
    (1, 2): ("3.4", "167.64", "0"),
    (2, 1): ("151.3", "56.36", "30.2"),
    (2, 2): ("151.31", "167.72", "0"),
    (3, 1): ("153.86", "55.19", "0"),
    (1, 3): ("3.44", "241.55", "0"),
}


def assert_paper_quantile(values: np.ndarray, printed: str, paper_samples: int) -> None:
    """The paper's p99.9 (rounded as printed) lies within the rank band of both samples."""
    p, m = 0.999, values.size
    tolerance = 4 * math.sqrt(p * (1 - p) * (1 / paper_samples + 1 / m))
    value = float(printed)
    half = 0.5 * 10 ** -len(printed.partition(".")[2]) if "." in printed else 0.0
    if value == 0:  # the paper's 0: already 99.9% consistent at t = 0
        assert (values <= 0).mean() >= p - tolerance
        return
    assert (values <= value - half).mean() <= p + tolerance, printed
    assert (values <= value + half).mean() >= p - tolerance, printed


def check_against_paper(r: int, w: int, trials: int) -> None:
    result = sample(wan_probe(PBS_WAN, r, w), trials, seed=11)
    read_ms, write_ms, t_ms = PAPER[(r, w)]
    assert_paper_quantile(result.read_latency_ms[0], read_ms, 1_000_000)
    assert_paper_quantile(result.write_latency_ms[0], write_ms, 1_000_000)
    assert_paper_quantile(result.consistent_from_ms[result.checked], t_ms, 50_000)


def test_pbs_wan_r1_w1_matches_the_paper():
    check_against_paper(1, 1, 300_000)


@pytest.mark.slow
@pytest.mark.parametrize(("r", "w"), list(PAPER))
def test_pbs_wan_matches_the_paper(r, w):
    check_against_paper(r, w, 1_000_000)
