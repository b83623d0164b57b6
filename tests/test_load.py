"""Per-node load: RunResult.nodes (nodes.parquet), the summary's load section, heterogeneous nodes,
and the latency CDFs of a sweep over replica selection.

Seeds are pinned; tolerances are multiples of the standard error computed from the sample size.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import qsim
from qsim.sweep import sweep_from_mapping
from qsim.sweep.plots import write_plots
from qsim.sweep.run import plan, run_sweep

WINDOW_MS = 250.0
SLOW = {"service_time": {"dist": "exponential", "mean": 5.0}}  # ten times the others' 0.5 ms


def run(spec: dict, seed: int = 1) -> qsim.RunResult:
    result = qsim.simulate(qsim.scenario_from_dict({"name": "load", **spec}), seed=seed)
    assert result.error is None
    return result


def three_nodes(n3: dict | None = None, rate: float = 1000) -> dict:
    """Three nodes, every key on all of them, fan-out all: each node receives every request.

    Latencies are constant, so when only n3 changes, n1 and n2 receive exactly the same messages
    at the same times, and draw the same service times from their own streams.
    """
    return {
        "duration": "2s",
        "warmup": "200ms",
        "cluster": {
            "nodes": [{"name": "n1"}, {"name": "n2"}, {"name": "n3", **(n3 or {})}],
            "replica": {"service_time": {"dist": "exponential", "mean": 0.5}, "concurrency": 4},
        },
        "network": {"latency": {"dist": "constant", "value": 1.0}},
        "quorum": {"n": 3, "r": 2, "w": 2},
        "workload": {
            "arrival": {"type": "poisson", "rate": rate},
            "clients": 2,
            "keys": {"count": 100, "popularity": "zipf", "s": 1.0},
        },
        "metrics": {"window": WINDOW_MS},
    }


def per_node(result: qsim.RunResult, column: str) -> pd.Series:
    return result.nodes.pivot(index="window_start_ms", columns="node", values=column)


# --- the per-node timeline -------------------------------------------------------------------------


def test_the_node_timeline_has_a_row_per_node_per_full_window():
    result = run(three_nodes())
    nodes = result.nodes
    windows = math.floor(result.summary["runtime"]["sim_ms"] / WINDOW_MS)
    assert windows >= 8
    assert len(nodes) == 3 * windows
    assert list(nodes.columns) == ["window_start_ms", "node", "messages", "queue_length", "utilization"]
    for name, rows in nodes.groupby("node"):
        assert list(rows["window_start_ms"]) == [i * WINDOW_MS for i in range(windows)]
        assert 0 < rows["messages"].sum() <= result.summary["nodes"][name]["messages"]
    assert set(nodes["node"]) == {"n1", "n2", "n3"}
    assert nodes["utilization"].between(0, 1).all()
    assert (nodes["queue_length"] >= 0).all()


def test_ten_times_the_service_time_is_ten_times_the_utilization():
    result = run(three_nodes(SLOW, rate=500))
    utilization = {name: node["utilization"] for name, node in result.summary["nodes"].items()}
    messages = result.summary["nodes"]["n3"]["messages"]
    assert messages == result.summary["nodes"]["n1"]["messages"] > 900
    # Busy time is a sum of ~K exponential service times: relative standard error 1/sqrt(K) each.
    relative_error = math.sqrt(2 / messages)
    for fast in ("n1", "n2"):
        assert utilization["n3"] / utilization[fast] == pytest.approx(10, rel=4 * relative_error)
    timeline = per_node(result, "utilization").mean()
    assert timeline["n3"] / timeline["n1"] == pytest.approx(10, rel=4 * relative_error)


def test_an_overloaded_node_builds_a_queue_and_the_others_do_not():
    # n3 is offered 1000/s x 5 ms = 5 servers' worth of work on 4 servers.
    queue = per_node(run(three_nodes(SLOW)), "queue_length")
    assert (queue["n3"] > 0).mean() > 0.5
    assert queue["n3"].iloc[-1] > queue["n3"].iloc[0]  # it keeps growing
    assert (queue[["n1", "n2"]] == 0).all().all()


def test_window_utilization_never_exceeds_one():
    result = run(
        {
            "duration": "3s",
            "cluster": {
                "nodes": 3,
                "replica": {"service_time": {"dist": "constant", "value": 300}, "concurrency": 1},
            },
            "network": {"latency": {"dist": "constant", "value": 1.0}},
            "quorum": {"n": 3, "r": 1, "w": 1, "timeout": "10s"},
            "workload": {"arrival": {"type": "poisson", "rate": 5}, "read_fraction": 1.0},
            "metrics": {"window": 1000},
        }
    )
    assert result.nodes["queue_length"].max() > 0  # saturated: busy all the time
    assert result.nodes["utilization"].max() <= 1 + 1e-9  # an exact integral, up to float rounding


# --- the summary's load section --------------------------------------------------------------------


def uneven(strategy: str = "ring") -> dict:
    """One token per node: nodes own very different shares of the keys. R = 1, W = 1 of N = 3."""
    return {
        "duration": "1s",
        "warmup": "100ms",
        "cluster": {"nodes": 6, "vnodes": 1},
        "network": {"latency": {"dist": "exponential", "mean": 0.5}},
        "quorum": {
            "n": 3,
            "r": 1,
            "w": 1,
            "read_fanout": "quorum",
            "write_fanout": "quorum",
            "replica_selection": strategy,
        },
        "workload": {
            "arrival": {"type": "poisson", "rate": 3000},
            "keys": {"count": 200, "popularity": "zipf"},
        },
    }


def test_hot_keys_are_the_most_used_keys_after_the_warmup_in_order():
    result = run(uneven())
    ops = result.ops[result.ops["start_ms"] >= result.scenario.warmup]
    counts = ops.groupby("key")["kind"].value_counts().unstack(fill_value=0)
    counts["ops"] = counts["read"] + counts["write"]
    hot = result.summary["load"]["hot_keys"]
    assert len(hot) == 10
    assert [k["ops"] for k in hot] == sorted(counts["ops"], reverse=True)[:10]
    for k in hot:
        assert k["reads"] + k["writes"] == k["ops"]
        assert (k["reads"], k["writes"]) == (counts.loc[k["key"], "read"], counts.loc[k["key"], "write"])
    assert hot[0]["key"] == 0  # Zipf: the first key is the most popular
    assert len({k["key"] for k in hot}) == 10
    assert sum(k["ops"] for k in hot) > len(ops) / 3


def test_busiest_node_and_imbalance_follow_the_messages_each_node_received():
    summary = run(uneven()).summary
    messages = {name: node["messages"] for name, node in summary["nodes"].items()}
    busiest = max(messages, key=messages.get)
    assert summary["load"]["busiest_node"] == busiest
    assert summary["load"]["imbalance"] == pytest.approx(messages[busiest] / np.mean(list(messages.values())))
    assert summary["load"]["imbalance"] > 1.3  # ring selection on an uneven ring: clearly uneven


# --- heterogeneous nodes ---------------------------------------------------------------------------


def test_a_node_s_own_service_time_and_concurrency_apply_to_it_alone():
    """n3: 2 ms on one server, against 0.5 ms on four: busier, queueing, and the others unchanged."""
    rate = 300
    plain = run(three_nodes(rate=rate))
    slow = run(
        three_nodes({"service_time": {"dist": "exponential", "mean": 2.0}, "concurrency": 1}, rate=rate)
    )
    common = per_node(plain, "messages").index.intersection(per_node(slow, "messages").index)
    for column in ("messages", "queue_length", "utilization"):
        before, after = per_node(plain, column).loc[common], per_node(slow, column).loc[common]
        pd.testing.assert_frame_equal(before[["n1", "n2"]], after[["n1", "n2"]])
    # One server busy 300/s x 2 ms = 60% of the time (four at 0.5 ms: 300/s x 0.5 ms / 4 = 3.75%).
    utilization = per_node(slow, "utilization")[["n1", "n3"]].mean()
    services = slow.summary["nodes"]["n3"]["messages"]
    assert utilization["n3"] == pytest.approx(0.6, rel=4 / math.sqrt(services))
    assert utilization["n1"] == pytest.approx(0.0375, rel=4 / math.sqrt(services))
    assert per_node(slow, "queue_length")["n3"].max() > 0


def test_the_summary_utilization_uses_the_node_s_own_concurrency():
    result = run(
        three_nodes({"service_time": {"dist": "exponential", "mean": 2.0}, "concurrency": 1}, rate=300)
    )
    timeline = per_node(result, "utilization").mean()
    services = result.summary["nodes"]["n3"]["messages"]
    for name in ("n1", "n3"):
        reported = result.summary["nodes"][name]["utilization"]
        assert reported == pytest.approx(timeline[name], rel=4 / math.sqrt(services))


# --- files and sweeps ------------------------------------------------------------------------------


def test_the_run_folder_holds_the_node_timeline_and_its_plot(tmp_path):
    result = run(three_nodes(SLOW))
    folder = qsim.write_run(result, tmp_path / "run")
    assert (folder / "nodes.parquet").is_file()
    assert (folder / "plots" / "node_utilization.png").stat().st_size > 1000
    saved = qsim.load_run(folder)
    pd.testing.assert_frame_equal(saved.nodes, result.nodes)


def test_a_sweep_over_replica_selection_draws_latency_percentiles(tmp_path):
    strategies = ["random", "least_outstanding", "latency_ewma"]
    base = {"name": "selection-sweep", **uneven("random"), "duration": "300ms", "warmup": 0}
    planned = plan(base, sweep_from_mapping({"quorum.replica_selection": strategies}))
    result = run_sweep(planned, tmp_path / "sweep", executor_name="serial")
    written = write_plots(result.runs, result.aggregate, result.factors, result.path, "selection-sweep")
    assert "latency_percentiles.png" in written
    assert (result.path / "plots" / "latency_percentiles.png").stat().st_size > 1000
    runs = pd.read_parquet(result.path / "runs.parquet")
    assert list(runs["quorum.replica_selection"]) == strategies
    assert runs["error"].isna().all()
    for text in runs["read_latency_quantiles"]:
        quantiles = np.array(json.loads(text))
        assert quantiles.shape == (101,)
        assert (np.diff(quantiles) >= 0).all()
        assert quantiles[-1] > quantiles[0] > 0
