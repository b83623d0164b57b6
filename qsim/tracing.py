"""Choosing the operations to trace: the first N, or N around an anomaly or a given operation.

Which reads are stale and which operations fail is known only once a run has ended, so tracing
around them takes two runs of the same scenario and seed: one untraced, to find the operation and
its company in the finished history, and one tracing exactly those op ids. A run is a
deterministic function of its scenario and seed, and tracing changes no outcome, so the second
run repeats the first one operation for operation.

An anomaly is a name (``stale``, ``failed``), a function finding its first occurrence in an ops
frame, and a function listing the operations that explain one occurrence, most telling first.
Checkers that find new anomalies add an :class:`Anomaly` to :data:`ANOMALIES`.

The consistency anomalies (:data:`CONSISTENCY`: ``nonlinearizable``, ``monotonic-reads``, ...) are
found by the checkers of :mod:`qsim.checks`, each with its witness, the operations that show it:
those are traced whole, with the writes their reads returned, then the operations of the key that
overlap them. ``anomalies`` traces the first anomaly of each kind the run has in one diagram.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qsim.checks import anomaly as checked
from qsim.checks.linearizability import check_linearizability
from qsim.checks.sessions import check_sessions
from qsim.errors import QsimError
from qsim.outcome import RunResult
from qsim.scenario import Scenario


@dataclass(frozen=True)
class Anomaly:
    """Something worth a sequence diagram, found in a finished history."""

    noun: str  # what one is called in messages: "stale read"
    first: Callable[[pd.DataFrame], int | None]  # op id of the first one in an ops frame, or None
    related: Callable[[pd.DataFrame, int], list[int]]  # op ids explaining one, itself first


def first_stale_read(ops: pd.DataFrame) -> int | None:
    """The op id of the first stale read (warm-up included), or None."""
    return _first(ops, ops["stale"].fillna(False).astype(bool))


def first_failed(ops: pd.DataFrame) -> int | None:
    """The op id of the first operation that did not complete ok (warm-up included), or None."""
    return _first(ops, ~ops["ok"].astype(bool))


def _first(ops: pd.DataFrame, mask: pd.Series) -> int | None:
    found = ops.loc[mask, "op_id"]
    return int(found.min()) if len(found) else None


def missed_writes(ops: pd.DataFrame, op_id: int) -> list[int]:
    """The writes a read missed: committed to its key at or before its start and newer than what it
    returned, newest first (as :mod:`qsim.checks.staleness` decides: versions ordered by ts_ms,
    client, op_id).
    """
    read = _row(ops, op_id)
    writes = ops[(ops["kind"] == "write") & (ops["key"] == read.key)].sort_values(
        ["ts_ms", "client", "op_id"], ascending=False, kind="stable"
    )
    returned = np.flatnonzero(writes["op_id"].to_numpy() == read.version)
    if len(returned):  # only the versions ordered after the one it returned
        writes = writes.iloc[: returned[0]]
    return writes.loc[writes["commit_ms"] <= read.start_ms, "op_id"].astype(int).tolist()


MORE_MISSED = 2  # missed writes traced beyond the newest: older ones crowd out the read's context


def stale_read_related(ops: pd.DataFrame, op_id: int) -> list[int]:
    """A stale read, the newest write it missed, the write it returned, the next :data:`MORE_MISSED`
    newest writes it missed, then the operations on its key that overlap it, nearest start first.

    A read that returned nothing missed every write to its key so far, seconds of them in a long
    run; the operations around the read tell more than the old writes, so those are left out.
    """
    read = _row(ops, op_id)
    missed = missed_writes(ops, op_id)[: 1 + MORE_MISSED]
    returned = [int(read.version)] if read.version >= 0 else []
    return _unique([op_id, *missed[:1], *returned, *missed[1:], *_overlapping(ops, read, same_key=True)])


def failed_related(ops: pd.DataFrame, op_id: int) -> list[int]:
    """A failed operation, then the operations overlapping it: on its key first, then any,
    nearest in start time first."""
    failed = _row(ops, op_id)
    same_key = _overlapping(ops, failed, same_key=True)
    return _unique([op_id, *same_key, *_overlapping(ops, failed, same_key=False)])


def op_related(ops: pd.DataFrame, op_id: int) -> list[int]:
    """Any operation: explained as the anomaly it is (stale read, failed), else by the operations on
    its key that overlap it."""
    op = _row(ops, op_id)
    if not op.ok:
        return failed_related(ops, op_id)
    if _is_stale(op):
        return stale_read_related(ops, op_id)
    return _unique([op_id, *_overlapping(ops, op, same_key=True)])


def _row(ops: pd.DataFrame, op_id: int):
    """The operation ``op_id`` as a named tuple."""
    found = ops[ops["op_id"] == op_id]
    if found.empty:
        raise QsimError(f"op {op_id} is not in this run (op ids {_id_range(ops)})")
    return next(found.itertuples(index=False))


def _is_stale(op) -> bool:
    stale = getattr(op, "stale", None)
    return op.kind == "read" and stale is not None and not pd.isna(stale) and bool(stale)


def _id_range(ops: pd.DataFrame) -> str:
    return f"{int(ops['op_id'].min())}..{int(ops['op_id'].max())}" if len(ops) else "none: no operations"


def _overlapping(ops: pd.DataFrame, op, *, same_key: bool) -> list[int]:
    """Op ids of the other operations running at some time while ``op`` ran, nearest start first."""
    ends = ops["end_ms"].fillna(np.inf)
    op_end = np.inf if pd.isna(op.end_ms) else op.end_ms
    mask = (ops["start_ms"] < op_end) & (ends > op.start_ms) & (ops["op_id"] != op.op_id)
    if same_key:
        mask &= ops["key"] == op.key
    return _nearest(ops[mask], op.start_ms)


def _nearest(ops: pd.DataFrame, start_ms: float) -> list[int]:
    """Op ids ordered by the distance of their start from ``start_ms`` (ties: lower id first)."""
    distance = (ops["start_ms"] - start_ms).abs().to_numpy()
    order = np.lexsort((ops["op_id"].to_numpy(), distance))
    return ops["op_id"].to_numpy()[order].astype(int).tolist()


def _unique(ids: list[int]) -> list[int]:
    return list(dict.fromkeys(ids))


ANOMALIES: dict[str, Anomaly] = {
    "stale": Anomaly("stale read", first_stale_read, stale_read_related),
    "failed": Anomaly("failed operation", first_failed, failed_related),
}
# --trace-around names of the checkers' kinds (qsim.checks.anomaly.KINDS); "anomalies": all of them.
CONSISTENCY: dict[str, tuple[str, ...]] = {
    "nonlinearizable": ("linearizability",),
    **{kind.replace("_", "-"): (kind,) for kind in checked.KINDS if kind != "linearizability"},
    "anomalies": checked.KINDS,
}
NAMES = (*ANOMALIES, *CONSISTENCY)  # every name --trace-around takes besides an op id
CHECKED = ("op_id", "client", "kind", "key", "start_ms", "end_ms", "ok", "version", "ts_ms")  # their input
DRAWN_KEEP = 1000  # anomalies of each kind the checkers describe on the keys of a diagram


def kind_noun(kind: str) -> str:
    """What one anomaly of a checker's ``kind`` is called: ``monotonic-reads violation``."""
    return f"{kind.replace('_', '-')} violation"


