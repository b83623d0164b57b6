"""The sequence diagram of a leader-protocol run: votes stand out, AppendEntries stay quiet.

The real model runs a three-node group whose leader crashes while a few operations are traced, so
the trace holds the new election's votes and the heartbeats lost to the crashed leader. A traced
window of ten seconds, written by hand, holds thousands of heartbeats: at most REPLICATION_CAP are
drawn, those nearest the operations, and the footnote counts the others.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

import qsim
from qsim.output.diagram import GROUP_COLOURS, sequence_diagram
from qsim.output.diagram_labels import _REPEAT_PX
from qsim.output.diagram_messages import QUIET_LINE, REPLICATION_CAP, replication_shown

BASE = {
    "name": "leader-diagram",
    "seed": 4,
    "duration": "1s",
    "cluster": {"nodes": 3},
    "network": {"latency": {"dist": "constant", "value": 5}},
    "quorum": {"protocol": "leader", "timeout": "300ms", "retries": 2},
    "workload": {"arrival": {"type": "poisson", "rate": 50}, "clients": 2, "keys": {"count": 3}},
}
CRASH_MS = 500.0
VOTES = ("request_vote", "vote")
REPLICATION = ("append_entries", "append_ack")
VOTE_LABEL = "votes (granted or refused alike)"
REPLICATION_LABEL = "AppendEntries and acks, heartbeats alike (thin)"


@pytest.fixture(scope="module")
def crashed() -> qsim.RunResult:
    """The run whose leader (found in a run without faults) crashes at :data:`CRASH_MS`, with the
    operations starting just after the crash traced."""
    calm = qsim.simulate(qsim.scenario_from_dict(BASE)).ops
    serving = calm[(calm["start_ms"] > 300) & (calm["start_ms"] < CRASH_MS) & calm["ok"]]
    leader = str(serving["coordinator"].astype(str).mode()[0])
    fault = {"at": f"{CRASH_MS}ms", "crash": leader, "recover_at": "800ms"}
    scenario = qsim.scenario_from_dict(BASE | {"faults": [fault]})
    traced = calm.loc[(calm["start_ms"] > CRASH_MS - 10) & (calm["start_ms"] < CRASH_MS + 30), "op_id"]
    run = qsim.simulate(scenario, trace_ops=traced.tolist())
    assert run.summary["leader"]["elections"] >= 2  # the first, and one after the crash
    return run


@pytest.fixture(scope="module")
def figure(crashed) -> Figure:
    return sequence_diagram(crashed.messages, crashed.faults, crashed.ops)


def by_gid(figure: Figure) -> dict:
    """Each artist drawn for a message (``message:i``, ``dropped:i``, ``drop:i``) by its gid."""
    roles = ("message:", "dropped:", "drop:")
    return {a.get_gid(): a for a in figure.findobj(lambda a: (a.get_gid() or "").startswith(roles))}


def line_of(artists: dict, i: int):
    """The arrow of delivered message ``i``, or the line of dropped message ``i``."""
    return artists.get(f"message:{i}") or artists[f"dropped:{i}"]


def colour(artist) -> tuple:
    """An arrow's or a line's colour, without its alpha."""
    rgba = artist.get_edgecolor() if hasattr(artist, "get_edgecolor") else to_rgba(artist.get_color())
    return tuple(np.round(rgba[:3], 6))


def rgb(name: str) -> tuple:
    return tuple(np.round(to_rgba(name)[:3], 6))


def legend_labels(figure: Figure) -> list[str]:
    [legend] = figure.legends
    return [text.get_text() for text in legend.get_texts()]


def test_votes_after_the_leader_crash_are_drawn_in_the_vote_colour(crashed, figure):
    messages = crashed.messages
    votes = np.flatnonzero(messages["kind"].isin(VOTES) & (messages["sent_ms"] > CRASH_MS))
    assert len(votes) >= 2  # a candidate asked, and was answered
    artists = by_gid(figure)
    assert {colour(line_of(artists, i)) for i in votes} == {rgb(GROUP_COLOURS["votes"])}
    assert all(line_of(artists, i).get_linewidth() >= 1.0 for i in votes)  # as bold as client hops
    dashed = {messages["kind"].iloc[i]: line_of(artists, i).get_linestyle() for i in votes}
    assert dashed.get("request_vote", "-") in ("-", "solid")
    assert dashed.get("vote", "--") not in ("-", "solid")  # a vote answers: dashed like replies


def test_append_entries_and_acks_are_thin_light_and_under_client_hops(crashed, figure):
    messages, artists = crashed.messages, by_gid(figure)
    replication = np.flatnonzero(messages["kind"].isin(REPLICATION))
    hops = np.flatnonzero(messages["kind"].str.startswith("client_") & ~messages["dropped"])
    assert len(replication) and len(hops)
    quiet = [line_of(artists, i) for i in replication]
    loud = [artists[f"message:{i}"] for i in hops]
    assert {colour(a) for a in quiet} == {rgb(GROUP_COLOURS["log replication"])}
    assert rgb(GROUP_COLOURS["log replication"]) not in {rgb(GROUP_COLOURS[g]) for g in ("votes", "other")}
    assert max(a.get_linewidth() for a in quiet) < min(a.get_linewidth() for a in loud)
    assert max(a.get_alpha() for a in quiet) < 1.0
    assert max(a.get_zorder() for a in quiet) < min(a.get_zorder() for a in loud)


def test_heartbeats_lost_to_the_crashed_leader_end_in_a_smaller_x(crashed, figure):
    messages, artists = crashed.messages, by_gid(figure)
    lost = np.flatnonzero(messages["kind"].isin(REPLICATION) & messages["dropped"])
    others = np.flatnonzero(~messages["kind"].isin(REPLICATION) & messages["dropped"])
    assert len(lost) and len(others)  # to the crashed leader; client requests sent to it
    small = {artists[f"drop:{i}"].get_markersize() for i in lost}
    assert max(small) < min(artists[f"drop:{i}"].get_markersize() for i in others)


def test_the_legend_names_each_style_drawn_and_no_other(figure):
    labels = legend_labels(figure)
    assert labels[:3] == ["client hops", VOTE_LABEL, REPLICATION_LABEL]
    assert {"reply (dashed)", "dropped", "AppendEntries or ack dropped", "crash"} <= set(labels)
    assert "other" not in labels  # every kind of the trace has a style of its own
    [legend] = figure.legends
    handles = dict(zip(labels, legend.legend_handles, strict=True))
    assert colour(handles[VOTE_LABEL]) == rgb(GROUP_COLOURS["votes"])
    assert colour(handles[REPLICATION_LABEL]) == rgb(GROUP_COLOURS["log replication"])
    assert handles[REPLICATION_LABEL].get_alpha() == QUIET_LINE["alpha"]


def test_visible_message_labels_do_not_overlap_and_replication_kinds_do_not_repeat_nearby(crashed, figure):
    shown = visible_label_boxes(figure)
    boxes = np.array([box for _, box in shown])
    for i, (_, (x0, y0, x1, y1)) in enumerate(shown):  # touching counts, as the thinning has it
        others = np.delete(boxes, i, axis=0)
        assert not np.any(
            (others[:, 0] <= x1) & (others[:, 2] >= x0) & (others[:, 1] <= y1) & (others[:, 3] >= y0)
        )
    for kind in REPLICATION:
        middles = sorted((y0 + y1) / 2 for text, (_, y0, _, y1) in shown if text == kind)
        assert 1 <= len(middles) < (crashed.messages["kind"] == kind).sum()
        assert np.all(np.diff(middles) >= _REPEAT_PX)
    assert {"request_vote", "vote"} <= {text for text, _ in shown}


def visible_label_boxes(figure: Figure) -> list[tuple[str, tuple]]:
    """The text and display box of every visible label inside the axes, except the op column's."""
    renderer = figure.canvas.get_renderer()
    [axes] = figure.axes
    shown = []
    for text in axes.texts:
        gid = text.get_gid() or ""
        if text.get_visible() and not gid.startswith(("op-label", "cut", "fault-label")):
            box = text.get_window_extent(renderer)
            shown.append((text.get_text(), (box.x0, box.y0, box.x1, box.y1)))
    return shown


