"""Placing the labels of a sequence diagram so that none overlaps another.

Operation labels go in a column left of the operation bars, wide enough for the longest, stacked
downward from their operation's start where they would overlap, each joined to its bar by a
leader line. Message labels (drop reasons, times, kinds) are kept in that order where they fit
and hidden where they would overlap a label already kept, or, for the sparse ones (those of a
leader's AppendEntries), where the same words were kept a little above or below them, anywhere
across; the figure says how many it hid.
Positions are worked out in display units after the constrained layout has placed the axes.
"""

from __future__ import annotations

import bisect
import math
import string
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.text import Text

from qsim.checks.anomaly import Anomaly
from qsim.tracing import kind_noun

_GAP_PX = 2.0  # between stacked labels
_FIXED = ("cut", "fault-label")  # gids of labels always shown, whatever they overlap
_LEADER = {"color": "0.4", "lw": 0.6, "zorder": 2.2}  # over the bars it passes, to its own
_LEADER_END = {"marker": "o", "markersize": 3, "markevery": [1]}  # a dot where it meets its bar
_INSET_PX = 3.0  # a leader meets its bar at least this far inside the bar's ends
_CELL_PX = 64.0  # the grid that files kept labels by where they are
_REPEAT_PX = 48.0  # a sparse label is left out this near (vertically) to a kept one saying the same
ANOMALY_COLOURS = {  # the outline of an operation in a consistency anomaly, by its kind
    "linearizability": "crimson",
    "read_your_writes": "darkviolet",
    "monotonic_reads": "darkcyan",
    "monotonic_writes": "saddlebrown",
    "writes_follow_reads": "olivedrab",
}
ANOMALY_LW = 2.6
MARKED = 6  # consistency anomalies lettered and told at most; the legend counts the others


@dataclass(frozen=True)
class OpMark:
    """An operation's label, and where its bar is (its left edge in lanes, its start and end in ms)."""

    label: Text
    bar_x: float
    start_ms: float
    end_ms: float


def op_text(op, outcome: str, missed: dict[int, int], letters: Sequence[str] = ()) -> str:
    """An operation's label: id, kind, key, outcome, what it read or which read missed it, and the
    letters of the consistency anomalies it takes part in.

    Args:
        op: a row of the ops frame (key, version, error and attempts are used when present).
        outcome: ok, stale or failed.
        missed: for each stale read, the newest write it missed (read id -> write id).
        letters: the letters of the diagram's consistency anomalies the operation takes part in.
    """
    key = getattr(op, "key", None)
    text = f"op {op.op_id} {op.kind}" + (f" key {key}" if key is not None else "") + f": {outcome}"
    error = getattr(op, "error", None)
    if outcome == "failed" and isinstance(error, str):
        text += f" ({error})"
    version = getattr(op, "version", None)
    if op.kind == "read" and outcome != "failed" and version is not None:
        text += f", read op {version}" if version >= 0 else ", read nothing"
    if op.op_id in missed:
        text += f", missed op {missed[op.op_id]}"
    readers = [read for read, write in missed.items() if write == op.op_id]
    if readers:
        text += ", missed by " + ", ".join(f"op {read}" for read in readers)
    attempts = getattr(op, "attempts", 1)
    text += f", {attempts} attempts" if attempts > 1 else ""
    return text + (f"  [{', '.join(letters)}]" if letters else "")


def letters_of(anomalies: list[Anomaly]) -> dict[int, list[tuple[str, str]]]:
    """Each operation of ``anomalies``: the (letter, kind) of every one it takes part in."""
    letters: dict[int, list[tuple[str, str]]] = {}
    for letter, anomaly in zip(string.ascii_uppercase, anomalies, strict=False):
        for op_id in anomaly.ops:
            letters.setdefault(op_id, []).append((letter, anomaly.kind))
    return letters


def anomaly_legend(figure: Figure, anomalies: list[Anomaly]) -> None:
    """Above the diagram: each lettered anomaly's kind and note, beside its outline colour."""
    handles = [
        Patch(
            fc="none",
            ec=ANOMALY_COLOURS[anomaly.kind],
            lw=ANOMALY_LW,
            label=textwrap.fill(f"{letter}  {kind_noun(anomaly.kind)}: {anomaly.note}", 130),
        )
        for letter, anomaly in zip(string.ascii_uppercase, anomalies[:MARKED], strict=False)
    ]
    if len(anomalies) > MARKED:
        more = Patch(fc="none", ec="none", label=f"and {len(anomalies) - MARKED} more among these operations")
        handles.append(more)
    figure.legend(
        handles=handles,
        loc="outside upper left",
        fontsize=8,
        title="consistency anomalies (outlined operations, lettered)",
        title_fontsize=8,
        alignment="left",
    )


