"""The messages of a sequence diagram (:mod:`qsim.output.diagram`): an arrow per delivered message, a
line ending in a red X per dropped one, with send and delivery times beside the lifelines and the
kind on the arrow. Every artist carries a gid (``message:<i>``, ``dropped:<i>``, ``drop:<i>``).

The leader protocol's messages between nodes have styles of their own: votes (``request_vote``,
``vote``) in a colour that stands out, and log replication (``append_entries``, ``append_ack``)
thin and light, so that client hops and votes are seen through a leader's heartbeats. The trace
records neither whether a vote was granted nor whether an AppendEntries carried entries, so votes
are drawn alike and every AppendEntries is drawn as quietly as a heartbeat. A traced window of
seconds holds thousands of them (a heartbeat every 50 ms to every follower, and one per write):
past :data:`REPLICATION_CAP`, only those nearest the traced operations are drawn
(:func:`replication_shown`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
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
    "request_vote": "votes",
    "vote": "votes",
    "append_entries": "log replication",
    "append_ack": "log replication",
}
GROUP_COLOURS = {
    "write path": "tab:orange",  # reads blue and writes orange, as in the run plots
    "read path": "tab:blue",
    "client hops": "black",
    "repair": "tab:green",
    "hints": "tab:cyan",
    "anti-entropy": "tab:brown",
    "votes": "mediumvioletred",
    "log replication": "darkolivegreen",
    "other": "tab:gray",
}
REPLIES = {  # drawn dashed
    "write_ack",
    "read_response",
    "client_response",
    "read_repair_ack",
    "hint_ack",
    "append_ack",
    "vote",
}
QUIET = {"log replication"}  # groups drawn thin and light, their labels kept last and not repeated
QUIET_LINE = {"lw": 0.6, "alpha": 0.4, "zorder": 2.6}  # under the other arrows
QUIET_CROSS = {"markersize": 5, "mew": 1.2, "alpha": 0.7}  # where a quiet message was dropped
_CROSS = {"markersize": 8, "mew": 2}  # where any other was
_QUIET_TEXT = {"alpha": 0.7}  # the times and drop reasons of quiet messages
CLIENT_PREFIX = "clients@"
LABEL = {"fontsize": 6, "clip_on": True}
KIND_BOX = {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7}
_GROUP_NOTES = {  # what the trace cannot tell apart is said in the legend
    "votes": "votes (granted or refused alike)",
    "log replication": "AppendEntries and acks, heartbeats alike (thin)",
}
REPLICATION_CAP = 200  # AppendEntries and acks drawn at most: more are a wall of green
_LIGHT, _BOLD, _QUIET = range(3)  # how a message is drawn: of an op not emphasised, emphasised, quiet


class Drawn(NamedTuple):
    """The labels :func:`draw_messages` wrote, in the order they are kept where they would overlap,
    and those of them (kinds and drop reasons of quiet messages) to leave out where they repeat."""

    labels: list[Text]
    sparse: list[Text]


class _Style(NamedTuple):
    """How one message is drawn: its colour, line style, line keywords, arrow head size, the
    keywords of the X where it was dropped and of the label saying why."""

    colour: str
    linestyle: str
    line: dict
    head: float
    cross: dict
    text: dict


def replication_shown(
    messages: pd.DataFrame, lifetimes_ms: np.ndarray, cap: int = REPLICATION_CAP
) -> np.ndarray:
    """Which messages to draw: every one but the AppendEntries and acks past the ``cap`` nearest the
    traced operations.

    Those sent or received within an operation's lifetime come first, then the others; within each,
    those nearest in time to a traced operation's own messages or its start or end. Dropped ones
    get no precedence: a node down or cut off for long loses hundreds. With no operation to be
    near, every k-th is kept.

    Args:
        messages: the trace, one row per message (kind, op_id, sent_ms, delivered_ms, dropped).
        lifetimes_ms: the traced operations' (start, end) rows, in ms; an end of NaN: never ended.
        cap: the most AppendEntries and acks to draw.

    Returns:
        A boolean mask over the rows of ``messages``.
    """
    quiet = np.flatnonzero(messages["kind"].map(KIND_GROUPS).isin(QUIET).to_numpy())
    shown = np.ones(len(messages), dtype=bool)
    if len(quiet) <= cap:
        return shown
    sent, ends = _spans_ms(messages)
    own = messages["op_id"].to_numpy() >= 0
    anchors = np.sort(np.concatenate([sent[own], ends[own], lifetimes_ms[np.isfinite(lifetimes_ms)]]))
    if len(anchors):
        outside = ~(_within(sent[quiet], lifetimes_ms) | _within(ends[quiet], lifetimes_ms))
        near = np.minimum(_distance(sent[quiet], anchors), _distance(ends[quiet], anchors))
        kept = quiet[np.lexsort((near, outside))[:cap]]
    else:
        kept = quiet[np.argsort(sent[quiet], kind="stable")][np.linspace(0, len(quiet) - 1, cap).astype(int)]
    shown[quiet] = False
    shown[kept] = True
    return shown


def left_out(messages: pd.DataFrame, shown: np.ndarray) -> str:
    """The footnote saying how many AppendEntries and acks ``shown`` leaves out ('' if none)."""
    count = int(np.count_nonzero(~shown))
    if not count:
        return ""
    total = int(messages["kind"].map(KIND_GROUPS).isin(QUIET).sum())
    farthest = "those farthest in time from the traced operations"
    return f"{count:,} of {total:,} AppendEntries/acks not drawn: {farthest}"


def _spans_ms(messages: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each message's send time and when it ended: delivered, lost (if the trace says), else sent."""
    sent = messages["sent_ms"].to_numpy(dtype=float)
    lost = messages["lost_ms"].to_numpy(dtype=float) if "lost_ms" in messages else np.full(len(sent), np.nan)
    ends = np.where(messages["dropped"].to_numpy(dtype=bool), lost, messages["delivered_ms"].to_numpy(float))
    return sent, np.where(np.isnan(ends), sent, ends)


