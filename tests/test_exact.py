"""Exact sums and out-of-core order statistics, checked against fsum, Fractions and numpy for any chunking."""

from __future__ import annotations

import math
import sys
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qsim.checks import exact
from qsim.checks.exact import ExactSum, SortedRuns, exact_mean, exact_std

FINITE = st.floats(allow_nan=False, allow_infinity=False)
PERCENTS = [0, 100, 50, 99.9, 99.99, 99.999, 0.1, 25.0, 75.0, 90.0, 99.0, 99.5]


def summed(*chunks: np.ndarray) -> ExactSum:
    """An ExactSum of the given chunks, added in that order."""
    total = ExactSum()
    for chunk in chunks:
        total.add(np.asarray(chunk, dtype=float))
    return total


def split(values: np.ndarray, rng: np.random.Generator, pieces: int | None = None) -> list[np.ndarray]:
    """``values`` cut at random points into chunks (some empty)."""
    pieces = int(rng.integers(0, 12)) if pieces is None else pieces
    return np.split(values, np.sort(rng.integers(0, values.size + 1, pieces)))


def bits(value: float) -> str:
    """A float's exact bits, NaN and the sign of zero included."""
    return float(value).hex()


def exact_sum(values) -> Fraction:
    return sum((Fraction(float(v)) for v in values), Fraction(0))


# ExactSum


@settings(deadline=None)  # timings on shared machines are noisy
@given(st.lists(FINITE, max_size=60))
def test_total_is_fsum_the_correctly_rounded_sum(values):
    try:
        expected = math.fsum(values)
    except OverflowError:  # fsum gives up when a partial sum overflows: round the Fraction sum instead
        true = exact_sum(values)
        try:
            expected = float(true)
        except OverflowError:
            assert abs(true) > sys.float_info.max
            expected = math.inf if true > 0 else -math.inf
    assert summed(values).total() == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1e16, 1.0, -1e16], 1.0),
        ([1e308, 1e-308, -1e308], 1e-308),
        ([5e-324, 5e-324, 5e-324], 1.5e-323),  # subnormals
        ([2.0**-1022, -5e-324], 2.0**-1022 - 5e-324),
        ([-1.5, -2.25, 0.75], -3.0),
        ([0.1] * 10, 1.0),  # fsum's own example: a plain float sum gives 0.9999999999999999
        ([1e308, 1e308], math.inf),
        ([-1e308, -1e308], -math.inf),
    ],
)
def test_total_of_hard_cases(values, expected):
    assert summed(values).total() == expected


def test_total_of_random_magnitudes_from_subnormal_to_huge_is_fsum():
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(1, 3000))
        values = rng.standard_normal(n) * 10.0 ** rng.integers(-323, 300, n)
        assert summed(values).total() == math.fsum(values)


@settings(max_examples=60, deadline=None)
@given(st.lists(FINITE, max_size=80), st.integers(0, 2**32 - 1))
def test_sum_and_mean_do_not_depend_on_chunking_or_order(values, seed):
    rng = np.random.default_rng(seed)
    values = np.array(values, dtype=float)
    whole = summed(values)
    shuffled = summed(*split(rng.permutation(values), rng))
    assert bits(shuffled.total()) == bits(whole.total()) and shuffled.count == whole.count == values.size
    assert whole.mean() is None if values.size == 0 else bits(shuffled.mean()) == bits(whole.mean())


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, math.nan], math.nan),
        ([math.inf, 1.0], math.inf),
        ([-math.inf, 1e308, 1e308], -math.inf),
        ([math.inf, math.inf], math.inf),
        ([math.inf, -math.inf], math.nan),
        ([math.inf, math.nan], math.nan),
    ],
)
def test_non_finite_values_follow_ieee(values, expected):
    total = summed(*[[v] for v in values])
    assert bits(total.total()) == bits(expected) and bits(total.mean()) == bits(expected)


def test_empty_sum_is_zero_with_no_mean():
    total = summed([], np.empty(0))
    assert total.count == 0 and bits(total.total()) == bits(0.0) and total.mean() is None


