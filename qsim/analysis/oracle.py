"""The analytic oracle: theory and Monte Carlo beside the simulated numbers of a run.

Every check says which model it uses, the model's value, the simulated value with its interval,
and whether they agree. Intervals are the simulated value +- 3 standard errors (about 99.7%); a
model value with its own sampling error (Monte Carlo) widens the interval by its standard error
too. A check is only made where its model's assumptions hold for the scenario, so a
disagreement means the simulator (or the model) is wrong, not that the scenario is unusual.
"""

from __future__ import annotations

import math

import numpy as np

from qsim.analysis import montecarlo, theory
from qsim.checks.digest import Latencies
from qsim.distributions import Constant, Exponential
from qsim.scenario.schema import Scenario
from qsim.scenario.systems import uses_system

Z = 3.0  # standard errors either side of the simulated value
MC_TRIALS = 200_000  # per probe delay


def oracle(scenario: Scenario, latencies: dict[str, Latencies], summary: dict) -> list[dict]:
    """Return the checks that apply to this run (an empty list when none does).

    Args:
        scenario: the scenario run.
        latencies: the latencies of the counted ok operations by kind ("read", "write").
        summary: the run's summary (its staleness section).
    """
    checks: list[dict] = []
    quorum = scenario.quorum
    if quorum.protocol != "leaderless":
        return checks  # the models here are of leaderless N/R/W quorums
    if uses_system(quorum):
        return _system_checks(scenario, summary)
    if not (isinstance(quorum.r, int) and isinstance(quorum.w, int)):
        return checks  # levels counted per region: no model here
    if _intersection_applies(scenario):
        checks.append(_intersection(summary["staleness"]))
    if _pbs_applies(scenario):
        checks.append(_pbs(quorum, summary["staleness"]))
    if not montecarlo.applies(scenario):
        checks += _montecarlo_checks(scenario, latencies, summary["staleness"])
    elif _latency_applies(scenario):
        checks += _order_statistic_checks(scenario, latencies)
    return checks


# --- when each model applies ---------------------------------------------------------------------


def _strict_and_durable(scenario: Scenario) -> bool:
    """Strict quorums whose replicas never forget (no amnesia, no sloppy or shrunk quorums)."""
    forgetful = any(getattr(fault, "amnesia", False) for fault in scenario.faults)
    return scenario.quorum.failover == "strict" and not forgetful


def _intersection_applies(scenario: Scenario) -> bool:
    return theory.intersects(scenario.quorum.n, scenario.quorum.r, scenario.quorum.w) and _strict_and_durable(
        scenario
    )


def _pbs_applies(scenario: Scenario) -> bool:
    quorum, repair = scenario.quorum, scenario.repair
    return (
        scenario.workload.arrival.type == "probe"
        and quorum.read_fanout == quorum.write_fanout == "quorum"
        and quorum.replica_selection == "random"
        and quorum.hedge is None
        and quorum.replicas is None
        and _strict_and_durable(scenario)
        and not scenario.faults
        and scenario.network.loss == 0
        and quorum.retries == 0
        and repair.read_repair == "off"
        and repair.anti_entropy is None
    )


def _latency_applies(scenario: Scenario) -> bool:
    """Latency is load-independent: no queueing, no faults, no loss, no overrides, clients coordinate."""
    network, quorum = scenario.network, scenario.quorum
    return (
        quorum.hedge is None
        and quorum.replicas is None
        and all(node.service_time is None for node in scenario.cluster.nodes)
        and scenario.cluster.replica.service_time.is_zero()
        and not scenario.faults
        and network.loss == 0
        and not network.regions
        and not network.links
        and quorum.coordinator == "client"
        and quorum.failover == "strict"
        and quorum.retries == 0
        and quorum.read_fanout == quorum.write_fanout == "all"
        and scenario.repair.read_repair in ("off", "background")
    )


# --- the checks ----------------------------------------------------------------------------------


def _result(quantity: str, model: str, value: float, simulated: float, low: float, high: float) -> dict:
    return {
        "quantity": quantity,
        "model": model,
        "theory": float(value),
        "simulated": float(simulated),
        "ci_low": float(low),
        "ci_high": float(high),
        "agrees": bool(low <= value <= high),
    }


def _check(
    quantity: str, model: str, value: float, simulated: float, se: float, extra_se: float = 0.0
) -> dict:
    half = Z * math.hypot(se, extra_se)
    return _result(quantity, model, value, simulated, simulated - half, simulated + half)


