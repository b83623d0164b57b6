"""Tests of qsim.distributions: specs validated from YAML-like data, sampled against closed forms.

Every statistical check uses a pinned seed and a tolerance of 4 standard errors of the statistic
at the sample size used (a miss chance of about 6e-5 for an unpinned seed), so that a wrong
parameterisation (a rate taken as a mean, ms taken as s) fails by a wide margin.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pydantic
import pytest

from qsim.distributions import BATCH, Dist, Sampler, spec_sampler, uniform_sampler
from qsim.units import MAX_TIME_MS

DIST = pydantic.TypeAdapter(Dist)
N = 200_000


def spec(data, **context):
    return DIST.validate_python(data, context=context or None)


def draws(data, n=N, seed=1):
    return spec(data).sample(np.random.default_rng(seed), n)


def phi(x):
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def big_phi(x):
    return (1 + math.erf(x / math.sqrt(2))) / 2


def assert_mean(x, mean, sd):
    """The sample mean is within 4 standard errors (sd/sqrt(n)) of ``mean``."""
    assert abs(x.mean() - mean) < 4 * sd / math.sqrt(x.size)


def assert_variance(x, var, mu4):
    """The sample variance is within 4 standard errors, sqrt((mu4 - var^2)/n), of ``var``."""
    assert abs(x.var() - var) < 4 * math.sqrt((mu4 - var**2) / x.size)


def assert_fraction(hits, p):
    """The share of True in ``hits`` is within 4 standard errors, sqrt(p(1-p)/n), of ``p``."""
    assert abs(hits.mean() - p) < 4 * math.sqrt(p * (1 - p) / hits.size)


# --- closed forms ------------------------------------------------------------------------------


def test_constant():
    assert np.all(draws({"dist": "constant", "value": "3ms"}, n=100) == 3.0)


@pytest.mark.parametrize(
    ("value", "ms"), [(5, 5.0), (0.25, 0.25), ("5ms", 5.0), ("2s", 2000.0), ("250us", 0.25)]
)
def test_shorthand_means_constant(value, ms):
    parsed = spec(value)
    assert (parsed.dist, parsed.value, parsed.shift) == ("constant", ms, 0.0)
    assert np.all(parsed.sample(np.random.default_rng(1), 10) == ms)


def test_uniform_mean_and_variance():
    low, high = 2.0, 10.0
    x = draws({"dist": "uniform", "low": "2ms", "high": high})
    width = high - low
    assert x.min() >= low and x.max() <= high
    assert_mean(x, (low + high) / 2, width / math.sqrt(12))
    assert_variance(x, width**2 / 12, width**4 / 80)


def test_exponential_mean_form():
    mean = 2.0
    x = draws({"dist": "exponential", "mean": "2ms"})
    assert x.min() >= 0
    assert_mean(x, mean, mean)  # the sd of an exponential equals its mean
    assert_variance(x, mean**2, 9 * mean**4)


@pytest.mark.parametrize(("rate", "mean_ms"), [("2/ms", 0.5), (2, 500.0), ("100/s", 10.0), ("600/m", 100.0)])
def test_exponential_rate_form(rate, mean_ms):
    parsed = spec({"dist": "exponential", "rate": rate})
    assert parsed.mean_ms == pytest.approx(mean_ms)
    assert_mean(parsed.sample(np.random.default_rng(2), N), mean_ms, mean_ms)


@pytest.mark.parametrize(("mu", "sd"), [(1.0, 1.0), (0.5, 2.0), (10.0, 3.0), (-1.0, 1.0)])
def test_normal_reject_is_truncated_at_zero(mu, sd):
    x = draws({"dist": "normal", "mean": mu, "sd": sd})
    a = -mu / sd
    hazard = phi(a) / (1 - big_phi(a))
    assert x.min() >= 0
    # Truncation only shrinks the spread, so the untruncated sd bounds the standard error.
    assert_mean(x, mu + sd * hazard, sd)


def test_normal_reject_is_the_default():
    assert spec({"dist": "normal", "mean": 1, "sd": 1}).below_zero == "reject"


@pytest.mark.parametrize(("mu", "sd"), [(1.0, 1.0), (0.0, 2.0), (-1.0, 1.0)])
def test_normal_clip_puts_negative_mass_on_zero(mu, sd):
    x = draws({"dist": "normal", "mean": mu, "sd": sd, "below_zero": "clip"})
    assert x.min() >= 0
    assert_fraction(x == 0, big_phi(-mu / sd))
    # E[max(X, 0)] = mu * Phi(mu/sd) + sd * phi(mu/sd); its sd is at most the normal's sd.
    assert_mean(x, mu * big_phi(mu / sd) + sd * phi(mu / sd), sd)


def test_lognormal_median_form():
    median, sigma = 4.0, 0.5
    x = draws({"dist": "lognormal", "median": "4ms", "sigma": sigma})
    # The sample median has standard error 1 / (2 f(m) sqrt(n)), f(m) = 1 / (m sigma sqrt(2 pi)).
    se = median * sigma * math.sqrt(2 * math.pi) / 2 / math.sqrt(x.size)
    assert abs(np.median(x) - median) < 4 * se


def test_lognormal_mean_form():
    mean, sigma = 3.0, 0.5
    x = draws({"dist": "lognormal", "mean": mean, "sigma": sigma})
    assert_mean(x, mean, mean * math.sqrt(math.exp(sigma**2) - 1))


def test_pareto_minimum_and_mean():
    scale, alpha = 2.0, 4.0
    x = draws({"dist": "pareto", "scale": "2ms", "alpha": alpha})
    assert x.min() >= scale
    sd = scale * math.sqrt(alpha / ((alpha - 1) ** 2 * (alpha - 2)))
    assert_mean(x, alpha * scale / (alpha - 1), sd)


@pytest.mark.parametrize("multiple", [1.5, 2.0, 4.0])
def test_pareto_tail(multiple):
    scale, alpha = 1.0, 3.0
    x = draws({"dist": "pareto", "scale": scale, "alpha": alpha})
    assert_fraction(x > multiple * scale, (1 / multiple) ** alpha)


@pytest.mark.parametrize("shape", [0.8, 1.5, 3.0])
def test_weibull_mean(shape):
    scale = 5.0
    x = draws({"dist": "weibull", "shape": shape, "scale": "5ms"})
    mean = scale * math.gamma(1 + 1 / shape)
    sd = scale * math.sqrt(math.gamma(1 + 2 / shape) - math.gamma(1 + 1 / shape) ** 2)
    assert_mean(x, mean, sd)


@pytest.mark.parametrize("weights", [[1, 3], [0.5, 1.5], [25, 75]])
def test_mixture_proportions_follow_normalized_weights(weights):
    x = draws({"dist": "mixture", "components": [1, {"dist": "constant", "value": 100}], "weights": weights})
    assert set(np.unique(x)) == {1.0, 100.0}
    assert_fraction(x == 1.0, weights[0] / sum(weights))


def test_mixture_mean_of_continuous_components():
    p, mean_exp, low, high = 0.75, 1.0, 10.0, 20.0
    x = draws(
        {
            "dist": "mixture",
            "components": [
                {"dist": "exponential", "mean": mean_exp},
                {"dist": "uniform", "low": low, "high": high},
            ],
            "weights": [3, 1],
        }
    )
    mid = (low + high) / 2
    mean = p * mean_exp + (1 - p) * mid
    second_moment = p * 2 * mean_exp**2 + (1 - p) * ((high - low) ** 2 / 12 + mid**2)
    assert_mean(x, mean, math.sqrt(second_moment - mean**2))


def test_empirical_inline_values():
    values = [1.0, 2.5, 7.0]
    x = draws({"dist": "empirical", "values": values}, n=30_000)
    assert set(np.unique(x)) == set(values)
    for value in values:
        assert_fraction(x == value, 1 / len(values))


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("id,latency\n1,4.0\n2,6.0\n3,9.5\n", "latency"),
        ("4.0\n6.0\n9.5\n", 0),
        ("x,4.0\nx,6.0\n\nx,9.5\n", 1),
        ("latency\n4.0\n6.0\n9.5\n", 0),
    ],
    ids=["header-by-name", "headerless", "headerless-blank-line", "header-skipped-by-index"],
)
def test_empirical_csv(tmp_path, text, column):
    path = tmp_path / "samples.csv"
    path.write_text(text)
    parsed = spec({"dist": "empirical", "file": str(path), "column": column})
    assert parsed.samples().tolist() == [4.0, 6.0, 9.5]
    assert set(parsed.sample(np.random.default_rng(1), 1000)) == {4.0, 6.0, 9.5}


def test_empirical_relative_file_resolved_against_base_dir(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "lat.csv").write_text("1\n2\n")
    parsed = spec({"dist": "empirical", "file": "lat.csv"}, base_dir=str(tmp_path / "data"))
    assert parsed.file == str((tmp_path / "data" / "lat.csv").resolve())
    assert parsed.samples().tolist() == [1.0, 2.0]


def test_empirical_csv_reread_after_edit(tmp_path):
    path = tmp_path / "lat.csv"
    path.write_text("1\n2\n")
    assert spec({"dist": "empirical", "file": str(path)}).samples().tolist() == [1.0, 2.0]
    path.write_text("7\n8\n")
    assert spec({"dist": "empirical", "file": str(path)}).samples().tolist() == [7.0, 8.0]


@pytest.mark.parametrize(
    "data",
    [
        {"dist": "uniform", "low": 1, "high": 3},
        {"dist": "exponential", "mean": 2},
        {"dist": "normal", "mean": 1, "sd": 1},
        {"dist": "lognormal", "median": 1, "sigma": 0.5},
        {"dist": "pareto", "scale": 1, "alpha": 2},
        {"dist": "weibull", "shape": 1.5, "scale": 1},
        {"dist": "empirical", "values": [1, 2, 3]},
        {"dist": "mixture", "components": [1, {"dist": "exponential", "mean": 1}], "weights": [1, 1]},
    ],
    ids=lambda data: data["dist"],
)
def test_shift_is_added_to_every_draw(data):
    plain = spec(data).sample(np.random.default_rng(5), 1000)
    shifted = spec({**data, "shift": "30ms"}).sample(np.random.default_rng(5), 1000)
    np.testing.assert_allclose(shifted, plain + 30.0)


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"dist": "exponential", "mean": 1, "rate": 2}, "exactly one of mean"),
        ({"dist": "exponential"}, "exactly one of mean"),
        ({"dist": "lognormal", "median": 1, "mean": 1, "sigma": 1}, "exactly one of median"),
        ({"dist": "uniform", "low": 5, "high": 1}, "is smaller than low"),
        ({"dist": "mixture", "components": [1, 2], "weights": [1, -1]}, "every weight must be positive"),
        ({"dist": "mixture", "components": [1, 2], "weights": [1]}, "1 weights for 2 components"),
        ({"dist": "gaussian", "mean": 1}, "gaussian"),
        ({"dist": "empirical", "values": [1], "file": "x.csv"}, "exactly one of values"),
        ({"dist": "empirical"}, "exactly one of values"),
        ({"dist": "empirical", "values": [1, -2]}, "non-negative"),
        ({"dist": "empirical", "values": []}, "non-empty"),
        ({"dist": "normal", "mean": -5, "sd": 1}, "below -3 sd"),
        ({"dist": "constant", "value": 1, "shift": -1}, "greater than or equal to 0"),
        ({"dist": "constant", "value": "-1ms"}, "greater than or equal to 0"),
        ({"dist": "exponential", "mean": 1, "meen": 1}, "Extra inputs"),
        ("fast", "expected a duration"),
    ],
)
def test_invalid_specs(data, match):
    with pytest.raises(pydantic.ValidationError, match=match):
        spec(data)


@pytest.mark.parametrize(
    ("text", "column", "match"),
    [
        (None, 0, "cannot read empirical samples file"),
        ("a,b\n1,2\n", "c", "column 'c' not in the header"),
        ("1\n-2\n", 0, "non-negative times"),
        ("a\nx\n", 0, "must hold numbers"),
        ("", 0, "is empty"),
    ],
    ids=["missing", "no-such-column", "negative", "not-numbers", "empty"],
)
def test_invalid_empirical_files(tmp_path, text, column, match):
    path = tmp_path / "samples.csv"
    if text is not None:
        path.write_text(text)
    with pytest.raises(pydantic.ValidationError, match=match):
        spec({"dist": "empirical", "file": str(path), "column": column})


def test_specs_are_frozen():
    parsed = spec({"dist": "exponential", "mean": 1})
    with pytest.raises(pydantic.ValidationError):
        parsed.mean = 2.0


@pytest.mark.parametrize(
    ("data", "zero"),
    [
        (0, True),
        ({"dist": "constant", "value": 0}, True),
        ({"dist": "constant", "value": 0, "shift": 1}, False),
        ({"dist": "constant", "value": 1}, False),
        ({"dist": "uniform", "low": 0, "high": 0}, False),
        ({"dist": "exponential", "mean": 1}, False),
        ({"dist": "empirical", "values": [0]}, False),
    ],
)
def test_is_zero(data, zero):
    assert spec(data).is_zero() is zero


# --- samplers ----------------------------------------------------------------------------------


def test_spec_sampler_hands_out_draws_in_batch_order():
    parsed = spec({"dist": "lognormal", "median": 1, "sigma": 0.5})
    sampler = spec_sampler(parsed, np.random.default_rng(11))
    got = [sampler() for _ in range(2 * BATCH + 3)]
    rng = np.random.default_rng(11)
    expected = np.concatenate([parsed.sample(rng, BATCH) for _ in range(3)])[: len(got)]
    assert got == expected.tolist()


def test_sampler_pop_and_refill():
    batches = iter([np.arange(BATCH, dtype=float), np.arange(BATCH, 2 * BATCH, dtype=float)])
    sampler = Sampler(lambda size: next(batches)[:size])
    with pytest.raises(IndexError):
        sampler.pop()
    assert sampler.refill() == 0.0
    assert len(sampler) == BATCH - 1
    assert [sampler.pop() for _ in range(BATCH - 1)] == list(range(1, BATCH))
    with pytest.raises(IndexError):
        sampler.pop()
    assert sampler() == float(BATCH)
    assert sampler() == float(BATCH + 1)


def test_uniform_sampler_in_unit_interval():
    sampler = uniform_sampler(np.random.default_rng(4))
    x = np.array([sampler() for _ in range(20_000)])
    assert x.min() >= 0 and x.max() < 1
    assert_mean(x, 0.5, math.sqrt(1 / 12))


@pytest.mark.parametrize(
    "data",
    [
        {"dist": "pareto", "scale": 1, "alpha": 0.01},
        {"dist": "weibull", "shape": 0.001, "scale": 1},
        {"dist": "lognormal", "median": "1h", "sigma": 100},
    ],
)
def test_extreme_parameters_never_draw_an_infinite_time(data):
    draws = spec(data).sample(np.random.default_rng(1), 100_000)
    assert np.isfinite(draws).all()
    assert draws.max() <= MAX_TIME_MS


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"dist": "lognormal", "median": 1, "sigma": float("inf")}, "finite"),
        ({"dist": "weibull", "shape": float("nan"), "scale": 1}, "finite"),
        ({"dist": "mixture", "components": [1, 2], "weights": [True, 1]}, "expected a number, found True"),
        ({"dist": "empirical", "values": [1, float("nan")]}, "finite"),
        ({"dist": "empirical", "values": [1, 2], "column": True}, "column"),
    ],
)
def test_non_finite_numbers_and_booleans_are_refused(data, match):
    with pytest.raises(pydantic.ValidationError, match=match):
        spec(data)


@pytest.mark.parametrize("text", ["1\nnan\n", "1\ninf\n", "1\n2e400\n"])
def test_empirical_files_must_hold_finite_times(tmp_path, text):
    path = tmp_path / "samples.csv"
    path.write_text(text)
    with pytest.raises(pydantic.ValidationError, match="finite non-negative times"):
        spec({"dist": "empirical", "file": str(path)})


def test_an_empirical_file_that_is_not_a_regular_file_is_refused_without_reading(tmp_path):
    fifo = tmp_path / "samples.fifo"
    os.mkfifo(fifo)  # opening it for reading would block until a writer came
    with pytest.raises(pydantic.ValidationError, match="is a FIFO"):
        spec({"dist": "empirical", "file": str(fifo)})
    with pytest.raises(pydantic.ValidationError, match="is a character device"):
        spec({"dist": "empirical", "file": "/dev/zero"})