def first_anomalies(ops: pd.DataFrame, kinds: tuple[str, ...] = checked.KINDS) -> list[checked.Anomaly]:
    """The first anomaly of each of ``kinds`` that the consistency checkers find in ``ops``, in the
    order of :data:`qsim.checks.anomaly.KINDS` (kinds without one are left out)."""
    wanted = [kind for kind in checked.KINDS if kind in kinds and _may_have(ops, kind)]
    found = []
    if "linearizability" in wanted:
        found += check_linearizability(ops, keep=1).anomalies[:1]
    if set(wanted) - {"linearizability"}:
        found += [anomaly for anomaly in check_sessions(ops, keep=1).anomalies if anomaly.kind in wanted]
    return found


def _may_have(ops: pd.DataFrame, kind: str) -> bool:
    """False when the ops table's anomaly column says no operation takes part in one of ``kind``."""
    column = f"anomaly_{kind}"
    return column not in ops or bool(ops[column].fillna(False).astype(bool).any())


def witness_ops(ops: pd.DataFrame, anomaly: checked.Anomaly) -> list[int]:
    """The operations of ``anomaly``, then the writes (in ``ops``) whose values its reads returned."""
    rows = ops[ops["op_id"].isin(anomaly.ops)].set_index("op_id").loc[list(anomaly.ops)]
    returned = rows.loc[(rows["kind"] == "read") & (rows["version"] >= 0), "version"].astype(int)
    return _unique([*anomaly.ops, *returned[returned.isin(ops["op_id"])].tolist()])


def anomaly_focus(ops: pd.DataFrame, anomaly: checked.Anomaly) -> int:
    """The operation of ``anomaly`` that started last: the one that broke the guarantee."""
    rows = ops[ops["op_id"].isin(anomaly.ops)].sort_values(["start_ms", "op_id"], kind="stable")
    return int(rows["op_id"].iloc[-1])


