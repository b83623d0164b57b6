"""Tests of scenario validation: every problem reported at once with its dotted path, defaults, overrides."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
import yaml

import qsim
from qsim.errors import QsimError, ScenarioError

SHIPPED = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.yaml"))


def problems_of(data: dict) -> list[str]:
    """Return the problem lines of a scenario that must fail validation."""
    with pytest.raises(ScenarioError) as info:
        qsim.scenario_from_dict(data)
    return info.value.problems


def lines_at(problems: list[str], path: str) -> list[str]:
    """Return the problem lines about ``path`` (exactly that path, or a field below it)."""
    return [line for line in problems if line.startswith((f"{path}:", f"{path}."))]


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BASE_YAML = """\
name: base
cluster:
  nodes: 5
quorum:
  n: 3
  r: 2
  w: 2
network:
  latency: {dist: exponential, mean: 1ms}
workload:
  keys: {count: 100}
"""


# --- one bad field at a time -------------------------------------------------------------------

BAD = {
    "r-larger-than-n": ({"quorum": {"n": 3, "r": 4}}, "quorum.r", "4 is larger than quorum.n (3)"),
    "r-spelled-out": ({"quorum": {"r": "two"}}, "quorum.r", "'two'"),
    "w-zero": ({"quorum": {"w": 0}}, "quorum.w", "found 0"),
    "w-all-larger-via-n": ({"quorum": {"n": 3, "w": 5}}, "quorum.w", "5 is larger than quorum.n (3)"),
    "n-zero": ({"quorum": {"n": 0, "r": 1, "w": 1}}, "quorum.n", "found 0"),
    "n-more-than-nodes": (
        {"cluster": {"nodes": 2}, "quorum": {"n": 3, "r": 1, "w": 1}},
        "quorum.n",
        "3 is larger than the number of nodes (2)",
    ),
    "timeout-negative": ({"quorum": {"timeout": "-5ms"}}, "quorum.timeout", "found -5"),
    "timeout-not-a-duration": ({"quorum": {"timeout": "soon"}}, "quorum.timeout", "'soon'"),
    "timeout-misspelled": ({"quorum": {"timout": 5}}, "quorum.timout", "did you mean 'timeout'?"),
    "fanout-unknown": ({"quorum": {"read_fanout": "some"}}, "quorum.read_fanout", "'some'"),
    "local-coordinator-region-without-nodes": (
        {"quorum": {"coordinator": "local"}, "workload": {"client_regions": ["mars"]}},
        "quorum.coordinator",
        "mars",
    ),
    "nodes-zero": ({"cluster": {"nodes": 0}}, "cluster.nodes", "found 0"),
    "nodes-empty-list": ({"cluster": {"nodes": []}}, "cluster.nodes", "found []"),
    "node-name-duplicate": (
        {"cluster": {"nodes": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}},
        "cluster.nodes.2.name",
        "'a'",
    ),
    "node-name-pattern": (
        {"cluster": {"nodes": [{"name": "a b"}, {"name": "c"}]}},
        "cluster.nodes.0.name",
        "'a b'",
    ),
    "node-unknown-key": (
        {"cluster": {"nodes": [{"name": "a", "zone": "z"}]}},
        "cluster.nodes.0.zone",
        "region",
    ),
    "concurrency-zero": (
        {"cluster": {"replica": {"concurrency": 0}}},
        "cluster.replica.concurrency",
        "found 0",
    ),
    "service-time-negative": (
        {"cluster": {"replica": {"service_time": "-1ms"}}},
        "cluster.replica.service_time.value",
        "found -1",
    ),
    "name-pattern": ({"name": "my scenario"}, "name", "'my scenario'"),
    "seed-negative": ({"seed": -1}, "seed", "found -1"),
    "top-level-unknown-key": ({"durration": "5s"}, "durration", "did you mean 'duration'?"),
    "duration-not-a-duration": ({"duration": "5 parsecs"}, "duration", "'5 parsecs'"),
    "warmup-not-shorter": ({"duration": "1s", "warmup": "2s"}, "warmup", "2000 ms"),
    "loss-one": ({"network": {"loss": 1}}, "network.loss", "found 1"),
    "loss-negative": ({"network": {"loss": -0.1}}, "network.loss", "found -0.1"),
    "latency-unknown-dist": (
        {"network": {"latency": {"dist": "gaussian"}}},
        "network.latency.dist",
        "'gaussian'",
    ),
    "latency-no-dist": ({"network": {"latency": {"mean": 1}}}, "network.latency", "'dist'"),
    "latency-misspelled-key": (
        {"network": {"latency": {"dist": "exponential", "meen": 1}}},
        "network.latency.meen",
        "did you mean 'mean'?",
    ),
    "latency-negative-weight": (
        {"network": {"latency": {"dist": "mixture", "components": [1, 2], "weights": [1, -1]}}},
        "network.latency.weights",
        "-1",
    ),
    "latency-both-mean-and-rate": (
        {"network": {"latency": {"dist": "exponential", "mean": 1, "rate": 2}}},
        "network.latency",
        "exactly one",
    ),
    "kind-latency-bad": ({"network": {"kinds": {"write_ack": "fast"}}}, "network.kinds.write_ack", "'fast'"),
    "kind-unknown": ({"network": {"kinds": {"write_acks": 1}}}, "network.kinds.write_acks", "'write_ack'"),
    "link-unknown-node": (
        {"network": {"links": [{"between": ["n1", "n9"]}]}},
        "network.links.0.between",
        "'n9'",
    ),
    "link-without-ends": ({"network": {"links": [{"latency": 1}]}}, "network.links.0.between", "between"),
    "link-from-without-to": ({"network": {"links": [{"from": "n1"}]}}, "network.links.0.to", "together"),
    "link-loss-one": (
        {"network": {"links": [{"between": ["n1", "n2"], "loss": 1.0}]}},
        "network.links.0.loss",
        "found 1",
    ),
    "region-unknown": (
        {"network": {"regions": [{"between": ["default", "mars"]}]}},
        "network.regions.0.between",
        "'mars'",
    ),
    "arrival-rate-bad": (
        {"workload": {"arrival": {"type": "poisson", "rate": "fast"}}},
        "workload.arrival.rate",
        "'fast'",
    ),
    "arrival-rate-zero": (
        {"workload": {"arrival": {"type": "poisson", "rate": "0/s"}}},
        "workload.arrival.rate",
        "found 0",
    ),
    "arrival-unknown-type": (
        {"workload": {"arrival": {"type": "bursty"}}},
        "workload.arrival.type",
        "'bursty'",
    ),
    "arrival-no-type": ({"workload": {"arrival": {"rate": 5}}}, "workload.arrival", "'type'"),
    "probe-delay-negative": (
        {"workload": {"arrival": {"type": "probe", "delays": ["1ms", "-2ms"]}}},
        "workload.arrival.delays.1",
        "found -2",
    ),
    "probe-delay-bad": (
        {"workload": {"arrival": {"type": "probe", "delays": ["abc", 1]}}},
        "workload.arrival.delays.0",
        "'abc'",
    ),
    "keys-count-zero": ({"workload": {"keys": {"count": 0}}}, "workload.keys.count", "found 0"),
    "popularity-unknown": (
        {"workload": {"keys": {"popularity": "pareto"}}},
        "workload.keys.popularity",
        "'pareto'",
    ),
    "read-fraction-above-one": ({"workload": {"read_fraction": 1.5}}, "workload.read_fraction", "found 1.5"),
    "client-region-unknown": (
        {"workload": {"client_regions": ["default", "mars"]}},
        "workload.client_regions.1",
        "'mars'",
    ),
    "clients-zero": ({"workload": {"clients": 0}}, "workload.clients", "found 0"),
}


@pytest.mark.parametrize(("data", "path", "found"), BAD.values(), ids=BAD.keys())
def test_bad_scenario_names_the_path_and_what_was_found(data, path, found):
    problems = problems_of({"name": "t", **data})
    about = lines_at(problems, path)
    assert about, problems
    assert any(found in line for line in about), about


def test_message_says_expected_and_found():
    assert problems_of({"name": "t", "quorum": {"n": 3, "r": 4}}) == [
        "quorum.r: 4 is larger than quorum.n (3)"
    ]
    [line] = problems_of({"name": "t", "workload": {"read_fraction": 1.5}})
    assert line.startswith("workload.read_fraction: expected") and "found 1.5" in line


def test_name_is_required():
    assert problems_of({"seed": 1}) == ["name: required field is missing"]


def test_unknown_key_lists_the_keys_when_nothing_is_close():
    [line] = problems_of({"name": "t", "quorum": {"zzz": 1}})
    head, _, keys = line.partition("; expected one of: ")
    assert head == "quorum.zzz: unknown key"
    assert set(keys.split(", ")) == set(qsim.Scenario.model_fields["quorum"].annotation.model_fields)


# --- every problem at once ---------------------------------------------------------------------


def test_all_problems_reported_at_once():
    data = {
        "name": "t",
        "seed": -1,
        "duration": "1s",
        "warmup": "2s",
        "cluster": {"nodes": 2},
        "quorum": {"n": 3, "r": 1, "w": 1},
        "network": {"loss": 1},
        "workload": {"keys": {"count": 0}},
    }
    problems = problems_of(data)
    for path in ("seed", "warmup", "quorum.n", "network.loss", "workload.keys.count"):
        assert lines_at(problems, path), (path, problems)
    assert len(problems) == 5


def test_all_quorum_problems_reported_at_once():
    problems = problems_of(
        {"name": "t", "cluster": {"nodes": 2}, "quorum": {"n": 3, "r": "two", "w": 9, "timeout": 0}}
    )
    for path in ("quorum.r", "quorum.w", "quorum.timeout", "quorum.n"):
        assert lines_at(problems, path), (path, problems)


def test_a_problem_is_reported_once():
    problems = problems_of({"name": "t", "cluster": {"nodes": 2}, "quorum": {"n": 3, "r": 1, "w": 1}})
    assert len(problems) == 1 and problems[0].startswith("quorum.n:")


@pytest.mark.parametrize(
    ("data", "paths"),
    [
        (
            {"network": {"loss": 1.5, "links": [{"between": ["n1", "n9"]}]}},
            ["network.loss", "network.links.0.between"],
        ),
        (
            {"workload": {"read_fraction": 1.5, "client_regions": ["mars"]}},
            ["workload.read_fraction", "workload.client_regions.0"],
        ),
    ],
    ids=["network", "workload"],
)
def test_cross_section_problems_reported_beside_field_problems(data, paths):
    problems = problems_of({"name": "t", **data})
    assert all(lines_at(problems, path) for path in paths), problems


def test_unknown_link_destination_points_at_to():
    problems = problems_of({"name": "t", "network": {"links": [{"from": "n1", "to": "n9"}]}})
    assert lines_at(problems, "network.links.0.to"), problems


def test_invalid_only_list_item_reports_only_its_own_problem():
    problems = problems_of({"name": "t", "cluster": {"nodes": [{"name": "a b"}]}})
    assert all(line.startswith("cluster.nodes.0.") for line in problems), problems


# --- aliases, defaults, round trip, immutability -------------------------------------------------


@pytest.mark.parametrize(
    ("quorum", "r", "w"),
    [
        ({"r": "one", "w": "all"}, 1, 3),
        ({"n": 5, "r": "one", "w": "all"}, 1, 5),
        ({"n": 5, "r": "quorum", "w": "quorum"}, 3, 3),
        ({"n": 4, "r": "quorum", "w": "one"}, 3, 1),
        ({"n": 1, "r": "quorum", "w": "all"}, 1, 1),
        ({"r": "quorum", "w": "2"}, 2, 2),
    ],
)
def test_consistency_aliases_resolve(quorum, r, w):
    scenario = qsim.scenario_from_dict({"name": "t", "quorum": quorum})
    assert (scenario.quorum.r, scenario.quorum.w) == (r, w)


def test_defaults_fill_every_section():
    resolved = qsim.resolved_dict(qsim.scenario_from_dict({"name": "t"}))
    assert set(resolved) >= {"name", "seed", "duration", "warmup", "cluster", "network", "quorum", "workload"}
    assert resolved["cluster"]["nodes"] == [
        {"name": f"n{i}", "region": "default", "service_time": None, "concurrency": None} for i in range(1, 6)
    ]
    assert set(resolved["quorum"]) >= {"n", "r", "w", "timeout", "coordinator", "read_fanout"}
    assert resolved["workload"]["arrival"]["type"] == "poisson"
    assert resolved["network"]["latency"]["dist"] == "exponential"


def test_numbered_nodes():
    scenario = qsim.scenario_from_dict({"name": "t", "cluster": {"nodes": 3}})
    assert [(node.name, node.region) for node in scenario.cluster.nodes] == [
        ("n1", "default"),
        ("n2", "default"),
        ("n3", "default"),
    ]


def test_units_are_resolved_to_milliseconds_and_per_second():
    scenario = qsim.scenario_from_dict(
        {
            "name": "t",
            "duration": "2s",
            "quorum": {"timeout": "250us"},
            "workload": {"arrival": {"type": "poisson", "rate": "3/ms"}},
        }
    )
    assert (scenario.duration, scenario.quorum.timeout, scenario.workload.arrival.rate) == (
        2000.0,
        0.25,
        3000.0,
    )


ROUND_TRIP = {
    "minimal": {"name": "t"},
    "rich": {
        "name": "rich",
        "seed": 7,
        "duration": "3s",
        "warmup": "100ms",
        "cluster": {"nodes": [{"name": "a", "region": "x"}, {"name": "b", "region": "y"}, {"name": "c"}]},
        "network": {
            "latency": {
                "dist": "mixture",
                "components": [1, {"dist": "pareto", "scale": 2, "alpha": 3}],
                "weights": [9, 1],
            },
            "kinds": {"read_response": {"dist": "lognormal", "mean": 1, "sigma": 0.3}},
            "regions": [
                {"between": ["x", "y"], "latency": {"dist": "uniform", "low": 1, "high": 2, "shift": "30ms"}}
            ],
            "links": [{"from": "a", "to": "b", "loss": 0.5}],
        },
        "quorum": {"n": 3, "r": "one", "w": "all", "coordinator": "local", "timeout": "1s"},
        "workload": {
            "arrival": {"type": "probe", "delays": [0, "1ms", "1s"]},
            "client_regions": ["y"],
            "keys": {"popularity": "hotset"},
        },
    },
    "exponential-rate": {"name": "t", "network": {"latency": {"dist": "exponential", "rate": "2/ms"}}},
}


@pytest.mark.parametrize("data", ROUND_TRIP.values(), ids=ROUND_TRIP.keys())
def test_resolved_dict_round_trips(data):
    scenario = qsim.scenario_from_dict(data)
    again = qsim.scenario_from_dict(qsim.resolved_dict(scenario))
    assert again == scenario
    assert qsim.run_id(again) == qsim.run_id(scenario)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenarios_round_trip_through_yaml(tmp_path, path):
    scenario = qsim.load_scenario(path)
    copy = write(tmp_path, yaml.safe_dump(qsim.resolved_dict(scenario)), "copy.yaml")
    again = qsim.load_scenario(copy)
    assert again == scenario
    assert qsim.run_id(again) == qsim.run_id(scenario)


def test_run_id_depends_on_the_scenario():
    base = qsim.scenario_from_dict({"name": "t"})
    assert qsim.run_id(base) != qsim.run_id(qsim.scenario_from_dict({"name": "t", "seed": 2}))
    assert qsim.run_id(base) != qsim.run_id(qsim.scenario_from_dict({"name": "t", "quorum": {"r": 1}}))


@pytest.mark.parametrize(
    ("part", "field", "value"),
    [
        (lambda s: s, "seed", 2),
        (lambda s: s.quorum, "r", 1),
        (lambda s: s.cluster.nodes[0], "name", "x"),
        (lambda s: s.network.latency, "mean", 2.0),
    ],
    ids=["scenario", "quorum", "node", "latency"],
)
def test_scenario_is_immutable(part, field, value):
    scenario = qsim.scenario_from_dict({"name": "t"})
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        setattr(part(scenario), field, value)


def test_node_list_is_a_tuple():
    assert isinstance(qsim.scenario_from_dict({"name": "t"}).cluster.nodes, tuple)


# --- loading files -----------------------------------------------------------------------------


def test_load_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioError) as info:
        qsim.load_scenario(path)
    assert info.value.source == str(path)
    assert "cannot read" in info.value.problems[0]


def test_load_invalid_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "name: t\nquorum:\n  n: 3\n  r: 2: 3\nworkload: {}\n")
    with pytest.raises(ScenarioError) as info:
        qsim.load_scenario(path)
    [line] = info.value.problems
    assert "YAML" in line and "line 4" in line


def test_load_top_level_list(tmp_path):
    with pytest.raises(ScenarioError) as info:
        qsim.load_scenario(write(tmp_path, "- name: t\n- seed: 1\n"))
    [line] = info.value.problems
    assert "expected a mapping" in line and "list" in line


def test_load_empty_file_gives_defaults_named_after_the_file(tmp_path):
    scenario = qsim.load_scenario(write(tmp_path, "", "my-empty.yaml"))
    assert scenario == qsim.scenario_from_dict({"name": "my-empty"})


def test_load_name_in_file_wins_over_stem(tmp_path):
    assert qsim.load_scenario(write(tmp_path, "name: given\n", "stem.yaml")).name == "given"


def test_load_reports_problems_with_source_and_count(tmp_path):
    path = write(tmp_path, "name: t\nseed: -1\nquorum: {r: 9}\nworkload: {read_fraction: 2}\n")
    with pytest.raises(ScenarioError) as info:
        qsim.load_scenario(path)
    assert str(info.value).startswith(f"{path}: 3 problems")
    for line in info.value.problems:
        assert f"  - {line}" in str(info.value)


def test_load_resolves_empirical_file_next_to_the_scenario(tmp_path, monkeypatch):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "lat.csv").write_text("ms\n1.5\n2.5\n")
    path = write(
        tmp_path / "scenarios", "network:\n  latency: {dist: empirical, file: lat.csv, column: ms}\n"
    )
    monkeypatch.chdir(tmp_path)
    latency = qsim.load_scenario(path).network.latency
    assert latency.samples().tolist() == [1.5, 2.5]


# --- --set overrides -----------------------------------------------------------------------------


def test_overrides_are_typed_like_the_file(tmp_path):
    path = write(tmp_path, BASE_YAML)
    scenario = qsim.load_scenario(
        path, ["quorum.r=1", "network.latency=5ms", "workload.keys.popularity=zipf"]
    )
    assert scenario.quorum.r == 1
    assert (scenario.network.latency.dist, scenario.network.latency.value) == ("constant", 5.0)
    assert scenario.workload.keys.popularity == "zipf"
    assert scenario.workload.keys.count == 100
    assert scenario.quorum.w == 2


@pytest.mark.parametrize(
    ("override", "attribute", "value"),
    [
        ("quorum.w=all", ("quorum", "w"), 3),
        ("workload.read_fraction=0.25", ("workload", "read_fraction"), 0.25),
        ("duration=2s", ("duration",), 2000.0),
        ("name=renamed", ("name",), "renamed"),
        ("seed=42", ("seed",), 42),
        ("workload.max_ops=10", ("workload", "max_ops"), 10),
        ("cluster.nodes.1.region=west", ("cluster", "nodes", 1, "region"), "west"),
    ],
)
def test_override_values(tmp_path, override, attribute, value):
    text = BASE_YAML.replace("nodes: 5", "nodes: [{name: a}, {name: b}, {name: c}]")
    got = qsim.load_scenario(write(tmp_path, text), [override])
    for step in attribute:
        got = got[step] if isinstance(step, int) else getattr(got, step)
    assert got == value


def test_overrides_apply_in_order(tmp_path):
    scenario = qsim.load_scenario(write(tmp_path, BASE_YAML), ["quorum.n=5", "quorum.r=all", "quorum.n=4"])
    assert (scenario.quorum.n, scenario.quorum.r) == (4, 4)


@pytest.mark.parametrize(
    ("override", "path", "fragment"),
    [
        ("quorum.r", "--set 'quorum.r'", "path=value"),
        ("=1", "--set '=1'", "path=value"),
        ("quorum.r=9", "quorum.r", "larger than quorum.n (3)"),
        ("quorum.nope=1", "quorum.nope", "unknown key; expected one of"),
        ("quorum.timout=5ms", "quorum.timout", "did you mean 'timeout'?"),
        ("cluster.nodes.0.x=1", "--set 'cluster.nodes.0.x=1'", "cluster.nodes"),
        ("network.links.3.loss=0.1", "--set 'network.links.3.loss=0.1'", "no item 3"),
        ("workload.keys.count=many", "workload.keys.count", "'many'"),
    ],
)
def test_bad_overrides(tmp_path, override, path, fragment):
    text = BASE_YAML.replace("network:\n", "network:\n  links: [{between: [n1, n2]}]\n")
    with pytest.raises(ScenarioError) as info:
        qsim.load_scenario(write(tmp_path, text), [override])
    about = [line for line in info.value.problems if line.startswith(path)]
    assert any(fragment in line for line in about), info.value.problems


def test_all_bad_overrides_reported_at_once(tmp_path):
    path = write(tmp_path, BASE_YAML)
    with pytest.raises(ScenarioError) as info:
        qsim.load_scenario(path, ["quorum.r", "seed=1", "=2", "cluster.nodes.0.x=1"])
    assert str(info.value).startswith(f"{path}: 3 problems")


# --- the error itself ----------------------------------------------------------------------------


def test_scenario_error_is_a_qsim_error():
    assert issubclass(ScenarioError, QsimError)


@pytest.mark.parametrize(
    ("problems", "source", "start"),
    [
        (["a: x"], "s.yaml", "s.yaml: 1 problem in the scenario"),
        (["a: x", "b: y"], "s.yaml", "s.yaml: 2 problems in the scenario"),
        (["a: x", "b: y"], None, "2 problems in the scenario"),
    ],
)
def test_scenario_error_text(problems, source, start):
    error = ScenarioError(problems, source)
    assert str(error).startswith(start)
    assert error.problems == problems
    assert str(error).splitlines()[1:] == [f"  - {p}" for p in problems]


# --- consistency levels: the majority alias and the warnings -----------------------------------


@pytest.mark.parametrize(("n", "count"), [(1, 1), (3, 2), (4, 3), (5, 3)])
def test_majority_is_another_name_for_quorum(n, count):
    quorum = {"n": n, "r": "majority", "w": "majority"}
    scenario = qsim.scenario_from_dict({"name": "m", "cluster": {"nodes": 5}, "quorum": quorum})
    assert (scenario.quorum.r, scenario.quorum.w) == (count, count)
    quorum = {"n": n, "r": "quorum", "w": "quorum"}
    same = qsim.scenario_from_dict({"name": "m", "cluster": {"nodes": 5}, "quorum": quorum})
    assert same.quorum == scenario.quorum


@pytest.mark.parametrize("n", [3, 3.0, "3"])
def test_an_alias_resolves_against_n_however_n_is_written(n):
    # An unresolved alias would pass for a per-region level (a string) and reach the model.
    quorum = {"n": n, "r": "quorum", "w": "majority", "replicas": {"default": 3}}
    scenario = qsim.scenario_from_dict({"name": "m", "cluster": {"nodes": 5}, "quorum": quorum})
    assert (scenario.quorum.r, scenario.quorum.w) == (2, 2)


def warnings_of(**quorum) -> list[str]:
    return qsim.scenario.consistency_warnings(qsim.scenario_from_dict({"name": "w", "quorum": quorum}))


def test_no_warning_for_a_strict_quorum_that_tolerates_a_failure():
    assert warnings_of(n=3, r=2, w=2) == []
    assert warnings_of(n=5, r=3, w=3) == []
    assert warnings_of(n=3, r=1, w=1) == []  # weak, but a choice, and it survives failures


@pytest.mark.parametrize(("field", "r", "w"), [("r", 3, 1), ("w", 1, 3)])
def test_r_or_w_equal_to_n_warns_that_no_failure_is_tolerated(field, r, w):
    lines = warnings_of(n=3, r=r, w=w)
    assert lines == [
        f"quorum.{field}: {field.upper()} = N = 3: one unavailable replica stops every "
        f"{'read' if field == 'r' else 'write'} of its keys (no failure tolerated); "
        f"{field.upper()} = 2 or less tolerates one"
    ]


def test_r_plus_w_above_n_plus_one_is_oversized():
    lines = warnings_of(n=5, r=3, w=4)
    assert len(lines) == 1
    assert lines[0].startswith("quorum.r, quorum.w: R + W = 7 > N + 1 = 6: oversized")
    assert warnings_of(n=5, r=2, w=4) == []  # R + W = N + 1: the smallest sum that intersects


def test_r_equal_w_equal_n_gets_every_warning():
    fields = [line.split(":")[0] for line in warnings_of(n=3, r="all", w="all")]
    assert fields == ["quorum.r", "quorum.w", "quorum.r, quorum.w"]


def test_hedging_under_fan_out_all_warns_that_it_does_nothing():
    assert warnings_of(hedge={"after": "5ms"})[0].startswith("quorum.hedge: with read_fanout: all")
    assert warnings_of(hedge={"after": "5ms"}, read_fanout="quorum") == []


def test_warnings_go_to_stderr_once_and_never_change_the_exit_status(tmp_path):
    from click.testing import CliRunner

    from qsim.cli import main

    path = write(tmp_path, "name: w\ncluster: {nodes: 3}\nquorum: {n: 3, r: 3, w: 1}\n")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0
    assert result.stdout == f"{path}: OK\n"
    assert result.stderr.count("warning: quorum.r: R = N = 3") == 1
    sweep = CliRunner().invoke(
        main, ["sweep", str(path), "--factor", "quorum.w=1,2", "--seeds", "3", "--dry-run"]
    )  # six points share one R = N warning, and two of them are oversized
    assert sweep.exit_code == 0
    assert sweep.stderr.count("warning: quorum.r: R = N = 3") == 1
    assert sweep.stderr.count("oversized") == 1
    assert "6 runs" in sweep.stdout


def test_a_name_is_checked_before_any_path_is_built():
    assert qsim.scenario.check_name({"name": "ok-1.2_x"}) == "ok-1.2_x"
    for bad in ("../x", "/abs", ".", "..", "a/b", "", "x" * 101, None, 7):
        with pytest.raises(ScenarioError) as info:
            qsim.scenario.check_name({"name": bad})
        assert all(line.startswith("name: ") for line in info.value.problems), info.value.problems


def all_warnings(**changes) -> list[str]:
    return qsim.scenario.consistency_warnings(qsim.scenario_from_dict({"name": "w", **changes}))


def test_a_shrink_variant_without_shrink_failover_warns_that_it_does_nothing():
    assert all_warnings(quorum={"shrink": "drop"})[0].startswith(
        "quorum.shrink: drop does nothing with failover: strict"
    )
    assert all_warnings(quorum={"shrink": "drop", "failover": "shrink"}) == []


def test_a_fault_at_or_after_the_end_warns_except_in_probe_runs():
    late = [{"at": "10s", "crash": "n1"}, {"at": "9s", "crash": "n2"}]
    assert all_warnings(duration="10s", faults=late) == [
        "faults.0.at: 10000 ms is not before duration (10000 ms): no operation is issued after the "
        "fault starts, so it changes nothing"
    ]
    probe = {"arrival": {"type": "probe", "delays": [0], "trials": 10}}
    assert all_warnings(duration="10s", faults=late, workload=probe) == []


def test_an_empty_partition_group_warns():
    faults = [{"at": 10, "partition": [[], ["n1"]], "heal_at": 20}]
    assert all_warnings(faults=faults) == [
        "faults.0.partition.0: an empty group holds no node, so it cuts nothing off"
    ]


TWO_REGIONS = [{"name": "a1", "region": "a"}, {"name": "b1", "region": "b"}, {"name": "b2", "region": "b"}]


@pytest.mark.parametrize("coordinator", ["client", "local", "random", "replica"])
@pytest.mark.parametrize("level", ["local_one", "local_quorum"])
def test_a_local_level_where_coordinators_hold_no_replicas_is_refused(coordinator, level):
    quorum = {"replicas": {"b": 2}, "r": level, "w": 1, "coordinator": coordinator}
    with pytest.raises(ScenarioError) as error:
        qsim.scenario_from_dict({"name": "l", "cluster": {"nodes": TWO_REGIONS}, "quorum": quorum})
    assert [p for p in error.value.problems if p.startswith(f"quorum.r: {level} counts only replicas")]


def test_each_quorum_and_local_levels_with_replicas_everywhere_are_accepted():
    for quorum in (
        {"replicas": {"b": 2}, "r": "each_quorum", "w": "each_quorum"},
        {"replicas": {"a": 1, "b": 2}, "r": "local_quorum", "w": "local_one", "coordinator": "random"},
        {"replicas": {"b": 2}, "r": "local_quorum", "w": 1, "coordinator": "local"},
    ):
        workload = {"client_regions": ["b"]} if quorum.get("coordinator") == "local" else {}
        qsim.scenario_from_dict(
            {"name": "l", "cluster": {"nodes": TWO_REGIONS}, "quorum": quorum, "workload": workload}
        )


def test_a_leader_group_too_large_names_the_node_count_the_user_gave():
    """quorum.n is derived from cluster.nodes for the leader protocol: the message names the latter."""
    with pytest.raises(ScenarioError) as caught:
        qsim.scenario_from_dict({"name": "x", "cluster": {"nodes": 200}, "quorum": {"protocol": "leader"}})
    assert [line.split(": ", 1)[0] for line in caught.value.problems] == ["cluster.nodes"]
    assert "at most 100 nodes" in str(caught.value)
