"""Progress on a terminal: a tqdm bar while a run or a sweep runs, and nothing in a pipe or a log."""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

# How the bar counts, by the unit ``simulate`` and ``montecarlo.run`` report progress in.
_COUNTS = {"s": "{n:.1f}/{total:.1f} s simulated", "trials": "{n:.0f}/{total:.0f} trials"}


class RunProgress:
    """A run's progress as a tqdm bar on ``stream`` (stderr) if it is a terminal and not ``quiet``.

    Pass it as the ``progress`` of :func:`qsim.simulate` or :func:`qsim.analysis.montecarlo.run`,
    and close it when the run ends (it is a context manager). The bar is removed when closed, so
    what the command prints next starts on a clean line. Anywhere else (a pipe, a file) it prints
    nothing.
    """

    def __init__(self, description: str = "", stream: TextIO | None = None, quiet: bool = False):
        self._stream = stream or sys.stderr
        self._description = description
        self._shown = not quiet and _is_terminal(self._stream)
        self._bar: tqdm | None = None

    def __call__(self, done: float, total: float, unit: str) -> None:
        """Show that ``done`` of ``total`` (in ``unit``: ``s`` of simulated time, or ``trials``) are done."""
        if not self._shown:
            return
        if self._bar is None:
            counts = _COUNTS.get(unit, "{n:g}/{total:g} " + unit)
            self._bar = tqdm(
                total=total,
                file=self._stream,
                leave=False,
                desc=self._description,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| " + counts + " [{elapsed}<{remaining}]",
            )
        self._bar.update(min(done, total) - self._bar.n)

    def close(self) -> None:
        """Remove the bar from the terminal."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def points_bar(total: int, done: int, stream: TextIO) -> tqdm:
    """A sweep's bar: points done of ``total`` (``done`` of them before this bar started), kept at the end."""
    return tqdm(
        total=total,
        initial=done,
        file=stream,
        unit="point",
        desc="sweep",
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} points{postfix} [{elapsed}<{remaining}]",
    )


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