def lay_out(
    figure: Figure,
    axes: Axes,
    marks: list[OpMark],
    texts: list[Text],
    sparse: Sequence[Text] = (),
    note: str = "",
) -> None:
    """Size the figure for the op label column, lay it out, then place ``marks`` and thin ``texts``
    (those also in ``sparse`` are left out where they repeat one kept nearby, too); ``note`` goes
    under the axes, above the count of labels left out."""
    renderer = figure.canvas.get_renderer()
    if marks:
        widest_in = max(mark.label.get_window_extent(renderer).width for mark in marks) / figure.dpi
        bars = max(axes.get_xlim()[0] - _column_x(marks), 0.0)  # lanes the bars take left of the x range
        width = figure.get_figwidth() + widest_in + 1.6 * bars + 0.1
        figure.set_size_inches(min(max(width, 6.0), 40.0), figure.get_figheight())
    for artist in [mark.label for mark in marks] + texts:
        artist.set_in_layout(False)  # inside the axes: they must not move it
    # Room for the note on hidden labels, known only after the layout: written later, it would
    # move the axes at the next layout, and the labels kept apart with them.
    axes.set_xlabel(_lines(note, "(every)"), fontsize=7, color="none")  # as tall as the notes, unseen
    figure.draw_without_rendering()  # runs the constrained layout
    if marks:
        _fit_column(axes, marks, renderer)
        _stack(axes, marks, renderer)
    always = [t for t in axes.texts if (t.get_gid() or "").startswith(_FIXED)]
    _clear_cut_labels(axes, always, renderer)
    fixed = [mark.label for mark in marks] + always
    hidden = _thin(axes, texts, fixed, renderer, set(sparse))
    where = "would overlap or repeat" if sparse else "would overlap"
    count = f"{hidden} of {len(texts)} message labels left out where they {where}" if hidden else ""
    if note or hidden:
        axes.set_xlabel(_lines(note, count) + " (every time is in messages.parquet)", color="0.35")


def _lines(*notes: str) -> str:
    """The non-empty ``notes``, one a line."""
    return "\n".join(note for note in notes if note)


def _column_x(marks: list[OpMark]) -> float:
    """The right edge of the label column, in lanes: just left of the leftmost bar."""
    return min(mark.bar_x for mark in marks) - 0.08


def _fit_column(axes: Axes, marks: list[OpMark], renderer) -> None:
    """Widen the axes' x range on the left until the widest label fits in the column."""
    box = axes.get_window_extent(renderer)
    widest = max(mark.label.get_window_extent(renderer).width for mark in marks)
    widest *= 1.12  # text widths do not scale exactly with the dpi the figure is saved at
    column = _column_x(marks)
    left, right = axes.get_xlim()
    need = min((widest + 8) / box.width, 0.9)  # the column's share of the axes width
    axes.set_xlim(min(left, (column - need * right) / (1 - need)), right)
    for mark in marks:
        mark.label.set_x(column)


def _stack(axes: Axes, marks: list[OpMark], renderer) -> None:
    """Move labels down (or up, near the bottom) until none overlaps another; draw leader lines."""
    box = axes.get_window_extent(renderer)
    order = sorted(marks, key=lambda mark: mark.start_ms)
    heights = [mark.label.get_window_extent(renderer).height + _GAP_PX for mark in order]
    wanted = [box.y1 - axes.transData.transform((0, mark.start_ms))[1] for mark in order]
    tops = _stacked(wanted, heights, box.height)
    column = _column_x(marks)
    to_data = axes.transData.inverted()
    for mark, top, height in zip(order, tops, heights, strict=True):
        mark.label.set_y(to_data.transform((box.x0, box.y1 - top))[1])
        middle_px = box.y1 - top - (height - _GAP_PX) / 2
        end = to_data.transform((box.x0, _on_bar(axes, mark, middle_px)))[1]
        middle = to_data.transform((box.x0, middle_px))[1]
        op_id = (mark.label.get_gid() or ":").split(":", 1)[1]
        axes.plot(
            [column + 0.01, mark.bar_x], [middle, end], gid=f"op-leader:{op_id}", **_LEADER, **_LEADER_END
        )


def _on_bar(axes: Axes, mark: OpMark, y_px: float) -> float:
    """Where ``mark``'s leader meets its bar (display y): level with its label where the bar is,
    else the bar's nearest end, a little inside it. Bars of operations that start together stand
    side by side, so leaders ending at their start would meet in one point and cross."""
    top, bottom = axes.transData.transform([(0, mark.start_ms), (0, mark.end_ms)])[:, 1]
    inset = min(_INSET_PX, abs(top - bottom) / 2)
    return float(np.clip(y_px, bottom + inset, top - inset))


