"""One run: build the model on a SimPy environment, run it, check and summarize the history."""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Collection
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import simpy

from qsim.analysis.oracle import oracle
from qsim.durability import durability_summary
from qsim.history import add_probe_delays, faults_frame, messages_frame, nodes_frame, ops_frame
from qsim.metrics import measured, summarize
from qsim.model.build import Model, build
from qsim.model.clock import call_later
from qsim.model.workload import ProbeLoop
from qsim.outcome import RunResult, runtime
from qsim.outcome import manifest as describe
from qsim.rng import RandomStreams
from qsim.scenario import Scenario, run_id, with_seed
from qsim.scenario.schema import MESSAGE_KINDS
from qsim.staleness import check_staleness
from qsim.timeline import active_faults, availability_timeline, fault_windows_summary, recovery


def simulate(
    scenario: Scenario,
    seed: int | None = None,
    *,
    reraise: bool = False,
    trace_messages: int = 0,
    trace_ops: Collection[int] = (),
    progress: Callable[[float, float, str], None] | None = None,
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

    Raises:
        ScenarioError: if ``seed`` is not a valid seed.
    """
    if seed is not None:
        scenario = with_seed(scenario, seed)
    started = datetime.now(UTC)
    wall_start = time.perf_counter()
    traced = frozenset(trace_ops) | frozenset(range(trace_messages)) if trace_ops else range(trace_messages)
    model = build(scenario, RandomStreams(scenario.seed), traced)
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

    ops, faults, held = _history(model, scenario)
    if error is not None:  # copies of writes that never finished: the history stops before them
        held = held[held["version"].isin(ops.loc[ops["kind"] == "write", "op_id"])]
    timeline = availability_timeline(ops, scenario.metrics.window, end_ms=_timeline_end_ms(ops, scenario))
    summary = _summary(model, scenario, ops, faults, held)
    summary["oracle"] = oracle(scenario, ops, summary) if error is None else []
    wall_s = time.perf_counter() - wall_start
    events = _event_count(model.env) - reports.scheduled
    sim_ms = float(model.env.now)
    summary["runtime"] = runtime(wall_s=wall_s, engine_s=engine_s, sim_ms=sim_ms, ops=len(ops), events=events)
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
        names = model.network.endpoint_names([node.name for node in scenario.cluster.nodes])
        messages = messages_frame(model.network.tracer.records, names, MESSAGE_KINDS)
    nodes = nodes_frame(model.sampler.records, [node.name for node in scenario.cluster.nodes])
    return RunResult(scenario, summary["run_id"], ops, summary, manifest, faults, timeline, messages, nodes)


def _history(model: Model, scenario: Scenario) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return the ops (with staleness verdicts and active faults), the faults, and what is held."""
    names = [node.name for node in scenario.cluster.nodes]
    ops = ops_frame(model.recorder.columns(), names)
    if isinstance(model.workload, ProbeLoop):
        reads = np.frombuffer(model.workload.read_ops, np.int32)
        ops = add_probe_delays(ops, reads, np.frombuffer(model.workload.read_delays))
    faults = faults_frame(model.faults.records)
    ops = pd.concat([ops, check_staleness(ops)], axis=1).assign(
        faults=active_faults(ops, faults), warmup=ops["start_ms"] < scenario.warmup
    )
    held = pd.DataFrame(model.held_versions(), columns=["key", "version"], dtype=np.int64)
    return ops, faults, held


def _timeline_end_ms(ops: pd.DataFrame, scenario: Scenario) -> float | None:
    """Return where the timeline ends: at ``duration``, or later if operations start later.

    Probe runs go on past ``duration`` until every trial is done; their timeline goes on with them.
    """
    if len(ops) and ops["start_ms"].max() >= scenario.duration:
        return None  # through the window holding the last operation's start
    return scenario.duration


def _summary(model: Model, scenario: Scenario, ops, faults, held) -> dict:
    sim_ms = float(model.env.now)
    window_ms = scenario.metrics.window
    names = [node.name for node in scenario.cluster.nodes]
    return {
        "scenario": scenario.name,
        "run_id": run_id(scenario),
        "seed": scenario.seed,
        "quorum": {"n": scenario.quorum.n, "r": scenario.quorum.r, "w": scenario.quorum.w},
        **summarize(ops),
        "faults": {
            "count": len(faults),
            "window_ms": window_ms,
            "recovery": recovery(ops, faults, window_ms),
            **fault_windows_summary(ops, faults),
        },
        "durability": durability_summary(ops, held),
        "nodes": _node_stats(model, names, scenario, sim_ms),
        "load": _load(model, names, measured(ops)),
        "hedging": {"extra_requests": model.coordinator.hedged},
        "messages": {
            kind: {
                "sent": model.network.delivered(i) + model.network.dropped[i],
                "delivered": model.network.delivered(i),
                "dropped": model.network.dropped[i],
            }
            for i, kind in enumerate(MESSAGE_KINDS)
        },
    }


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


def _load(model: Model, names: list[str], measured: pd.DataFrame) -> dict:
    """How unevenly the nodes were loaded, and the hottest keys."""
    received = [model.network.received(i) for i in range(len(names))]
    mean = sum(received) / len(received)
    counts = measured.groupby("key")["kind"].value_counts().unstack(fill_value=0)
    counts = counts.reindex(columns=["read", "write"], fill_value=0)
    hot = counts.assign(ops=counts.sum(axis=1)).sort_values("ops", ascending=False, kind="stable").head(10)
    return {
        "busiest_node": names[received.index(max(received))],
        "imbalance": max(received) / mean if mean else None,  # busiest node's messages / the mean
        "hot_keys": [
            {"key": int(key), "ops": int(row["ops"]), "reads": int(row["read"]), "writes": int(row["write"])}
            for key, row in hot.iterrows()
        ],
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
