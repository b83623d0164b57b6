"""Building sweeps from YAML and the command line, and expanding them into runs."""

from __future__ import annotations

import copy
import itertools

import pytest
import yaml

from qsim.sweep.expand import WHERE_HINT, Point, describe, expand, invalid_points
from qsim.sweep.expr import parse
from qsim.sweep.spec import MAX_RUNS, Factor, Sweep, SweepError, sweep_from_cli, sweep_from_mapping


def configs(points: list[Point]) -> list[tuple]:
    return [tuple(p.factors.values()) for p in points]


def cli(*factors: str, where: str | None = None, zips: tuple[str, ...] = (), seeds: str | None = None):
    return sweep_from_cli(list(factors), where=where, zips=list(zips), seeds=seeds)


def problems(block) -> list[str]:
    with pytest.raises(SweepError) as caught:
        expand(sweep_from_mapping(block))
    return caught.value.problems


# --- the order of points -----------------------------------------------------------------------


def test_the_product_follows_the_factor_order_with_the_last_factor_fastest():
    points = expand(sweep_from_mapping({"quorum.n": [3, 5], "network.latency": ["1ms", "5ms"]}))
    assert configs(points) == [(3, "1ms"), (3, "5ms"), (5, "1ms"), (5, "5ms")]
    assert [p.index for p in points] == [0, 1, 2, 3]
    assert [p.seed for p in points] == [None] * 4
    assert list(points[0].factors) == ["quorum.n", "network.latency"]


def test_any_yaml_value_can_be_a_value_and_a_scalar_is_a_single_value():
    latency = {"dist": "constant", "value": "1ms"}
    points = expand(sweep_from_mapping({"network.latency": [latency, "5ms"], "quorum.n": 3, "f": ["a..b"]}))
    assert configs(points) == [(latency, 3, "a..b"), ("5ms", 3, "a..b")]


def test_zipped_factors_vary_together_at_the_place_of_their_first_member():
    sweep = sweep_from_mapping(
        {"quorum.r": [1, 2, 3], "quorum.n": [3, 5], "quorum.w": [3, 2, 1], "zip": [["quorum.w", "quorum.r"]]}
    )
    points = expand(sweep)
    assert list(points[0].factors) == ["quorum.r", "quorum.n", "quorum.w"]
    assert configs(points) == [(1, 3, 3), (1, 5, 3), (2, 3, 2), (2, 5, 2), (3, 3, 1), (3, 5, 1)]


def test_a_range_may_depend_on_an_earlier_factor():
    points = expand(cli("quorum.n=3,5", "quorum.r=1..n"))
    assert configs(points) == [(3, 1), (3, 2), (3, 3), (5, 1), (5, 2), (5, 3), (5, 4), (5, 5)]


def test_a_range_may_depend_on_a_later_factor_and_points_keep_the_users_order():
    points = expand(sweep_from_mapping({"quorum.r": "n - 1..n", "quorum.n": [5, 3]}))
    assert list(points[0].factors) == ["quorum.r", "quorum.n"]
    # nested loops in the user's order: r outermost (ascending), then n in its listed order
    assert configs(points) == [(2, 3), (3, 3), (4, 5), (5, 5)]


def test_ranges_may_chain_and_use_expressions_of_full_names():
    points = expand(cli("c=a..quorum.b + 1", "a=1,2", "quorum.b=a..2"))
    assert sorted(configs(points)) == sorted(
        (c, a, b) for a in (1, 2) for b in range(a, 3) for c in range(a, b + 2)
    )
    assert configs(points) == sorted(configs(points))


def test_a_range_that_is_empty_for_some_configurations_just_skips_them():
    assert configs(expand(cli("quorum.n=1,3,5", "quorum.r=3..n"))) == [(3, 3), (5, 3), (5, 4), (5, 5)]


def test_the_filter_keeps_the_known_count_of_strict_quorums():
    sweep = sweep_from_mapping(
        {"quorum.n": [3, 5], "quorum.r": "1..n", "quorum.w": "1..quorum.n", "where": "r + w > n"}
    )
    points = expand(sweep)
    expected = [(n, r, w) for n in (3, 5) for r in range(1, n + 1) for w in range(1, n + 1) if r + w > n]
    assert configs(points) == expected
    assert len(points) == 21
    assert sum(p.factors["quorum.n"] == 3 for p in points) == 6


