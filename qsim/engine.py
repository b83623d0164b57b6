"""One run: build the model on a SimPy environment, run it, check and summarize the history."""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import simpy

from qsim.analysis.oracle import oracle
from qsim.checks.digest import Chunk, Summary
from qsim.checks.recovery import Recovery
from qsim.checks.timeline import FaultSides, Timeline, active_faults
from qsim.history import add_probe_delays, faults_frame, messages_frame, nodes_frame, ops_frame
from qsim.model.build import Model, build
from qsim.model.clock import call_later
from qsim.model.workload import ProbeLoop
from qsim.outcome import RunResult, runtime
from qsim.outcome import manifest as describe
from qsim.rng import RandomStreams
from qsim.scenario import Scenario, run_id, with_seed
from qsim.scenario.schema import MESSAGE_KINDS
from qsim.scenario.systems import uses_system
from qsim.streamed import CHUNK_OPS, KeyChecks, Spill, by_op_range, write_ops


def simulate(
    scenario: Scenario,
    seed: int | None = None,
    *,
    reraise: bool = False,
    trace_messages: int = 0,
    trace_ops: Collection[int] = (),
    progress: Callable[[float, float, str], None] | None = None,
    scratch: Path | None = None,
    chunk_ops: int = CHUNK_OPS,
) -> RunResult:
    """Run ``scenario`` once and return its self-describing result.

    Args:
        scenario: a validated scenario.
        seed: replaces ``scenario.seed`` when given.
        reraise: re-raise an exception from the model instead of recording it in the result.
        trace_messages: record every message of the first this many operations (``messages``).
        trace_ops: record every message of the operations with these op ids (with
            ``trace_messages``: of both); tracing changes no outcome.
        progress: called as ``progress(done, total, unit)`` about :data:`PROGRESS_REPORTS` times
            during the run and once at its end: seconds of simulated time out of ``duration``
            (unit ``s``), or, for a probe workload, trials started out of all (``trials``).
            Reporting changes no outcome.
        scratch: a private folder (made if missing) for a run longer than ``chunk_ops``
            operations: its history streams there and is analysed out of core (see
            :mod:`qsim.streamed`), and the result's ``ops`` is None and ``ops_file`` the ops table
            written there (the results writer moves it into the run folder). Without it, or for
            a shorter run, the history stays in memory. The results are the same either way.
        chunk_ops: operations held in memory at a time when streaming.

    Raises:
        ScenarioError: if ``seed`` is not a valid seed.
    """
    if seed is not None:
        scenario = with_seed(scenario, seed)
    started = datetime.now(UTC)
    wall_start = time.perf_counter()
    traced = frozenset(trace_ops) | frozenset(range(trace_messages)) if trace_ops else range(trace_messages)
    model = build(scenario, RandomStreams(scenario.seed), traced)
    spill = Spill(scratch, chunk_ops) if scratch is not None else None
    if spill is not None:
        model.recorder.stream_to(spill.append, chunk_ops)
    reports = _Reports(model, scenario, progress)
    error = None
    try:
        model.run()
        reports.finish()
    except Exception as exc:
        if reraise:
            raise
        error = "".join(traceback.format_exception_only(exc)).strip()
    engine_s = time.perf_counter() - wall_start

    faults = faults_frame(model.faults.records)
    history = _analyse(model, scenario, faults, spill, partial=error is not None)
    digest, ops = history.digest, history.ops
    timeline = digest.timeline(scenario)
    summary = _summary(model, scenario, digest, faults, history.checks)
    summary["oracle"] = oracle(scenario, digest.summary.latencies(), summary) if error is None else []
    wall_s = time.perf_counter() - wall_start
    events = _event_count(model.env) - reports.scheduled
    sim_ms = float(model.env.now)
    summary["runtime"] = runtime(
        wall_s=wall_s, engine_s=engine_s, sim_ms=sim_ms, ops=history.count, events=events
    )
    manifest = describe(
        summary,
        engine="discrete-event",
        started=started,
        wall_s=wall_s,
        sim_ms=sim_ms,
        events=events,
        error=error,
    )
    messages = None
    if model.network.tracer is not None:
        names = model.network.endpoint_names(_names(scenario))
        messages = messages_frame(model.network.tracer.records, names, MESSAGE_KINDS)
    nodes = nodes_frame(model.sampler.records, _names(scenario))
    return RunResult(
        scenario, summary["run_id"], ops, summary, manifest, faults, timeline, messages, nodes,
        sorted_latency=digest.summary.latencies(), ops_file=history.ops_file,
    )  # fmt: skip


