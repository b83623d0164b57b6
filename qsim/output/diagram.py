"""Message-sequence (Lamport) diagrams of a traced run, built from its DataFrames.

One vertical lifeline per participant (client endpoints, then nodes), time flowing downward, an
arrow per delivered message and a half arrow ending in an X per dropped one. Each traced
operation is a bar beside its client's lane from its start to its end, filled by its outcome,
and labelled in a column on the left joined to its bar by a leader line ending in a dot on that
bar; labels are stacked so that none overlaps another. Stretches of time with no traced message
are cut short and marked on the time axis (:mod:`qsim.output.timecut`), so bursts far apart in time
both get room; send and delivery times and message kinds are written where they fit and left
out where they would overlap (the figure says how many; every time is in ``messages.parquet``).
Past a few hundred AppendEntries and acks (a leader's heartbeats over seconds), only those nearest
the traced operations are drawn, and the footnote says how many were not.

Every artist drawn for a message, a fault or an operation carries a gid ``<role>:<id>``
(``lifeline:n1``, ``message:3``, ``drop:4``, ``crash:n2:0``, ``partition:1``, ``op:7``,
``op-label:7``, ``op-leader:7``, ``op-outline:monotonic_reads:7``, ``cut:0``), so tests and SVG
readers can find it; message ids are row positions in ``messages``.

The consistency anomalies whose operations are all traced (as :mod:`qsim.checks` finds them) are
lettered A, B, ...: their operations' bars are outlined in the colour of the anomaly's kind, their
labels end in the letter, their messages are drawn bold, and a legend above the diagram gives each
letter's note, e.g. ``A  monotonic-reads violation: client 2 read key 1 twice: read 761 returned
write 757, then read 767 (which started after 761 ended) returned the older write 756``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from qsim import tracing
from qsim.output import timecut
from qsim.output.diagram_labels import (
    ANOMALY_COLOURS,
    ANOMALY_LW,
    MARKED,
    OpMark,
    anomaly_legend,
    lay_out,
    letters_of,
    op_text,
)
from qsim.output.diagram_messages import (
    CLIENT_PREFIX,
    GROUP_COLOURS,  # noqa: F401 (the colours of the kind groups, as readers of the diagram take them)
    draw_messages,
    left_out,
    lost_ms,
    message_legend,
    replication_shown,
)
from qsim.output.files import atomic_write, png_bytes

_OUTCOME_FILL = {"ok": "0.85", "stale": "gold", "failed": "salmon"}
_MISSED_EDGE = {"ec": "darkorange", "lw": 2.2}  # the bar of a write a stale read missed
READABLE_OPS = 40  # more traced operations than this crowd the diagram past reading


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
    traced = _traced_ops(ops, messages)
    typical_ms = _typical_delay_ms(messages)  # of every message, drawn or not
    shown = replication_shown(messages, _lifetimes(traced))
    note, ids, messages = left_out(messages, shown), np.flatnonzero(shown), messages[shown]
    figure = Figure(figsize=_figure_size(len(lanes), len(messages), len(traced)), layout="constrained")
    FigureCanvasAgg(figure)  # labels are laid out by their measured sizes
    axes = figure.add_subplot()
    axes.set_title(title or "Message sequence")
    if messages.empty:
        axes.text(0.5, 0.5, "no traced messages", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return figure
    low_ms, high_ms, time_cut = _time_axis(messages, traced, faults, typical_ms)
    x = {name: float(i) for i, name in enumerate(lanes)}
    _draw_lifelines(axes, x, low_ms, high_ms)
    timecut.apply(axes, time_cut, low_ms, high_ms, _axes_height_pt(figure))
    drawn = _draw_faults(axes, faults, x, low_ms, high_ms) if faults is not None else set()
    missed = _missed(ops, traced) if len(traced) else {}
    found = tracing.anomalies_among(ops, traced["op_id"]) if len(traced) else []
    letters = letters_of(found[:MARKED])
    texts = draw_messages(axes, messages, x, typical_ms, _emphasis(traced, missed) | set(letters), ids)
    marks = _draw_ops(axes, traced, messages, x, high_ms, missed, letters) if len(traced) else []
    outlined = {read: write for read, write in missed.items() if write not in letters}  # else lettered
    cut = "time cut short" if note else "idle time cut short"  # where AppendEntries were left out: not idle
    handles = _legend_handles(messages, drawn, traced, outlined, cut if time_cut.gaps else "")
    figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), fontsize=8)
    if found:
        anomaly_legend(figure, found)
    lay_out(figure, axes, marks, texts.labels, texts.sparse, note)
    return figure


def traced_title(title: str, manifest: dict) -> str:
    """``title`` and, on a second line, which operations the run traced (its manifest's ``trace``)."""
    trace = manifest.get("trace")
    if not trace:
        return title
    if "first" in trace:
        return f"{title}\nthe first {trace['first']} operations"
    if trace["around"] == "anomalies":  # one of each kind: named, the diagram letters them
        kinds = ", ".join(anomaly["kind"].replace("_", "-") for anomaly in trace["anomalies"])
        return f"{title}\n{len(trace['op_ids'])} operations around {trace['what']} ({kinds})"
    return f"{title}\n{len(trace['op_ids'])} operations around {trace['what']}, op {trace['op_id']}"


def participants(messages: pd.DataFrame) -> list[str]:
    """Every sender and receiver: client endpoints first, then nodes, each in natural name order."""
    names = set(messages["src"]) | set(messages["dst"])
    return sorted(names, key=lambda name: (not name.startswith(CLIENT_PREFIX), _natural(name)))


def _natural(name: str) -> list:
    """Sort key putting n2 before n10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _figure_size(lanes: int, messages: int, ops: int) -> tuple[float, float]:
    """Inches: about 1.6 per lane across (the op label column is added once measured) and 0.3 per
    message down, tall enough to stack every op label, within readable bounds."""
    width = 1.6 * lanes + 1.0
    height = max(3.0 + 0.3 * messages, 4.5, 2.0 + 0.18 * ops)
    return min(max(width, 6.0), 30.0), min(height, 30.0)


def _axes_height_pt(figure: Figure) -> float:
    """About how tall the axes will be, in points: the figure less its title, lane names and legend."""
    return max(figure.get_figheight() - 1.4, 1.0) * 72


def _traced_ops(ops: pd.DataFrame | None, messages: pd.DataFrame) -> pd.DataFrame:
    """The operations that have messages in the trace (background traffic has op_id -1)."""
    if ops is None:
        return pd.DataFrame(columns=["op_id"])
    return ops[ops["op_id"].isin(messages["op_id"])]


def _lifetimes(traced: pd.DataFrame) -> np.ndarray:
    """The traced operations' (start, end) rows in ms, an end of NaN if it never ended."""
    return traced[["start_ms", "end_ms"]].to_numpy(dtype=float) if len(traced) else np.empty((0, 2))


def _typical_delay_ms(messages: pd.DataFrame) -> float:
    """The median delivery delay (ms), or 1 ms when there is none to take."""
    delays = (messages["delivered_ms"] - messages["sent_ms"]).dropna()
    return float(delays.median()) if len(delays) and delays.median() > 0 else 1.0


def _time_axis(
    messages: pd.DataFrame, traced: pd.DataFrame, faults: pd.DataFrame | None, typical_ms: float
) -> tuple[float, float, timecut.TimeCut]:
    """The drawn time range (ms), from the first to the last message or operation start or end with
    a margin, and its axis: stretches with none of these (nor a fault starting or ending) cut short."""
    sent = messages["sent_ms"].to_numpy(dtype=float)
    lost = np.array([lost_ms(m, typical_ms) for m in messages.itertuples(index=False)], dtype=float)
    ends = np.where(
        messages["dropped"].to_numpy(dtype=bool), lost, messages["delivered_ms"].to_numpy(dtype=float)
    )
    intervals = np.column_stack([sent, ends])
    events = [
        traced[column].dropna().to_numpy(dtype=float) for column in ("start_ms", "end_ms") if len(traced)
    ]
    events = np.concatenate([*events, [intervals.min(), intervals.max()]])
    low, high = float(events.min()), float(events.max())
    if faults is not None and len(faults):  # a fault's start or end inside the drawn range gets room too
        edges = pd.concat([faults["start_ms"], faults["end_ms"]]).dropna().to_numpy(dtype=float)
        events = np.concatenate([events, edges[(edges > low) & (edges < high)]])
    gaps = timecut.busy_gaps(
        np.concatenate([intervals, np.column_stack([events, events])]), timecut.CUT_AFTER * typical_ms
    )
    time_cut = timecut.cut(gaps, timecut.CUT_TO * typical_ms)
    drawn = float(time_cut.forward(high) - time_cut.forward(low))
    margin = max(0.03 * drawn, typical_ms / 2) if drawn > 0 else 1.0
    return low - margin, high + margin, time_cut


def _draw_lifelines(axes: Axes, x: dict[str, float], low_ms: float, high_ms: float) -> None:
    for name, position in x.items():
        axes.plot(
            [position, position], [low_ms, high_ms], color="0.55", lw=1, zorder=1, gid=f"lifeline:{name}"
        )
    axes.set_xticks(list(x.values()), list(x), fontweight="bold")
    axes.xaxis.tick_top()
    axes.tick_params(axis="x", length=0)
    axes.set_xlim(-0.5, len(x) - 0.5)  # the op label column widens it on the left once measured
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
            _crash_labels(axes, fault, x[fault.target], low_ms, high_ms)
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
                gid=f"fault-label:{fault.fault_id}",
            )
            drawn.add("partition")
    return drawn