def _within(times_ms: np.ndarray, lifetimes_ms: np.ndarray) -> np.ndarray:
    """Whether each time falls in any (start, end) row of ``lifetimes_ms`` (a NaN end: to the end)."""
    if not len(lifetimes_ms):
        return np.zeros(len(times_ms), dtype=bool)
    order = np.argsort(lifetimes_ms[:, 0])
    starts, ends = lifetimes_ms[order, 0], np.nan_to_num(lifetimes_ms[order, 1], nan=np.inf)
    reach = np.maximum.accumulate(ends)  # the furthest any lifetime begun by then runs
    last = np.searchsorted(starts, times_ms, side="right") - 1
    return (last >= 0) & (times_ms <= reach[np.maximum(last, 0)])


def _distance(times_ms: np.ndarray, anchors_ms: np.ndarray) -> np.ndarray:
    """How far (ms) each time is from the nearest of the sorted ``anchors_ms``."""
    after = np.searchsorted(anchors_ms, times_ms)
    left = anchors_ms[np.maximum(after - 1, 0)]
    right = anchors_ms[np.minimum(after, len(anchors_ms) - 1)]
    return np.minimum(np.abs(times_ms - left), np.abs(right - times_ms))


def draw_messages(
    axes: Axes,
    messages: pd.DataFrame,
    x: dict[str, float],
    typical_ms: float,
    emphasis: set[int],
    ids: Sequence[int] | None = None,
) -> Drawn:
    """Draw every message, those of the ``emphasis`` ops bold, the others lighter and quiet groups
    thin; return the labels in the order they are kept where they would overlap: the bold ops'
    first, then drop reasons, times and kinds, then those of quiet groups. ``ids``: each row's id in
    its artists' gids (default: its position)."""
    times = (_TimeLabels(axes), _TimeLabels(axes), _TimeLabels(axes, _QUIET_TEXT))  # by rank
    drops, kinds = ([], [], []), ([], [], [])
    ids = range(len(messages)) if ids is None else ids
    for i, message in zip(ids, messages.itertuples(index=False), strict=True):
        rank = _QUIET if KIND_GROUPS.get(message.kind) in QUIET else int(message.op_id in emphasis)
        style = _style(message.kind, rank, bool(emphasis))
        if message.dropped:
            drops[rank].append(_draw_dropped(axes, i, message, x, style, typical_ms, times[rank]))
        else:
            kinds[rank].append(_draw_delivered(axes, i, message, x, style, times[rank]))
    labels = [
        *drops[_BOLD], *times[_BOLD].texts, *kinds[_BOLD],
        *drops[_LIGHT], *times[_LIGHT].texts, *kinds[_LIGHT],
        *drops[_QUIET], *times[_QUIET].texts, *kinds[_QUIET],
    ]  # fmt: skip
    return Drawn(labels, drops[_QUIET] + kinds[_QUIET])


