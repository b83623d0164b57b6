"""Hostile leader-protocol settings through the real CLI: each refused by field, all at once, exit 1."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from qsim.cli import main

BASE = {
    "name": "leader-cli",
    "seed": 1,
    "duration": "1s",
    "warmup": 0,
    "cluster": {"nodes": 5},
    "network": {"latency": "15ms"},
    "quorum": {"protocol": "leader", "timeout": "500ms", "retries": 2},
    "workload": {
        "arrival": {"type": "poisson", "rate": "200/s"},
        "clients": 4,
        "read_fraction": 0.5,
        "keys": {"count": 50},
    },
}
NAN, INF = float("nan"), float("inf")


def leader(**settings) -> dict:
    """A patch setting ``quorum.leader``."""
    return {"quorum": {"leader": settings}}


def merged(base: dict, patch: dict) -> dict:
    """``base`` with ``patch`` merged in, key by key (a copy)."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        out[key] = (
            merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def scenario(folder: Path, patch: dict, name: str = "scenario") -> Path:
    """Write BASE with ``patch`` to ``folder/name.yaml``."""
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(merged(BASE, patch), sort_keys=False))
    return path


def invoke(*args) -> Result:
    """Run ``qsim ARGS`` in-process."""
    return CliRunner().invoke(main, [str(arg) for arg in args])


