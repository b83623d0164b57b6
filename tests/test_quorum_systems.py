"""qsim.quorums.systems: constructions listed by hand, and brute force over every subset of a few nodes."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qsim.quorums import MAX_QUORUMS, QuorumSystem, minimal_sets, minimal_transversals, parse_expression

NAMES = list("abcdef")


def words(system: QuorumSystem, side: str) -> set[str]:
    """Return one side's quorums as strings of node names, e.g. {"abc", "def"}."""
    return {"".join(system.named(q)) for q in getattr(system, side)}


def subsets(n: int) -> list[frozenset[int]]:
    """Return every subset of range(n)."""
    return [frozenset(c) for k in range(n + 1) for c in itertools.combinations(range(n), k)]


def brute_minimal(family: list[frozenset[int]]) -> set[frozenset[int]]:
    """Return the members of a family with no proper subset in it (quadratic, for tiny families)."""
    return {s for s in family if not any(t < s for t in family)}


# Threshold and direct construction


def test_threshold_majority_of_five_has_ten_quorums_that_intersect():
    """Any 3 of 5 reads and writes: C(5,3) = 10 quorums of 3 a side; 3 + 3 > 5 and 2 * 3 > 5, so all meet."""
    system = QuorumSystem.threshold(NAMES[:5], 3, 3)
    assert len(system.reads) == len(system.writes) == math.comb(5, 3) == 10
    assert {len(q) for q in system.reads + system.writes} == {3}
    assert set(system.reads) == {frozenset(c) for c in itertools.combinations(range(5), 3)}
    assert system.intersection_problem() is None
    assert system.writes_intersect()
    assert system.describe() == (
        "threshold n=5: reads = any 3 of 5 (10 quorums of 3), writes = any 3 of 5 (10 quorums of 3)"
    )


def test_threshold_without_overlap_names_a_disjoint_pair():
    """R = W = 2 of 5: 2 + 2 <= 5, so the first read {a,b} misses the write {c,d}, and writes miss too."""
    system = QuorumSystem.threshold(NAMES[:5], 2, 2)
    assert system.intersection_problem() == (("a", "b"), ("c", "d"))
    assert not system.writes_intersect()


def test_direct_construction_keeps_minimal_sorted_quorums_and_ignores_labels_in_equality():
    """{0} inside {0,1} is dropped; the order is by size then members; labels do not affect equality."""
    system = QuorumSystem(("a", "b", "c"), ({0, 1}, {0}, {2, 1}), ({2},), label="mine")
    assert system.reads == (frozenset({0}), frozenset({1, 2}))
    assert system == QuorumSystem(("a", "b", "c"), ({1, 2}, {0}), ({2},))
    assert system.n == 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: QuorumSystem.threshold(NAMES[:5], 0, 3), "r must be an int in 1..5"),
        (lambda: QuorumSystem.threshold(NAMES[:5], 3, 6), "w must be an int in 1..5"),
        (lambda: QuorumSystem.threshold(["a", "a"], 1, 1), "repeated: a"),
        (lambda: QuorumSystem.threshold("abc", 1, 1), "sequence of non-empty strings"),
        (lambda: QuorumSystem(("a",), ({1},), ({0},)), "node indexes 0..0"),
        (lambda: QuorumSystem(("a",), (), ({0},)), "at least one quorum"),
    ],
)
def test_bad_arguments_raise_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_size_guard_refuses_huge_families_quickly():
    """C(20,10) = 184,756 and 10^10 grid covers both exceed MAX_QUORUMS = 100,000."""
    twenty = [f"n{i}" for i in range(20)]
    with pytest.raises(ValueError, match="184,756 quorums, more than the limit of 100,000"):
        QuorumSystem.threshold(twenty, 10, 11)
    with pytest.raises(ValueError, match="limit of 100,000"):
        parse_expression(twenty, f"choose(10, [{', '.join(twenty)}])")
    with pytest.raises(ValueError, match="10,000,000,000 quorums"):
        QuorumSystem.grid([f"n{i}" for i in range(100)], 10, 10)
    assert MAX_QUORUMS == 100_000


# Weighted voting


def test_weighted_votes_by_hand():
    """Votes a=3, b=c=d=1 (total 6). Reads need 3: {a} or {b,c,d}. Writes need 4: a plus any one other
    (b+c+d = 3 < 4), so {a,b}, {a,c}, {a,d}; 3 + 4 > 6 and 2 * 4 > 6, so everything meets."""
    system = QuorumSystem.weighted(list("abcd"), {"a": 3, "b": 1, "c": 1, "d": 1}, 3, 4)
    assert words(system, "reads") == {"a", "bcd"}
    assert words(system, "writes") == {"ab", "ac", "ad"}
    assert system.intersection_problem() is None and system.writes_intersect()
    assert system == QuorumSystem.weighted(list("abcd"), [3, 1, 1, 1], 3, 4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=6).filter(sum), st.data())