def test_seeds_are_innermost_and_group_by_configuration():
    points = expand(sweep_from_mapping({"quorum.n": [3, 5], "seeds": 3}))
    assert [(p.factors["quorum.n"], p.seed) for p in points] == [
        (3, 0), (3, 1), (3, 2), (5, 0), (5, 1), (5, 2)
    ]  # fmt: skip
    assert [p.index for p in points] == list(range(6))
    groups = {key: [p.seed for p in group] for key, group in itertools.groupby(points, lambda p: p.config)}
    assert list(groups.values()) == [[0, 1, 2], [0, 1, 2]]
    hash(points[0].config)


def test_seeds_may_be_an_explicit_list():
    assert [p.seed for p in expand(sweep_from_mapping({"quorum.n": 3, "seeds": [3, 7, 11]}))] == [3, 7, 11]
    assert [p.seed for p in expand(cli("quorum.n=3", seeds="3,7,11"))] == [3, 7, 11]
    assert [p.seed for p in expand(cli("quorum.n=3", seeds="2"))] == [0, 1]


def test_the_default_seed_is_the_scenarios_own_and_no_factors_is_one_configuration():
    assert (
        sweep_from_mapping({}) == sweep_from_mapping({"where": None, "zip": None, "seeds": None}) == Sweep()
    )
    assert sweep_from_mapping({}).seeds == (None,)
    assert expand(sweep_from_mapping({"seeds": 2})) == [Point(0, {}, 0), Point(1, {}, 1)]


def test_config_is_hashable_for_unhashable_values():
    point = Point(0, {"network.latency": {"dist": "constant", "value": "1ms"}, "x": [1, 2]}, 0)
    same = Point(5, {"network.latency": {"value": "1ms", "dist": "constant"}, "x": [1, 2]}, 9)
    assert hash(point.config) == hash(same.config) and point.config == same.config


# --- the two forms -----------------------------------------------------------------------------

SCENARIO = """
sweep:
  quorum.n: [3, 5, 7]
  quorum.r: 1..n
  quorum.w: "1..quorum.n"
  network.latency: [1ms, 5ms]
  workload.read_fraction: [0.5, 0.9]
  quorum.read_repair: [true, false]
  where: "r + w > n"
  zip: [[workload.read_fraction, quorum.read_repair]]
  seeds: 5
"""


def test_the_yaml_and_command_line_forms_compile_to_the_same_sweep_and_runs():
    from_yaml = sweep_from_mapping(yaml.safe_load(SCENARIO)["sweep"])
    from_cli = cli(
        "quorum.n=3,5,7",
        "quorum.r=1..n",
        "quorum.w=1..quorum.n",
        "network.latency=1ms,5ms",
        "workload.read_fraction=0.5,0.9",
        "quorum.read_repair=true,false",
        where="r+w > n",
        zips=("workload.read_fraction, quorum.read_repair",),
        seeds="5",
    )
    assert from_yaml == from_cli
    points = expand(from_cli)
    assert points == expand(from_yaml)
    strict = sum(1 for n in (3, 5, 7) for r in range(1, n + 1) for w in range(1, n + 1) if r + w > n)
    assert len(points) == strict * 2 * 2 * 5


def test_command_line_values_are_yaml():
    sweep = cli("network.latency={dist: constant, value: 1ms},5ms", "quorum.read_repair=true", "name='a,b'")
    assert [f.values for f in sweep.factors] == [
        ({"dist": "constant", "value": "1ms"}, "5ms"),
        (True,),
        ("a,b",),
    ]


