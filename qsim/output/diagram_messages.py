"""The messages of a sequence diagram (:mod:`qsim.output.diagram`): an arrow per delivered message, a
line ending in a red X per dropped one, with send and delivery times beside the lifelines and the
kind on the arrow. Every artist carries a gid (``message:<i>``, ``dropped:<i>``, ``drop:<i>``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import FancyArrowPatch
from matplotlib.path import Path as MplPath
from matplotlib.text import Text

KIND_GROUPS = {
    "write_request": "write path",
    "write_ack": "write path",
    "read_request": "read path",
    "read_response": "read path",
    "client_request": "client hops",
    "client_response": "client hops",
    "read_repair": "repair",
    "read_repair_ack": "repair",
    "hint": "hints",
    "hint_ack": "hints",
    "anti_entropy": "anti-entropy",
}
GROUP_COLOURS = {
    "write path": "tab:orange",  # reads blue and writes orange, as in the run plots
    "read path": "tab:blue",
    "client hops": "black",
    "repair": "tab:green",
    "hints": "tab:cyan",
    "anti-entropy": "tab:brown",
    "other": "tab:gray",
}
REPLIES = {"write_ack", "read_response", "client_response", "read_repair_ack", "hint_ack"}  # dashed
CLIENT_PREFIX = "clients@"
LABEL = {"fontsize": 6, "clip_on": True}
KIND_BOX = {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7}


def draw_messages(
    axes: Axes, messages: pd.DataFrame, x: dict[str, float], typical_ms: float, emphasis: set[int]
) -> list:
    """Draw every message, those of the ``emphasis`` ops bold and the others lighter; return the
    labels in the order they are kept where they would overlap: the bold ops' first, then drop
    reasons, times and kinds."""
    bold, light = _TimeLabels(axes), _TimeLabels(axes)
    drops, kinds = ([], []), ([], [])
    for i, message in enumerate(messages.itertuples(index=False)):
        strong = message.op_id in emphasis
        line = {"lw": 2.0 if strong else 1.1, "alpha": 1.0 if strong or not emphasis else 0.55}
        colour = GROUP_COLOURS[KIND_GROUPS.get(message.kind, "other")]
        style = "--" if message.kind in REPLIES else "-"
        times = bold if strong else light
        if message.dropped:
            drops[strong].append(_draw_dropped(axes, i, message, x, colour, style, line, typical_ms, times))
        else:
            kinds[strong].append(_draw_delivered(axes, i, message, x, colour, style, line, times))
    return drops[1] + bold.texts + kinds[1] + drops[0] + light.texts + kinds[0]


class _TimeLabels:
    """Writes a time beside a lifeline once per lane, time and side (a fan-out or a reply shares it)."""

    def __init__(self, axes: Axes):
        self._axes = axes
        self._done: set[tuple] = set()
        self.texts: list = []

    def __call__(self, x: float, t_ms: float, side: float, below: bool, colour: str) -> None:
        text = f"{t_ms:.2f}"
        if (x, text, side) in self._done:
            return
        self._done.add((x, text, side))
        label = self._axes.text(
            x + 0.04 * side,
            t_ms,
            text,
            ha="left" if side > 0 else "right",
            va="top" if below else "bottom",
            color=colour,
            **LABEL,
        )
        self.texts.append(label)


def _draw_delivered(
    axes: Axes, i: int, message, x: dict, colour: str, style: str, line: dict, times: _TimeLabels
) -> Text:
    """An arrow from (src, sent) to (dst, delivered), times at both ends; return the kind's label."""
    start, end = (x[message.src], message.sent_ms), (x[message.dst], message.delivered_ms)
    loop = message.src == message.dst  # drawn as a bracket out to the right and back
    arrow_style = {
        "arrowstyle": "-|>",
        "mutation_scale": 9,
        "color": colour,
        **line,
        "linestyle": style,
        "shrinkA": 0,
        "shrinkB": 0,
        "zorder": 3,
        "gid": f"message:{i}",
    }
    if loop:  # out to the right and back: connection styles divide by the length, zero for local delivery
        out = start[0] + 0.15
        arrow = FancyArrowPatch(path=MplPath([start, (out, start[1]), (out, end[1]), end]), **arrow_style)
    else:
        arrow = FancyArrowPatch(start, end, **arrow_style)
    axes.add_patch(arrow)
    side = 1.0 if loop or end[0] > start[0] else -1.0
    times(start[0], message.sent_ms, side, below=False, colour=colour)
    if not loop or message.delivered_ms != message.sent_ms:
        times(end[0], message.delivered_ms, 1.0 if loop else -side, below=True, colour=colour)
    middle = (start[0] + 0.2, start[1]) if loop else ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    return axes.text(
        *middle,
        message.kind,
        ha="left" if loop else "center",
        va="center",
        color=colour,
        fontsize=5.5,
        clip_on=True,
        bbox=KIND_BOX,
    )


def _draw_dropped(
    axes: Axes,
    i: int,
    message,
    x: dict,
    colour: str,
    style: str,
    line: dict,
    typical_ms: float,
    times: _TimeLabels,
) -> Text:
    """A line towards dst ending in a red X; return the label giving the reason.

    A message that reached its destination and was dropped there (down, crashed, cut link: the
    trace has its ``lost_ms``) ends just short of dst's lifeline at that time; one lost in flight
    ends halfway, half a typical delay after it was sent.
    """
    x_src, x_dst = x[message.src], x[message.dst]
    arrived = not pd.isna(getattr(message, "lost_ms", float("nan")))
    if x_src == x_dst:
        x_end = x_src + 0.25
    elif arrived:
        x_end = x_dst - 0.08 * np.sign(x_dst - x_src)
    else:
        x_end = (x_src + x_dst) / 2
        if x_end.is_integer():  # halfway is another lifeline: stop short of it, or it looks delivered there
            x_end -= 0.3 * np.sign(x_dst - x_src)
    y_end = lost_ms(message, typical_ms)
    axes.plot(
        [x_src, x_end],
        [message.sent_ms, y_end],
        color=colour,
        **line,
        linestyle=style,
        zorder=3,
        gid=f"dropped:{i}",
    )
    axes.plot([x_end], [y_end], marker="x", color="red", markersize=8, mew=2, zorder=4, gid=f"drop:{i}")
    label = axes.text(
        x_end,
        y_end,
        f" {message.kind} to {message.dst}: {message.reason or 'dropped'}",
        ha="left",
        va="top",
        color="red",
        **LABEL,
    )
    times(x_src, message.sent_ms, 1.0 if x_end > x_src else -1.0, below=False, colour=colour)
    return label


def lost_ms(message, typical_ms: float) -> float:
    """When a dropped message was lost, if the trace says (``lost_ms``), else half a typical delay
    after it was sent."""
    lost_ms = getattr(message, "lost_ms", float("nan"))
    return message.sent_ms + typical_ms / 2 if pd.isna(lost_ms) else float(lost_ms)