def _system_checks(scenario: Scenario, summary: dict) -> list[dict]:
    """A quorum system: reads meet writes (validated), and each node's load is the strategy's.

    Each attempt draws its quorum independently, so whether it asks a node is a Bernoulli trial
    with the node's analytic load as probability: the measured fraction has standard error
    sqrt(p (1 - p) / attempts). That holds while no coordinator suspects a node (no faults).
    """
    checks = []
    if _strict_and_durable(scenario):
        checks.append(
            _intersection(summary["staleness"], "quorum system: every read quorum meets every write quorum")
        )
    section = summary["quorum_system"]
    if scenario.faults or section["load"] is None:
        return checks
    for name, node in section["nodes"].items():
        if 0.0 < node["analytic_load"] < 1.0:
            checks.append(
                _check(
                    f"load of {name}",
                    f"strategy {section['strategy']}: P(an attempt asks {name})",
                    node["analytic_load"],
                    node["load"],
                    node["se"],
                )
            )
    return checks


def _intersection(staleness: dict, model: str = "quorum intersection (R + W > N): no stale read") -> dict:
    checked, stale = staleness["reads_checked"], staleness["stale"]
    fraction = stale / checked if checked else 0.0
    check = _check("stale-read fraction", model, 0.0, fraction, 0.0)
    check |= {
        "ci_low": 0.0,
        "ci_high": _rule_of_three(checked) if not stale else check["ci_high"],
        "agrees": stale == 0,
    }
    return check


def _rule_of_three(n: int) -> float:
    """An upper bound on a proportion after n trials with no event (about 95%)."""
    return 3.0 / n if n else 1.0


def _pbs(quorum, staleness: dict) -> dict:
    p = theory.pbs_stale_probability(quorum.n, quorum.r, quorum.w)
    checked = staleness["reads_checked"]
    simulated = staleness["stale_fraction"] or 0.0
    se = math.sqrt(max(p * (1 - p), 1e-12) / checked) if checked else math.inf
    return _check("stale-read fraction", "PBS: C(N-W, R) / C(N, R), random partial quorums", p, simulated, se)


def _order_statistic_checks(scenario: Scenario, latencies: dict[str, Latencies]) -> list[dict]:
    checks = []
    quorum, kinds = scenario.quorum, scenario.network.kinds
    default = scenario.network.latency
    means: dict[tuple, float | None] = {}  # by (request, response, k)
    for kind, request, response, k in (
        ("write", kinds.write_request or default, kinds.write_ack or default, quorum.w),
        ("read", kinds.read_request or default, kinds.read_response or default, quorum.r),
    ):
        if not all(isinstance(spec, Constant | Exponential) for spec in (request, response)):
            continue
        # Reads and writes often ask for the same mean (R = W, one latency for every message): its
        # integral, the slow part of the oracle, is made once.
        if (request, response, k) not in means:
            means[request, response, k] = theory.quorum_latency_mean(request, response, quorum.n, k)
        expected = means[request, response, k]
        latency = latencies[kind]
        if expected is None or latency.size < 2:
            continue
        se = latency.std(ddof=1) / math.sqrt(latency.size)
        model = f"E[{k}-th smallest of {quorum.n} request + response delays]"
        checks.append(_check(f"{kind} latency mean (ms)", model, expected, latency.mean(), se))
    return checks


def _montecarlo_checks(scenario: Scenario, latencies: dict[str, Latencies], staleness: dict) -> list[dict]:
    rng = np.random.default_rng(np.random.SeedSequence(scenario.seed, spawn_key=(0x0AC1E,)))
    result = montecarlo.wars(scenario, MC_TRIALS, rng, reads_from="writer")  # the probe reads where it wrote
    model = f"WARS Monte Carlo, {MC_TRIALS} trials per t"
    checks = []
    simulated = {row["t_ms"]: row for row in staleness["t_visibility"]}  # probe reads: one row per delay
    for t, consistent, trials in zip(result.delays_ms, result.consistent, result.reads_checked, strict=True):
        row = simulated.get(float(t))
        if row is None:
            continue
        p_mc = consistent / trials
        se = math.sqrt(max(p_mc * (1 - p_mc), 1e-12) / row["reads"])
        se_mc = math.sqrt(p_mc * (1 - p_mc) / trials)
        checks.append(_check(f"P(consistent) at t = {t:g} ms", model, p_mc, row["p_consistent"], se, se_mc))
    mc_latency = {
        "write": result.write_latency_ms[result.write_ok],
        "read": result.read_latency_ms[result.read_ok],
    }
    for kind, samples in mc_latency.items():
        for q in (0.5, 0.99):
            if latencies[kind].size >= 20:
                checks.append(_quantile_check(kind, q, latencies[kind], np.quantile(samples, q), model))
    return checks


def _quantile_check(kind: str, q: float, latency: Latencies, model_value: float, model: str) -> dict:
    """A distribution-free interval of the q-quantile: order statistics at ranks n q +- 3 sd."""
    n = latency.size
    spread = Z * math.sqrt(n * q * (1 - q))
    ranks = [max(0, math.floor(n * q - spread)), min(n - 1, math.ceil(n * q + spread))]
    low, high = latency.runs.values_at(np.array(ranks))
    name = f"{kind} latency p{q * 100:g} (ms)"
    return _result(name, model, model_value, latency.runs.quantile(q), low, high)
