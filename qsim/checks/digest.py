"""The numbers of a run's summary and timeline, gathered from its ops table one chunk at a time.

Each accumulator here takes the ops table in chunks (``add``), in op_id order, and gives its part
of the results (``result``). A chunk may be the whole table: :func:`qsim.checks.metrics.summarize` and
the other pure functions of a DataFrame are one ``add`` and a ``result``, so a run too big for
memory (streamed in chunks) and one that fits get the same numbers from the same code. Every
result is independent of how the table is cut: counts, exact sums (:mod:`qsim.checks.exact`) and exact
order statistics.
"""

from __future__ import annotations

import math
from collections import Counter
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from qsim.checks import nines
from qsim.checks.exact import ExactSum, SortedRuns

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}
QUANTILE_GRID = np.linspace(0.0, 1.0, 101)  # latency_ms.quantiles: the 0th, 1st, ..., 100th percentiles
_T_EDGES_MS = np.array(
    [0, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 6e4, np.inf]
)
KINDS = ("read", "write")


def measured(ops: pd.DataFrame, *, include_warmup: bool = False) -> pd.DataFrame:
    """Return the operations a result counts: every one not marked as started in the warm-up.

    This is the one warm-up rule of the summary, the plots, the timeline and the analysis
    helpers. An ops table without a ``warmup`` column (a hand-made one) has no warm-up.

    Args:
        ops: the history, with the boolean ``warmup`` column of :data:`qsim.history.OPS_COLUMNS`.
        include_warmup: keep the warm-up operations too.
    """
    if include_warmup or "warmup" not in ops:
        return ops
    return ops[measured_rows(ops)]


def measured_rows(ops: pd.DataFrame, *, include_warmup: bool = False) -> np.ndarray:
    """Return which rows of ``ops`` :func:`measured` keeps, as a boolean mask.

    Selecting the few columns a digest needs by this mask is much cheaper than copying the
    table's rows.
    """
    if include_warmup or "warmup" not in ops:
        return np.ones(len(ops), dtype=bool)
    return ~ops["warmup"].to_numpy(dtype=bool)


class Chunk:
    """A chunk of the ops table, with the columns that several digests read converted once.

    The summary, the timeline, the fault sides and the recovery scan each read ok, kind, start_ms,
    the warm-up mask and the staleness verdicts of every chunk; a Chunk makes each once, for all of
    them. Their ``add`` takes a Chunk or a DataFrame (made a Chunk there).
    """

    def __init__(self, ops: pd.DataFrame) -> None:
        self.ops = ops
        self._rows: dict[bool, np.ndarray] = {}

    @staticmethod
    def of(ops: pd.DataFrame | Chunk) -> Chunk:
        """``ops`` if it is a Chunk, else a Chunk of it."""
        return ops if isinstance(ops, Chunk) else Chunk(ops)

    def __len__(self) -> int:
        return len(self.ops)

    @cached_property
    def ok(self) -> np.ndarray:
        return self.ops["ok"].to_numpy(dtype=bool)

    @cached_property
    def is_read(self) -> np.ndarray:
        return (self.ops["kind"] == "read").to_numpy()

    @cached_property
    def start_ms(self) -> np.ndarray:
        return self.ops["start_ms"].to_numpy(dtype=float)

    def rows(self, *, include_warmup: bool = False) -> np.ndarray:
        """:func:`measured_rows` of the chunk."""
        if include_warmup not in self._rows:
            self._rows[include_warmup] = measured_rows(self.ops, include_warmup=include_warmup)
        return self._rows[include_warmup]

    @cached_property
    def staleness(self) -> tuple[np.ndarray, np.ndarray]:
        """Which rows' staleness was checked, and which rows are stale (False where unchecked)."""
        stale = self.ops["stale"].astype("boolean").array
        checked = ~stale.isna()
        # Kleene "and": NA & False is False, so no NA is left (far quicker than na_value=False).
        return checked, (stale & checked).to_numpy(dtype=bool)