def _crash_labels(axes: Axes, fault, x: float, low_ms: float, high_ms: float) -> None:
    """Say when a crash began and ended beside its band, for the ends inside the drawn range."""
    for time_ms, what, va in ((fault.start_ms, "crashed", "bottom"), (fault.end_ms, "recovered", "top")):
        if low_ms < time_ms < high_ms:
            axes.text(
                x + 0.1,
                time_ms,
                f"{fault.target} {what} {time_ms:.2f}",
                ha="left",
                va=va,
                color="tab:red",
                fontsize=6.5,
                gid=f"fault-label:{fault.fault_id}",
            )


def _draw_ops(
    axes: Axes,
    traced: pd.DataFrame,
    messages: pd.DataFrame,
    x: dict[str, float],
    high_ms: float,
    missed: dict[int, int],
    letters: dict[int, list[tuple[str, str]]],
) -> list[OpMark]:
    """A bar per operation from start_ms to end_ms beside its lane (overlapping ones side by side),
    and its label, placed later; one with no end runs to ``high_ms`` and ends in a down arrow. The
    bar of an operation in a consistency anomaly (``letters``: op id -> (letter, kind) of each)
    has a thick edge in its kind's colour, and a wider outline for each further kind; else that of
    a write a stale read missed has an orange one."""
    first = messages.sort_values("sent_ms", kind="stable").drop_duplicates("op_id").set_index("op_id")["src"]
    placed = _slots(traced.sort_values("start_ms", kind="stable"), first)
    marks = []
    for op, lane, slot in placed:
        outcome = _outcome(op)
        end_ms = high_ms if np.isnan(op.end_ms) else op.end_ms
        left = x[lane] - 0.12 - 0.07 * slot
        _draw_bar(axes, op, left, end_ms, _OUTCOME_FILL[outcome], _edge(op.op_id, missed, letters))
        kinds = list(dict.fromkeys(kind for _, kind in letters.get(op.op_id, [])))
        for i, kind in enumerate(kinds[1:], start=1):  # one more outline for each further kind
            more = {"ec": ANOMALY_COLOURS[kind], "lw": ANOMALY_LW, "zorder": 2 - 0.01 * i}
            _draw_bar(axes, op, left - 0.008 * i, end_ms, "none", more, 0.016 * i, f"op-outline:{kind}")
        if np.isnan(op.end_ms):  # never ended within the run: say so where the bar stops
            axes.plot(
                [left + 0.025], [end_ms], marker="v", color="black", markersize=5, gid=f"op-cut:{op.op_id}"
            )
        label = axes.text(
            left,
            op.start_ms,
            op_text(op, outcome, missed, [letter for letter, _ in letters.get(op.op_id, [])]),
            ha="right",
            va="top",
            fontsize=7,
            fontweight="normal" if outcome == "ok" and op.op_id not in letters else "bold",
            clip_on=True,
            gid=f"op-label:{op.op_id}",
        )
        marks.append(OpMark(label, left, op.start_ms, end_ms))
    return marks


