"""The sequence diagram draws what it is given: lifelines, arrows, drops, faults and operations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from qsim.output.diagram import GROUP_COLOURS, participants, sequence_diagram, write_diagram

NAN = float("nan")
CLIENT = "clients@east"
# (op_id, kind, src, dst, sent_ms, delivered_ms, reason): reason '' means delivered.
TRACE = [
    (0, "client_request", CLIENT, "n1", 0.0, 0.8, ""),
    (0, "write_request", "n1", "n1", 0.8, 0.8, ""),
    (0, "write_request", "n1", "n2", 0.8, 1.9, ""),
    (0, "write_request", "n1", "n3", 0.8, NAN, "down"),  # n3 is crashed
    (0, "write_ack", "n1", "n1", 0.8, 0.8, ""),
    (0, "write_ack", "n2", "n1", 1.9, 2.7, ""),
    (0, "hint", "n1", "n10", 0.8, 1.6, ""),  # a stand-in for n3 keeps a hint
    (0, "hint_ack", "n10", "n1", 1.6, 2.5, ""),
    (0, "client_response", "n1", CLIENT, 2.7, 3.4, ""),
    (1, "client_request", CLIENT, "n2", 4.0, 4.9, ""),
    (1, "read_request", "n2", "n2", 4.9, 4.9, ""),
    (1, "read_request", "n2", "n3", 4.9, NAN, "partition"),
    (1, "read_request", "n2", "n1", 4.9, 5.6, ""),
    (1, "read_response", "n2", "n2", 4.9, 4.9, ""),
    (1, "read_response", "n1", "n2", 5.6, 6.3, ""),
    (1, "client_response", "n2", CLIENT, 6.3, 7.0, ""),
    (1, "read_repair", "n2", "n1", 6.3, 7.1, ""),
    (1, "read_repair_ack", "n1", "n2", 7.1, 7.9, ""),
    (-1, "anti_entropy", "n10", "n3", 8.0, 8.6, ""),
    (2, "read_request", CLIENT, "n3", 6.5, NAN, "loss"),
    (2, "read_request", CLIENT, "n10", 6.5, 8.8, ""),
]
GROUPS = ["write path", "read path", "client hops", "repair", "hints", "anti-entropy"]


def messages_frame(rows: list[tuple]) -> pd.DataFrame:
    """The traced-messages table, typed as the model writes it."""
    frame = pd.DataFrame(rows, columns=["op_id", "kind", "src", "dst", "sent_ms", "delivered_ms", "reason"])
    frame["dropped"] = frame["reason"] != ""
    columns = ["op_id", "kind", "src", "dst", "sent_ms", "delivered_ms", "dropped", "reason"]
    return frame[columns].astype({"op_id": np.int64, "sent_ms": float, "delivered_ms": float})


def fault_table(*rows: tuple) -> pd.DataFrame:
    """Rows are (kind, target, start_ms, end_ms); fault_id is the row number."""
    return pd.DataFrame(
        {
            "fault_id": np.arange(len(rows), dtype=np.int64),
            "kind": [row[0] for row in rows],
            "target": [row[1] for row in rows],
            "start_ms": np.array([row[2] for row in rows], dtype=float),
            "end_ms": np.array([row[3] for row in rows], dtype=float),
            "params": ["{}"] * len(rows),
        }
    )


def ops_table() -> pd.DataFrame:
    """Op 0 wrote, op 1 read a stale value, op 2 timed out much later, op 9 has no traced messages."""
    return pd.DataFrame(
        {
            "op_id": np.array([0, 1, 2, 9], dtype=np.int64),
            "client": [0, 0, 1, 1],
            "kind": pd.Categorical(["write", "read", "read", "read"], categories=["read", "write"]),
            "start_ms": [0.0, 4.0, 6.5, 100.0],
            "end_ms": [3.4, 7.0, 106.5, 101.0],
            "ok": [True, True, False, False],
            "stale": pd.array([pd.NA, True, pd.NA, pd.NA], dtype="boolean"),
        }
    )


MESSAGES = messages_frame(TRACE)
# n3 is down over the write; a partition cuts n3 off over the read; n7 crashes but sends nothing;
# the last crash is long after the trace.
FAULTS = fault_table(
    ("crash", "n3", 0.5, 3.0),
    ("partition", "n3 | n1,n2,n10", 4.5, 6.0),
    ("crash", "n7", 0.0, NAN),
    ("crash", "n1", 500.0, 600.0),
)


@pytest.fixture(scope="module")
def figure() -> Figure:
    return sequence_diagram(MESSAGES, FAULTS, ops_table(), title="write, read, repair")


def with_gid(figure: Figure, role: str) -> list:
    """The artists of ``figure`` whose gid is ``role:...``, in drawing order."""
    return figure.findobj(lambda artist: (artist.get_gid() or "").startswith(f"{role}:"))


def lane_x(figure: Figure) -> dict[str, float]:
    return {line.get_gid().split(":", 1)[1]: line.get_xdata()[0] for line in with_gid(figure, "lifeline")}


def texts(figure: Figure) -> list[str]:
    return [text.get_text() for text in figure.axes[0].texts]


def test_one_lifeline_per_participant_clients_first_then_nodes_in_natural_order(figure):
    assert participants(MESSAGES) == [CLIENT, "n1", "n2", "n3", "n10"]
    assert list(lane_x(figure)) == [CLIENT, "n1", "n2", "n3", "n10"]
    assert list(lane_x(figure).values()) == [0, 1, 2, 3, 4]
    [axes] = figure.axes
    assert [label.get_text() for label in axes.get_xticklabels()] == [CLIENT, "n1", "n2", "n3", "n10"]
    assert axes.get_ylim()[0] > axes.get_ylim()[1]  # time flows downward


def test_one_arrow_per_delivered_message_in_its_kind_groups_colour(figure):
    arrows = with_gid(figure, "message")
    delivered = np.flatnonzero(~MESSAGES["dropped"])
    assert [arrow.get_gid() for arrow in arrows] == [f"message:{i}" for i in delivered]
    colour = {arrow.get_gid(): arrow.get_edgecolor()[:3] for arrow in arrows}  # alpha: see below
    repair = colour[f"message:{TRACE.index((1, 'read_repair', 'n2', 'n1', 6.3, 7.1, ''))}"]
    assert repair == to_rgba(GROUP_COLOURS["repair"])[:3]
    assert colour["message:6"] == to_rgba(GROUP_COLOURS["hints"])[:3]  # the hint
    assert len({colour[f"message:{i}"] for i in (2, 6, 12, 16)}) == 4  # write, hint, read, repair differ


def test_send_and_receive_times_are_written_beside_the_lifelines(figure):
    shown = texts(figure)
    for time_ms in ("0.80", "1.90", "2.70", "7.10", "8.60"):
        assert time_ms in shown, time_ms
    assert shown.count("0.80") < 5  # the fan-out at 0.8 ms from n1 shares one label per side


def test_each_dropped_message_stops_halfway_at_an_x_with_its_reason(figure):
    x = lane_x(figure)
    drops = with_gid(figure, "drop")
    assert [d.get_gid() for d in drops] == ["drop:3", "drop:11", "drop:19"]
    assert all(d.get_marker() == "x" for d in drops)
    assert x["n2"] < drops[1].get_xdata()[0] < x["n3"]  # n2 to n3: halfway
    assert x["n1"] < drops[0].get_xdata()[0] < x["n2"]  # n1 to n3: short of n2, or it looks delivered there
    assert drops[0].get_ydata()[0] > 0.8  # later than it was sent
    assert [t for t in texts(figure) if t.strip().endswith(("down", "partition", "loss"))] == [
        " write_request to n3: down",
        " read_request to n3: partition",
        " read_request to n3: loss",
    ]


def test_crashes_shade_the_crashed_nodes_lifeline_inside_the_drawn_time_range(figure):
    [band] = with_gid(figure, "crash")  # n7 is not drawn; n1's crash is after the trace
    assert band.get_gid() == "crash:n3:0"
    assert band.get_x() < lane_x(figure)["n3"] < band.get_x() + band.get_width()
    assert (band.get_y(), band.get_y() + band.get_height()) == pytest.approx((0.5, 3.0))


def test_a_partition_shades_every_lifeline_and_is_labelled(figure):
    [band] = with_gid(figure, "partition")
    assert band.get_gid() == "partition:1"
    assert "partition n3 | n1,n2,n10" in texts(figure)


def test_the_legend_has_an_entry_per_kind_group_and_for_drops_and_faults(figure):
    [legend] = figure.legends
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels[: len(GROUPS)] == GROUPS
    assert {"reply (dashed)", "dropped", "crash", "partition", "op ok", "op stale", "op failed"} <= set(
        labels
    )


def test_traced_operations_are_marked_at_their_client_lane_with_their_outcome(figure):
    boxes = with_gid(figure, "op")
    assert [box.get_gid() for box in boxes] == ["op:0", "op:1", "op:2"]  # op 9 has no traced messages
    assert all(box.get_x() < lane_x(figure)[CLIENT] for box in boxes)
    assert (boxes[1].get_y(), boxes[1].get_y() + boxes[1].get_height()) == pytest.approx((4.0, 7.0))
    assert boxes[1].get_x() != boxes[2].get_x()  # op 2 starts before op 1 ends: side by side
    labels = [t.get_text() for t in with_gid(figure, "op-label")]
    assert labels == ["op 0 write: ok", "op 1 read: stale", "op 2 read: failed"]


def test_an_operation_that_ends_long_after_the_trace_ends_on_the_axis_after_a_cut(figure):
    [axes] = figure.axes
    box = with_gid(figure, "op")[2]  # op 2 gave up at 106.5 ms; every message ends by 8.8 ms
    assert box.get_y() + box.get_height() == pytest.approx(106.5)
    assert min(axes.get_ylim()) < 0 and max(axes.get_ylim()) > 106.5  # its whole bar is on the axis
    drawn = axes.yaxis.get_transform().transform
    [cut] = with_gid(figure, "cut")  # the idle stretch is marked, and drawn shorter than a message
    assert 8.8 < cut.get_ydata()[0] < 106.5
    assert drawn(106.5) - drawn(8.8) < drawn(8.8) - drawn(0.0)


def test_the_figure_grows_with_participants_and_messages_within_bounds():
    small = sequence_diagram(MESSAGES.head(3)).get_size_inches()
    large = sequence_diagram(MESSAGES).get_size_inches()
    assert small[0] < large[0] and small[1] < large[1]
    fifty = messages_frame([(i, "read_request", "n1", f"n{2 + i % 8}", i, i + 0.5, "") for i in range(50)])
    width, height = sequence_diagram(fifty).get_size_inches()
    assert width <= 30 and 10 < height <= 30


def test_without_messages_it_says_so():
    figure = sequence_diagram(MESSAGES.head(0), FAULTS)
    assert "no traced messages" in texts(figure)


def test_write_diagram_writes_an_svg_and_a_png(figure, tmp_path):
    paths = write_diagram(figure, tmp_path / "run", stem="seq")
    assert [p.name for p in paths] == ["seq.svg", "seq.png"]
    svg = paths[0].read_text()
    assert svg.startswith("<?xml") and "<svg" in svg and 'id="crash:n3:0"' in svg
    assert paths[1].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert not [p.name for p in paths[0].parent.iterdir() if p.name.startswith(".")]  # no temporaries


def test_skipped_time_is_written_in_plain_decimals_and_seconds_past_1000_ms():
    # op 0 and op 1, 1730 ms apart; op 1 and op 2, 487 ms apart: both gaps are cut short
    rows = [
        (0, "client_request", CLIENT, "n1", 0.0, 0.8, ""),
        (1, "client_request", CLIENT, "n1", 1731.0, 1731.8, ""),
    ]
    rows.append((2, "client_request", CLIENT, "n1", 2218.8, 2219.6, ""))
    figure = sequence_diagram(messages_frame(rows))
    assert sorted(t.get_text() for t in with_gid(figure, "cut-label")) == ["1.73 s skipped", "487 ms skipped"]


def test_a_partition_label_and_a_cut_label_beside_it_do_not_overlap():
    # a message every 3 ms for 16 ms, a partition from 16.5 ms, then nothing until 66 ms: the idle
    # stretch after the partition starts is cut short, its label beside the partition's
    rows = [(i, "client_request", CLIENT, f"n{1 + i % 2}", 3.0 * i, 3.0 * i + 1, "") for i in range(6)]
    rows.append((6, "client_request", CLIENT, "n2", 66.0, 67.0, ""))
    figure = sequence_diagram(messages_frame(rows), fault_table(("partition", "n1 | n2", 16.5, 100.0)))
    renderer = figure.canvas.get_renderer()
    [partition] = [t for t in figure.axes[0].texts if t.get_text().startswith("partition")]
    [cut] = with_gid(figure, "cut-label")
    assert cut.get_text() == "49.5 ms skipped"
    assert not partition.get_window_extent(renderer).overlaps(cut.get_window_extent(renderer))


def together() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ops 0-3 write keys 0-3, all from 0 ms; op 4 reads key 1 at 3 ms and returns nothing: stale,
    it missed op 1."""
    rows = [(i, "client_request", CLIENT, "n1", 0.0, 0.5 + 0.1 * i, "") for i in range(4)]
    rows += [(i, "client_response", "n1", CLIENT, 0.6 + 0.1 * i, 2.0 + 0.1 * i, "") for i in range(4)]
    rows += [
        (4, "client_request", CLIENT, "n1", 3.0, 3.5, ""),
        (4, "client_response", "n1", CLIENT, 3.6, 4.0, ""),
    ]
    ops = pd.DataFrame(
        {
            "op_id": np.arange(5, dtype=np.int64),
            "client": [0] * 5,
            "kind": ["write"] * 4 + ["read"],
            "key": [0, 1, 2, 3, 1],
            "start_ms": [0.0] * 4 + [3.0],
            "end_ms": [2.0, 2.1, 2.2, 2.3, 4.0],
            "ok": [True] * 5,
            "version": [0, 1, 2, 3, -1],
            "ts_ms": [0.0] * 4 + [NAN],
            "commit_ms": [1.0] * 4 + [NAN],
            "stale": pd.array([pd.NA] * 4 + [True], dtype="boolean"),
        }
    )
    return messages_frame(rows), ops