def assert_refused(result: Result, *fragments: str) -> None:
    """Exit status 1 with a message naming each fragment, not a traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


ET = "quorum.leader.election_timeout.value"  # a constant is held as {dist: constant, value: ...}
HB = "quorum.leader.heartbeat"
Q1 = "quorum.leader.election_quorum"
Q2 = "quorum.leader.replication_quorum"
REFUSED = {
    "timeout nan": (leader(election_timeout=NAN), [ET, "expected a finite duration, found nan"]),
    "timeout inf": (leader(election_timeout=INF), [ET, "expected a finite duration, found inf"]),
    "timeout negative": (leader(election_timeout=-5), [ET, "expected greater than or equal to 0, found -5"]),
    "timeout 1e300": (leader(election_timeout=1e300), [ET, "at most 1e+15 ms, found 1e+300 ms"]),
    "timeout text": (leader(election_timeout="soon"), [ET, "expected a duration", "found 'soon'"]),
    "timeout draw below 0": (
        leader(election_timeout={"dist": "uniform", "low": -100, "high": 10}),
        ["quorum.leader.election_timeout.low", "found -100"],
    ),
    "heartbeat 0": (leader(heartbeat=0), [HB, "expected greater than 0, found 0"]),
    "heartbeat negative": (leader(heartbeat=-1), [HB, "expected greater than 0, found -1"]),
    "heartbeat nan": (leader(heartbeat=NAN), [HB, "expected a finite duration, found nan"]),
    "Q1 0": (leader(election_quorum=0), [Q1, "expected greater than or equal to 1, found 0"]),
    "Q1 1.5": (leader(election_quorum=1.5), [Q1, "expected a whole number, found 1.5"]),
    "Q1 true": (leader(election_quorum=True), [Q1, "expected a whole number, found True"]),
    "Q1 text": (leader(election_quorum="three"), [Q1, "expected a whole number, found 'three'"]),
    "Q1 > nodes": (leader(election_quorum=9), [Q1, "9 is larger than the number of nodes (5)"]),
    "Q2 0": (leader(replication_quorum=0), [Q2, "expected greater than or equal to 1, found 0"]),
    "Q2 1.5": (leader(replication_quorum=1.5), [Q2, "expected a whole number, found 1.5"]),
    "Q2 true": (leader(replication_quorum=True), [Q2, "expected a whole number, found True"]),
    "Q2 text": (leader(replication_quorum="three"), [Q2, "expected a whole number, found 'three'"]),
    "Q2 > nodes": (leader(replication_quorum=9), [Q2, "9 is larger than the number of nodes (5)"]),
    "Q1 + Q2 = N": (
        leader(election_quorum=2, replication_quorum=3),
        [Q2, "= 5 is not larger", "Q1 + Q2 > N"],
    ),
    "read_mode": (leader(read_mode="bogus"), ["quorum.leader.read_mode", "found 'bogus'"]),
    "lease negative": (leader(read_mode="lease", lease=-1), ["quorum.leader.lease", "found -1"]),
    "lease nan": (leader(read_mode="lease", lease=NAN), ["quorum.leader.lease", "found nan"]),
    "max_batch 0": (leader(max_batch=0), ["quorum.leader.max_batch", "found 0"]),
    "misspelt key": (leader(elction_timeout=100), ["quorum.leader.elction_timeout", "'election_timeout'"]),
    "n not the nodes": ({"quorum": {"n": 3}}, ["quorum.n", "3 is not the number of nodes (5)"]),
    "protocol raft": ({"quorum": {"protocol": "raft"}}, ["quorum.protocol", "found 'raft'"]),
    "crash leader, leaderless": (
        {
            "quorum": {"protocol": "leaderless", "n": 3, "r": 2, "w": 2},
            "faults": [{"at": "1s", "crash": "leader"}],
        },
        ["faults.0.crash", "only with quorum.protocol: leader"],
    ),
    "leader twice in a group": (
        {"faults": [{"at": "500ms", "partition": [["leader", "leader"]], "heal_at": "800ms"}]},
        ["faults.0.partition.0", "named twice"],
    ),
    "leader in two groups": (
        {"faults": [{"at": "500ms", "partition": [["leader"], ["leader"]], "heal_at": "800ms"}]},
        ["faults.0.partition.1", "'leader' is also in group 0"],
    ),
    "random_crashes leader": (
        {"faults": [{"at": "500ms", "random_crashes": ["leader"], "mttf": "1s", "mttr": "100ms"}]},
        ["faults.0.random_crashes", "not of random_crashes"],
    ),
    "a run too long to finish": ({"duration": 1e9}, ["workload.arrival.rate", "more than the limit"]),
}


@pytest.mark.parametrize(("patch", "fragments"), REFUSED.values(), ids=REFUSED.keys())
def test_validate_refuses_a_bad_leader_setting_by_field_with_what_it_found(tmp_path, patch, fragments):
    assert_refused(invoke("validate", scenario(tmp_path, patch)), "1 problem in the scenario", *fragments)


ALL_BAD = leader(
    election_timeout=-5,
    heartbeat=0,
    election_quorum=0,
    replication_quorum="x",
    read_mode="bogus",
    max_batch=0,
)
ALL_BAD_PATHS = (ET, HB, Q1, Q2, "quorum.leader.read_mode", "quorum.leader.max_batch")


@pytest.mark.parametrize("command", ["validate", "run", "sweep"])
def test_every_bad_leader_setting_is_reported_at_once_and_nothing_is_written(tmp_path, command):
    out = tmp_path / "out"
    args = [] if command == "validate" else ["--out", out, "--no-plots"]
    result = invoke(command, scenario(tmp_path, ALL_BAD), *args)
    assert_refused(result, "6 problems in the", *ALL_BAD_PATHS)  # scenario; sweep: "every run: ..."
    assert not out.exists()


def test_a_sweep_names_each_bad_factor_value_before_running_any(tmp_path):
    out = tmp_path / "out"
    factor = "quorum.leader.election_quorum=0,3,9"
    result = invoke("sweep", scenario(tmp_path, {}), "--factor", factor, "--out", out, "--no-plots")
    assert_refused(
        result, "2 problems in the sweep", "run 0 (election_quorum=0)", "run 2 (election_quorum=9)"
    )
    assert not (out / "runs.parquet").exists()


def test_an_unsafe_lease_is_warned_about_and_still_valid(tmp_path):
    result = invoke("validate", scenario(tmp_path, leader(read_mode="lease", lease=1000)))
    assert result.exit_code == 0, result.output
    assert (
        "warning: quorum.leader.lease: 1000 ms is longer than the shortest election timeout" in result.output
    )


@pytest.mark.parametrize(("nodes", "hops"), [(1, 1), (2, 3)])
def test_one_and_two_node_groups_elect_and_commit(tmp_path, nodes, hops):
    """One node commits alone (the client's hop only); two wait for the other's ack (3 hops of 15 ms)."""
    out = tmp_path / "out"
    result = invoke("run", scenario(tmp_path, {"cluster": {"nodes": nodes}}), "--out", out, "--no-plots")
    assert result.exit_code == 0, result.output
    assert f"leader protocol, N={nodes} Q1={nodes} Q2={nodes}" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["leader"]["leader_changes"] == 1
    assert summary["writes"]["ok"] == summary["writes"]["count"] > 0
    assert summary["writes"]["commit_latency_ms"]["p50"] == pytest.approx(15.0 * hops)