def test_weighted_equals_brute_force_over_subsets(votes, data):
    n, total = len(votes), sum(votes)
    read_votes, write_votes = data.draw(st.integers(1, total)), data.draw(st.integers(1, total))
    system = QuorumSystem.weighted(NAMES[:n], votes, read_votes, write_votes)
    for side, needed in (("reads", read_votes), ("writes", write_votes)):
        reaching = [s for s in subsets(n) if sum(votes[i] for i in s) >= needed]
        assert set(getattr(system, side)) == brute_minimal(reaching)
        assert len(getattr(system, side)) == len(brute_minimal(reaching))


@pytest.mark.parametrize(
    ("votes", "read_votes", "message"),
    [
        ({"a": 1, "b": 1}, 1, r"missing \['c'\]"),
        ([1, 1], 1, "2 counts for 3 nodes"),
        ([1, -1, 1], 1, "non-negative ints"),
        ([1, 1, 1], 4, r"read_votes must be an int in 1..3"),
    ],
)
def test_weighted_rejects_bad_votes(votes, read_votes, message):
    with pytest.raises(ValueError, match=message):
        QuorumSystem.weighted(list("abc"), votes, read_votes, 2)


# Grids


def test_grid_two_by_three_listed_exactly():
    """Rows abc / def. Reads = a row: abc, def. Writes = one node of each row: 3 x 3 = 9 pairs. A row
    meets every pair; two pairs like ad and be share nothing."""
    system = QuorumSystem.grid(NAMES, 2, 3)
    assert words(system, "reads") == {"abc", "def"}
    assert words(system, "writes") == {x + y for x in "abc" for y in "def"}
    assert system.intersection_problem() is None
    assert not system.writes_intersect()
    assert system.describe() == (
        "grid 2x3: reads = a row (2 quorums of 3), writes = one node from every row (9 quorums of 2)"
    )


COLUMNS = ("ad", "be", "cf")  # of the 2x3 grid with rows abc / def


def spelled(*parts: str) -> str:
    """Return the union of some node names as one string in node order."""
    return "".join(sorted(set("".join(parts))))


def covers(lines) -> list[str]:
    """Return every choice of one node per line, spelled."""
    return [spelled(*choice) for choice in itertools.product(*lines)]


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("column", set(COLUMNS)),
        ("column_cover", set(covers(COLUMNS))),
        ("row_plus_cover", {spelled("abc", x) for x in "def"} | {spelled("def", x) for x in "abc"}),
        ("column_plus_cover", {spelled(c, m) for c in COLUMNS for m in covers(set(COLUMNS) - {c})}),
        ("row_and_column", {spelled(row, col) for row in ("abc", "def") for col in COLUMNS}),
    ],
)
def test_grid_two_by_three_other_shapes(shape, expected):
    """Columns are ad, be, cf; each shape is listed from its definition in GRID_SHAPES."""
    assert words(QuorumSystem.grid(NAMES, 2, 3, read=shape, write=shape), "reads") == expected


def test_grid_three_by_three_counts_and_intersections():
    """3x3: row_cover 3^3 = 27 of 3; row_plus_cover 3 rows x 3^2 covers = 27 of 3 + 2 = 5; row_and_column
    3 x 3 = 9 of 3 + 3 - 1 = 5. The classic grid (row_cover reads, row_plus_cover writes) meets
    everywhere: a write's full row meets any cover."""
    names = [f"n{i}" for i in range(9)]
    classic = QuorumSystem.grid(names, 3, 3, read="row_cover", write="row_plus_cover")
    assert (len(classic.reads), len(classic.writes)) == (27, 27)
    assert {len(q) for q in classic.writes} == {5}
    assert classic.intersection_problem() is None and classic.writes_intersect()
    cross = QuorumSystem.grid(names, 3, 3, read="row", write="row_and_column")
    assert len(cross.writes) == 9 and {len(q) for q in cross.writes} == {5}
    assert cross.intersection_problem() is None and cross.writes_intersect()
    rows_only = QuorumSystem.grid(names, 3, 3, read="row", write="row")
    assert rows_only.intersection_problem() == (("n0", "n1", "n2"), ("n3", "n4", "n5"))


