"""Summary statistics independent of how the values arrive: exact sums and out-of-core order statistics.

A run's summary must be the same number, bit for bit, whether it is computed from one in-memory array or
from the same values streamed in chunks of any size, in any order. Floating-point addition is not
associative, so :class:`ExactSum` keeps the sum exactly (as an integer multiple of 2**-1075, the smallest
subnormal's weight) and rounds once at the end. Percentiles need order statistics, so :class:`SortedRuns`
keeps sorted runs (on disk when given a folder) and finds any rank with one k-way merge pass in bounded
memory; :meth:`SortedRuns.percentile` then repeats numpy's floating-point steps for the default linear
method, so it equals ``np.percentile`` of the whole array.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

_FRACTION = (1 << 52) - 1  # the 52 stored mantissa bits of a float64
_HALF = 26  # the fraction is split into two halves of 26 bits: each half is < 2**26
# Bin sums stay exact floats while below 2**53: at most 2**27 values of < 2**26 each.
_PENDING_LIMIT = 1 << 27
_SLICE = 1 << 16  # values binned at once: temporaries of 512 kB stay in cache (2.5x faster than 8 MB)
_KEYS = 1 << 12  # sign bit and 11 exponent bits
_NONFINITE = 0x7FF  # the biased exponent of inf and NaN
_UNIT_SHIFT = 1075  # the exact sum is kept as an integer number of 2**-1075


class ExactSum:
    """The exact sum of a stream of float64 values, rounded once to the nearest float64 on request.

    Why it is exact: a finite float64 with biased exponent b and 52-bit fraction f is
    (2**52 + f) * 2**(b - 1075), or f * 2**-1074 when b = 0 (subnormal). Values are binned by their top
    12 bits (sign and b) with ``np.bincount``; per bin it counts the values and sums the fraction's high
    and low 26-bit halves as float weights. Every partial sum is an integer below 2**53 (at most 2**27
    values of less than 2**26 each), so each bin's float sum is exact whatever the order of addition.
    The bins are then folded into one Python int, a multiple of 2**-1075, and ``int / int`` (correctly
    rounded by CPython, subnormals included) rounds the total or the mean once. The result therefore
    depends only on the multiset of values added, never on chunking or order.

    Non-finite values follow IEEE: a NaN makes the sum NaN, +inf and -inf together make NaN, otherwise
    an infinity wins. A finite sum whose rounding exceeds the float64 range is +-inf. An exact zero is
    returned as +0.0.
    """

    def __init__(self) -> None:
        """Start an empty sum."""
        self.count = 0
        self._exact = 0  # finite part, in units of 2**-1075, binned counts already folded in
        self._counts = np.zeros(_KEYS, dtype=np.int64)
        self._high = np.zeros(_KEYS)  # per key, the sum of the fraction's high halves (exact floats)
        self._low = np.zeros(_KEYS)
        self._pending = 0  # values binned since the last fold
        self._nan = False
        self._infinities: set[float] = set()

    def add(self, values: np.ndarray) -> None:
        """Add every value of ``values`` (any shape, any length, converted to float64)."""
        values = np.ascontiguousarray(values, dtype=np.float64).ravel()
        for start in range(0, values.size, _SLICE):
            self._bin(values[start : start + _SLICE])
        self.count += values.size

    def _bin(self, values: np.ndarray) -> None:
        """Bin one slice of values into the per-key counts and half sums."""
        if self._pending + values.size > _PENDING_LIMIT:
            self._fold()
        bits = values.view(np.int64)
        keys = (bits >> 52) & (_KEYS - 1)
        fraction = bits & _FRACTION
        self._counts += np.bincount(keys, minlength=_KEYS)
        self._high += np.bincount(keys, weights=fraction >> _HALF, minlength=_KEYS)
        self._low += np.bincount(keys, weights=fraction & ((1 << _HALF) - 1), minlength=_KEYS)
        self._pending += values.size

    def _fold(self) -> None:
        """Move the binned sums into the exact integer and clear the bins."""
        for key in np.flatnonzero(self._counts).tolist():
            negative, biased = key >> 11, key & _NONFINITE
            fraction_sum = (int(self._high[key]) << _HALF) + int(self._low[key])
            if biased == _NONFINITE:  # inf has a zero fraction, NaN does not
                self._nan = self._nan or fraction_sum > 0
                self._infinities.add(-math.inf if negative else math.inf)
                continue
            implicit = int(self._counts[key]) << 52 if biased else 0
            magnitude = (implicit + fraction_sum) << max(biased, 1)  # subnormals share b = 1's scale
            self._exact += -magnitude if negative else magnitude
        self._counts[:] = 0
        self._high[:] = 0.0
        self._low[:] = 0.0
        self._pending = 0

    def total(self) -> float:
        """The exact sum of every value added, rounded once to the nearest float64 (0.0 when empty)."""
        return self.divided_by(1)

    def mean(self) -> float | None:
        """The exact sum divided by the count, rounded once (None when empty)."""
        return self.divided_by(self.count) if self.count else None

    def divided_by(self, divisor: int) -> float:
        """The exact sum divided by the positive integer ``divisor``, rounded once to the nearest float64."""
        self._fold()
        if self._nan or len(self._infinities) == 2:
            return math.nan
        if self._infinities:
            return next(iter(self._infinities))
        try:
            return self._exact / (divisor << _UNIT_SHIFT) + 0.0  # + 0.0: an exact zero is +0.0
        except OverflowError:  # the rounded result is beyond the float64 range
            return math.inf if self._exact > 0 else -math.inf


def exact_mean(values: np.ndarray) -> float | None:
    """The exact mean of ``values``, rounded once (None when empty)."""
    total = ExactSum()
    total.add(values)
    return total.mean()


def exact_std(values: np.ndarray, ddof: int = 1) -> float | None:
    """The standard deviation of ``values`` as qsim defines it (None when there are ``ddof`` values or fewer).

    With m = :func:`exact_mean` (values), each (x - m)**2 is computed elementwise in float64, as numpy
    does; their exact sum divided by (n - ddof) is rounded once and its square root taken (correctly
    rounded). This agrees with ``np.std(values, ddof=ddof)`` to about an ulp on well-conditioned data,
    but unlike numpy's pairwise summation it does not depend on the order or chunking of the values:
    a stream gives the same result with one ExactSum for m and, in a second pass, one for the squares.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size <= ddof:
        return None
    squares = ExactSum()
    squares.add((values - exact_mean(values)) ** 2)
    return math.sqrt(squares.divided_by(values.size - ddof))