def _draw_bar(
    axes: Axes, op, left: float, end_ms: float, fill: str, edge: dict, wider: float = 0.0, role: str = "op"
) -> None:
    """The bar of ``op`` from its start to ``end_ms``, 0.05 lanes wide (plus ``wider``) from ``left``."""
    box = Rectangle(
        (left, op.start_ms),
        0.05 + wider,
        end_ms - op.start_ms,
        fc=fill,
        **{"zorder": 2, **edge},
        gid=f"{role}:{op.op_id}",
    )
    axes.add_patch(box)


def _edge(op_id: int, missed: dict[int, int], letters: dict[int, list[tuple[str, str]]]) -> dict:
    """The edge of an operation's bar: its first anomaly's colour, a missed write's, or plain."""
    if op_id in letters:
        return {"ec": ANOMALY_COLOURS[letters[op_id][0][1]], "lw": ANOMALY_LW}
    return _MISSED_EDGE if op_id in missed.values() else {"ec": "black", "lw": 0.6}


def _emphasis(traced: pd.DataFrame, missed: dict[int, int]) -> set[int]:
    """The ops whose messages are drawn bold: stale reads, failed ops, and the writes reads missed."""
    outcomes = [(int(op.op_id), _outcome(op)) for op in traced.itertuples(index=False)]
    return {op_id for op_id, outcome in outcomes if outcome != "ok"} | set(missed.values())