# --- random small traces of the leader's messages -----------------------------------------------

NODES = ("n1", "n2", "n3")


@st.composite
def leader_traces(draw) -> pd.DataFrame:
    """A few node-to-node messages of the leader's kinds, some dropped, at random times (ms)."""
    rows = []
    for _ in range(draw(st.integers(1, 14))):
        src, dst = draw(st.permutations(NODES))[:2]
        sent = draw(st.floats(0, 200, allow_nan=False))
        dropped = draw(st.booleans())
        delivered = float("nan") if dropped else sent + draw(st.floats(0.5, 20))
        kind = draw(st.sampled_from(VOTES + REPLICATION))
        rows.append(
            (-1, kind, src, dst, sent, delivered, dropped, "down" if dropped else "", -1, float("nan"))
        )
    columns = [
        "op_id",
        "kind",
        "src",
        "dst",
        "sent_ms",
        "delivered_ms",
        "dropped",
        "reason",
        "attempt",
        "lost_ms",
    ]
    return pd.DataFrame(rows, columns=columns).astype({"op_id": np.int64, "delivered_ms": float})


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(leader_traces())
def test_every_leader_message_is_drawn_in_its_groups_style_and_each_group_is_in_the_legend(messages):
    figure = sequence_diagram(messages)
    artists = by_gid(figure)
    for i, kind in enumerate(messages["kind"]):
        line = line_of(artists, i)
        group = "votes" if kind in VOTES else "log replication"
        assert colour(line) == rgb(GROUP_COLOURS[group])
        assert (line.get_linewidth() == QUIET_LINE["lw"]) == (group == "log replication")
    drawn = {VOTE_LABEL if kind in VOTES else REPLICATION_LABEL for kind in messages["kind"]}
    labels = set(legend_labels(figure))
    assert drawn <= labels and not ({VOTE_LABEL, REPLICATION_LABEL} - drawn) & labels
    assert ("dropped" in labels) == bool((messages["dropped"] & messages["kind"].isin(VOTES)).any())
    quiet_lost = (messages["dropped"] & messages["kind"].isin(REPLICATION)).any()
    assert ("AppendEntries or ack dropped" in labels) == bool(quiet_lost)
    shown = visible_label_boxes(figure)
    for kind in REPLICATION:  # written at most once per stretch of _REPEAT_PX, whatever the lanes
        middles = sorted((y0 + y1) / 2 for text, (_, y0, _, y1) in shown if text == kind)
        assert np.all(np.diff(middles) >= _REPEAT_PX)