def test_grid_rejects_bad_shapes_and_sizes():
    with pytest.raises(ValueError, match="grid write shape 'diagonal' is not one of row, column"):
        QuorumSystem.grid(NAMES, 2, 3, write="diagonal")
    with pytest.raises(ValueError, match="a 2x2 grid needs 4 names, got 6"):
        QuorumSystem.grid(NAMES, 2, 2)


# Expressions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a*b + c", {"ab", "c"}),
        ("c + a*b", {"ab", "c"}),
        ("a*(b + c)", {"ab", "ac"}),
        ("a + b*c", {"a", "bc"}),
        ("(a + b)*(c + d)", {"ac", "ad", "bc", "bd"}),
        ("a*b*c + d*e*f", {"abc", "def"}),
        ("a + a*b", {"a"}),
        ("choose(2, [a, b, c])", {"ab", "ac", "bc"}),
        ("choose(2, a, b, c)", {"ab", "ac", "bc"}),
        ("choose(2, a*b, c, d)", {"abc", "abd", "cd"}),
        ("choose(1, [a, choose(2, b, c, d)])", {"a", "bc", "bd", "cd"}),
        ("  ( ( a ) ) ", {"a"}),
    ],
)
def test_expressions_by_hand(text, expected):
    """'*' binds tighter than '+': a + b*c is a or (b and c); choose(k, ...) is at least k of its items."""
    system = QuorumSystem.from_expressions(NAMES, read=text, write=text)
    assert words(system, "reads") == words(system, "writes") == expected


def test_expression_quorums_are_sorted_by_size_then_members():
    assert parse_expression(NAMES, "a*b*c + d + b*a") == (
        frozenset({3}),
        frozenset({0, 1}),
    )


def test_names_with_digits_dashes_and_dots():
    names = ["dc1-n1", "dc1-n2", "dc2.n1"]
    assert parse_expression(names, "dc1-n1*dc2.n1 + dc1-n2") == (frozenset({1}), frozenset({0, 2}))


def trees(names: list[str]):
    """Return a strategy of trees: ("name", x), ("all", kids), ("any", kids), ("choose", k, kids, listed)."""
    leaf = st.sampled_from(names).map(lambda x: ("name", x))

    def branches(kids):
        chosen = st.lists(kids, min_size=1, max_size=4).flatmap(
            lambda items: st.tuples(
                st.just("choose"), st.integers(1, len(items)), st.just(items), st.booleans()
            )
        )
        pairs = st.lists(kids, min_size=2, max_size=3)
        return st.one_of(st.tuples(st.just("all"), pairs), st.tuples(st.just("any"), pairs), chosen)

    return st.recursive(leaf, branches, max_leaves=8)


def render(tree) -> str:
    """Return the text of a tree, parenthesising only an "any" inside an "all"."""
    kind = tree[0]
    if kind == "name":
        return tree[1]
    if kind == "any":
        return " + ".join(render(kid) for kid in tree[1])
    if kind == "all":
        return "*".join(f"({render(kid)})" if kid[0] == "any" else render(kid) for kid in tree[1])
    items = ", ".join(render(kid) for kid in tree[2])
    return f"choose({tree[1]}, [{items}])" if tree[3] else f"choose({tree[1]}, {items})"


def holds(tree, chosen: set[str]) -> bool:
    """Return whether the nodes ``chosen`` satisfy the tree (the brute-force meaning of an expression)."""
    kind = tree[0]
    if kind == "name":
        return tree[1] in chosen
    if kind == "all":
        return all(holds(kid, chosen) for kid in tree[1])
    if kind == "any":
        return any(holds(kid, chosen) for kid in tree[1])
    return sum(holds(kid, chosen) for kid in tree[2]) >= tree[1]


@settings(max_examples=300, deadline=None)
@given(st.integers(4, 6).flatmap(lambda n: st.tuples(st.just(n), trees(NAMES[:n]))))
def test_parser_agrees_with_brute_force_evaluation(case):
    n, tree = case
    satisfying = [s for s in subsets(n) if holds(tree, {NAMES[i] for i in s})]
    parsed = parse_expression(NAMES[:n], render(tree))
    assert set(parsed) == brute_minimal(satisfying)
    assert len(parsed) == len(set(parsed))


# Duals


def families(max_n: int = 6):
    """Return a strategy of (n, family of non-empty subsets of range(n))."""
    return st.integers(1, max_n).flatmap(
        lambda n: st.tuples(
            st.just(n), st.lists(st.frozensets(st.integers(0, n - 1), min_size=1), min_size=1, max_size=6)
        )
    )