def test_mean_of_a_huge_sum_is_finite_and_exact():
    total = summed([1e308] * 4)  # the sum overflows, the mean does not
    assert total.total() == math.inf and total.mean() == 1e308


@pytest.mark.slow
def test_bins_stay_exact_past_their_fold_limit():
    # Every fraction bit set: a half-sum grows by 2**26 - 1 per value, so unfolded float bins would
    # pass 2**53 and round after about 2**27 values; 2**27 + 2**19 + 1 of them must still sum exactly.
    value = np.nextafter(2.0, 0.0)
    chunk = np.full(1 << 20, value)
    total = ExactSum()
    for _ in range(128):
        total.add(chunk)
    total.add(chunk[: (1 << 19) + 1])
    n = 128 * (1 << 20) + (1 << 19) + 1
    assert total.count == n and total.total() == float(Fraction(value) * n)


def test_folding_often_gives_the_same_sum(monkeypatch):
    rng = np.random.default_rng(5)
    values = rng.standard_normal(5000) * 10.0 ** rng.integers(-300, 300, 5000)
    expected = math.fsum(values)
    monkeypatch.setattr(exact, "_PENDING_LIMIT", 64)  # fold the bins every 64 values
    monkeypatch.setattr(exact, "_SLICE", 7)
    assert summed(*split(values, rng, 40)).total() == expected


# exact_mean, exact_std


@settings(deadline=None)
@given(st.lists(st.floats(min_value=-1e300, max_value=1e300), min_size=1, max_size=60))
def test_exact_mean_is_the_fraction_mean_rounded_once(values):
    assert exact_mean(np.array(values)) == float(exact_sum(values) / len(values))


def test_mean_and_std_agree_with_numpy_within_a_few_ulp():
    rng = np.random.default_rng(7)
    for trial in range(100):
        n = int(rng.integers(2, 20_000))
        values = rng.lognormal(0.0, 1.0 + trial % 3, n) if trial % 2 else rng.normal(5.0, 2.0, n)
        for ddof in (0, 1):
            assert abs(exact_std(values, ddof) - values.std(ddof=ddof)) <= 4 * math.ulp(values.std(ddof=ddof))
        assert abs(exact_mean(values) - values.mean()) <= 4 * math.ulp(values.mean())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=-1e150, max_value=1e150), min_size=2, max_size=80), st.integers(0, 2**32))
def test_std_of_a_stream_in_two_passes_is_exact_std_for_any_chunking(values, seed):
    rng = np.random.default_rng(seed)
    values = np.array(values)
    chunks = split(rng.permutation(values), rng)
    mean = summed(*chunks).mean()
    squares = summed(*[(chunk - mean) ** 2 for chunk in chunks])
    assert bits(math.sqrt(squares.divided_by(values.size - 1))) == bits(exact_std(values))
    assert bits(exact_std(rng.permutation(values), ddof=0)) == bits(exact_std(values, ddof=0))


def test_std_needs_more_values_than_ddof():
    assert exact_std(np.array([1.0])) is None and exact_std(np.array([]), ddof=0) is None
    assert exact_std(np.array([3.0]), ddof=0) == 0.0 and exact_mean(np.array([])) is None


# SortedRuns