def anomaly_related(ops: pd.DataFrame, anomaly: checked.Anomaly) -> list[int]:
    """The witness (:func:`witness_ops`), then the operations on its key that overlap a witness
    operation, nearest in start to :func:`anomaly_focus` first."""
    core = witness_ops(ops, anomaly)
    focus_ms = _row(ops, anomaly_focus(ops, anomaly)).start_ms
    ends = ops["end_ms"].fillna(np.inf)
    overlapping = np.zeros(len(ops), dtype=bool)
    for op in ops[ops["op_id"].isin(core)].itertuples(index=False):
        op_end = np.inf if pd.isna(op.end_ms) else op.end_ms
        overlapping |= ((ops["start_ms"] < op_end) & (ends > op.start_ms)).to_numpy()
    same_key = ops[overlapping & (ops["key"] == anomaly.key).to_numpy()]
    return _unique([*core, *_nearest(same_key, focus_ms)])


def choose_for_anomalies(
    ops: pd.DataFrame, anomalies: list[checked.Anomaly], count: int
) -> tuple[list[int], list[checked.Anomaly]]:
    """The op ids to trace around ``anomalies`` (in id order), and the anomalies they hold whole.

    Each anomaly's witness is chosen whole or not at all (half a witness explains nothing): the
    first one always, even past ``count``, each other one if it still fits in ``count``. Then the
    operations explaining each anomaly kept (:func:`anomaly_related`), then those nearest in time
    to its focus, are taken in turn, one anomaly after the other, up to ``count``.
    """
    chosen: list[int] = []
    kept = []
    for anomaly in anomalies:
        new = [op_id for op_id in witness_ops(ops, anomaly) if op_id not in chosen]
        if not kept or len(chosen) + len(new) <= count:
            chosen += new
            kept.append(anomaly)
    rankings = []
    for anomaly in kept:
        focus_ms = _row(ops, anomaly_focus(ops, anomaly)).start_ms
        rankings.append(_unique(anomaly_related(ops, anomaly) + _nearest(ops, focus_ms)[:count]))
    turns = [op_id for turn in itertools.zip_longest(*rankings) for op_id in turn if op_id is not None]
    return sorted(_unique(chosen + turns)[: max(count, len(chosen))]), kept


def anomalies_among(ops: pd.DataFrame, op_ids) -> list[checked.Anomaly]:
    """The anomalies all of whose operations are among ``op_ids``, as the checkers find them on the
    keys of those of ``op_ids`` that the ops table flags (the first :data:`DRAWN_KEEP` of each kind
    there), in the order of :data:`qsim.checks.anomaly.KINDS`. None if ``ops`` lacks a column the
    checkers read or the anomaly columns (a table from before the checkers)."""
    columns = [f"anomaly_{kind}" for kind in checked.KINDS]
    if not {*CHECKED, *columns} <= set(ops.columns):
        return []
    ids = set(op_ids)
    among = ops[ops["op_id"].isin(ids)]
    flagged = among[columns].fillna(False).astype(bool).any(axis=1)
    part = ops[ops["key"].isin(among.loc[flagged, "key"].unique())]
    if part.empty:
        return []
    found = check_linearizability(part, keep=DRAWN_KEEP).anomalies
    found += check_sessions(part, keep=DRAWN_KEEP).anomalies
    return [anomaly for anomaly in found if set(anomaly.ops) <= ids]


def choose_ops(
    ops: pd.DataFrame,
    op_id: int,
    count: int,
    related: Callable[[pd.DataFrame, int], list[int]] = op_related,
) -> list[int]:
    """The ``count`` op ids to trace around ``op_id``, in id order.

    Args:
        ops: the finished run's operations.
        op_id: the operation to explain; always chosen.
        count: how many operations to choose (fewer if the run has fewer).
        related: the operations that explain ``op_id``, most telling first; they are chosen first,
            then the operations whose start is nearest to its start fill up to ``count``.

    Raises:
        QsimError: if ``op_id`` is not in ``ops``.
    """
    focus = _row(ops, op_id)
    chosen = _unique(related(ops, op_id))[: max(count, 1)]
    if len(chosen) < count:
        rest = ops[~ops["op_id"].isin(chosen)]
        chosen += _nearest(rest, focus.start_ms)[: count - len(chosen)]
    return sorted(chosen)


def describe(ops: pd.DataFrame, op_id: int, anomaly: checked.Anomaly | None = None) -> str:
    """One line saying what operation ``op_id`` was, e.g. ``op 175: a read of key 1 at 31.99 ms, stale``.

    Args:
        anomaly: a consistency anomaly the operation takes part in, told by its note; without one,
            the anomaly columns of ``ops`` name the kinds it takes part in.
    """
    op = _row(ops, op_id)
    text = f"op {op_id}: a {op.kind} of key {op.key} at {op.start_ms:.2f} ms"
    if not op.ok:
        text = f"{text} that failed ({op.error})"
    elif _is_stale(op):
        returned = f"op {op.version}'s write" if op.version >= 0 else "no value"
        text = f"{text}, stale: it returned {returned} and missed op {missed_writes(ops, op_id)[0]}'s"
    else:
        text = f"{text}, ok"
    if anomaly is not None:
        return f"{text}; {kind_noun(anomaly.kind)}: {anomaly.note}"
    kinds = [kind_noun(kind) for kind in checked.KINDS if _flag(getattr(op, f"anomaly_{kind}", False))]
    return f"{text}, in a {' and a '.join(kinds)}" if kinds else text