# --- a long traced window: thousands of AppendEntries, at most REPLICATION_CAP of them drawn --------

LONG_MS = 10_000.0
HEARTBEAT_MS = 20.0
N3_DOWN_MS = (4000.0, 6000.0)  # AppendEntries to n3 are dropped meanwhile
CLIENT = "clients@default"
FOLLOWERS = ("n2", "n3", "n4", "n5")


def long_window() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Leader n1 heartbeats its four followers every 20 ms for 10 s (acks back, 5 ms links); write
    0 at 100 ms and write 2 at 9,100 ms replicate through it; read 1 at 5,000 ms first asks n3, which
    is down, then n1; n3 asks for votes as it recovers. Returns the messages and ops tables."""
    rows = []
    for t in np.arange(0.0, LONG_MS, HEARTBEAT_MS):
        rows += [row for f in FOLLOWERS for row in _round_trip(-1, "append_entries", "n1", f, t)]
    for op, start in ((0, 100.0), (2, 9100.0)):  # a write: request, a replication round, response
        rows += _round_trip(op, "client_request", CLIENT, "n1", start)[:1]
        rows += [row for f in FOLLOWERS for row in _round_trip(-1, "append_entries", "n1", f, start + 5)]
        rows += _round_trip(op, "client_response", "n1", CLIENT, start + 15)[:1]
    rows += _round_trip(1, "client_request", CLIENT, "n3", 5000.0)[:1]  # dropped: n3 is down
    rows += _round_trip(1, "client_request", CLIENT, "n1", 5300.0)[:1]
    rows += _round_trip(1, "client_response", "n1", CLIENT, 5305.0)[:1]
    rows += [row for n in ("n1", "n2", "n4", "n5") for row in _round_trip(-1, "request_vote", "n3", n, 6050)]
    columns = ["op_id", "kind", "src", "dst", "sent_ms", "delivered_ms", "dropped", "reason", "attempt"]
    messages = pd.DataFrame(rows, columns=columns).sort_values("sent_ms", kind="stable", ignore_index=True)
    messages["lost_ms"] = np.where(messages["dropped"], messages["sent_ms"] + 5, np.nan)
    ops = pd.DataFrame(
        {
            "op_id": np.array([0, 1, 2], dtype=np.int64),
            "kind": ["write", "read", "write"],
            "start_ms": [100.0, 5000.0, 9100.0],
            "end_ms": [120.0, 5310.0, 9120.0],
            "ok": [True, True, True],
        }
    )
    return messages.astype({"op_id": np.int64}), ops


def _round_trip(op_id: int, kind: str, src: str, dst: str, sent_ms: float) -> list[tuple]:
    """A message over a 5 ms link and its reply (none if it was dropped, at n3 while it is down)."""
    reply = {"append_entries": "append_ack", "request_vote": "vote"}.get(kind, "")
    down = dst == "n3" and N3_DOWN_MS[0] <= sent_ms < N3_DOWN_MS[1]
    out = (op_id, kind, src, dst, sent_ms, np.nan if down else sent_ms + 5, down, "down" if down else "", 0)
    back = (op_id, reply, dst, src, sent_ms + 5, sent_ms + 10, False, "", 0)
    return [out] if down else [out, back]


@pytest.fixture(scope="module")
def long_trace() -> tuple[pd.DataFrame, pd.DataFrame, Figure]:
    messages, ops = long_window()
    return messages, ops, sequence_diagram(messages, None, ops)


def drawn_rows(figure: Figure) -> set[int]:
    """The rows of the messages table drawn (an arrow, or a line for a dropped one)."""
    return {int(gid.split(":")[1]) for gid in by_gid(figure) if gid.startswith(("message:", "dropped:"))}


def test_a_long_window_draws_the_cap_of_appendentries_and_every_other_message(long_trace):
    messages, _, figure = long_trace
    replication = set(np.flatnonzero(messages["kind"].isin(REPLICATION)))
    assert len(replication) > 3000  # thousands: a heartbeat every 20 ms to 4 followers for 10 s
    drawn = drawn_rows(figure)
    assert len(drawn & replication) == REPLICATION_CAP
    assert set(range(len(messages))) - replication <= drawn  # client hops, the dropped request, votes


def test_the_appendentries_within_the_operations_come_first_then_the_nearest(long_trace):
    messages, ops, figure = long_trace
    drawn = drawn_rows(figure)
    outside, near = priority(messages, ops)
    replication = messages["kind"].isin(REPLICATION).to_numpy()
    inside, others = set(np.flatnonzero(replication & ~outside)), set(np.flatnonzero(replication & outside))
    assert 0 < len(inside) < REPLICATION_CAP
    assert inside <= drawn
    assert len(others & drawn) == REPLICATION_CAP - len(inside)
    assert max(near[list(others & drawn)]) <= min(near[list(others - drawn)])
    dropped = replication & messages["dropped"].to_numpy()  # to n3 while down: not all, as it lasts 2 s
    assert 0 < len(set(np.flatnonzero(dropped)) & drawn) < dropped.sum()


def priority(messages: pd.DataFrame, ops: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Whether each message was neither sent nor ended within an op's lifetime, and how far (ms) it is
    from the nearest time an op started, ended, or sent or got a message, by brute force."""
    sent = messages["sent_ms"].to_numpy(dtype=float)
    ended = messages["delivered_ms"].fillna(messages["lost_ms"]).fillna(messages["sent_ms"]).to_numpy()
    own = messages["op_id"].to_numpy() >= 0
    ends = ops["end_ms"].fillna(np.inf).to_numpy()
    anchors = np.concatenate([sent[own], ended[own], ops["start_ms"], ops["end_ms"].dropna()])
    within = np.zeros(len(messages), dtype=bool)
    for start, end in zip(ops["start_ms"], ends, strict=True):
        within |= ((start <= sent) & (sent <= end)) | ((start <= ended) & (ended <= end))
    gaps = np.abs(np.concatenate([sent[:, None], ended[:, None]], axis=1)[:, :, None] - anchors)
    near = gaps.min(axis=(1, 2)) if len(anchors) else np.full(len(messages), np.inf)
    return ~within, near