def families(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Arrays that stress order statistics: continuous, heavy ties, constant, tiny, huge ranges."""
    n = int(rng.integers(2, 700))
    return {
        "normal": rng.standard_normal(n),
        "lognormal": rng.lognormal(0.0, 2.0, n),
        "ties": rng.integers(0, 4, n).astype(float),
        "equal": np.full(n, 3.7),
        "zeros": np.zeros(n),
        "single": rng.standard_normal(1),
        "two": rng.standard_normal(2),
        "wide": rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-300, 300, n),
        "subnormal": rng.integers(0, 50, n) * 5e-324,
    }


def runs_of(values: np.ndarray, rng: np.random.Generator, folder=None) -> SortedRuns:
    """A SortedRuns holding ``values`` in random chunks, with small random run and block sizes."""
    run = int(rng.integers(max(1, values.size // 40), values.size + 2))  # up to about 40 runs
    runs = SortedRuns(folder, block=int(rng.integers(1, 40)), run=run)
    for chunk in split(rng.permutation(values), rng):
        runs.add(chunk)
    return runs


def test_percentiles_and_quantiles_equal_numpy_exactly(tmp_path):
    rng = np.random.default_rng(2026)
    grid = np.linspace(0.0, 1.0, 101)
    for trial in range(12):
        for name, values in families(rng).items():
            q_random = rng.uniform(0.0, 1.0, 20)
            with runs_of(values, rng, tmp_path if trial % 2 else None) as runs:
                assert np.array_equal(runs.percentile(PERCENTS), np.percentile(values, PERCENTS)), name
                assert np.array_equal(runs.quantile(grid), np.quantile(values, grid)), name
                assert np.array_equal(runs.quantile(q_random), np.quantile(values, q_random)), name
                assert np.array_equal(runs.percentile(100 * q_random), np.percentile(values, 100 * q_random))
                for q in (0, 100, 50, 99.9, 99.99, 99.999, float(100 * q_random[0])):
                    got, expected = runs.percentile(q), np.percentile(values, q)
                    assert got == expected and type(got) is type(expected), (name, q)
                for q in (0, 1, 0.5, 1.0, np.float64(q_random[1])):
                    got, expected = runs.quantile(q), np.quantile(values, q)
                    assert got == expected and type(got) is type(expected), (name, q)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False), min_size=1, max_size=120),
    st.lists(st.floats(0.0, 100.0), min_size=1, max_size=8),
    st.integers(0, 2**32 - 1),
)
def test_percentiles_equal_numpy_for_any_values_and_chunking(values, percents, seed):
    rng = np.random.default_rng(seed)
    values = np.array(values)
    with runs_of(values, rng) as runs, np.errstate(all="ignore"):
        got = runs.percentile(percents)
        # Infinities make numpy's interpolation NaN (with a warning), and SortedRuns repeats its steps.
        assert np.array_equal(got, np.percentile(values, percents), equal_nan=True)
        ranks = rng.integers(0, values.size, 10)
        assert np.array_equal(runs.values_at(ranks), np.sort(values)[ranks])


def test_results_are_bit_identical_for_every_chunking_with_and_without_a_folder(tmp_path):
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.lognormal(0, 1, 3000), rng.integers(0, 5, 1000) * 1.0, [-0.0] * 7])
    ranks = rng.integers(0, values.size, 300)
    answers = set()
    for trial in range(16):
        with runs_of(values, rng, tmp_path if trial % 2 else None) as runs:
            found = (runs.values_at(ranks), runs.percentile(PERCENTS), runs.quantile(np.linspace(0, 1, 101)))
            answers.add(b"".join(part.tobytes() for part in found))
    assert len(answers) == 1


def test_blocks_are_the_sorted_values_in_ascending_blocks(tmp_path):
    rng = np.random.default_rng(4)
    for values in families(rng).values():
        with runs_of(values, rng, tmp_path) as runs:
            blocks = list(runs.blocks())
            assert all(np.all(np.diff(block) >= 0) for block in blocks)
            assert np.array_equal(np.concatenate(blocks), np.sort(values))


def test_values_at_takes_ranks_in_any_order_and_shape_with_repeats():
    rng = np.random.default_rng(8)
    values = rng.integers(0, 100, 5000) * 0.5
    runs = runs_of(values, rng)
    ranks = rng.integers(0, values.size, (7, 30))
    ranks[0, :5] = [0, 0, values.size - 1, values.size - 1, 17]
    assert np.array_equal(runs.values_at(ranks), np.sort(values)[ranks])
    assert runs.values_at(np.array(5)) == np.sort(values)[5] and runs.values_at([]).shape == (0,)


def test_runs_of_very_different_lengths_merge_correctly(tmp_path):
    rng = np.random.default_rng(9)
    with SortedRuns(tmp_path, block=16, run=5000) as runs:
        parts = [rng.normal(0, 1, 4321), [0.5], rng.normal(3, 0.1, 77), np.full(600, 0.5), [-9.0, 9.0]]
        for part in parts:
            runs.add(np.asarray(part))
            runs.values_at(np.array([0]))  # a query stores the values so far as a run of its own
        values = np.concatenate(parts)
        assert np.array_equal(np.concatenate(list(runs.blocks())), np.sort(values))
        grid = np.linspace(0, 1, 101)
        assert np.array_equal(runs.quantile(grid), np.quantile(values, grid))


def test_min_max_and_count_are_tracked():
    runs = SortedRuns(run=3)
    for chunk in ([4.0, -2.5], [], [7.25, 0.0, 1.0]):
        runs.add(np.array(chunk))
    assert (runs.count, runs.min(), runs.max()) == (5, -2.5, 7.25)


def test_negative_zero_is_stored_as_zero():
    runs = SortedRuns()
    runs.add(np.array([-0.0, 1.0, -0.0]))
    assert [bits(v) for v in runs.values_at(np.array([0, 1]))] == [bits(0.0)] * 2
    assert bits(runs.min()) == bits(0.0) and bits(runs.percentile(0)) == bits(0.0)


def test_folder_file_exists_while_open_and_is_removed_on_close(tmp_path):
    with SortedRuns(tmp_path, run=10) as runs:
        runs.add(np.arange(100.0))
        (path,) = tmp_path.iterdir()
        assert path.stat().st_size == 800
    assert not path.exists()
    with pytest.raises(ValueError, match="closed"):
        runs.add(np.arange(3.0))
    other = SortedRuns(tmp_path)
    other.close()
    other.close()
    assert list(tmp_path.iterdir()) == []


def test_stopping_early_closes_the_file(tmp_path):
    with SortedRuns(tmp_path, block=4, run=10) as runs:
        runs.add(np.arange(1000.0))
        assert runs.values_at(np.array([3])) == 3.0  # stops after the first batch
        next(iter(runs.blocks()))  # an abandoned iterator
    assert list(tmp_path.iterdir()) == []


def test_bad_input_is_refused_with_the_reason():
    runs = SortedRuns()
    with pytest.raises(ValueError, match="empty"):
        runs.percentile(50)
    with pytest.raises(ValueError, match="empty"):
        runs.max()
    with pytest.raises(ValueError, match="NaN"):
        runs.add(np.array([1.0, math.nan]))
    assert runs.count == 0
    runs.add(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="range"):
        runs.percentile(100.5)
    with pytest.raises(ValueError, match="range"):
        runs.quantile([0.5, -0.1])
    with pytest.raises(IndexError):
        runs.values_at(np.array([2]))
    with pytest.raises(TypeError):
        runs.values_at(np.array([0.5]))


def traced_peak(runs: SortedRuns, n: int, chunks: int, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """Peak traced bytes while ``n`` values arrive in chunks and 3000 ranks are then read back."""
    tracemalloc.start()
    try:
        for _ in range(chunks):
            runs.add(rng.lognormal(0.0, 1.0, n // chunks))
        runs.values_at(rng.integers(0, n, 3000))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("n", "chunks", "bound_mb"),
    [(5_000_000, 50, 16), pytest.param(20_000_000, 20, 40, marks=pytest.mark.slow)],
)
def test_a_folder_bounds_memory_far_below_the_values(tmp_path, n, chunks, bound_mb):
    with SortedRuns(tmp_path) as runs:
        peak = traced_peak(runs, n, chunks, np.random.default_rng(1))
    assert peak < bound_mb * 2**20 < 8 * n / 2, f"peak {peak / 2**20:.1f} MiB"
    with SortedRuns() as in_memory:  # the same measurement sees values held in memory
        assert traced_peak(in_memory, 5_000_000, 50, np.random.default_rng(1)) > 40e6