def _style(kind: str, rank: int, emphasis: bool) -> _Style:
    """The style of a message of ``kind`` and ``rank`` (``emphasis``: whether any op is bold)."""
    colour = GROUP_COLOURS[KIND_GROUPS.get(kind, "other")]
    linestyle = "--" if kind in REPLIES else "-"
    if rank == _QUIET:
        return _Style(colour, linestyle, QUIET_LINE, 6.0, QUIET_CROSS, _QUIET_TEXT)
    bold = rank == _BOLD
    line = {"lw": 2.0 if bold else 1.1, "alpha": 1.0 if bold or not emphasis else 0.55}
    return _Style(colour, linestyle, line, 9.0, _CROSS, {})


def message_legend(messages: pd.DataFrame) -> list[Line2D]:
    """A legend entry per message style drawn: each kind group, replies, and drops (quiet ones apart)."""
    present = {KIND_GROUPS.get(kind, "other") for kind in messages["kind"]}
    handles = [_group_handle(group) for group in GROUP_COLOURS if group in present]
    if messages["kind"].isin(REPLIES).any():
        handles.append(Line2D([], [], color="black", lw=1, linestyle="--", label="reply (dashed)"))
    quiet = messages["kind"].map(KIND_GROUPS).isin(QUIET).to_numpy()
    dropped = messages["dropped"].to_numpy(dtype=bool)
    if (dropped & ~quiet).any():
        handles.append(Line2D([], [], color="red", marker="x", mew=2, linestyle="none", label="dropped"))
    if (dropped & quiet).any():
        label = "AppendEntries or ack dropped"
        handles.append(Line2D([], [], color="red", marker="x", **QUIET_CROSS, linestyle="none", label=label))
    return handles


def _group_handle(group: str) -> Line2D:
    """The legend entry of a group of message kinds, drawn as its arrows are."""
    colour, label = GROUP_COLOURS[group], _GROUP_NOTES.get(group, group)
    if group in QUIET:  # thicker than its arrows, or it would not be seen in the legend
        return Line2D([], [], color=colour, lw=2 * QUIET_LINE["lw"], alpha=QUIET_LINE["alpha"], label=label)
    return Line2D([], [], color=colour, lw=1.5, label=label)


class _TimeLabels:
    """Writes a time beside a lifeline once per lane, time and side (a fan-out or a reply shares it)."""

    def __init__(self, axes: Axes, style: dict | None = None):
        self._axes = axes
        self._style = style or {}  # more text keywords
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
            **self._style,
        )
        self.texts.append(label)


def _draw_delivered(axes: Axes, i: int, message, x: dict, style: _Style, times: _TimeLabels) -> Text:
    """An arrow from (src, sent) to (dst, delivered), times at both ends; return the kind's label."""
    start, end = (x[message.src], message.sent_ms), (x[message.dst], message.delivered_ms)
    loop = message.src == message.dst  # drawn as a bracket out to the right and back
    colour = style.colour
    arrow_style = {
        "arrowstyle": "-|>",
        "mutation_scale": style.head,
        "color": colour,
        "zorder": 3,
        **style.line,
        "linestyle": style.linestyle,
        "shrinkA": 0,
        "shrinkB": 0,
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
    axes: Axes, i: int, message, x: dict, style: _Style, typical_ms: float, times: _TimeLabels
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
        color=style.colour,
        **{"zorder": 3, **style.line},
        linestyle=style.linestyle,
        gid=f"dropped:{i}",
    )
    axes.plot([x_end], [y_end], marker="x", color="red", **style.cross, zorder=4, gid=f"drop:{i}")
    label = axes.text(
        x_end,
        y_end,
        f" {message.kind} to {message.dst}: {message.reason or 'dropped'}",
        ha="left",
        va="top",
        color="red",
        **LABEL,
        **style.text,
    )
    times(x_src, message.sent_ms, 1.0 if x_end > x_src else -1.0, below=False, colour=style.colour)
    return label


def lost_ms(message, typical_ms: float) -> float:
    """When a dropped message was lost, if the trace says (``lost_ms``), else half a typical delay
    after it was sent."""
    lost_ms = getattr(message, "lost_ms", float("nan"))
    return message.sent_ms + typical_ms / 2 if pd.isna(lost_ms) else float(lost_ms)