def _missed(ops: pd.DataFrame, traced: pd.DataFrame) -> dict[int, int]:
    """For each traced stale read, the newest write it missed, when ``ops`` says (read id -> write id)."""
    if not {"stale", "key", "version", "ts_ms", "client", "commit_ms"} <= set(ops.columns):
        return {}
    stale = traced.loc[traced["stale"].fillna(False).astype(bool) & (traced["kind"] == "read"), "op_id"]
    found = {int(read): tracing.missed_writes(ops, int(read)) for read in stale}
    return {read: writes[0] for read, writes in found.items() if writes}


def _slots(ops: pd.DataFrame, lanes: pd.Series) -> list[tuple]:
    """Place each op in the first slot of its lane free by its start: (op, lane, slot) in start order."""
    slot_ends: dict[str, list[float]] = {}
    placed = []
    for op in ops.itertuples(index=False):
        lane = lanes[op.op_id]
        ends = slot_ends.setdefault(lane, [])
        slot = next((s for s, busy_until in enumerate(ends) if busy_until < op.start_ms), len(ends))
        ends[slot : slot + 1] = [op.start_ms if np.isnan(op.end_ms) else op.end_ms]
        placed.append((op, lane, slot))
    return placed


def _outcome(op) -> str:
    """'failed' if the operation did not complete ok, 'stale' for a stale read, else 'ok'."""
    if not op.ok:
        return "failed"
    stale = getattr(op, "stale", None)
    return "stale" if stale is not None and not pd.isna(stale) and bool(stale) else "ok"


def _legend_handles(
    messages: pd.DataFrame, faults_drawn: set[str], traced: pd.DataFrame, missed: dict[int, int], cut: str
) -> list:
    """The figure's legend: message styles, faults, outcomes, missed writes, and ``cut`` time's entry."""
    handles = message_legend(messages)
    if "crash" in faults_drawn:
        handles.append(Patch(color="tab:red", alpha=0.35, label="crash"))
    if "partition" in faults_drawn:
        handles.append(Patch(color="tab:purple", alpha=0.1, label="partition"))
    if len(traced):
        outcomes = {_outcome(op) for op in traced.itertuples(index=False)}
        handles += [
            Patch(fc=_OUTCOME_FILL[o], ec="black", label=f"op {o}") for o in _OUTCOME_FILL if o in outcomes
        ]
    if set(missed.values()) & set(traced["op_id"]):
        handles.append(Patch(fc=_OUTCOME_FILL["ok"], **_MISSED_EDGE, label="write a stale read missed"))
    if cut:
        handles.append(Line2D([], [], color="0.45", lw=0.8, linestyle=(0, (1, 3)), label=cut))
    return handles


def write_diagram(figure: Figure, folder: str | Path, stem: str = "sequence") -> list[Path]:
    """Write ``<stem>.svg`` and ``<stem>.png`` into ``folder`` (each atomically); return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg")
    paths = [folder / f"{stem}.svg", folder / f"{stem}.png"]
    atomic_write(paths[0], buffer.getvalue())
    atomic_write(paths[1], png_bytes(figure))
    return paths
