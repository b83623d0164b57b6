"""What every plot of a run shares: plain decimal tick labels, colours, notes on empty plots,
legends off the data.

Figures are made with ``matplotlib.figure.Figure`` directly: no pyplot state, no GUI backend.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, ScalarFormatter

COLOURS = {"read": "tab:blue", "write": "tab:orange"}
BELOW_ZERO = 0.02  # a fraction axis starts this far (of its height) below 0, so a line at 0 shows
DATA_Z = 3  # data lines draw above the fault shading (1) and the axes' spines (2.5)


def plain_ticks(axis: Axis) -> None:
    """Label ``axis`` in plain decimals (0.5, 2, 20): no offset, no 10^k notation, on any scale."""
    if axis.get_scale() == "log":
        low, high = axis.axes.get_xlim() if axis.axis_name == "x" else axis.axes.get_ylim()
        wide = abs(np.log10(high / low)) > 3  # 1, 2, 5 in every decade would crowd the labels
        axis.set_major_locator(LogLocator(subs=(1.0,) if wide else (1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(plain))
        axis.set_minor_formatter(NullFormatter())
    else:
        formatter = ScalarFormatter(useOffset=False)
        formatter.set_scientific(False)
        axis.set_major_formatter(formatter)


def plain(value: float, _position: object = None) -> str:
    """``value`` as a plain decimal with at most 6 significant digits: 0.0002, 2, 150000."""
    return np.format_float_positional(float(f"{value:.6g}"), trim="-")


def unchecked_reason(reads: int, writes: int) -> str:
    """Why no read was checked for staleness, given the counts of reads and writes (warm-up left out)."""
    if not reads:
        return "no reads in this run: no read to check for staleness"
    if not writes:
        return "no writes in this run: a read is checked against the writes committed before it"
    return "no checked reads: a read is checked when it completes ok after a committed write of its key"


def new_figure(width: float, height: float) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot()


def say(axes: Axes, text: str, *, blank_x: bool = False) -> None:
    """Write ``text`` in the middle of an empty plot; ``blank_x``: its time axis has nothing to show."""
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)
    if blank_x:
        axes.set_xticks([])


def legend_outside(axes: Axes) -> None:
    """A legend to the right of the axes, where it can cover no data."""
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=9)


def short(value: float) -> str:
    """``value`` to 3 significant digits, as a plain decimal (2.35, 0.0012, 1230)."""
    return plain(float(f"{value:.3g}"))
