"""What `qsim sweep` shows: a progress line while it runs, the Pareto-optimal table at the end."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import pandas as pd

from qsim.progress import points_bar
from qsim.sweep.aggregate import DEFAULT_OBJECTIVES, better, pareto
from qsim.sweep.heatmaps import compact

CONTEXT = ("read_latency_p99_ms", "write_latency_p99_ms", "stale_fraction", "availability")  # always shown


class Progress:
    """Points done, failures and time left: a tqdm bar on a terminal, a line per 10% otherwise.

    It is called after each point; points done before the first call (a resumed sweep's) do not
    count towards the time left.
    """

    def __init__(self, stream=None):
        self._stream = stream or sys.stderr
        self._started = time.perf_counter()
        self._tty = self._stream.isatty()
        self._bar = None
        self._before = None  # points done before this sweep ran any
        self._shown = -1

    def __call__(self, done: int, total: int, failed: int) -> None:
        if self._before is None:
            self._before = done - 1
        if self._tty:
            self._draw(done, total, failed)
            return
        if done * 10 // total > self._shown or done == total:
            self._shown = done * 10 // total
            self._stream.write(self._line(done, total, failed) + "\n")
            self._stream.flush()

    def _draw(self, done: int, total: int, failed: int) -> None:
        if self._bar is None:
            self._bar = points_bar(total, self._before, self._stream)
        self._bar.set_postfix_str(f"failed {failed}", refresh=False)
        self._bar.update(done - self._bar.n)
        if done == total:
            self._bar.close()

    def close(self) -> None:
        """End the bar where it stands (an interrupted sweep), so that what follows starts a new line."""
        if self._bar is not None:
            self._bar.close()

    def _line(self, done: int, total: int, failed: int) -> str:
        elapsed = time.perf_counter() - self._started
        ran = done - self._before
        left = elapsed / ran * (total - done) if ran else float("nan")
        return (
            f"[{done:>{len(str(total))}}/{total}] {100 * done / total:5.1f}%  failed {failed}  "
            f"elapsed {_clock(elapsed)}  left ~{_clock(left)}"
        )


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN: nothing finished yet
        return "--:--"
    minutes, seconds = divmod(round(seconds), 60)
    return (
        f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"
        if minutes >= 60
        else f"{minutes:02d}:{seconds:02d}"
    )


def pareto_table(
    table: pd.DataFrame, factors: list[str], objectives: Sequence[str] = DEFAULT_OBJECTIVES
) -> str:
    """The Pareto-optimal configurations over ``objectives`` as a text table, best first objective first.

    Columns: the factors, every objective, then p99 read and write latency, stale fraction and
    availability when they are not objectives, and the number of runs (means over seeds).
    """
    best = table[pareto(table, objectives)]
    if best.empty:
        return "no configuration completed"
    lower = [better(m) == "lower" for m in objectives]
    best = best.sort_values([f"{m}_mean" for m in objectives], ascending=lower)
    shown_metrics = dict.fromkeys([*objectives, *CONTEXT])
    columns = {**{f: f for f in factors}, **{_short(m): f"{m}_mean" for m in shown_metrics}, "runs": "runs"}
    shown = pd.DataFrame({title: best[column] for title, column in columns.items()})
    for factor in factors:  # a factor given as mappings: a short form, as the plots label it
        shown[factor] = shown[factor].map(compact)
    text = shown.to_string(index=False, float_format=lambda v: f"{v:.4g}")
    over = ", ".join(f"{m} ({'max' if better(m) == 'higher' else 'min'})" for m in objectives)
    return f"Pareto-optimal configurations ({len(best)} of {len(table)}) over {over}:\n{text}"


def _short(metric: str) -> str:
    """A column title: read_latency_p99_ms -> "read p99 ms"."""
    return metric.replace("_latency_", " ").replace("_", " ")