def _stacked(wanted: list[float], heights: list[float], limit: float) -> list[float]:
    """Tops (px down from the axes top) as near ``wanted`` as no overlap and [0, ``limit``] allow."""
    tops: list[float] = []
    for i, want in enumerate(wanted):
        tops.append(max(want, tops[-1] + heights[i - 1] if tops else 0.0))
    floor = limit
    for i in range(len(tops) - 1, -1, -1):  # push back up what ran past the bottom
        tops[i] = min(tops[i], floor - heights[i])
        floor = tops[i]
    return [max(top, 0.0) for top in tops]


def _clear_cut_labels(axes: Axes, always: list[Text], renderer) -> None:
    """Move each cut's label left along its dotted line, past any fault label it would overlap: both
    are written at the right edge, so a partition starting beside a cut would print over it."""
    to_axes = axes.transAxes.inverted()
    for label in [t for t in always if t.get_gid().startswith("cut-label:")]:
        for _ in always:  # each move clears one label; it can meet at most all the others
            box = np.array([_extent(label, renderer)])
            clash = [t for t in always if t is not label and _overlaps(box, _extent(t, renderer))]
            if not clash:
                break
            left_px = min(t.get_window_extent(renderer).x0 for t in clash) - 2 * _GAP_PX
            label.set_x(to_axes.transform((left_px, 0))[0])  # right-aligned, in axes fractions


def _thin(axes: Axes, texts: list[Text], fixed: list[Text], renderer, sparse: set[Text]) -> int:
    """Hide each of ``texts`` that leaves the axes or overlaps a label kept before it, and each of
    ``sparse`` near a kept one saying the same; return how many were hidden."""
    inside = axes.get_window_extent(renderer)
    kept = _Boxes()
    for text in fixed:
        kept.add(_extent(text, renderer))
    said: dict[str, list[float]] = {}  # each sparse label's words: the sorted middles (px) of those kept
    hidden = 0
    for text in texts:
        x0, y0, x1, y1 = box = _extent(text, renderer)
        outside = x0 < inside.x0 or x1 > inside.x1 or y0 < inside.y0 or y1 > inside.y1
        repeated = text in sparse and _near(said.get(text.get_text(), []), (y0 + y1) / 2)
        if outside or repeated or kept.overlaps(box):
            text.set_visible(False)
            hidden += 1
        else:
            kept.add(box)
            if text in sparse:
                bisect.insort(said.setdefault(text.get_text(), []), (y0 + y1) / 2)
    return hidden


class _Boxes:
    """Label boxes (display px) filed by the grid cells they cover, so that whether a new one
    overlaps any is asked of its neighbours only, not of every label kept."""

    def __init__(self) -> None:
        self._cells: dict[tuple[int, int], list[tuple]] = {}

    def add(self, box: tuple[float, float, float, float]) -> None:
        for cell in _cells(box):
            self._cells.setdefault(cell, []).append(box)

    def overlaps(self, box: tuple[float, float, float, float]) -> bool:
        """Whether ``box`` overlaps or touches any box added (touching labels read as one)."""
        x0, y0, x1, y1 = box
        return any(
            a0 <= x1 and a1 >= x0 and b0 <= y1 and b1 >= y0
            for cell in _cells(box)
            for a0, b0, a1, b1 in self._cells.get(cell, ())
        )


def _cells(box: tuple[float, float, float, float]) -> list[tuple[int, int]]:
    """The grid cells (:data:`_CELL_PX` square) ``box`` covers; none for a box not placed (NaN)."""
    if not all(map(math.isfinite, box)):
        return []
    x0, y0, x1, y1 = (math.floor(v / _CELL_PX) for v in box)
    return [(i, j) for i in range(x0, x1 + 1) for j in range(y0, y1 + 1)]


def _near(middles: list[float], y: float) -> bool:
    """Whether any of the sorted ``middles`` (px) is within :data:`_REPEAT_PX` of ``y``."""
    after = bisect.bisect_left(middles, y)
    return any(abs(middles[i] - y) < _REPEAT_PX for i in (after - 1, after) if 0 <= i < len(middles))


def _extent(text: Text, renderer) -> tuple[float, float, float, float]:
    box = text.get_window_extent(renderer)
    return box.x0, box.y0, box.x1, box.y1


def _overlaps(boxes: np.ndarray, box: tuple[float, float, float, float]) -> bool:
    """Whether ``box`` overlaps or touches any of ``boxes`` (touching labels read as one)."""
    x0, y0, x1, y1 = box
    return bool(np.any((boxes[:, 0] <= x1) & (boxes[:, 2] >= x0) & (boxes[:, 1] <= y1) & (boxes[:, 3] >= y0)))