@settings(max_examples=300, deadline=None)
@given(families())
def test_dual_equals_brute_force_minimal_hitting_sets(case):
    n, family = case
    hitting = [s for s in subsets(n) if all(s & q for q in family)]
    assert set(minimal_transversals(family)) == brute_minimal(hitting)


@settings(max_examples=300, deadline=None)
@given(families())
def test_dual_of_dual_is_the_minimal_family(case):
    _, family = case
    assert minimal_transversals(minimal_transversals(family)) == minimal_sets(family)


def test_one_sided_expressions_take_the_dual():
    """Reads a*b + c: a write must meet {a,b} and {c}: {a,c} or {b,c}. Writes choose(3, a..e): any 3 of
    5; its dual is any 5 - 3 + 1 = 3 of 5."""
    system = QuorumSystem.from_expressions(NAMES[:3], read="a*b + c")
    assert words(system, "writes") == {"ac", "bc"}
    assert system.intersection_problem() is None
    assert system.describe() == (
        "expressions: reads = a*b + c (2 quorums of 1-2), writes = the dual of the reads (2 quorums of 2)"
    )
    majority = QuorumSystem.from_expressions(NAMES[:5], write="choose(3, a, b, c, d, e)")
    assert majority == QuorumSystem.threshold(NAMES[:5], 3, 3)


def test_dual_refuses_an_empty_family():
    with pytest.raises(ValueError, match="non-empty family"):
        minimal_transversals([])


def test_intersection_problem_for_reads_a_or_b_and_writes_c():
    """Reads {a} or {b}, the only write {c}: {a} misses {c}. One write quorum meets itself."""
    system = QuorumSystem.from_expressions(list("abc"), read="a + b", write="c")
    assert system.intersection_problem() == (("a",), ("c",))
    assert system.writes_intersect()


# Expression errors


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("a*x", "unknown node 'x' (nodes: a, b, c, d, e, f)", 3),
        ("a+", "expected a node name, '(' or choose(...), found the end", 3),
        ("(a+b", "expected ')', found the end", 5),
        ("a b", "unexpected 'b', expected '+', '*' or the end", 3),
        ("a$b", "unexpected '$', expected '+', '*' or the end", 2),
        ("a + *b", "expected a node name, '(' or choose(...), found '*'", 5),
        ("choose(4, a, b, c)", "choose needs 1 <= k <= 3 (its item count), got k=4", 8),
        ("choose(0, [a])", "choose needs 1 <= k <= 1 (its item count), got k=0", 8),
        ("choose(x, a)", "choose needs a whole number k first, found 'x'", 8),
        ("choose(2, [a, b)", "expected ']', found ')'", 16),
        ("   ", "the expression is empty", 1),
    ],
)
def test_expression_errors_show_the_expression_and_a_caret(text, message, column):
    """The message names the side and the 1-based column; its last two lines are the text and a caret."""
    with pytest.raises(ValueError) as caught:
        QuorumSystem.from_expressions(NAMES, write=text)
    first, shown, caret = str(caught.value).splitlines()
    assert first == f"write expression: {message} at column {column}:"
    assert shown == f"  {text}"
    assert caret == " " * (1 + column) + "^"


def test_from_expressions_needs_a_side():
    with pytest.raises(ValueError, match="give a read expression, a write expression, or both"):
        QuorumSystem.from_expressions(NAMES)


def test_deep_nesting_and_odd_characters_are_messages_not_crashes():
    """Nesting is limited (a recursive parser would overflow Python's stack past ~250 levels);
    an unprintable character is shown escaped, and a long expression only around the error."""
    names = list("abcdef")
    with pytest.raises(ValueError, match="nested deeper than 100 levels"):
        QuorumSystem.from_expressions(names, read="(" * 5000 + "a" + ")" * 5000)
    with pytest.raises(ValueError, match="nested deeper than 100 levels"):
        QuorumSystem.from_expressions(names, read="choose(1, [" * 150 + "a" + "])" * 150)
    with pytest.raises(ValueError) as caught:
        QuorumSystem.from_expressions(names, read="a*b\u202e+c")
    assert "\u202e" not in str(caught.value) and "\\u202e" in str(caught.value)
    with pytest.raises(ValueError) as caught:
        QuorumSystem.from_expressions(names, read="a + " * 10_000 + "zz")
    assert "unknown node 'zz'" in str(caught.value) and len(str(caught.value)) < 400
