"""Tests of qsim.units: durations (milliseconds) and rates (per second) as written in scenarios."""

from __future__ import annotations

import re

import pytest

from qsim.units import parse_duration, parse_rate


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        (5, 5.0),
        (2.5, 2.5),
        (0, 0.0),
        ("7", 7.0),
        ("250us", 0.25),
        ("250µs", 0.25),
        ("5ms", 5.0),
        ("2s", 2000.0),
        ("0.5s", 500.0),
        ("1.5m", 90_000.0),
        ("1min", 60_000.0),
        ("1h", 3_600_000.0),
        (" 5 ms ", 5.0),
        (".5ms", 0.5),
        ("1e3", 1000.0),
        ("2e-3s", 2.0),
        ("1.5E2us", 0.15),
    ],
)
def test_parse_duration(text, ms):
    assert parse_duration(text) == pytest.approx(ms)


def test_parse_duration_returns_float_for_int():
    assert type(parse_duration(5)) is float


@pytest.mark.parametrize("value", [True, False, None, "abc", "5 parsecs", "", "ms", "5 m s", [5], {"ms": 5}])
def test_parse_duration_rejects(value):
    with pytest.raises(ValueError, match="expected") as info:
        parse_duration(value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("2000/s", 2000.0),
        ("2/ms", 2000.0),
        ("120/m", 2.0),
        ("60/min", 1.0),
        ("7200/h", 2.0),
        ("1/us", 1e6),
        (" 10 / s ", 10.0),
        ("1e3/s", 1000.0),
        ("0.5/ms", 500.0),
        (500, 500.0),
        (2.5, 2.5),
        ("750", 750.0),
    ],
)
def test_parse_rate(text, per_second):
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("value", [True, None, "abc", "5/parsec", "2000/", "/s", "5ms", [1], {"s": 1}])
def test_parse_rate_rejects(value):
    with pytest.raises(ValueError, match="expected") as info:
        parse_rate(value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (float("inf"), "expected a finite duration"),
        (float("nan"), "expected a finite duration"),
        (float("-inf"), "expected a finite duration"),
        ("1e400ms", "expected a finite duration"),
        (10**400, "expected a duration of at most 1e+15 ms"),
        ("2e12s", "expected a duration of at most 1e+15 ms"),
        ("x" * 10_000, "found 'xxxxxxxx"),
    ],
)
def test_parse_duration_refuses_non_finite_and_absurd_times(value, expected):
    with pytest.raises(ValueError, match=re.escape(expected)) as info:
        parse_duration(value)
    assert len(str(info.value)) < 200  # never the whole input


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "nan", "inf", "infinity", "1e999/s", "1e13/s"])
def test_parse_rate_refuses_non_finite_and_absurd_rates(value):
    with pytest.raises(ValueError, match=r"expected a (finite )?rate"):
        parse_rate(value)


def test_a_duration_at_the_limit_is_accepted():
    assert parse_duration("1e12s") == 1e15
    assert parse_duration(-5) == -5.0  # negative times (clock offsets) are the fields' business