def test_the_footnote_counts_the_appendentries_left_out_and_few_artists_are_made(long_trace):
    messages, _, figure = long_trace
    [axes] = figure.axes
    total = int(messages["kind"].isin(REPLICATION).sum())
    assert f"{total - REPLICATION_CAP:,} of {total:,} AppendEntries/acks not drawn" in axes.get_xlabel()
    assert "time cut short" in legend_labels(figure)  # not idle: AppendEntries were left out there
    drawn = len(drawn_rows(figure))
    assert len(axes.texts) <= 3 * drawn + 20  # a kind or reason and two times per drawn message at most
    assert len(axes.patches) + len(axes.lines) <= 2 * drawn + 40  # no artist for a message left out


@st.composite
def traces_with_ops(draw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random AppendEntries, acks and votes, and random client hops of up to three operations
    (none, some times), with those operations' lifetimes, some never ended (ms)."""
    ops = []
    for op_id in range(draw(st.integers(0, 3))):
        start = draw(st.floats(0, 300, allow_nan=False))
        end = draw(st.one_of(st.just(np.nan), st.floats(start, start + 100)))
        ops.append((op_id, start, end))
    rows = []
    for _ in range(draw(st.integers(0, 40))):
        op_id = draw(st.sampled_from([-1] + [op for op, _, _ in ops]))
        kinds = ("client_request", "client_response") if op_id >= 0 else VOTES + REPLICATION * 3
        sent = draw(st.floats(0, 400, allow_nan=False))
        dropped = draw(st.booleans())
        lost = draw(st.one_of(st.just(np.nan), st.floats(sent, sent + 10))) if dropped else np.nan
        end = np.nan if dropped else sent + draw(st.floats(0, 20))
        rows.append((op_id, draw(st.sampled_from(kinds)), "n1", "n2", sent, end, dropped, lost))
    columns = ["op_id", "kind", "src", "dst", "sent_ms", "delivered_ms", "dropped", "lost_ms"]
    messages = pd.DataFrame(rows, columns=columns).astype({"op_id": np.int64, "delivered_ms": float})
    return messages, pd.DataFrame(ops, columns=["op_id", "start_ms", "end_ms"]).astype({"end_ms": float})


@settings(max_examples=100, deadline=None)
@given(traces_with_ops(), st.integers(0, 12))
def test_past_the_cap_the_appendentries_kept_are_those_nearest_the_operations(trace, cap):
    messages, ops = trace
    shown = replication_shown(messages, ops[["start_ms", "end_ms"]].to_numpy(dtype=float), cap)
    replication = messages["kind"].isin(REPLICATION).to_numpy()
    assert shown[~replication].all()  # every vote and client hop
    assert shown[replication].sum() == min(cap, replication.sum())
    kept, left = np.flatnonzero(shown & replication), np.flatnonzero(~shown)
    outside, near = priority(messages, ops)
    if len(kept) and len(left) and np.isfinite(near).any():  # (outside, distance) ranks kept ones first
        assert max(zip(outside[kept], near[kept], strict=True)) <= min(
            zip(outside[left], near[left], strict=True)
        )
    elif len(kept) and len(left):  # nothing to be near: kept ones spread from the first to the last
        order = np.argsort(messages["sent_ms"].to_numpy()[replication], kind="stable")
        ends = np.flatnonzero(replication)[order[[0, -1]]]
        assert shown[ends[0]] and (cap < 2 or shown[ends[1]])
