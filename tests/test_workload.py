"""Workload generators against their definitions: key popularity, Poisson arrivals, closed loops."""

from __future__ import annotations

import numpy as np
import pytest

import qsim
from qsim.model.workload import key_draw
from qsim.scenario.schema import Keys


def frequencies(keys: Keys, draws: int = 200_000, seed: int = 1) -> np.ndarray:
    sample = key_draw(keys, np.random.default_rng(seed))(draws)
    assert sample.min() >= 0 and sample.max() < keys.count
    return np.bincount(sample, minlength=keys.count) / draws


def assert_proportions(observed: np.ndarray, expected: np.ndarray, draws: int = 200_000) -> None:
    # Each frequency is a binomial proportion: 5 standard errors, over a few dozen cells.
    tolerance = 5 * np.sqrt(expected * (1 - expected) / draws) + 1e-12
    assert np.all(np.abs(observed - expected) <= tolerance)


def test_uniform_keys():
    keys = Keys(count=20, popularity="uniform")
    assert_proportions(frequencies(keys), np.full(20, 1 / 20))


@pytest.mark.parametrize("s", [0.5, 0.99, 1.5])
def test_zipf_keys_follow_one_over_rank_to_the_s(s):
    keys = Keys(count=30, popularity="zipf", s=s)
    weights = 1 / np.arange(1, 31) ** s
    assert_proportions(frequencies(keys), weights / weights.sum())


def test_hotset_gives_the_hot_share_to_the_hot_keys():
    keys = Keys(count=100, popularity="hotset", hot_fraction=0.1, hot_weight=0.8)
    expected = np.concatenate([np.full(10, 0.8 / 10), np.full(90, 0.2 / 90)])
    assert_proportions(frequencies(keys), expected)


def test_poisson_arrivals_come_at_the_rate():
    rate, duration_s = 4000, 5
    spec = {
        "name": "rate",
        "duration": f"{duration_s}s",
        "workload": {"arrival": {"type": "poisson", "rate": rate}},
    }
    ops = qsim.simulate(qsim.scenario_from_dict(spec)).ops
    expected = rate * duration_s  # the count is Poisson(rate x duration): sd = sqrt(mean)
    assert abs(len(ops) - expected) < 4 * np.sqrt(expected)
    gaps = np.diff(ops["start_ms"].to_numpy())
    assert abs(gaps.mean() - 1e3 / rate) < 4 * (1e3 / rate) / np.sqrt(gaps.size)


def test_read_fraction_is_the_share_of_reads():
    spec = {"name": "mix", "workload": {"read_fraction": 0.8, "max_ops": 20_000}}
    reads = (qsim.simulate(qsim.scenario_from_dict(spec)).ops["kind"] == "read").mean()
    assert abs(reads - 0.8) < 5 * np.sqrt(0.8 * 0.2 / 20_000)


def test_a_closed_loop_client_has_one_operation_in_flight_and_thinks_between():
    spec = {
        "name": "closed",
        "duration": "2s",
        "network": {"latency": "1ms"},
        "workload": {"arrival": {"type": "closed", "think_time": "3ms"}, "clients": 4},
    }
    ops = qsim.simulate(qsim.scenario_from_dict(spec)).ops
    for _, mine in ops.groupby("client"):
        start, end = mine["start_ms"].to_numpy(), mine["end_ms"].to_numpy()
        assert np.allclose(start[1:] - end[:-1], 3.0)  # the next starts after exactly the think time
    assert set(ops["client"]) == {0, 1, 2, 3}
    assert ops["start_ms"].max() < 2000.0


def test_max_ops_stops_issuing():
    for arrival in ({"type": "poisson", "rate": 1000}, {"type": "closed"}):
        spec = {"name": "cap", "workload": {"arrival": arrival, "clients": 3, "max_ops": 777}}
        assert len(qsim.simulate(qsim.scenario_from_dict(spec)).ops) == 777


def test_probe_runs_every_trial_at_every_delay():
    spec = {
        "name": "probe",
        "workload": {
            "arrival": {"type": "probe", "delays": [0, 2, 7], "trials": 40, "concurrency": 3},
            "clients": 2,
        },
    }
    ops = qsim.simulate(qsim.scenario_from_dict(spec)).ops
    reads = ops[ops["kind"] == "read"]
    assert len(ops) == 2 * 3 * 40 and len(reads) == 3 * 40
    assert reads["probe_delay_ms"].value_counts().to_dict() == {0.0: 40, 2.0: 40, 7.0: 40}
    writes = ops[ops["kind"] == "write"].set_index("key")
    # Each read starts exactly its delay after its write's outcome, on the write's key.
    gap = reads.set_index("key")["start_ms"] - writes["end_ms"]
    assert np.allclose(gap.loc[reads["key"]].to_numpy(), reads["probe_delay_ms"].to_numpy())
