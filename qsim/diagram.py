"""Message-sequence (Lamport) diagrams of a traced run, built from its DataFrames.

One vertical lifeline per participant (client endpoints, then nodes), time flowing downward, an
arrow per delivered message and a half arrow ending in an X per dropped one. Every artist drawn
for a message, a fault or an operation carries a gid ``<role>:<id>`` (``lifeline:n1``,
``message:3``, ``drop:4``, ``crash:n2:0``, ``partition:1``, ``op:7``), so tests and SVG readers
can find it; message ids are row positions in ``messages``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Patch, Rectangle
from matplotlib.path import Path as MplPath

from qsim import results  # the module, not its names: results may come to import this module

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
_LABEL = {"fontsize": 6, "clip_on": True}
_KIND_BOX = {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7}
_OUTCOME_FILL = {"ok": "0.85", "stale": "gold", "failed": "salmon"}


def sequence_diagram(
    messages: pd.DataFrame,
    faults: pd.DataFrame | None = None,
    ops: pd.DataFrame | None = None,
    *,
    title: str = "",
) -> Figure:
    """Draw the traced ``messages`` as a sequence diagram, with crash and partition faults and ops.

    Args:
        messages: one row per message (op_id, kind, src, dst, sent_ms, delivered_ms, dropped,
            reason); times in ms.
        faults: the run's faults; crashes of a drawn node shade its lifeline, partitions shade
            every lifeline, over the part of their interval inside the drawn time range.
        ops: the run's operations; those with traced messages are marked at their first
            sender's lane (their client) from start_ms to end_ms, with their outcome.
        title: the figure title (default: "Message sequence").
    """
    lanes = participants(messages)
    figure = Figure(figsize=_figure_size(len(lanes), len(messages), ops is not None), layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title or "Message sequence")
    if messages.empty:
        axes.text(0.5, 0.5, "no traced messages", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return figure
    traced = _traced_ops(ops, messages)
    low_ms, high_ms = _time_range(messages, traced)
    x = {name: float(i) for i, name in enumerate(lanes)}
    _draw_lifelines(axes, x, low_ms, high_ms, left=-1.2 if len(traced) else -0.5)
    drawn = _draw_faults(axes, faults, x, low_ms, high_ms) if faults is not None else set()
    _draw_messages(axes, messages, x)
    if len(traced):
        _draw_ops(axes, traced, messages, x, high_ms)
    figure.legend(
        handles=_legend_handles(messages, drawn, traced), loc="outside lower center", ncols=5, fontsize=8
    )
    return figure


def participants(messages: pd.DataFrame) -> list[str]:
    """Every sender and receiver: client endpoints first, then nodes, each in natural name order."""
    names = set(messages["src"]) | set(messages["dst"])
    return sorted(names, key=lambda name: (not name.startswith(CLIENT_PREFIX), _natural(name)))


def _natural(name: str) -> list:
    """Sort key putting n2 before n10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _figure_size(lanes: int, messages: int, with_ops: bool) -> tuple[float, float]:
    """Inches: about 1.6 per lane across and 0.3 per message down, within readable bounds."""
    width = 1.6 * lanes + (2.0 if with_ops else 1.0)
    return min(max(width, 6.0), 30.0), min(max(3.0 + 0.3 * messages, 4.5), 30.0)


def _traced_ops(ops: pd.DataFrame | None, messages: pd.DataFrame) -> pd.DataFrame:
    """The operations that have messages in the trace (background traffic has op_id -1)."""
    if ops is None:
        return pd.DataFrame(columns=["op_id"])
    return ops[ops["op_id"].isin(messages["op_id"])]


def _time_range(messages: pd.DataFrame, traced: pd.DataFrame) -> tuple[float, float]:
    """The drawn time range (ms): every send, delivery and operation start, plus a margin.

    Operation ends are left out: one timeout would squeeze every message into the top of the plot.
    """
    times = [messages["sent_ms"], messages["delivered_ms"].dropna()]
    if len(traced):
        times.append(traced["start_ms"])
    values = pd.concat(times).to_numpy(dtype=float)
    low, high = float(values.min()), float(values.max())
    margin = 0.05 * (high - low) if high > low else 1.0
    return low - margin, high + margin


def _draw_lifelines(axes: Axes, x: dict[str, float], low_ms: float, high_ms: float, left: float) -> None:
    for name, position in x.items():
        axes.plot(
            [position, position], [low_ms, high_ms], color="0.55", lw=1, zorder=1, gid=f"lifeline:{name}"
        )
    axes.set_xticks(list(x.values()), list(x), fontweight="bold")
    axes.xaxis.tick_top()
    axes.tick_params(axis="x", length=0)
    axes.set_xlim(left, len(x) - 0.5)
    axes.set_ylim(high_ms, low_ms)  # time flows downward
    axes.set_ylabel("time (ms)")
    axes.grid(True, axis="y", alpha=0.2)
    for side in ("top", "right", "bottom"):
        axes.spines[side].set_visible(False)


