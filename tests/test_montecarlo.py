"""The PBS WARS Monte Carlo against closed forms and against the discrete-event engine.

Tolerances come from the sample sizes: 4 standard errors for proportions and means, and
distribution-free rank bands for percentiles. Seeds are pinned.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import qsim
from qsim.analysis import montecarlo
from qsim.analysis.montecarlo import WarsResult, applies, wars
from qsim.analysis.theory import pbs_stale_probability, quorum_latency_mean
from qsim.checks.staleness import check_staleness
from qsim.errors import QsimError
from qsim.history import OPS_COLUMNS
from qsim.output.report import summary_markdown, terminal_table
from qsim.rng import RandomStreams

EXPONENTIAL = {
    "latency": {"dist": "exponential", "mean": 1.0},
    "kinds": {"write_request": {"dist": "exponential", "mean": 3.0}},
}
PARETO = {  # means 1 ms and 3 ms; the write requests have an infinite variance
    "latency": {"dist": "pareto", "scale": 0.5, "alpha": 2.0},
    "kinds": {"write_request": {"dist": "pareto", "scale": 1.0, "alpha": 1.5}},
}
MIXTURE = {  # mostly fast, sometimes slow; read responses shifted
    "latency": {
        "dist": "mixture",
        "components": [
            {"dist": "exponential", "mean": 0.5},
            {"dist": "lognormal", "median": 4, "sigma": 0.5},
        ],
        "weights": [9, 1],
    },
    "kinds": {"read_response": {"dist": "exponential", "mean": 0.5, "shift": 0.2}},
}


def probe(
    n: int, r: int, w: int, network: dict, *, delays=(0, 1, 4), trials=1000, **settings
) -> qsim.Scenario:
    """Return a probe scenario on n nodes; ``settings`` go into the quorum section, or replace sections."""
    sections = {
        key: settings.pop(key) for key in ("cluster", "workload", "repair", "faults") if key in settings
    }
    return qsim.scenario_from_dict(
        {
            "name": "montecarlo",
            "cluster": {"nodes": n},
            "network": network,
            "quorum": {"n": n, "r": r, "w": w, **settings},
            "workload": {"arrival": {"type": "probe", "delays": list(delays), "trials": trials}},
            **sections,
        }
    )


def monte_carlo(scenario: qsim.Scenario, trials: int, seed: int = 1) -> WarsResult:
    return wars(scenario, trials, RandomStreams(seed).generator("montecarlo"))


# --- against closed forms ------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "r", "w"), [(3, 1, 1), (3, 2, 1), (5, 2, 2), (5, 1, 3), (7, 2, 3)])
def test_random_partial_quorums_are_stale_with_the_pbs_probability(n, r, w):
    scenario = probe(n, r, w, EXPONENTIAL, delays=(0, 1, 5), read_fanout="quorum", write_fanout="quorum")
    result = monte_carlo(scenario, 100_000)
    p = pbs_stale_probability(n, r, w)
    assert (result.reads_checked == 100_000).all()
    for stale in 1 - result.p_consistent:  # the same at every t: nothing else ever gets the write
        assert abs(stale - p) < 4 * math.sqrt(p * (1 - p) / 100_000)


@pytest.mark.parametrize(
    ("n", "r", "w", "fanout"), [(3, 2, 2, "quorum"), (5, 3, 3, "all"), (3, 1, 3, "all"), (5, 4, 2, "quorum")]
)
def test_intersecting_quorums_are_never_stale(n, r, w, fanout):
    scenario = probe(n, r, w, PARETO, read_fanout=fanout, write_fanout=fanout)
    result = monte_carlo(scenario, 20_000)
    assert (result.consistent == result.reads_checked).all()


def test_ring_selection_sends_reads_where_the_write_went():
    scenario = probe(
        5, 1, 1, EXPONENTIAL, read_fanout="quorum", write_fanout="quorum", replica_selection="ring"
    )
    result = monte_carlo(scenario, 20_000)
    assert (result.consistent == 20_000).all()


@pytest.mark.parametrize(("n", "k"), [(3, 1), (3, 2), (5, 3), (5, 5)])
def test_latency_means_are_order_statistics_of_round_trips(n, k):
    kinds = {
        "write_request": {"dist": "exponential", "mean": 1.0},
        "write_ack": {"dist": "exponential", "mean": 0.5},
        "read_request": {"dist": "constant", "value": 0.5},
        "read_response": {"dist": "exponential", "mean": 2.0, "shift": 0.25},
    }
    scenario = probe(n, k, k, {"kinds": kinds}, delays=(1,))
    result = monte_carlo(scenario, 200_000)
    network = scenario.network.kinds
    for latency, out, back in (
        (result.write_latency_ms, network.write_request, network.write_ack),
        (result.read_latency_ms, network.read_request, network.read_response),
    ):
        standard_error = latency.std(ddof=1) / math.sqrt(latency.size)
        assert abs(latency.mean() - quorum_latency_mean(out, back, n, k)) < 4 * standard_error


def test_constant_delays_give_exact_latencies():
    kinds = {"write_request": 1.0, "write_ack": 2.0, "read_request": 0.5, "read_response": 4.0}
    result = monte_carlo(probe(3, 2, 1, {"latency": 9.0, "kinds": kinds}), 1000)
    assert (result.write_latency_ms == 3.0).all()
    assert (result.read_latency_ms == 4.5).all()
    assert (result.consistent == 1000).all()


def test_trials_come_in_chunks_without_changing_the_shape(monkeypatch):
    monkeypatch.setattr(montecarlo, "CHUNK_ELEMENTS", 30)  # 10 trials at a time for N=3
    result = monte_carlo(probe(3, 1, 1, EXPONENTIAL, delays=(0, 2)), 95)
    assert result.fresh.shape == result.read_latency_ms.shape == (2, 95)
    assert np.isfinite(result.write_latency_ms).all() and (result.write_replies == 1).all()


# --- against the discrete-event engine -----------------------------------------------------------


def same_proportion(k1: int, n1: int, k2: int, n2: int, z: float = 4.0) -> bool:
    """True if two binomial proportions differ by at most z standard errors of their difference."""
    pooled = min(max((k1 + k2) / (n1 + n2), 1 / (n1 + n2)), 1 - 1 / (n1 + n2))
    return abs(k1 / n1 - k2 / n2) <= z * math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))


def rank_band(values: np.ndarray, p: float, z: float = 4.0) -> tuple[float, float]:
    """Return the order statistics at ranks p*m -/+ z*sqrt(m p (1-p)): they hold the p-quantile."""
    ordered = np.sort(values)
    m = len(ordered)
    half = z * math.sqrt(m * p * (1 - p))
    return ordered[max(0, math.floor(p * m - half))], ordered[min(m - 1, math.ceil(p * m + half))]


def assert_same_quantiles(simulated: np.ndarray, sampled: np.ndarray, what: str) -> None:
    for p in (0.5, 0.9, 0.99):
        low, high = rank_band(simulated, p)
        sampled_low, sampled_high = rank_band(sampled, p)
        assert low <= sampled_high and sampled_low <= high, f"{what} p{p * 100:g}"


def assert_engines_agree(scenario: qsim.Scenario, samples: int) -> None:
    """Check availability, t-visibility and latency percentiles of the two engines against each other."""
    simulated = qsim.simulate(scenario)
    assert simulated.error is None
    sampled = monte_carlo(scenario, samples, seed=2)
    trials = scenario.workload.arrival.trials * len(sampled.delays_ms)
    ops = simulated.ops
    for kind, ok in (("write", sampled.write_ok), ("read", sampled.read_ok)):
        assert same_proportion(int(ops.loc[ops["kind"] == kind, "ok"].sum()), trials, ok.sum(), ok.size), kind
    points = simulated.summary["staleness"]["t_visibility"]
    assert [point["t_ms"] for point in points] == sampled.delays_ms.tolist()
    for point, consistent, checked in zip(points, sampled.consistent, sampled.reads_checked, strict=True):
        assert same_proportion(
            round(point["p_consistent"] * point["reads"]), point["reads"], consistent, checked
        )
    ok = ops[ops["ok"]]
    for kind, latency, in_time in (
        ("write", sampled.write_latency_ms, sampled.write_ok),
        ("read", sampled.read_latency_ms, sampled.read_ok),
    ):
        assert_same_quantiles(ok.loc[ok["kind"] == kind, "latency_ms"].to_numpy(), latency[in_time], kind)


@pytest.mark.parametrize(("n", "r", "w"), [(3, 1, 1), (3, 2, 1), (5, 2, 2)])
@pytest.mark.parametrize("network", [EXPONENTIAL, PARETO, MIXTURE], ids=["exponential", "pareto", "mixture"])
def test_engines_agree_on_t_visibility_and_latency(network, n, r, w):
    assert_engines_agree(probe(n, r, w, network, trials=4000), 200_000)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n", "r", "w", "settings"),
    [
        (3, 1, 1, {"read_fanout": "quorum", "write_fanout": "quorum"}),
        (5, 1, 2, {"write_fanout": "quorum"}),
        (5, 2, 1, {"read_fanout": "quorum"}),
        (7, 2, 3, {}),
        (3, 1, 2, {"timeout": "4ms"}),  # up to a third of the writes time out
        (3, 2, 1, {"timeout": "4ms"}),  # up to a quarter of the reads time out
    ],
    ids=["quorum-fanouts", "write-fanout", "read-fanout", "n7", "write-timeouts", "read-timeouts"],
)
@pytest.mark.parametrize(
    "network",
    [
        EXPONENTIAL,
        {"latency": {"dist": "weibull", "shape": 0.7, "scale": 1.0}},
        {"latency": {"dist": "lognormal", "median": 1.0, "sigma": 1.0}, "kinds": {"write_ack": 0.5}},
        {"latency": {"dist": "uniform", "low": 0.5, "high": 3.0}},
    ],
    ids=["exponential", "weibull", "lognormal", "uniform"],
)
def test_engines_agree_beyond_the_defaults(network, n, r, w, settings):
    scenario = probe(n, r, w, network, delays=(0, 0.5, 2, 8), trials=5000, **settings)
    assert_engines_agree(scenario, 200_000)


# --- run(): the engine behind `qsim run --engine montecarlo` ---------------------------------------


@pytest.mark.parametrize(
    ("section", "value", "path", "found"),
    [
        ("workload", {"arrival": {"type": "poisson", "rate": 100}}, "workload.arrival", "found poisson"),
        ("faults", [{"at": "1s", "crash": "n1"}], "faults", "found 1 fault"),
        ("network", {"loss": 0.01}, "network.loss", "found 0.01"),
        (
            "cluster",
            {"nodes": 3, "replica": {"service_time": {"dist": "exponential", "mean": 0.1}}},
            "cluster.replica.service_time",
            "found exponential",
        ),
    ],
)
def test_run_refuses_what_the_model_leaves_out(section, value, path, found):
    spec = {"name": "refused", "cluster": {"nodes": 3}, "quorum": {"n": 3, "r": 1, "w": 1}}
    spec["workload"] = {"arrival": {"type": "probe", "delays": [0]}}
    scenario = qsim.scenario_from_dict({**spec, section: value})
    reasons = applies(scenario)
    assert len(reasons) == 1 and reasons[0].startswith(f"{path}: ") and found in reasons[0]
    with pytest.raises(QsimError, match=path):
        montecarlo.run(scenario)


def test_every_reason_is_listed():
    scenario = probe(
        3,
        1,
        1,
        {"loss": 0.1, "links": [{"between": ["n1", "n2"], "latency": 5}]},
        coordinator="random",
        failover="sloppy",
        retries=1,
        repair={"read_repair": "background", "anti_entropy": {"interval": "1s"}},
    )
    fields = [reason.split(":")[0] for reason in applies(scenario)]
    assert fields == [
        "network.loss",
        "network.links",
        "quorum.coordinator",
        "quorum.failover",
        "quorum.retries",
        "repair.read_repair",
        "repair.anti_entropy",
    ]
    assert applies(probe(3, 1, 1, EXPONENTIAL)) == []


def test_run_writes_a_normal_results_folder(tmp_path):
    scenario = probe(3, 1, 1, EXPONENTIAL, delays=(0, 1, 5), trials=500)
    result = montecarlo.run(scenario, seed=4, table=True)
    folder = qsim.write_run(result, tmp_path / "run")
    saved = qsim.load_run(folder)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["engine"] == saved.manifest["engine"] == "montecarlo"
    assert summary["seed"] == saved.manifest["seed"] == 4
    assert summary["reads"]["count"] == summary["writes"]["count"] == 1500
    assert summary["reads"]["ok"] == 1500 and summary["durability"]["lost_writes"] == 0
    visibility = summary["staleness"]["t_visibility"]
    assert [point["t_ms"] for point in visibility] == [0.0, 1.0, 5.0]
    assert all(point["reads"] == 500 for point in visibility)
    assert visibility[0]["p_consistent"] < visibility[-1]["p_consistent"]
    assert len(saved.ops) == 3000 and (folder / "plots" / "t_visibility.png").exists()
    assert result.run_id == qsim.run_id(result.scenario) + "-mc"  # beside the scenario's simulated runs


def test_a_run_says_it_has_trials_and_no_clock():
    result = montecarlo.run(probe(3, 1, 1, EXPONENTIAL, delays=(0, 5), trials=200))
    assert (result.manifest["sim_ms"], result.manifest["trials"]) == (None, 400)
    runtime = result.summary["runtime"]
    assert (runtime["sim_ms"], runtime["trials"], runtime["ops"]) == (None, 400, 800)
    assert result.timeline.empty and "window_start_ms" in result.timeline  # no windows on no clock
    table = terminal_table(result.summary, result.manifest)
    assert "Monte Carlo: 400 trials, no simulated clock" in table and "s simulated" not in table
    markdown = summary_markdown(result.summary, result.manifest)
    assert "simulated time: none (Monte Carlo: 400 trials" in markdown


def test_run_is_reproducible_from_its_seed():
    scenario = probe(5, 2, 2, MIXTURE, trials=300)
    first, again, other = (montecarlo.run(scenario, seed, table=True) for seed in (None, None, 9))
    assert first.ops.equals(again.ops)
    assert not first.ops["latency_ms"].equals(other.ops["latency_ms"])


def test_run_staleness_verdicts_are_the_checkers():
    # A slow mode past the 20 ms timeout makes some writes and reads fail.
    slow = {"dist": "mixture", "components": [{"dist": "exponential", "mean": 1}, 30], "weights": [3, 1]}
    network = {
        "latency": {"dist": "exponential", "mean": 1},
        "kinds": {"write_ack": slow, "read_response": slow},
    }
    result = montecarlo.run(probe(3, 1, 2, network, delays=(0, 2), trials=2000, timeout="20ms"), table=True)
    ops = result.ops
    checked = check_staleness(ops)
    failed = ops.loc[~ops["ok"], "kind"].value_counts()
    assert failed["write"] > 100 and failed["read"] > 10
    assert checked["stale"].equals(ops["stale"]) and checked["k"].equals(ops["k"])
    assert np.allclose(checked["t_ms"], ops["t_ms"], equal_nan=True, rtol=0, atol=1e-9)


@pytest.mark.parametrize("timeout", ["1s", "4ms"], ids=["in-time", "writes-time-out"])
def test_constant_delays_give_the_discrete_event_history(timeout):
    kinds = {"write_request": 1.0, "write_ack": 5.0, "read_request": 0.5, "read_response": 1.0}
    scenario = probe(3, 1, 2, {"kinds": kinds}, delays=(0, 3), trials=5, timeout=timeout)
    simulated = qsim.simulate(scenario).ops
    sampled = montecarlo.run(scenario, table=True).ops
    assert list(sampled.columns) == list(OPS_COLUMNS)
    columns = [
        "op_id",
        "kind",
        "key",
        "ok",
        "error",
        "replies",
        "version",
        "stale",
        "k",
        "anomaly_linearizability",
        "anomaly_read_your_writes",
        "anomaly_monotonic_reads",
        "anomaly_monotonic_writes",
        "anomaly_writes_follow_reads",
        "attempts",
        "faults",
    ]
    assert sampled[columns].equals(simulated[columns])
    times = ["start_ms", "end_ms", "latency_ms", "ts_ms", "commit_ms", "t_ms", "probe_delay_ms"]
    assert np.allclose(sampled[times], simulated[times], equal_nan=True, rtol=0, atol=1e-9)