def test_a_misspelt_reserved_key_is_a_factor_for_scenario_validation_to_reject():
    sweep = sweep_from_mapping({"quorum.n": [3], "wehre": "n > 1"})
    assert sweep.factors[1] == Factor("wehre", ("n > 1",)) and sweep.where is None


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            {"quorum.n": [3], "quorum.r": "1..n / 2"},
            "quorum.r: range high bound: 'n / 2' gives 1.5, not a whole number",
        ),
        ({"quorum.n": [3], "quorum.r": "1..n // 0"}, "quorum.r: range high bound: cannot evaluate 'n // 0'"),
        ({"quorum.n": [3], "quorum.r": "n..1"}, "no runs: the range quorum.r (n..1) is empty for every"),
        ({"quorum.n": [3, 5], "where": "n > 5"}, "no runs: the filter 'n > 5' removed every configuration"),
        ({"quorum.n": [3], "where": "n + 1"}, "where: 'n + 1' gives 4, not true or false (at n=3)"),
        ({"quorum.n": [3], "where": "n > '3'"}, "where: cannot evaluate \"n > '3'\""),
        ({"quorum.n": [3], "quorum.r": "1..m"}, "uses unknown name m; known names: n, quorum.n, quorum.r, r"),
        ({"quorum.n": [3], "where": "x > n"}, "where: 'x > n' uses unknown name x; known names: n, quorum.n"),
        ({"quorum.r": "1..w", "quorum.w": "r..3"}, "cycle: quorum.r -> quorum.w -> quorum.r"),
        ({"quorum.r": "1..r + 1"}, "cycle: quorum.r -> quorum.r"),
        ({"quorum.r": [1], "zip": [["quorum.r", "r"]]}, "zip: r is not a factor (the factors are quorum.r)"),
        ({"a": [1, 2], "b": [1], "zip": [["a", "b"]]}, "zip: a has 2, b has 1 values"),
        ({"a": [1, 2], "b": "1..2", "zip": [["a", "b"]]}, "zip: b is a range (1..2); zipped factors must be"),
        ({"a": [1], "b": [1], "zip": [["a", "b"], ["b"]]}, "zip: b is listed 2 times in zip groups"),
        ({"a": [1], "zip": [[]]}, "zip: an empty group"),
        ({"a": [1], "zip": ["a"]}, "zip: expected a list of groups of factor paths"),
        ({"a": [1, 2], "b": [3, 3], "zip": [["a", "b"]]}, None),
        ({"a": [1, 1], "b": [3, 3], "zip": [["a", "b"]]}, "zip a, b: (1, 3) is listed twice"),
        ({"quorum.n": [3, 5, 3]}, "quorum.n: 3 is listed twice"),
        ({"quorum.n": []}, "quorum.n: an empty list of values"),
        ({"quorum.r": "..3"}, "quorum.r: a range needs two bounds, such as 1..n; found '..3'"),
        ({"quorum.r": "1..open('x')"}, "quorum.r: range high bound: a call to 'open'"),
        ({"quorum..n": [1]}, "'quorum..n': expected a dotted scenario path"),
        ({3: [1]}, "3: expected a dotted scenario path as the name of a factor"),
        ({"seed": [1, 2]}, "seed: replicate seeds are swept with seeds"),
        ({"seeds": 0}, "seeds: expected a count from 1 to 100000 or a list of seeds; found 0"),
        ({"seeds": -1}, "found -1"),
        ({"seeds": True}, "found True"),
        ({"seeds": 10**9}, "found 1000000000"),
        ({"seeds": []}, "seeds: an empty list"),
        ({"seeds": [1, -1, 2.5]}, "seeds: -1 is not a seed (a whole number from 0 to 2**63 - 1)"),
        ({"seeds": [1, 2, 1]}, "seeds: 1 is listed twice"),
        ({"where": 3}, "where: expected an expression in a string, found 3"),
    ],
)
def test_each_problem_is_named(block, expected):
    if expected is None:
        assert len(expand(sweep_from_mapping(block))) == 2
        return
    found = problems(block)
    assert any(expected in line for line in found), found


def test_every_problem_is_reported_at_once_without_echoes():
    block = {
        "quorum.n": [3, 3],
        "quorum.r": "1..n+",
        "where": "r > n and",
        "seeds": 0,
        "zip": [["quorum.r", "x"]],
    }
    found = problems(block)
    assert len(found) == 5, found
    assert found[0].startswith("quorum.r: range high bound: not a valid expression")
    assert found[1].startswith("where: not a valid expression")
    assert found[2].startswith("seeds:")
    assert found[3] == "quorum.n: 3 is listed twice"
    assert found[4].startswith("zip: x is not a factor")
    message = str(SweepError(found))
    assert message.startswith("5 problems in the sweep:\n  - quorum.r")