def _draw_faults(axes: Axes, faults: pd.DataFrame, x: dict, low_ms: float, high_ms: float) -> set[str]:
    """Shade crashes on their node's lifeline and partitions across all; return the kinds drawn."""
    drawn = set()
    for fault in faults.itertuples(index=False):
        start = max(fault.start_ms, low_ms)
        end = high_ms if np.isnan(fault.end_ms) else min(fault.end_ms, high_ms)
        if end <= start:
            continue  # outside the drawn time range
        if fault.kind == "crash" and fault.target in x:
            band = Rectangle(
                (x[fault.target] - 0.08, start),
                0.16,
                end - start,
                color="tab:red",
                alpha=0.35,
                lw=0,
                zorder=1.5,
                gid=f"crash:{fault.target}:{fault.fault_id}",
            )
            axes.add_patch(band)
            drawn.add("crash")
        elif fault.kind == "partition":
            axes.axhspan(start, end, color="tab:purple", alpha=0.1, lw=0, gid=f"partition:{fault.fault_id}")
            axes.text(
                0.995,
                start,
                f"partition {fault.target}",
                transform=axes.get_yaxis_transform(),
                ha="right",
                va="top",
                color="tab:purple",
                fontsize=7,
            )
            drawn.add("partition")
    return drawn


def _draw_messages(axes: Axes, messages: pd.DataFrame, x: dict[str, float]) -> None:
    delays = (messages["delivered_ms"] - messages["sent_ms"]).dropna()
    typical_ms = float(delays.median()) if len(delays) and delays.median() > 0 else 1.0
    times = _TimeLabels(axes)
    for i, message in enumerate(messages.itertuples(index=False)):
        colour = GROUP_COLOURS[KIND_GROUPS.get(message.kind, "other")]
        style = "--" if message.kind in REPLIES else "-"
        if message.dropped:
            _draw_dropped(axes, i, message, x, colour, style, typical_ms, times)
        else:
            _draw_delivered(axes, i, message, x, colour, style, times)


class _TimeLabels:
    """Writes a time beside a lifeline once per lane, time and side (a fan-out or a reply shares it)."""

    def __init__(self, axes: Axes):
        self._axes = axes
        self._done: set[tuple] = set()

    def __call__(self, x: float, t_ms: float, side: float, below: bool, colour: str) -> None:
        text = f"{t_ms:.2f}"
        if (x, text, side) in self._done:
            return
        self._done.add((x, text, side))
        self._axes.text(
            x + 0.04 * side,
            t_ms,
            text,
            ha="left" if side > 0 else "right",
            va="top" if below else "bottom",
            color=colour,
            **_LABEL,
        )


