"""The sequence diagram of a leader-protocol run: votes stand out, AppendEntries stay quiet.

The real model runs a three-node group whose leader crashes while a few operations are traced, so
the trace holds the new election's votes and the heartbeats lost to the crashed leader.
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
from qsim.output.diagram_messages import QUIET_LINE

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