def test_a_bad_bound_is_reported_once_not_for_every_configuration():
    found = problems({"quorum.n": [3, 5, 7], "quorum.r": "1..n / 2", "quorum.w": "1..n", "where": "r / 0"})
    assert found == ["quorum.r: range high bound: 'n / 2' gives 1.5, not a whole number (at n=3)"]


@pytest.mark.parametrize(
    ("factors", "kwargs", "expected"),
    [
        (["quorum.n"], {}, "--factor 'quorum.n': no '='; expected path=values, such as quorum.n=3,5,7"),
        (["=3,5"], {}, "--factor '=3,5': no path before '='"),
        (["quorum.n= "], {}, "--factor 'quorum.n= ': no values after '='"),
        (["quorum.n=[3"], {}, "--factor 'quorum.n=[3': the values are not a comma-separated list"),
        (["quorum.n=3", "quorum.n=5"], {}, "quorum.n: listed 2 times as a factor"),
        (["a=1,2", "b=1"], {"zips": ["a,b"]}, "zip: a has 2, b has 1 values"),
        (["a=1"], {"zips": ["a,"]}, "--zip 'a,': expected factor paths separated by commas"),
        (["a=1"], {"seeds": "0"}, "seeds: expected a count from 1 to 100000 or a list of seeds; found 0"),
        (["a=1"], {"seeds": "x"}, "found 'x'"),
        (["a=1"], {"seeds": ""}, "found ''"),
        (["a=1"], {"seeds": "3,-1"}, "seeds: -1 is not a seed"),
        (["a=1"], {"where": "a +"}, "where: not a valid expression"),
    ],
)
def test_command_line_problems_are_named(factors, kwargs, expected):
    with pytest.raises(SweepError) as caught:
        expand(cli(*factors, **kwargs))
    assert any(expected in line for line in caught.value.problems), caught.value.problems


def test_a_malformed_factor_does_not_make_its_name_unknown_elsewhere():
    with pytest.raises(SweepError) as caught:
        cli("quorum.n=", "quorum.r=1..n", where="r < n")
    assert len(caught.value.problems) == 1


def test_an_ambiguous_short_name_is_unknown_but_full_names_work():
    found = problems({"a.x": [1], "b.x": [2], "where": "x > 0"})
    assert found == ["where: 'x > 0' uses unknown name x; known names: a.x, b.x"]
    assert len(expand(sweep_from_mapping({"a.x": [1], "b.x": [2], "where": "a.x < b.x"}))) == 1


def test_a_runaway_sweep_is_refused_instead_of_expanded():
    with pytest.raises(SweepError, match=f"more than {MAX_RUNS} configurations"):
        expand(cli("a=0..10**9"))
    with pytest.raises(SweepError, match=f"more than {MAX_RUNS}"):
        expand(cli("a=1..1000", "b=1..1000"))


def test_a_factor_has_values_or_a_range_not_both():
    with pytest.raises(ValueError, match="either values, or both low and high"):
        Factor("quorum.r", (1,), low=parse("1"), high=parse("n"))
    with pytest.raises(ValueError):
        Factor("quorum.r", low=parse("1"))
    assert Factor("quorum.r", [1, 2]).values == (1, 2)


def test_expand_checks_a_sweep_built_by_hand():
    sweep = Sweep((Factor("a", (1,)), Factor("a", (2,))), seeds=(1, 1))
    with pytest.raises(SweepError) as caught:
        expand(sweep)
    assert caught.value.problems == ["a: listed 2 times as a factor", "seeds: 1 is listed twice"]


# --- purity and description --------------------------------------------------------------------