def _draw_delivered(
    axes: Axes, i: int, message, x: dict, colour: str, style: str, times: _TimeLabels
) -> None:
    """An arrow from (src, sent) to (dst, delivered), times at both ends and the kind in the middle."""
    start, end = (x[message.src], message.sent_ms), (x[message.dst], message.delivered_ms)
    loop = message.src == message.dst  # drawn as a bracket out to the right and back
    arrow_style = {
        "arrowstyle": "-|>",
        "mutation_scale": 9,
        "color": colour,
        "lw": 1.1,
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
    axes.text(
        *middle,
        message.kind,
        ha="left" if loop else "center",
        va="center",
        color=colour,
        fontsize=5.5,
        clip_on=True,
        bbox=_KIND_BOX,
    )


def _draw_dropped(
    axes: Axes, i: int, message, x: dict, colour: str, style: str, typical_ms: float, times: _TimeLabels
) -> None:
    """Half an arrow towards dst, sloping like a typical delivery, ending in a red X and the reason."""
    x_src, x_dst = x[message.src], x[message.dst]
    x_end = (x_src + x_dst) / 2 if x_src != x_dst else x_src + 0.25
    if x_end.is_integer():  # halfway is another lifeline: stop short of it, or it looks delivered there
        x_end -= 0.3 * np.sign(x_dst - x_src)
    y_end = message.sent_ms + typical_ms / 2
    axes.plot(
        [x_src, x_end],
        [message.sent_ms, y_end],
        color=colour,
        lw=1.1,
        linestyle=style,
        zorder=3,
        gid=f"dropped:{i}",
    )
    axes.plot([x_end], [y_end], marker="x", color="red", markersize=8, mew=2, zorder=4, gid=f"drop:{i}")
    axes.text(
        x_end,
        y_end,
        f" {message.kind} to {message.dst}: {message.reason or 'dropped'}",
        ha="left",
        va="top",
        color="red",
        **_LABEL,
    )
    times(x_src, message.sent_ms, 1.0 if x_end > x_src else -1.0, below=False, colour=colour)


def _draw_ops(
    axes: Axes, traced: pd.DataFrame, messages: pd.DataFrame, x: dict[str, float], high_ms: float
) -> None:
    """A box per operation from start_ms to end_ms beside its lane (overlapping ones side by side),
    labelled left of all the boxes; one ending after ``high_ms`` is cut there and says when it ended."""
    first = messages.sort_values("sent_ms", kind="stable").drop_duplicates("op_id").set_index("op_id")["src"]
    placed, widths = _slots(traced.sort_values("start_ms"), first)
    for op, lane, slot in placed:
        outcome = _outcome(op)
        end_ms = op.start_ms if np.isnan(op.end_ms) else min(op.end_ms, high_ms)
        later = f" (ends {op.end_ms:.2f})" if op.end_ms > high_ms else ""
        box = Rectangle(
            (x[lane] - 0.1 - 0.07 * slot, op.start_ms),
            0.05,
            end_ms - op.start_ms,
            fc=_OUTCOME_FILL[outcome],
            ec="black",
            lw=0.6,
            zorder=2,
            gid=f"op:{op.op_id}",
        )
        axes.add_patch(box)
        axes.text(
            x[lane] - 0.05 - 0.07 * widths[lane],
            op.start_ms,
            f"op {op.op_id} {op.kind}: {outcome}{later}",
            ha="right",
            va="top",
            fontsize=7,
            clip_on=True,
            gid=f"op-label:{op.op_id}",
        )


def _slots(ops: pd.DataFrame, lanes: pd.Series) -> tuple[list[tuple], dict[str, int]]:
    """Place each op in the first slot of its lane free by its start: (op, lane, slot) in start order,
    and the number of slots each lane needed."""
    slot_ends: dict[str, list[float]] = {}
    placed = []
    for op in ops.itertuples(index=False):
        lane = lanes[op.op_id]
        ends = slot_ends.setdefault(lane, [])
        slot = next((s for s, busy_until in enumerate(ends) if busy_until < op.start_ms), len(ends))
        ends[slot : slot + 1] = [op.start_ms if np.isnan(op.end_ms) else op.end_ms]
        placed.append((op, lane, slot))
    return placed, {lane: len(ends) for lane, ends in slot_ends.items()}


def _outcome(op) -> str:
    """'failed' if the operation did not complete ok, 'stale' for a stale read, else 'ok'."""
    if not op.ok:
        return "failed"
    stale = getattr(op, "stale", None)
    return "stale" if stale is not None and not pd.isna(stale) and bool(stale) else "ok"


def _legend_handles(messages: pd.DataFrame, faults_drawn: set[str], traced: pd.DataFrame) -> list:
    present = {KIND_GROUPS.get(kind, "other") for kind in messages["kind"]}
    handles = [Line2D([], [], color=c, lw=1.5, label=g) for g, c in GROUP_COLOURS.items() if g in present]
    if messages["kind"].isin(REPLIES).any():
        handles.append(Line2D([], [], color="black", lw=1, linestyle="--", label="reply (dashed)"))
    if messages["dropped"].any():
        handles.append(Line2D([], [], color="red", marker="x", mew=2, linestyle="none", label="dropped"))
    if "crash" in faults_drawn:
        handles.append(Patch(color="tab:red", alpha=0.35, label="crash"))
    if "partition" in faults_drawn:
        handles.append(Patch(color="tab:purple", alpha=0.1, label="partition"))
    if len(traced):
        outcomes = {_outcome(op) for op in traced.itertuples(index=False)}
        handles += [
            Patch(fc=_OUTCOME_FILL[o], ec="black", label=f"op {o}") for o in _OUTCOME_FILL if o in outcomes
        ]
    return handles


def write_diagram(figure: Figure, folder: str | Path, stem: str = "sequence") -> list[Path]:
    """Write ``<stem>.svg`` and ``<stem>.png`` into ``folder`` (each atomically); return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg")
    paths = [folder / f"{stem}.svg", folder / f"{stem}.png"]
    results.atomic_write(paths[0], buffer.getvalue())
    results.atomic_write(paths[1], results.png_bytes(figure))
    return paths
