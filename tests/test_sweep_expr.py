"""The safe expression language of sweep filters and range bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qsim.sweep.expr import MAX_CHARS, Expression, ExpressionError, excerpt, parse
from qsim.sweep.spec import SweepError, sweep_from_cli, sweep_from_mapping

VALUES = {"a": 3, "b": -2, "c": 0.5, "quorum.n": 5, "n": 5, "r": 2, "w": 2, "latency": "5ms"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("-7 % 3", 2),
        ("2 ** 10", 1024),
        ("-a + +b", -5),
        ("r + w > n", False),
        ("r + w >= n - 1", True),
        ("1 < r <= 2 < n", True),
        ("1 < r < 2", False),
        ("r == w != n", True),
        ("not (r < w) and n > 3", True),
        ("r > 5 or w", 2),
        ("0 and 1 / 0", 0),
        ("quorum.n * 2", 10),
        ("quorum.n == n", True),
        ("n in (3, 5, 7)", True),
        ("n not in [3, 7]", True),
        ("latency in ('1ms', '5ms')", True),
        ("latency == '5ms'", True),
        ("min(a, b, c)", -2),
        ("max(r, w, n)", 5),
        ("abs(b)", 2),
        ("min(n, 2 * r) + abs(-1)", 5),
        ("True", True),
        ("None", None),
        ("'text'", "text"),
        ("  n  ", 5),
    ],
)
def test_evaluation(text, expected):
    value = parse(text).evaluate(VALUES)
    assert value == expected and type(value) is type(expected)


def test_names_are_the_plain_and_dotted_names_read_but_not_the_functions():
    assert parse("min(r, quorum.n) + abs(w) > a.b.c").names == {"r", "quorum.n", "w", "a.b.c"}
    assert parse("1 + 2").names == frozenset()


def test_short_and_full_names_are_separate_keys():
    expression = parse("r + quorum.r")
    assert expression.evaluate({"r": 1, "quorum.r": 10}) == 11
    with pytest.raises(ExpressionError, match=r"unknown name quorum\.r; known: r"):
        expression.evaluate({"r": 1})


def test_an_unknown_name_is_reported_even_in_a_branch_not_taken():
    with pytest.raises(ExpressionError, match=r"'n > 9 and x' uses unknown name x; known: n, r"):
        parse("n > 9 and x").evaluate({"n": 3, "r": 1})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("n / 0", "division by zero"),
        ("n % 0", "division by zero"),
        ("latency + 1", "'\\+' needs numbers, found text and a number"),
        ("-latency", "'-' needs numbers, found text"),
        ("latency < 3", "'<' orders two numbers or two texts, found text and a number"),
        ("min()", "min\\(\\) takes two or more numbers"),
        ("max(r)", "max\\(\\) takes two or more numbers"),
        ("abs(r, n)", "abs\\(\\) takes one number"),
        ("max(r, latency)", "max\\(\\) needs numbers, found a number and text"),
        ("2 ** 100000", "too large"),
        ("2.0 ** 10000", "a number too large to compute"),
        ("0.1 ** -1000 > 1", "a number too large to compute"),
        ("(-8) ** 0.5 > 0", "\\(-8\\) \\*\\* 0.5 is not a real number"),
        ("n > None", "'>' orders two numbers or two texts, found a number and null"),
    ],
)
def test_failures_of_evaluation_are_expression_errors_quoting_the_text(text, message):
    with pytest.raises(ExpressionError, match=message) as caught:
        parse(text).evaluate(VALUES)
    assert repr(text.strip()) in str(caught.value)


def test_expressions_are_equal_when_their_syntax_is():
    assert parse("r+w>n") == parse(" r + w > (n) ")
    assert hash(parse("r+w>n")) == hash(parse("(r + w) > n"))
    assert parse("r + w > n") != parse("w + r > n")
    assert parse("r").text == "r" and Expression("r") == parse("r")


REJECTED = [
    ("__import__('os').system('x')", "call to \"__import__\\('os'\\).system\""),
    ("().__class__", "attribute of something other than a dotted name"),
    ("open('f')", "call to 'open'"),
    ("[x for x in y]", "comprehension"),
    ("{x: 1 for x in y}", "comprehension"),
    ("(x for x in y)", "generator expression"),
    ("lambda: 1", "lambda"),
    ("a[0]", "subscript"),
    ("f'{a}'", "f-string"),
    ("(a := 1)", "assignment expression"),
    ("*a", "not a valid expression"),
    ("min(*a)", "starred expression"),
    ("x.__class__", "dunder name"),
    ("__builtins__", "dunder name"),
    ("max(a, key=abs)", "keyword argument"),
    ("max(**a)", "keyword argument"),
    ("a.b()", "call to 'a.b'"),
    ("a if b else c", "conditional expression"),
    ("{1: 2}", "dict literal"),
    ("{1, 2}", "set literal"),
    ("(1, 2)", "tuple or list other than on the right of 'in'"),
    ("a in b", "'in' against anything but a tuple or list literal"),
    ("a is None", "operator 'is'"),
    ("a | b", "operator '\\|'"),
    ("~a", "operator '~'"),
    ("b'x'", "bytes constant"),
    ("1j", "complex constant"),
    ("...", "ellipsis constant"),
    ("await a", "await"),
    ("import os", "not a valid expression"),
    ("a = 1", "not a valid expression"),
    ("", "not a valid expression"),
    ("1 + " * 5000 + "1", "longer than the limit of 1,000"),
    ("(" * 400 + "1" + ")" * 400, "too deeply nested|not a valid expression"),
]


@pytest.mark.parametrize(("text", "construct"), REJECTED)
def test_constructs_outside_the_language_are_rejected_by_name(text, construct):
    with pytest.raises(ExpressionError, match=construct) as caught:
        parse(text)
    assert excerpt(text) in str(caught.value)  # quoted, and cut short if long
    assert len(str(caught.value)) < 300


def test_a_non_string_is_not_an_expression():
    with pytest.raises(ExpressionError, match="expected an expression in a string, found 3"):
        parse(3)


def test_a_filter_cannot_execute_code(tmp_path):
    target = tmp_path / "pwned"
    attacks = [
        f"__import__('os').system('touch {target}')",
        f"open('{target}', 'w')",
        f"().__class__.__base__.__subclasses__()[0]('{target}')",
        f"[c for c in ().__class__.__base__.__subclasses__()] and open('{target}', 'w')",
    ]
    for attack in attacks:
        with pytest.raises(SweepError, match=r"where: .* is not allowed"):
            sweep_from_mapping({"quorum.n": [3], "where": attack})
        with pytest.raises(SweepError, match=r"where: .* is not allowed"):
            sweep_from_cli(["quorum.n=3"], where=attack, zips=[], seeds=None)
        with pytest.raises(SweepError, match=r"range high bound: .* is not allowed"):
            sweep_from_mapping({"quorum.n": f"1..{attack}"})
    assert not target.exists()


# --- agreement with Python on the safe subset --------------------------------------------------

NAMES = {"a": 3, "b": -2, "c": 0.5, "d": 0, "quorum.n": 5}
ATOMS = st.sampled_from(["a", "b", "c", "d", "quorum.n", "0", "1", "2", "7", "2.5", "True", "False"])
BINARY = ["+", "-", "*", "/", "//", "%", "<", "<=", ">", ">=", "==", "!=", "and", "or"]


def _compound(inner):
    return st.one_of(
        st.tuples(inner, st.sampled_from(BINARY), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, st.sampled_from(["<", "=="]), inner, inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]} < {t[3]})"
        ),
        inner.map(lambda e: f"(-{e})"),
        inner.map(lambda e: f"(not {e})"),
        inner.map(lambda e: f"abs({e})"),
        inner.map(lambda e: f"({e}) ** 2"),
        st.tuples(st.sampled_from(["min", "max"]), inner, inner).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} in ({t[1]}, 1))"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} not in [{t[1]}, 2])"),
    )


def _python(text: str) -> object:
    """Python's own answer: test code evaluating generated, safe text with no builtins but three."""
    scope = {"__builtins__": {}, "min": min, "max": max, "abs": abs}
    names = {key.replace(".", "_"): value for key, value in NAMES.items()}
    return eval(text.replace("quorum.n", "quorum_n"), scope, names)


@settings(max_examples=300, deadline=None)
@given(st.recursive(ATOMS, _compound, max_leaves=8))
def test_evaluate_agrees_with_python(text):
    try:
        expected = _python(text)
    except ArithmeticError:
        with pytest.raises(ExpressionError, match="cannot evaluate"):
            parse(text).evaluate(NAMES)
        return
    value = parse(text).evaluate(NAMES)
    assert value == expected and type(value) is type(expected)


def test_a_long_expression_is_refused_and_never_echoed_in_full():
    text = "r > 1 and " * 50_000 + "r > 0"  # 500 KB
    with pytest.raises(ExpressionError, match="longer than the limit of 1,000") as caught:
        parse(text)
    assert len(str(caught.value)) < 300


def test_an_expression_at_the_limit_is_accepted():
    text = ("r + " * 250)[: MAX_CHARS - 1] + "1"
    assert len(text) == MAX_CHARS
    parse(text)
