"""One run: build the model on a SimPy environment, run it, check and summarize the history."""

from __future__ import annotations

import platform
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata

import numpy as np
import pandas as pd
import simpy

from qsim.distributions import spec_sampler
from qsim.history import add_probe_delays, ops_frame
from qsim.metrics import summarize
from qsim.model.coordinator import Coordinator
from qsim.model.network import Network
from qsim.model.recorder import Recorder
from qsim.model.replica import Replica
from qsim.model.ring import Ring
from qsim.model.workload import WORKLOADS, ProbeLoop
from qsim.rng import RandomStreams
from qsim.scenario import Scenario, run_id, with_seed
from qsim.scenario.schema import MESSAGE_KINDS
from qsim.staleness import check_staleness

_DEPENDENCIES = ("simpy", "numpy", "pandas", "pydantic", "pyarrow", "matplotlib", "click", "PyYAML")


@dataclass(frozen=True)
class RunResult:
    """Everything one run produced; ``error`` is set (and the history partial) if it failed."""

    scenario: Scenario
    run_id: str
    ops: pd.DataFrame
    summary: dict
    manifest: dict = field(repr=False)

    @property
    def error(self) -> str | None:
        """The exception that stopped the run, or None."""
        return self.manifest["error"]


@dataclass
class _Model:
    env: simpy.Environment
    network: Network
    replicas: list[Replica]
    recorder: Recorder
    workload: object


def _build(scenario: Scenario, streams: RandomStreams) -> _Model:
    env = simpy.Environment()
    network = Network(env, scenario, streams)
    nodes = scenario.cluster.nodes
    service = scenario.cluster.replica.service_time
    replicas = [
        Replica(
            i,
            env,
            network,
            None
            if service.is_zero()
            else spec_sampler(service, streams.generator(f"node.{node.name}.service")),
            scenario.cluster.replica.concurrency,
        )
        for i, node in enumerate(nodes)
    ]
    ring = Ring([node.name for node in nodes], scenario.cluster.vnodes, scenario.quorum.n)
    recorder = Recorder()
    coordinator = Coordinator(env, scenario, network, ring, replicas, recorder, streams)
    for replica in replicas:
        replica.connect(coordinator)
    workload = WORKLOADS[scenario.workload.arrival.type](env, scenario, coordinator, streams)
    return _Model(env, network, replicas, recorder, workload)


def simulate(scenario: Scenario, seed: int | None = None, *, reraise: bool = False) -> RunResult:
    """Run ``scenario`` once and return its self-describing result.

    Args:
        scenario: a validated scenario.
        seed: replaces ``scenario.seed`` when given.
        reraise: re-raise an exception from the model instead of recording it in the result.

    Raises:
        ScenarioError: if ``seed`` is not a valid seed.
    """
    if seed is not None:
        scenario = with_seed(scenario, seed)
    started = datetime.now(UTC)
    wall_start = time.perf_counter()
    model = _build(scenario, RandomStreams(scenario.seed))
    error = None
    try:
        model.workload.start()
        model.env.run()
    except Exception as exc:
        if reraise:
            raise
        error = "".join(traceback.format_exception_only(exc)).strip()
    engine_s = time.perf_counter() - wall_start

    names = [node.name for node in scenario.cluster.nodes]
    ops = ops_frame(model.recorder.columns(), names)
    if isinstance(model.workload, ProbeLoop):
        ops = add_probe_delays(
            ops, np.frombuffer(model.workload.read_ops, np.int32), np.frombuffer(model.workload.read_delays)
        )
    ops = pd.concat([ops, check_staleness(ops)], axis=1)
    sim_ms = float(model.env.now)
    summary = {
        "scenario": scenario.name,
        "run_id": run_id(scenario),
        "seed": scenario.seed,
        "quorum": {"n": scenario.quorum.n, "r": scenario.quorum.r, "w": scenario.quorum.w},
        **summarize(ops, warmup_ms=scenario.warmup),
        "nodes": _node_stats(model, names, scenario, sim_ms),
        "messages": {
            kind: {
                "sent": model.network.delivered(i) + model.network.dropped[i],
                "delivered": model.network.delivered(i),
                "dropped": model.network.dropped[i],
            }
            for i, kind in enumerate(MESSAGE_KINDS)
        },
    }
    wall_s = time.perf_counter() - wall_start
    events = _event_count(model.env)
    summary["runtime"] = {
        "wall_s": wall_s,
        "engine_s": engine_s,
        "sim_ms": sim_ms,
        "ops": len(ops),
        "ops_per_s": len(ops) / engine_s if engine_s > 0 else None,
        "events": events,
    }
    manifest = {
        "run_id": summary["run_id"],
        "scenario": scenario.name,
        "seed": scenario.seed,
        "qsim_version": _version("qsim"),
        "dependencies": {name: _version(name) for name in _DEPENDENCIES},
        "python": platform.python_version(),
        "started_at": started.isoformat(timespec="seconds"),
        "wall_s": wall_s,
        "sim_ms": sim_ms,
        "events": events,
        "ops": len(ops),
        "error": error,
    }
    return RunResult(scenario, summary["run_id"], ops, summary, manifest)


def _node_stats(model: _Model, names: list[str], scenario: Scenario, sim_ms: float) -> dict:
    """Messages received and utilization (busy time / (concurrency x simulated time)) per node."""
    concurrency = scenario.cluster.replica.concurrency or 1
    return {
        name: {
            "messages": model.network.received(i),
            "utilization": model.replicas[i].busy_ms / (concurrency * sim_ms) if sim_ms > 0 else 0.0,
        }
        for i, name in enumerate(names)
    }


def _event_count(env: simpy.Environment) -> int | None:
    # SimPy numbers every scheduled event from one counter; reading it is the only way to count.
    counter = getattr(env, "_eid", None)
    return next(counter) if counter is not None else None


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