@dataclass(frozen=True)
class _History:
    """What the analysis of a run's history gives the summary."""

    digest: _Digest
    ops: pd.DataFrame | None  # None: streamed to ops_file
    ops_file: Path | None
    count: int  # operations recorded
    checks: KeyChecks  # durability, hot keys and consistency, added up over the history


def _analyse(model: Model, scenario: Scenario, faults: pd.DataFrame, spill: Spill | None, *, partial: bool):
    """Check and digest the history: in memory, or out of core if it was handed to ``spill``.

    Args:
        partial: the run stopped on an error.
    """
    held = pd.DataFrame(model.held_versions(), copy=False)
    digest = _Digest(scenario, faults, spill.folder if spill is not None else None)
    checks = KeyChecks(held, scenario.warmup, _names(scenario), partial=partial)
    if spill is None or not model.recorder.handed:
        ops = _table(model, scenario, faults, model.recorder.columns(), checks.verdicts)
        digest.add(ops)
        return _History(digest, ops, None, len(ops), checks)
    model.recorder.close()
    count, ops_file = model.recorder.handed, spill.folder / "ops.parquet"
    ranges = by_op_range(spill.by_key(), checks, spill.folder, spill.chunk_ops, count)
    write_ops(ranges, ops_file, lambda columns, verdicts: _table(model, scenario, faults, columns, verdicts),
              digest.add)  # fmt: skip
    return _History(digest, None, ops_file, count, checks)


def _names(scenario: Scenario) -> list[str]:
    return [node.name for node in scenario.cluster.nodes]


class _Digest:
    """Everything the summary and the timeline take from the ops table, gathered chunk by chunk."""

    def __init__(self, scenario: Scenario, faults: pd.DataFrame, folder: Path | None) -> None:
        window_ms = scenario.metrics.window
        self.summary = Summary(folder, span_ms=(scenario.warmup, scenario.duration))
        self.timeline_counts = Timeline(window_ms)
        self.sides = FaultSides(faults)
        self.recovery = Recovery(faults, window_ms)

    def add(self, ops: pd.DataFrame) -> None:
        chunk = Chunk(ops)  # the columns the parts share, made once
        for part in (self.summary, self.timeline_counts, self.sides, self.recovery):
            part.add(chunk)

    def timeline(self, scenario: Scenario) -> pd.DataFrame:
        """The availability timeline: to ``duration``, or on while operations start later.

        Probe runs go on past ``duration`` until every trial is done; their timeline goes on with them.
        """
        if self.timeline_counts.last_start_ms >= scenario.duration:
            return self.timeline_counts.result()  # through the window holding the last operation's start
        return self.timeline_counts.result(end_ms=scenario.duration)


def _table(
    model: Model, scenario: Scenario, faults: pd.DataFrame, columns: dict, verdicts: Callable
) -> pd.DataFrame:
    """Return the ops table's rows of the recorder ``columns`` (sorted by op_id).

    Args:
        verdicts: gives the verdict columns (staleness, anomalies) of the rows' ops frame (every
            operation of their keys, or already checked): :meth:`qsim.streamed.KeyChecks.verdicts`.
    """
    ops = ops_frame(columns, _names(scenario))
    if isinstance(model.workload, ProbeLoop):
        reads = np.frombuffer(model.workload.read_ops, np.int32)
        delays = np.frombuffer(model.workload.read_delays)
        ids = ops["op_id"].to_numpy()
        inside = np.isin(reads, ids) if len(ids) else np.zeros(len(reads), bool)
        ops = add_probe_delays(ops, reads[inside], delays[inside])
    more = {"faults": active_faults(ops, faults), "warmup": ops["start_ms"] < scenario.warmup}
    return pd.concat([ops, verdicts(ops).set_axis(ops.index), pd.DataFrame(more, copy=False)], axis=1)


def _summary(model: Model, scenario: Scenario, digest: _Digest, faults, checks: KeyChecks) -> dict:
    sim_ms = float(model.env.now)
    window_ms = scenario.metrics.window
    names = _names(scenario)
    return {
        "scenario": scenario.name,
        "run_id": run_id(scenario),
        "seed": scenario.seed,
        "quorum": _quorum(scenario),
        **digest.summary.result(),
        "throughput_ops_s": _throughput(digest.summary.ended_ok(), scenario),
        "faults": {
            "count": len(faults),
            "window_ms": window_ms,
            "recovery": digest.recovery.result(),
            **digest.sides.result(),
        },
        "durability": checks.durability_summary(),
        "consistency": checks.consistency.result(),
        "nodes": _node_stats(model, names, scenario, sim_ms),
        "load": _load(model, names, checks.hot.result()),
        **model.protocol.summary(),
        "messages": {
            kind: {
                "sent": model.network.delivered(i) + model.network.dropped[i],
                "delivered": model.network.delivered(i),
                "dropped": model.network.dropped[i],
            }
            for i, kind in enumerate(MESSAGE_KINDS)
        },
    }