def test_expand_is_pure():
    latency = {"dist": "constant", "value": "1ms"}
    sweep = sweep_from_mapping(
        {"network.latency": [latency], "quorum.n": [3, 5], "quorum.r": "1..n", "where": "r > 1", "seeds": 2}
    )
    before = copy.deepcopy(sweep)
    first = expand(sweep)
    first[0].factors["network.latency"]["value"] = "9ms"
    assert sweep == before and latency == {"dist": "constant", "value": "1ms"}
    assert expand(sweep) == expand(before) != first


def test_describe_lists_each_configuration_with_its_seeds_and_counts():
    text = describe(expand(sweep_from_mapping({"quorum.n": [3, 5], "quorum.r": "2..n", "seeds": 5})))
    lines = text.splitlines()
    assert lines[0].split() == ["quorum.n", "quorum.r", "seeds"]
    assert lines[1].split() == ["3", "2", "0..4"]
    assert len(lines) == 1 + 6 + 1
    assert lines[-1] == "30 runs (6 configurations x 5 seeds)"


def test_describe_shows_yaml_values_and_the_scenarios_seed():
    latency = {"dist": "constant", "value": "1ms"}
    text = describe(expand(sweep_from_mapping({"network.latency": [latency], "quorum.read_repair": True})))
    assert text.splitlines()[1].split("  ")[0] == "{dist: constant, value: 1ms}"
    assert "true" in text.splitlines()[1] and "scenario's seed" in text
    assert text.splitlines()[-1] == "1 run (1 configuration x 1 seed)"
    assert describe(expand(cli("a=1", seeds="3,7,11"))).splitlines()[1].split(maxsplit=1) == ["1", "3, 7, 11"]


def test_invalid_points_report_a_shared_problem_once_without_the_where_hint():
    points = expand(cli("quorum.r=1,2", seeds="3"))
    error = invalid_points([(p, ["quorum.x: unknown key"]) for p in points], points)
    assert error.problems == ["every run: quorum.x: unknown key"]
    assert "where" not in str(error)


def test_invalid_points_give_the_where_hint_when_a_combination_of_values_fails():
    points = expand(cli("quorum.n=3,5", "quorum.r=1,4"))
    error = invalid_points([(points[1], ["quorum.r: 4 is larger than quorum.n (3)"])], points)
    assert error.problems == ["run 1 (n=3, r=4): quorum.r: 4 is larger than quorum.n (3)"]
    assert str(error).endswith("\n" + WHERE_HINT)


def test_a_value_that_fails_everywhere_is_named_instead_of_the_where_hint():
    points = expand(cli("quorum.r=1,4"))
    error = invalid_points([(points[1], ["quorum.r: 4 is larger than quorum.n (3)"])], points)
    assert error.problems == ["run 1 (r=4): quorum.r: 4 is larger than quorum.n (3)"]
    assert str(error).endswith("\nr=4 fails in every configuration: take it off the factor's values.")
    assert WHERE_HINT not in str(error)


def test_both_notes_when_one_value_fails_everywhere_and_a_combination_fails_too():
    points = expand(cli("quorum.n=3,5", "quorum.r=1,4,7"))
    failing = [p for p in points if p.factors["quorum.r"] > p.factors["quorum.n"]]
    error = invalid_points([(p, ["quorum.r: too large"]) for p in failing], points)
    assert str(error).splitlines()[-2:] == [
        "r=7 fails in every configuration: take it off the factor's values.",
        WHERE_HINT,
    ]


def test_invalid_points_without_a_valid_configuration_get_no_where_hint():
    points = expand(cli("quorum.r=4,5"))
    error = invalid_points([(p, [f"quorum.r: {p.factors['quorum.r']} is too large"]) for p in points], points)
    assert len(error.problems) == 2 and WHERE_HINT not in str(error)


def test_where_must_give_true_or_false_not_a_number():
    for where in ("1", "0", "r"):
        with pytest.raises(SweepError, match="not true or false"):
            expand(cli("quorum.r=1,2", where=where))


def test_a_range_bound_of_integral_float_value_counts_as_a_whole_number():
    points = expand(cli("quorum.n=4", "quorum.r=1..n / 2"))
    assert [p.factors["quorum.r"] for p in points] == [1, 2]
    assert all(type(p.factors["quorum.r"]) is int for p in points)