class Latencies:
    """The latencies (ms) of a stream of operations: their exact sum and order statistics.

    Args:
        folder: where the sorted runs of a large stream are kept (see :class:`qsim.checks.exact.SortedRuns`);
            None keeps them in memory.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.runs = SortedRuns(folder)
        self._sum = ExactSum()

    def add(self, latency_ms: np.ndarray) -> Latencies:
        """Take more latencies; return self."""
        latency_ms = np.asarray(latency_ms, dtype=float)
        if latency_ms.size:
            self.runs.add(latency_ms)
            self._sum.add(latency_ms)
        return self

    @property
    def size(self) -> int:
        return self.runs.count

    def mean(self) -> float | None:
        """The mean, correctly rounded (None when empty)."""
        return self._sum.mean()

    def std(self, ddof: int = 1) -> float | None:
        """The standard deviation as :func:`qsim.checks.exact.exact_std` defines it, in one more pass."""
        if self.size <= ddof:
            return None
        mean, squares = self.mean(), ExactSum()
        for block in self.runs.blocks():
            squares.add((block - mean) ** 2)
        return math.sqrt(squares.divided_by(self.size - ddof))

    def stats(self) -> dict:
        """Return count, mean, p50, p90, p99, p999, max, quantiles and percentiles (None when empty).

        Percentiles interpolate linearly between order statistics (numpy's default); the mean is
        the exact sum over the count, rounded once.
        """
        stats: dict = {"count": self.size}
        if not self.size:
            return stats | {"mean": None} | dict.fromkeys(PERCENTILES) | {"max": None, "quantiles": None,
                                                                           "percentiles": None}  # fmt: skip
        levels = nines.grid_points(self.size)
        values = self.runs.percentile(np.concatenate([list(PERCENTILES.values()), levels]))
        stats["mean"] = self.mean()
        stats.update({name: float(v) for name, v in zip(PERCENTILES, values, strict=False)})
        stats["max"] = float(self.runs.max())
        stats["quantiles"] = self.runs.quantile(QUANTILE_GRID).tolist()  # for CDFs across runs
        # At qsim.checks.nines.GRID, for percentile plots across runs; beyond what the sample resolves: None.
        beyond = [None] * (len(nines.GRID) - len(levels))
        stats["percentiles"] = values[len(PERCENTILES) :].tolist() + beyond
        return stats

    def close(self) -> None:
        """Remove the runs kept on disk."""
        self.runs.close()


class KindStats:
    """Count, availability, latency and failure reasons of the counted operations of one kind."""

    def __init__(self, folder: Path | None = None, commits: bool = False) -> None:
        """``commits``: also gather commit latencies (writes)."""
        self.count = self.ok = 0
        self.errors: Counter = Counter()
        self.latency = Latencies(folder)
        self.commit = Latencies(folder) if commits else None

    def add(self, ops: pd.DataFrame | Chunk, rows: np.ndarray | None = None) -> None:
        """Take the chunk's operations of this kind (warm-up already left out).

        Args:
            ops: the operations, or a chunk holding them.
            rows: a boolean mask of the rows of ``ops`` that are those operations (default: all).
        """
        chunk = Chunk.of(ops)
        rows = np.ones(len(chunk), dtype=bool) if rows is None else rows
        ok, ops = chunk.ok, chunk.ops
        taken, done = np.flatnonzero(rows), np.flatnonzero(rows & ok)
        self.count += len(taken)
        self.ok += len(done)
        if len(done) < len(taken):  # selecting strings is slow: only when some failed
            self.errors.update(ops["error"].iloc[np.flatnonzero(rows & ~ok)].value_counts().to_dict())
        self.latency.add(_taken(ops, "latency_ms", done))
        if self.commit is not None and "commit_ms" in ops:  # a table made by hand may have none
            took = _taken(ops, "commit_ms", taken) - chunk.start_ms.take(taken)
            self.commit.add(took[np.isfinite(took)])

    def result(self) -> dict:
        """The ``reads`` or ``writes`` section of the summary; errors by count, then by text."""
        errors = sorted(
            ((str(text), int(n)) for text, n in self.errors.items() if n), key=lambda e: (-e[1], e[0])
        )
        return {
            "count": self.count,
            "ok": self.ok,
            "availability": self.ok / self.count if self.count else None,
            "latency_ms": self.latency.stats(),
            "errors": dict(errors),
        } | ({"commit_latency_ms": self.commit.stats()} if self.commit is not None else {})


class Staleness:
    """Stale-read counts, the k distribution and t-visibility of the counted reads."""

    def __init__(self) -> None:
        self.checked = self.ok = self.stale = self.k_sum = 0
        self.k: Counter = Counter()
        self.probe: dict[float, list[int]] = {}  # probe delay -> [reads, stale]
        self.bins: dict[int, list[int]] = {}  # bin of t_ms -> [reads, stale]
        self.probed = False

    def add(self, reads: pd.DataFrame | Chunk, rows: np.ndarray | None = None) -> None:
        """Take the chunk's reads (warm-up already left out).

        Args:
            reads: the reads, or a chunk holding them.
            rows: a boolean mask of the rows of ``reads`` that are those reads (default: all).
        """
        chunk = Chunk.of(reads)
        reads = chunk.ops
        rows = np.ones(len(chunk), dtype=bool) if rows is None else rows
        self.ok += int(np.count_nonzero(rows & chunk.ok))
        checked, stale = checked_reads(chunk, rows)
        k = reads["k"].array.take(checked).to_numpy(dtype=np.int64)
        self.checked += len(checked)
        self.stale += int(np.count_nonzero(stale))
        self.k_sum += int(k.sum())
        counts = np.bincount(k)  # k, the committed versions missed, is small and not negative
        self.k.update({value: int(counts[value]) for value in np.flatnonzero(counts).tolist()})
        if "probe_delay_ms" in reads:
            delay = reads["probe_delay_ms"].to_numpy(dtype=float)
            self.probed |= bool((rows & ~np.isnan(delay)).any())
            delay = delay.take(checked)
            probed = ~np.isnan(delay)
            _count_groups(self.probe, delay[probed], stale[probed])
        _count_bins(self.bins, _bins(reads["t_ms"].to_numpy().take(checked)), stale)

    def result(self) -> dict:
        """The ``staleness`` section of the summary (see :func:`qsim.checks.metrics.staleness_summary`)."""
        from qsim.checks.metrics import visibility_row  # metrics builds on this module

        if self.probed:
            curve = [visibility_row(t, *self.probe[t]) for t in sorted(self.probe)]
        else:
            curve = [
                visibility_row(_T_EDGES_MS[b], *self.bins[b], t_hi_ms=_finite_or_none(_T_EDGES_MS[b + 1]))
                for b in sorted(self.bins)
            ]
        return {
            "reads_checked": self.checked,
            "reads_unchecked": self.ok - self.checked,
            "stale": self.stale,
            "stale_fraction": self.stale / self.checked if self.checked else None,
            "k": {str(k): int(self.k[k]) for k in sorted(self.k)},
            "k_mean": float(self.k_sum) / self.checked if self.checked else None,
            "t_visibility": curve,
        }


def _count_groups(groups: dict, group: np.ndarray, stale: np.ndarray) -> None:
    """Add, per distinct value of ``group``, its reads and stale reads to ``groups``."""
    values, inverse = np.unique(group, return_inverse=True)
    reads = np.bincount(inverse, minlength=len(values))
    stales = np.bincount(inverse, weights=stale, minlength=len(values)).astype(np.int64)
    for value, n, s in zip(values.tolist(), reads.tolist(), stales.tolist(), strict=True):
        entry = groups.setdefault(value, [0, 0])
        entry[0] += n
        entry[1] += s


def checked_reads(ops: pd.DataFrame | Chunk, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the positions of the ``rows`` (a boolean mask) whose staleness was checked, and which
    of them are stale."""
    known, stale = Chunk.of(ops).staleness
    checked = np.flatnonzero(rows & known)
    return checked, stale.take(checked)


def _taken(ops: pd.DataFrame, column: str, rows: np.ndarray) -> np.ndarray:
    """The float values of ``column`` at the positions ``rows``: cheaper than a boolean mask."""
    return ops[column].to_numpy(dtype=float).take(rows)


def _bins(t_ms: np.ndarray) -> np.ndarray:
    """Each t_ms's bin + 1: ``np.digitize(t_ms, _T_EDGES_MS)``, as int8.

    Counting the edges at or below each value is a few times quicker than digitize's binary
    search over so few edges. digitize puts NaN after the last edge; so does this.
    """
    index = np.zeros(len(t_ms), np.int8)  # at most len(_T_EDGES_MS) = 19
    for edge in _T_EDGES_MS:
        np.add(index, t_ms >= edge, out=index)
    index[np.isnan(t_ms)] = len(_T_EDGES_MS)
    return index


def _count_bins(bins: dict, index: np.ndarray, stale: np.ndarray) -> None:
    """:func:`_count_groups` for the bins of t_ms, by ``np.bincount``; ``index`` is each read's bin + 1."""
    reads = np.bincount(index)
    stales = np.bincount(index, weights=stale, minlength=len(reads)).astype(np.int64)
    for i in np.flatnonzero(reads).tolist():
        entry = bins.setdefault(i - 1, [0, 0])
        entry[0] += int(reads[i])
        entry[1] += int(stales[i])


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None  # JSON has no infinity


class Summary:
    """The reads, writes, availability and staleness sections of a run's summary.

    Only the operations :func:`measured` keeps are counted (not those of the warm-up); staleness
    was checked against the whole history, warm-up included.

    Args:
        folder: where large latency samples are kept (None: in memory).
        span_ms: (from, until): operations that end ok in it are counted by :meth:`ended_ok`, whenever
            they started (the scenario's warm-up and duration).
    """

    def __init__(self, folder: Path | None = None, span_ms: tuple[float, float] = (0.0, np.inf)) -> None:
        self.kinds = {kind: KindStats(folder, commits=kind == "write") for kind in KINDS}
        self._span_ms = span_ms
        self._ended_ok = 0
        self.staleness = Staleness()

    def add(self, ops: pd.DataFrame | Chunk) -> Summary:
        """Take a chunk of the ops table; return self."""
        chunk = Chunk.of(ops)
        if len(chunk):
            ends = chunk.start_ms + chunk.ops["latency_ms"].to_numpy(dtype=float)
            within = (ends >= self._span_ms[0]) & (ends <= self._span_ms[1])
            self._ended_ok += int(np.count_nonzero(within & chunk.ok))
        rows, is_read = chunk.rows(), chunk.is_read
        self.kinds["read"].add(chunk, rows & is_read)
        self.kinds["write"].add(chunk, rows & ~is_read)
        self.staleness.add(chunk, rows & is_read)
        return self

    def result(self) -> dict:
        count = sum(kind.count for kind in self.kinds.values())
        ok = sum(kind.ok for kind in self.kinds.values())
        return {
            "reads": self.kinds["read"].result(),
            "writes": self.kinds["write"].result(),
            "availability": ok / count if count else None,
            "staleness": self.staleness.result(),
        }

    def ended_ok(self) -> int:
        """Operations that ended ok within the span, warm-up ones included (the work carried in it)."""
        return self._ended_ok

    def latencies(self) -> dict[str, Latencies]:
        """The latencies of the counted ok operations, by kind."""
        return {kind: stats.latency for kind, stats in self.kinds.items()}

    def close(self) -> None:
        for kind in self.kinds.values():
            kind.latency.close()
            if kind.commit is not None:
                kind.commit.close()