def _flag(value) -> bool:
    return not pd.isna(value) and bool(value)


def traced_run(
    scenario: Scenario, seed: int | None, count: int, around: str | int | None = None, **simulate_args
) -> RunResult:
    """Run ``scenario`` tracing ``count`` operations: the first ones, or those around ``around``.

    Args:
        count: how many operations to trace (a consistency anomaly's witness is traced whole).
        around: None (the first ``count``), a name of :data:`NAMES` (around the first anomaly of
            that kind; ``anomalies``: the first of each kind), or an op id. The two runs this takes
            are recorded in the manifest's ``trace`` section with the op ids traced, and the
            consistency anomalies traced with those left out.
        simulate_args: passed on to :func:`qsim.engine.simulate`.

    Raises:
        QsimError: if the run holds no such anomaly or op id (nothing is traced then).
    """
    from qsim.engine import simulate  # here: choosing operations is pure and needs no engine

    if around is None:
        result = simulate(scenario, seed, trace_messages=count, **simulate_args)
        return _noted(result, {"first": count})
    started = time.perf_counter()
    untraced = simulate(scenario, seed, **simulate_args)
    if untraced.error:  # no finished history to choose from: say why, as a run does
        return untraced
    section = _chosen(untraced.ops, around, count)
    section["untraced_run_wall_s"] = time.perf_counter() - started
    result = simulate(scenario, seed, trace_ops=section["op_ids"], **simulate_args)
    focus = section.pop("anomaly", None)
    return _noted(result, section | {"focus": describe(result.ops, section["op_id"], focus)})


def _chosen(ops: pd.DataFrame, around: str | int, count: int) -> dict:
    """The trace section of what to trace around ``around``: op_id (the focus), op_ids and what."""
    if isinstance(around, str) and around in CONSISTENCY:
        return _chosen_anomalies(ops, around, count)
    op_id = _focus(ops, around)
    what = f"the first {ANOMALIES[around].noun}" if isinstance(around, str) else "the chosen operation"
    related = ANOMALIES[around].related if isinstance(around, str) else op_related
    return {"around": around, "what": what, "op_id": op_id, "op_ids": choose_ops(ops, op_id, count, related)}


def _chosen_anomalies(ops: pd.DataFrame, around: str, count: int) -> dict:
    """The trace section for the first consistency anomaly of each kind ``around`` names."""
    kinds = CONSISTENCY[around]
    found = first_anomalies(ops, kinds)
    if not found:
        noun = "consistency anomaly" if len(kinds) > 1 else kind_noun(kinds[0])
        raise QsimError(
            f"no {noun} in this run ({len(ops)} operations), so nothing to trace around; "
            "try a longer duration, another seed, or a given op id"
        )
    ids, kept = choose_for_anomalies(ops, found, count)
    what = "the first anomaly of each kind" if len(kinds) > 1 else f"the first {kind_noun(kinds[0])}"
    return {
        "around": around,
        "what": what,
        "op_id": anomaly_focus(ops, kept[0]),
        "op_ids": ids,
        "anomaly": kept[0],
        "anomalies": [anomaly.as_dict() for anomaly in kept],
        "left_out": [anomaly.as_dict() for anomaly in found if anomaly not in kept],
        "kinds_without": [kind for kind in kinds if kind not in {anomaly.kind for anomaly in found}],
    }


def _focus(ops: pd.DataFrame, around: str | int) -> int:
    """The op id to trace around: the first anomaly named ``around``, or the op id itself."""
    if not isinstance(around, str):
        _row(ops, around)  # raises if absent
        return int(around)
    if around not in ANOMALIES:
        raise QsimError(f"cannot trace around {around!r}: expected an op id or one of {', '.join(NAMES)}")
    anomaly = ANOMALIES[around]
    found = anomaly.first(ops)
    if found is None:
        raise QsimError(
            f"no {anomaly.noun} in this run ({len(ops)} operations), so nothing to trace around; "
            "try a longer duration, another seed, or a given op id"
        )
    return found


def _noted(result: RunResult, section: dict) -> RunResult:
    """``result`` with the manifest's ``trace`` section saying what was traced."""
    return dataclasses.replace(result, manifest=result.manifest | {"trace": section})
