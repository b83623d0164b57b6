"""What `qsim sweep` shows: a progress line while it runs, the Pareto-optimal table at the end."""

from __future__ import annotations

import sys
import time

import pandas as pd

from qsim.sweep.aggregate import pareto


class Progress:
    """Points done, failures and time left, on one line of a terminal (a line per 10% otherwise)."""

    def __init__(self, stream=None):
        self._stream = stream or sys.stderr
        self._started = time.perf_counter()
        self._tty = self._stream.isatty()
        self._shown = -1

    def __call__(self, done: int, total: int, failed: int) -> None:
        elapsed = time.perf_counter() - self._started
        left = elapsed / done * (total - done) if done else float("nan")
        line = (
            f"[{done:>{len(str(total))}}/{total}] {100 * done / total:5.1f}%  failed {failed}  "
            f"elapsed {_clock(elapsed)}  left ~{_clock(left)}"
        )
        if self._tty:
            self._stream.write("\r" + line + ("\n" if done == total else ""))
        elif done * 10 // total > self._shown or done == total:
            self._shown = done * 10 // total
            self._stream.write(line + "\n")
        self._stream.flush()


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN: nothing finished yet
        return "--:--"
    minutes, seconds = divmod(round(seconds), 60)
    return (
        f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"
        if minutes >= 60
        else f"{minutes:02d}:{seconds:02d}"
    )


def pareto_table(table: pd.DataFrame, factors: list[str]) -> str:
    """The Pareto-optimal configurations (p99 read latency vs stale fraction) as a text table."""
    best = table[pareto(table)].sort_values("read_latency_p99_ms_mean")
    if best.empty:
        return "no configuration completed"
    columns = {
        **{f: f for f in factors},
        "read p99 ms": "read_latency_p99_ms_mean",
        "write p99 ms": "write_latency_p99_ms_mean",
        "stale": "stale_fraction_mean",
        "availability": "availability_mean",
        "runs": "runs",
    }
    shown = pd.DataFrame({title: best[column] for title, column in columns.items()})
    text = shown.to_string(index=False, float_format=lambda v: f"{v:.4g}")
    return f"Pareto-optimal configurations (p99 read latency vs stale-read fraction):\n{text}"