class SortedRuns:
    """Order statistics of a stream of float64 values too large for memory: sorted runs and one merge pass.

    Added values gather in a buffer of ``run`` values; each full buffer is sorted and stored as a run,
    appended to one temporary file in ``folder`` (or kept in memory without a folder: same results).
    :meth:`blocks` merges the runs holding one block of ``block`` values per run, so its peak memory
    is O(runs x block) + the ``run`` buffer, never O(count): 20M values in runs of 2**20 hold about
    20 x 0.5 MB. Results depend only on the multiset of values added: -0.0 is stored as 0.0, so that
    ties of +-0 cannot tell the order apart. NaN is refused.
    """

    def __init__(self, folder: Path | None = None, block: int = 1 << 16, run: int = 1 << 20) -> None:
        """Start empty; with ``folder``, create the runs file there (removed by :meth:`close`)."""
        if block < 1 or run < 1:
            raise ValueError(f"block and run must be positive (got block={block}, run={run})")
        self.count = 0
        self._block, self._run = block, run
        self._buffer: np.ndarray | None = None  # allocated on the first add
        self._filled = 0
        self._lengths: list[int] = []  # of the runs, in the order stored
        self._runs: list[np.ndarray] = []  # in memory, without a folder
        self._low, self._high = math.inf, -math.inf
        self._path: Path | None = None
        self._closed = False
        if folder is not None:
            handle, name = tempfile.mkstemp(prefix="qsim-runs-", suffix=".f64", dir=folder)
            os.close(handle)
            self._path = Path(name)
        self._closer = weakref.finalize(self, _remove, self._path)

    def __enter__(self) -> SortedRuns:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the runs file (if any) and forget the values; safe to call twice."""
        self._closer()
        self._runs, self._lengths, self._buffer, self._filled, self.count = [], [], None, 0, 0
        self._closed = True

    def add(self, values: np.ndarray) -> None:
        """Add every value of ``values`` (any shape, converted to float64).

        Raises:
            ValueError: if a value is NaN (nothing is added then).
        """
        self._require_open()
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size == 0:
            return
        low, high = values.min(), values.max()  # max is NaN if any value is NaN
        if np.isnan(high):
            raise ValueError("SortedRuns.add: NaN among the values; order statistics need numbers")
        self._low, self._high = min(self._low, low + 0.0), max(self._high, high + 0.0)
        start = 0
        while start < values.size:
            if self._buffer is None:
                self._buffer = np.empty(self._run)
            take = min(values.size - start, self._run - self._filled)
            # Adding 0.0 turns -0.0 into 0.0 while copying.
            np.add(values[start : start + take], 0.0, out=self._buffer[self._filled : self._filled + take])
            self._filled += take
            start += take
            if self._filled == self._run:
                self._store()
        self.count += values.size

    def _store(self) -> None:
        """Sort the buffered values and store them as one run."""
        if not self._filled:
            return
        run = self._buffer[: self._filled]
        run.sort()
        if self._path is None:
            self._runs.append(run if run.size == self._run else run.copy())
        else:
            with open(self._path, "ab") as file:
                run.tofile(file)
        self._lengths.append(self._filled)
        self._buffer, self._filled = None, 0  # the next add allocates a fresh buffer

    def min(self) -> float:
        """The smallest value added."""
        self._require_values()
        return float(self._low)

    def max(self) -> float:
        """The largest value added."""
        self._require_values()
        return float(self._high)

    def _require_open(self) -> None:
        if self._closed:
            raise ValueError("SortedRuns is closed: its values are gone")

    def _require_values(self) -> None:
        self._require_open()
        if self.count == 0:
            raise ValueError("SortedRuns is empty: no order statistics of zero values")

    def blocks(self) -> Iterator[np.ndarray]:
        """Every value added, in ascending order, as consecutive sorted blocks of at most runs x block."""
        self._require_open()
        self._store()
        if self._path is None and len(self._runs) == 1:  # one sorted run in memory: its own blocks
            run = self._runs[0]
            for start in range(0, run.size, self._block):
                yield run[start : start + self._block]
            return
        for pieces in self._batches():
            merged = np.concatenate(pieces)
            merged.sort()
            yield merged

    def _batches(self) -> Iterator[list[np.ndarray]]:
        """Every value in consecutive batches (each a list of sorted pieces): a batch is >= all before it.

        Each run contributes a block; everything up to the smallest of the blocks' last values is
        emitted (no unread value can be smaller: each run's unread values are >= its block's last
        value), and the runs whose blocks emptied (at least the one with that smallest last value)
        read their next block.
        """
        self._require_open()
        self._store()
        lengths = self._lengths
        with self._reader() as read:
            heads = [read(run, 0, min(self._block, length)) for run, length in enumerate(lengths)]
            done = [head.size for head in heads]
            live = list(range(len(lengths)))
            while live:
                threshold = min(heads[run][-1] for run in live)
                pieces = []
                for run in live:
                    cut = int(np.searchsorted(heads[run], threshold, side="right"))
                    pieces.append(heads[run][:cut])
                    heads[run] = heads[run][cut:]
                yield pieces
                del pieces
                for run in live:
                    if heads[run].size == 0 and done[run] < lengths[run]:
                        heads[run] = read(run, done[run], min(self._block, lengths[run] - done[run]))
                        done[run] += heads[run].size
                live = [run for run in live if heads[run].size]

    @contextlib.contextmanager
    def _reader(self) -> Iterator[Callable[[int, int, int], np.ndarray]]:
        """A function (run, start, count) -> those values of that run, valid inside the context."""
        if self._path is None:
            yield lambda run, start, count: self._runs[run][start : start + count]
            return
        offsets = np.cumsum([0, *self._lengths]).tolist()
        with open(self._path, "rb") as file:

            def read(run: int, start: int, count: int) -> np.ndarray:
                file.seek((offsets[run] + start) * 8)
                return np.frombuffer(file.read(count * 8), dtype=np.float64)

            yield read

    def values_at(self, ranks: np.ndarray) -> np.ndarray:
        """The values at the given 0-based ranks of the sorted values (any order, repeats), in one pass.

        Returns:
            An array of the shape of ``ranks``: ``np.sort(all values)[ranks]``.

        Raises:
            IndexError: if a rank is outside [0, count).
        """
        ranks = np.asarray(ranks)
        if ranks.size == 0:  # np.asarray([]) is a float array
            ranks = ranks.astype(np.intp)
        if not np.issubdtype(ranks.dtype, np.integer):
            raise TypeError(f"ranks must be integers, not {ranks.dtype}")
        flat = ranks.ravel()
        out = np.empty(flat.size)
        if flat.size and (flat.min() < 0 or flat.max() >= self.count):
            raise IndexError(f"ranks must lie in [0, {self.count}): got {flat.min()} .. {flat.max()}")
        self._store()
        if self._path is None and len(self._runs) == 1:  # every value in one sorted run: index it
            return self._runs[0][flat].reshape(ranks.shape)
        order = np.argsort(flat, kind="stable")
        wanted = flat[order]
        batches = self._batches()
        offset, found = 0, 0
        try:
            while found < flat.size:
                pieces = next(batches)
                size = sum(piece.size for piece in pieces)
                end = int(np.searchsorted(wanted, offset + size))  # wanted[found:end] lie in this batch
                if end > found:
                    batch = np.concatenate(pieces)  # unordered inside, so select, don't sort
                    local = wanted[found:end] - offset
                    batch.partition(np.unique(local))
                    out[order[found:end]] = batch[local]
                    found = end
                    del batch
                offset += size
                del pieces  # frees the blocks already merged before the next ones are read
        finally:
            batches.close()  # closes the runs file when stopping early
        return out.reshape(ranks.shape)

    def quantile(self, q: float | np.ndarray) -> np.floating | np.ndarray:
        """Exactly ``np.quantile(all values, q)`` (method "linear").

        Raises:
            ValueError: if empty or a q is outside [0, 1].
        """
        weak = type(q) in (int, float)
        q = np.asanyarray(q)
        if not np.all((q >= 0) & (q <= 1)):
            raise ValueError("Quantiles must be in the range [0, 1]")
        return self._linear(q, weak)

    def percentile(self, q: float | np.ndarray) -> np.floating | np.ndarray:
        """Exactly ``np.percentile(all values, q)`` (method "linear"): q / 100 as numpy divides it.

        Raises:
            ValueError: if empty or a q is outside [0, 100].
        """
        weak = type(q) in (int, float)
        q = np.asanyarray(np.true_divide(q, 100))
        if not np.all((q >= 0) & (q <= 1)):
            raise ValueError("Percentiles must be in the range [0, 100]")
        return self._linear(q, weak)

    def _linear(self, q: np.ndarray, weak: bool) -> np.floating | np.ndarray:
        self._require_values()
        return linear(self.values_at, self.count, q, weak)


def linear(
    values_at: Callable[[np.ndarray], np.ndarray], count: int, q: np.ndarray, weak: bool = False
) -> np.floating | np.ndarray:
    """numpy's ``_quantile`` for method "linear", step by step (numpy/lib/_function_base_impl.py).

    Args:
        values_at: the order statistics of a sample of ``count`` values by 0-based rank.
        q: the quantiles, in [0, 1].
        weak: ``q`` was a Python scalar (numpy then computes gamma as a Python float).
    """
    n = count
    virtual = np.asanyarray((n - 1) * q)
    if np.issubdtype(virtual.dtype, np.integer):  # integer q: numpy takes the order statistic itself
        return values_at(virtual)[()]
    above = virtual >= n - 1  # numpy reads both neighbours at index -1 there, the largest value
    previous = np.where(above, -1, np.floor(virtual)).astype(np.intp)
    following = np.where(above, -1, previous + 1)
    found = values_at(np.concatenate([previous.ravel(), following.ravel()]) % n)
    a, b = found[: previous.size].reshape(q.shape), found[previous.size :].reshape(q.shape)
    gamma = np.asanyarray(np.asanyarray(virtual - previous), dtype=virtual.dtype)
    return _lerp(a, b, float(gamma) if weak else gamma)


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray | float) -> np.floating | np.ndarray:
    """numpy's ``_lerp``: a + (b - a) t, or b - (b - a)(1 - t) where t >= 0.5, in the same float steps."""
    diff_b_a = b - a
    result = np.array(np.add(a, diff_b_a * t))
    np.subtract(b, diff_b_a * (1 - t), out=result, where=t >= 0.5, casting="unsafe", dtype=type(result.dtype))
    return result[()] if result.ndim == 0 else result


def _remove(path: Path | None) -> None:
    """Delete a runs file, if there is one and it still exists."""
    if path is not None:
        path.unlink(missing_ok=True)
