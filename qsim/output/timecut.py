"""A time axis with idle stretches cut short, for sequence diagrams of bursts far apart in time.

Time is mapped piecewise linearly: busy stretches keep their length, and each gap longer than a
threshold is shortened to a fixed length and marked with a break on the axis. Everything is
drawn in real milliseconds; the axis scale does the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator
from matplotlib.transforms import ScaledTranslation

from qsim.output.plots import plain

CUT_AFTER = 4.0  # a gap longer than this many typical message delays is cut short...
CUT_TO = 1.5  # ...to this many typical delays


@dataclass(frozen=True)
class TimeCut:
    """Real times ``knots_ms`` drawn at ``knots_y`` (both increasing), linear in between and beyond."""

    knots_ms: np.ndarray
    knots_y: np.ndarray
    gaps: tuple[tuple[float, float], ...]  # (start_ms, end_ms) of each gap cut short

    def forward(self, t_ms):
        """Where real time ``t_ms`` is drawn."""
        return _piecewise(np.asarray(t_ms, dtype=float), self.knots_ms, self.knots_y)

    def inverse(self, y):
        """The real time drawn at ``y``."""
        return _piecewise(np.asarray(y, dtype=float), self.knots_y, self.knots_ms)


def _piecewise(values: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Interpolate through (xs, ys), and continue with slope 1 beyond both ends."""
    inside = np.interp(values, xs, ys)
    return np.where(
        values < xs[0], ys[0] + values - xs[0], np.where(values > xs[-1], ys[-1] + values - xs[-1], inside)
    )


def busy_gaps(intervals: np.ndarray, longer_than_ms: float) -> list[tuple[float, float]]:
    """The gaps longer than ``longer_than_ms`` between the union of closed ``intervals`` (n x 2, ms)."""
    if len(intervals) == 0:
        return []
    intervals = intervals[np.argsort(intervals[:, 0], kind="stable")]
    reach = np.maximum.accumulate(intervals[:, 1])  # the latest end so far
    starts = intervals[1:, 0]
    found = np.flatnonzero(starts - reach[:-1] > longer_than_ms)
    return [(float(reach[i]), float(starts[i])) for i in found]


def cut(gaps: list[tuple[float, float]], keep_ms: float) -> TimeCut:
    """The time axis that shortens each of ``gaps`` (in time order) to ``keep_ms``."""
    knots_ms, knots_y, shift = [], [], 0.0
    for start, end in gaps:
        knots_ms += [start, end]
        knots_y += [start - shift, start - shift + keep_ms]
        shift += end - start - keep_ms
    if not knots_ms:  # nothing cut: the identity
        knots_ms, knots_y = [0.0, 1.0], [0.0, 1.0]
    return TimeCut(np.array(knots_ms), np.array(knots_y), tuple(gaps))


def apply(axes: Axes, time_cut: TimeCut, low_ms: float, high_ms: float, height_pt: float) -> None:
    """Draw ``axes``'s y axis (time flowing down, from ``low_ms`` to ``high_ms``) through ``time_cut``.

    Ticks are placed within each uncut stretch at least one label apart, ``height_pt`` being the
    axes' height in points; each cut gap gets break marks on the axis and a dotted line saying
    how long it was.
    """
    if time_cut.gaps:
        axes.set_yscale("function", functions=(time_cut.forward, time_cut.inverse))
    axes.set_ylim(high_ms, low_ms)  # time flows downward
    ticks = _ticks(time_cut, low_ms, high_ms, height_pt)
    axes.yaxis.set_major_locator(FixedLocator(ticks))
    axes.yaxis.set_minor_locator(FixedLocator([]))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.2f}".rstrip("0").rstrip(".")))
    for i, (start, end) in enumerate(time_cut.gaps):
        _break_mark(axes, i, start, end)


def _ticks(time_cut: TimeCut, low_ms: float, high_ms: float, height_pt: float) -> list[float]:
    """Round times inside each uncut stretch (the middle of a short one), at least 14 points apart."""
    y_low, y_high = time_cut.forward([low_ms, high_ms])
    points_per_y = height_pt / max(y_high - y_low, 1e-12)
    edges = [low_ms, *[t for gap in time_cut.gaps for t in gap], high_ms]
    ticks: list[float] = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        share = (time_cut.forward(end) - time_cut.forward(start)) * points_per_y / 40
        if share < 0.5:  # too short for round ticks: one where it is, if there is room
            ticks.append((start + end) / 2)
            continue
        for tick in MaxNLocator(nbins=max(int(share), 1), steps=[1, 2, 2.5, 5, 10]).tick_values(start, end):
            if start <= tick <= end and tick >= 0:  # no negative time: the margin above 0 ms
                ticks.append(float(tick))
    kept: list[float] = []
    for tick in sorted(ticks):
        if not kept or (time_cut.forward(tick) - time_cut.forward(kept[-1])) * points_per_y >= 14:
            kept.append(tick)
    return kept


def _break_mark(axes: Axes, i: int, start_ms: float, end_ms: float) -> None:
    """Slanted marks across the time axis and a dotted line across the lanes, saying what was cut."""
    middle = (start_ms + end_ms) / 2
    blended = axes.get_yaxis_transform()  # x in axes fractions, y in time
    axes.axhline(middle, color="0.45", lw=0.8, linestyle=(0, (1, 3)), zorder=0.5, gid=f"cut:{i}")
    for offset in (-0.25, 0.25):
        axes.plot(
            [0],
            [middle],
            transform=blended + _points(axes, offset * 6),
            marker=[(-1, -0.5), (1, 0.5)],
            markersize=9,
            mew=1,
            color="black",
            linestyle="none",
            clip_on=False,
        )
    axes.text(
        0.995,
        middle,
        f"{skipped(end_ms - start_ms)} skipped",
        transform=blended,
        ha="right",
        va="bottom",
        color="0.35",
        fontsize=6.5,
        gid=f"cut-label:{i}",
    )


def skipped(length_ms: float) -> str:
    """A cut gap's length in plain decimals to 3 significant digits: ``48.8 ms``, ``1.73 s``."""
    shown = float(f"{length_ms:.3g}")
    if shown >= 1000:  # after rounding: 999.7 ms is "1 s"
        return f"{plain(float(f'{length_ms / 1000:.3g}'))} s"
    return f"{plain(shown)} ms"


def _points(axes: Axes, dy_pt: float) -> ScaledTranslation:
    """An offset of ``dy_pt`` points downward, for marks that sit a fixed distance apart."""
    return ScaledTranslation(0, -dy_pt / 72, axes.figure.dpi_scale_trans)
