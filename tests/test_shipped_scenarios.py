"""Every shipped scenario is documented, validates and runs briefly; two show their consistency property."""

from __future__ import annotations

import json
from itertools import takewhile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import qsim
from qsim.cli import main

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SCENARIO_FILES = sorted(SCENARIOS.glob("*.yaml"))
DEFAULT_QUORUM = {"n": 3, "r": 2, "w": 2}


def brief(path: Path, **overrides: str) -> qsim.Scenario:
    """Load ``path`` cut down to a short run: ~300 ms simulated, or 30 trials per probe delay."""
    scenario = qsim.load_scenario(path)
    if scenario.workload.arrival.type == "probe":
        defaults = {"workload.arrival.trials": "30"}
    else:
        defaults = {"duration": "300ms", "warmup": "0"}
    return qsim.load_scenario(path, [f"{k}={v}" for k, v in (defaults | overrides).items()])


def quorum_in_file(path: Path) -> dict:
    """The file's quorum n, r, w, with ONE/QUORUM/ALL turned into counts as Cassandra defines them.

    For a quorum system with a strategy: the node count, its kind and strategy. For the leader
    protocol: the node count, its quorums (majorities where not given) and read mode.
    """
    data = yaml.safe_load(path.read_text())
    quorum = data.get("quorum", {})
    if quorum.get("protocol") == "leader":
        nodes = data.get("cluster", {}).get("nodes", 5)
        n = nodes if isinstance(nodes, int) else len(nodes)
        leader = quorum.get("leader", {})
        return {"protocol": "leader", "n": n,
                "election_quorum": leader.get("election_quorum") or n // 2 + 1,
                "replication_quorum": leader.get("replication_quorum") or n // 2 + 1,
                "read_mode": leader.get("read_mode", "leader")}  # fmt: skip
    system = quorum.get("system") or {}
    default = "selection" if system.get("kind") == "threshold" else "uniform"
    if system and system.get("strategy", default) != "selection":  # quorums of the system: no r, w
        nodes = data.get("cluster", {}).get("nodes", 5)
        n = nodes if isinstance(nodes, int) else len(nodes)
        return {
            "n": n,
            "r": None,
            "w": None,
            "system": system["kind"],
            "strategy": system.get("strategy", default),
        }
    written = DEFAULT_QUORUM | quorum
    if "replicas" in written and "n" not in yaml.safe_load(path.read_text()).get("quorum", {}):
        written["n"] = sum(written["replicas"].values())  # N is the sum of the replicas per region
    n = written["n"]
    counts = {"one": 1, "quorum": n // 2 + 1, "all": n}
    return {field: counts.get(written[field], written[field]) for field in ("n", "r", "w")}


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_starts_with_a_comment_header(path):
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# ")
    assert len(list(takewhile(lambda line: line.startswith("#"), lines))) >= 3


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_validates_with_its_file_name(path):
    assert qsim.load_scenario(path).name == path.stem


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_runs_briefly(path):
    result = qsim.simulate(brief(path))
    assert result.error is None
    assert len(result.ops) > 0
    assert result.summary["reads"]["count"] > 0
    assert result.summary["writes"]["count"] > 0
    assert result.summary["availability"] > 0.9
    assert result.summary["quorum"] == quorum_in_file(path)


def test_strict_quorum_has_no_stale_reads():
    result = qsim.simulate(brief(SCENARIOS / "strict-quorum.yaml"))
    staleness = result.summary["staleness"]
    assert staleness["reads_checked"] > 500
    assert staleness["stale"] == 0
    assert not result.ops["stale"].fillna(False).any()


def test_eventual_consistency_has_stale_reads():
    result = qsim.simulate(brief(SCENARIOS / "eventual-consistency.yaml", duration="2s"))
    staleness = result.summary["staleness"]
    assert staleness["stale"] > 0
    stale = result.ops[result.ops["stale"].fillna(False).astype(bool)]
    assert len(stale) == staleness["stale"]  # warmup is 0, so the summary counts every read
    assert (stale["k"] >= 1).all()


def test_quickstart_runs_through_the_cli(tmp_path):
    out = tmp_path / "quickstart"
    result = CliRunner().invoke(main, ["run", str(SCENARIOS / "quickstart.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reads"]["count"] > 1000
    assert summary["staleness"]["stale"] == 0
