"""The ``quorum.system`` scenario field, ``qsim analyze``, and ``qsim run`` refusing what it cannot run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from qsim.cli import main
from qsim.errors import ScenarioError
from qsim.quorums import QuorumSystem
from qsim.scenario import load_scenario, resolved_dict, run_id, scenario_from_dict
from qsim.scenario.systems import node_availability, quorum_system

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
GRID = {"kind": "grid", "rows": 2, "cols": 3, "read": "row", "write": "row_cover"}


def scenario(system: dict | None, nodes: int = 6, **quorum) -> object:
    data = {
        "name": "t",
        "cluster": {"nodes": nodes},
        "quorum": quorum | ({"system": system} if system else {}),
    }
    return scenario_from_dict(data)


def problems(system: dict, nodes: int = 6, **quorum) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        scenario(system, nodes, **quorum)
    return caught.value.problems


def paths(lines: list[str]) -> list[str]:
    return [line.split(": ", 1)[0] for line in lines]


def named(system: QuorumSystem, side: str) -> set[frozenset[str]]:
    return {frozenset(system.named(q)) for q in getattr(system, side)}


def write_yaml(folder: Path, system: dict | None, **sections) -> Path:
    data = {"name": "t", "cluster": {"nodes": 6}, "workload": {"read_fraction": 0.5}} | sections
    if system is not None:
        data["quorum"] = {"system": system}
    path = folder / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# --- the four kinds ----------------------------------------------------------------------------


def test_threshold_is_any_r_and_w_of_the_first_n_nodes():
    """quickstart: N=3, R=W=quorum=2 over n1..n3 of 5 nodes; ``{kind: threshold}`` means the same."""
    loaded = load_scenario(QUICKSTART)
    system = quorum_system(loaded)
    assert system == QuorumSystem.threshold(["n1", "n2", "n3"], 2, 2)
    explicit = scenario({"kind": "threshold"}, nodes=5, n=3, r=2, w=2)
    assert quorum_system(explicit) == system


def test_weighted_votes():
    """Votes n1=3, n2=n3=n4=1 (6 in all). Reads need 3: {n1} alone, or n2+n3+n4. Writes need 4:
    n2+n3+n4 is only 3, so n1 and any one other: {n1,n2}, {n1,n3}, {n1,n4}."""
    votes = {"n1": 3, "n2": 1, "n3": 1, "n4": 1}
    system = quorum_system(
        scenario({"kind": "weighted", "votes": votes, "read_votes": 3, "write_votes": 4}, 4)
    )
    assert named(system, "reads") == {frozenset({"n1"}), frozenset({"n2", "n3", "n4"})}
    assert named(system, "writes") == {frozenset({"n1", x}) for x in ("n2", "n3", "n4")}


def test_grid_rows_and_row_covers():
    """2x3 grid, row-major: rows {n1,n2,n3}, {n4,n5,n6}; a row cover is one node of each row (3 x 3)."""
    system = quorum_system(scenario(GRID))
    assert named(system, "reads") == {frozenset({"n1", "n2", "n3"}), frozenset({"n4", "n5", "n6"})}
    assert named(system, "writes") == {
        frozenset({a, b}) for a in ("n1", "n2", "n3") for b in ("n4", "n5", "n6")
    }


def test_expressions_with_the_dual_side():
    """Reads n1*n2 + n3: {n1,n2} or {n3}. The writes are the minimal sets meeting both: {n1,n3}, {n2,n3}."""
    system = quorum_system(scenario({"kind": "expressions", "read": "n1*n2 + n3", "write": None}, 3))
    assert named(system, "reads") == {frozenset({"n1", "n2"}), frozenset({"n3"})}
    assert named(system, "writes") == {frozenset({"n1", "n3"}), frozenset({"n2", "n3"})}


def test_no_system_keeps_quickstarts_resolved_form_and_run_id():
    loaded = load_scenario(QUICKSTART)
    assert run_id(loaded) == "4b957604b8ba"
    assert "system" not in resolved_dict(loaded)["quorum"]
    defaults = {"strategy": "uniform", "f": 0, "max_load": None}  # resolved: the strategy's defaults
    assert resolved_dict(scenario(GRID))["quorum"]["system"] == GRID | defaults  # and it round-trips
    assert scenario_from_dict(resolved_dict(scenario(GRID))) == scenario(GRID)


# --- problems, with their paths, all at once ---------------------------------------------------


def test_weighted_problems_at_once():
    lines = problems({"kind": "weighted", "votes": {"n1": 3, "zz": 1}, "read_votes": 9, "write_votes": 2}, 3)
    assert paths(lines) == ["quorum.system.votes.zz", "quorum.system.votes", "quorum.system.read_votes"]
    assert "['n2', 'n3']" in lines[1] and "(3)" in lines[2]  # the nodes without votes; the total


def test_expression_problems_on_both_sides_and_beside_other_fields():
    lines = problems({"kind": "expressions", "read": "n1*(n2 +", "write": "n9"}, 3, n=4, timeout=-1)
    # quorum.n = 4 > 3 nodes is no problem here: the system spans the cluster, and n does not apply.
    assert sorted(paths(lines)) == ["quorum.system.read", "quorum.system.write", "quorum.timeout"]
    assert any("unknown node 'n9'" in line for line in lines)


def test_grid_size_and_field_problems():
    assert paths(problems(GRID | {"rows": 2, "cols": 2})) == ["quorum.system.rows"]
    bad = {"kind": "grid", "rows": "x", "cols": 3, "read": "diag", "extra": 1}
    assert sorted(paths(problems(bad))) == ["quorum.system.extra", "quorum.system.read", "quorum.system.rows"]
    assert paths(problems({"kind": "bogus"})) == ["quorum.system.kind"]
    assert paths(problems({"kind": "expressions"})) == ["quorum.system.read"]


def test_reads_that_miss_writes_show_the_pair():
    [line] = problems({"kind": "expressions", "read": "n1*n2", "write": "n3*n4"}, 4)
    assert line.startswith(
        "quorum.system: the read quorum {n1, n2} and the write quorum {n3, n4} share no node"
    )


def test_leader_protocol_takes_no_system():
    assert paths(problems(GRID, protocol="leader")) == ["quorum.system"]


# --- qsim run refuses, qsim analyze analyses ----------------------------------------------------


def test_run_simulates_a_grid_system_and_prints_its_analysis(tmp_path):
    out = tmp_path / "out"
    path = write_yaml(tmp_path, None, duration="1s", quorum={"system": GRID, "read_fanout": "quorum"})
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "quorum system: grid 2x3" in result.output
    assert (out / "summary.json").exists()


def analyze(*args: str) -> str:
    result = CliRunner().invoke(main, ["analyze", *args])
    assert result.exit_code == 0, result.output
    return result.output


def row(output: str, label: str) -> list[str]:
    return next(line.split()[1:] for line in output.splitlines() if line.startswith(label))


def test_analyze_a_2x3_grid(tmp_path):
    """Rows read, row covers write, read fraction 0.5 (the workload's).

    Resilience: one failure leaves a row whole; two (one per row) leave none, so reads survive 1.
    A write needs a node up in each row: only a whole row down (3 failures) stops it, so writes 2.
    Load: reads pick each row half the time, a node reads with probability 1/2; a write takes one of
    the 3 nodes of the node's row, uniformly at best, 1/3. Load = 0.5 x 1/2 + 0.5 x 1/3 = 5/12
    = 0.4167, capacity 12/5 = 2.4, and uniform is optimal here. With every node up 0.99, a row is
    up with 0.99^3 and reads with 1 - (1 - 0.99^3)^2 = 0.999118; writes need a node of each row:
    (1 - 0.01^3)^2 = 0.999998.
    """
    output = analyze(str(write_yaml(tmp_path, GRID)))
    assert row(output, "resilience") == ["1", "2"]
    assert row(output, "optimal") == ["0.4167", "2.4"]
    assert row(output, "uniform") == ["0.4167", "2.4"]
    assert row(output, "availability")[:2] == ["0.999118", "0.999998"]
    assert [row(output, f"n{i}") for i in range(1, 7)] == [["0.99", "0.4167", "0.4167"]] * 6


@pytest.mark.parametrize(
    ("fraction", "capacity"),
    [("0", "3"), ("1", "2")],  # writes only: each node in a third of them; reads only: in half
)
def test_analyze_read_fraction_option(tmp_path, fraction, capacity):
    assert (
        row(analyze(str(write_yaml(tmp_path, GRID)), "--read-fraction", fraction), "optimal")[1] == capacity
    )


def test_analyze_threshold_and_random_crash_availability(tmp_path):
    """quickstart: majority of 3: each node is in 2 of the 3 quorums, load 2/3, capacity 1.5 (1/load);
    with its service time (exponential, mean 0.1 ms, 8 servers: 80,000 requests/s a node), 120,000
    operations/s. random-failures: up 4 s / (4 s + 1 s) = 0.8; 3 of 5 up: 10 a^3 b^2 + 5 a^4 b + a^5
    = 0.94208."""
    assert row(analyze(str(QUICKSTART)), "optimal") == ["0.6667", "120000"]
    unlimited = analyze(str(QUICKSTART), "--set", "cluster.replica.concurrency=null")
    assert row(unlimited, "optimal") == ["0.6667", "1.5"]
    output = analyze(str(ROOT / "scenarios" / "random-failures.yaml"))
    assert row(output, "availability")[:2] == ["0.942080", "0.942080"]
    exponential = {"dist": "exponential", "mean": "1s"}
    crashes = {"random_crashes": ["n2"], "mttf": exponential | {"mean": "3s"}, "mttr": exponential}
    constant = {"random_crashes": "all", "mttf": "3s", "mttr": "1s"}  # not exponential: not used
    loaded = load_scenario(write_yaml(tmp_path, GRID, faults=[crashes, constant]))
    assert node_availability(loaded) == (0.99, 0.75, 0.99, 0.99, 0.99, 0.99)


def test_analyze_bad_input_is_a_message(tmp_path):
    result = CliRunner().invoke(main, ["analyze", str(write_yaml(tmp_path, GRID | {"rows": 3}))])
    assert result.exit_code == 1 and "quorum.system.rows" in result.output
    assert "Traceback" not in result.output
    leader = write_yaml(tmp_path, None, quorum={"protocol": "leader"})
    result = CliRunner().invoke(main, ["analyze", str(leader)])
    assert result.exit_code == 1 and "quorum.protocol" in result.output


def test_help_imports_neither_scipy_nor_pandas():
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "qsim", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "analyze" in done.stdout
    assert not re.search(r"\b(scipy|pandas)\b", done.stderr)


def test_the_monte_carlo_engine_refuses_a_system_the_library_simulates():
    import qsim
    from qsim.analysis.montecarlo import applies

    system = {"kind": "grid", "rows": 2, "cols": 3}
    grid = qsim.scenario_from_dict(
        {"name": "g", "duration": "200ms", "cluster": {"nodes": 6}, "quorum": {"system": system}}
    )
    assert qsim.simulate(grid).error is None
    assert any(reason.startswith("quorum.system:") for reason in applies(grid))


def test_system_problems_are_reported_with_the_other_fields_problems():
    import qsim
    from qsim.errors import ScenarioError

    system = {"kind": "grid", "rows": 4, "cols": 3}
    bad = {"name": "g", "duration": "soon", "cluster": {"nodes": 6}, "quorum": {"n": 6, "system": system}}
    with pytest.raises(ScenarioError) as caught:
        qsim.scenario_from_dict(bad)
    text = str(caught.value)
    assert "duration" in text and "quorum.system.rows" in text


def test_too_many_threshold_quorums_is_a_message_for_run_and_analyze(tmp_path):
    """Any 16 of 30 is C(30, 16) = 145,422,675 quorums: refused at quorum.r, by every command."""
    path = tmp_path / "big.yaml"
    big = {"kind": "threshold", "strategy": "uniform"}
    data = {"name": "big", "cluster": {"nodes": 30}, "quorum": {"n": 30, "r": 16, "w": 15, "system": big}}
    path.write_text(yaml.safe_dump(data))
    for args in (["run", str(path), "--out", str(tmp_path / "out")], ["analyze", str(path)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "quorum.r: any 16 of 30 would build 145,422,675 quorums" in result.output
    plain = CliRunner().invoke(main, ["analyze", str(path), "--set", "quorum.system=null"])
    assert plain.exit_code == 1 and "quorum.r: any 16 of 30" in plain.output
    assert not (tmp_path / "out").exists()