def test_leader_lines_of_operations_that_start_together_end_apart_at_their_own_bars():
    messages, ops = together()
    figure = sequence_diagram(messages, None, ops)
    ends = {}
    for op_id in range(4):
        [leader] = figure.findobj(lambda artist, op_id=op_id: artist.get_gid() == f"op-leader:{op_id}")
        [bar] = figure.findobj(lambda artist, op_id=op_id: artist.get_gid() == f"op:{op_id}")
        (x0, y0), (x1, y1) = zip(leader.get_xdata(), leader.get_ydata(), strict=True)
        assert x1 == pytest.approx(bar.get_x())  # at its own bar's edge...
        assert bar.get_y() < y1 < bar.get_y() + bar.get_height()  # ...inside its time span
        ends[op_id] = ((x0, y0), (x1, y1))
    drawn = figure.axes[0].transData.transform
    end_ys = [drawn(end)[1] for _, end in ends.values()]
    assert min(np.diff(sorted(end_ys))) > 3  # pixels apart: they do not meet
    for a, b in [(a, b) for a in ends for b in ends if a < b]:
        assert not _crossing(*map(drawn, ends[a]), *map(drawn, ends[b])), (a, b)


def _crossing(p1, p2, q1, q2) -> bool:
    """Whether segments p1-p2 and q1-q2 cross (display coordinates)."""

    def side(a, b, c):
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    return side(p1, p2, q1) != side(p1, p2, q2) and side(q1, q2, p1) != side(q1, q2, p2)


def test_the_bar_of_a_write_a_stale_read_missed_is_outlined():
    messages, ops = together()
    figure = sequence_diagram(messages, None, ops)
    bars = {bar.get_gid(): bar for bar in with_gid(figure, "op")}
    missed, others = bars.pop("op:1"), bars.values()
    assert all(missed.get_linewidth() > 2 * bar.get_linewidth() for bar in others)
    assert all(missed.get_edgecolor() != bar.get_edgecolor() for bar in others)
    [legend] = figure.legends
    assert "write a stale read missed" in [text.get_text() for text in legend.get_texts()]