def _throughput(ended_ok: int, scenario: Scenario) -> float | None:
    """Operations carried per second: those that ended ok between the warm-up's end and ``duration``."""
    span_s = (scenario.duration - scenario.warmup) / 1e3
    return ended_ok / span_s if span_s > 0 else None


def _quorum(scenario: Scenario) -> dict:
    """The summary's ``quorum`` section: N, R and W, or the leader protocol's quorums and read mode."""
    quorum = scenario.quorum
    if quorum.protocol == "leader":
        q1, q2 = quorum.leader.quorums(quorum.n)
        return {"protocol": "leader", "n": quorum.n, "election_quorum": q1, "replication_quorum": q2,
                "read_mode": quorum.leader.read_mode}  # fmt: skip
    if uses_system(quorum):  # quorums of the system, drawn from its strategy: no r or w
        return {"n": len(scenario.cluster.nodes), "r": None, "w": None, "system": quorum.system.kind,
                "strategy": quorum.system.strategy}  # fmt: skip
    return {"n": quorum.n, "r": quorum.r, "w": quorum.w}


def _node_stats(model: Model, names: list[str], scenario: Scenario, sim_ms: float) -> dict:
    """Messages received and utilization (busy server time / (servers x simulated time)) per node."""
    return {
        name: {
            "messages": model.network.received(i),
            "utilization": model.replicas[i].busy_ms / (model.replicas[i].servers * sim_ms)
            if sim_ms > 0
            else 0.0,
        }
        for i, name in enumerate(names)
    }


def _load(model: Model, names: list[str], hot_keys: list[dict]) -> dict:
    """How unevenly the nodes were loaded, and the hottest keys."""
    received = [model.network.received(i) for i in range(len(names))]
    mean = sum(received) / len(received)
    return {
        "busiest_node": names[received.index(max(received))],
        "imbalance": max(received) / mean if mean else None,  # busiest node's messages / the mean
        "hot_keys": hot_keys,
    }


def _event_count(env: simpy.Environment) -> int | None:
    # SimPy numbers every scheduled event from one counter; reading it is the only way to count.
    counter = getattr(env, "_eid", None)
    return next(counter) if counter is not None else None


PROGRESS_REPORTS = 200  # per run: a smooth bar, at the cost of 200 callbacks


class _Reports:
    """Calls ``progress(done, total, unit)`` at every 1/:data:`PROGRESS_REPORTS` of ``duration``.

    Each report is an event of its own that reads the clock and changes nothing. SimPy runs events
    in order of (time, priority, id), with ids in the order they were scheduled, so the model's
    events keep their order, ties at a report's instant included: a run with reports is the same
    run. Their ids are left out of the event count. A probe run goes on past ``duration`` until
    its trials are done, so its reports count trials and go on as long as the model has events.
    """

    def __init__(self, model: Model, scenario: Scenario, progress: Callable | None) -> None:
        self.scheduled = 0
        self._progress = progress
        self._env = model.env
        self._step_ms = scenario.duration / PROGRESS_REPORTS
        if isinstance(model.workload, ProbeLoop):
            arrival = scenario.workload.arrival
            self._total, self._unit, self._last = arrival.trials * len(arrival.delays), "trials", math.inf
            self._done = model.workload.read_ops.__len__  # trials whose read has started
        else:
            self._total, self._unit, self._last = scenario.duration / 1e3, "s", PROGRESS_REPORTS
            self._done = lambda: self._env.now / 1e3
        if progress is not None:
            self._schedule()

    def _schedule(self) -> None:
        if self.scheduled < self._last:
            self.scheduled += 1
            call_later(self._env, self.scheduled * self._step_ms - self._env.now, self._report)

    def _report(self, _event) -> None:
        self._progress(self._done(), self._total, self._unit)
        if self._env.peek() < math.inf:  # else only reports would be left, and the run would never end
            self._schedule()

    def finish(self) -> None:
        """Report the run complete."""
        if self._progress is not None:
            self._progress(self._total, self._total, self._unit)
