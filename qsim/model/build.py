"""Wiring the model: the shared parts of one simulation and its protocol, and how it runs."""

from __future__ import annotations

import gc
from collections.abc import Collection
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import simpy

from qsim.distributions import spec_sampler
from qsim.model.clock import run_until
from qsim.model.faults import FaultInjector
from qsim.model.leader.build import build as leader
from qsim.model.leaderless.build import build as leaderless
from qsim.model.leaderless.tagged import tagged_replies
from qsim.model.network import Network
from qsim.model.protocol import Protocol
from qsim.model.recorder import Recorder
from qsim.model.replica import Replica
from qsim.model.sampler import NodeSampler
from qsim.model.tracer import Tracer
from qsim.model.workload import WORKLOADS
from qsim.rng import RandomStreams
from qsim.scenario.schema import Scenario

GC_THRESHOLDS = (50_000, 20, 20)  # Python's defaults are (700, 10, 10): see rare_collections


@contextmanager
def rare_collections():
    """Run the block with Python's cyclic garbage collector running rarely; restore it after.

    The collector runs each time 700 more container objects have been made than freed, and
    scans every young object then; a simulation makes and frees millions (messages, operations,
    log entries that live a while), so those scans cost ~2.5% of the instructions of an
    operation (callgrind: 90,970 against 88,617 on bench/scenarios/core.yaml). Reference counting
    still frees everything at once; only cyclic garbage waits, at most ~50,000 objects of it.
    """
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@dataclass
class Model:
    """The parts of one simulation."""

    env: simpy.Environment
    network: Network
    replicas: list[Replica]
    protocol: Protocol
    recorder: Recorder
    workload: object
    faults: FaultInjector
    sampler: NodeSampler
    background: list = field(default_factory=list)  # periodic processes: the protocol's, sampling

    def run(self) -> None:
        """Run until the workload is exhausted and every operation has ended."""
        stop = self.start()
        if not stop.triggered:
            with rare_collections():
                run_until(self.env, stop)

    def start(self) -> simpy.Event:
        """Start the faults, the background processes and the workload; return the event of the end.

        ``env.run(until=...)`` with it runs the model to its end (what :meth:`run` does); a
        benchmark may first run to some time, to measure the steady state after it.
        """
        stop = self.env.event()

        def maybe_stop() -> None:
            if self.workload.exhausted and self.protocol.outstanding == 0 and not stop.triggered:
                stop.succeed()

        self.protocol.on_idle = maybe_stop
        self.workload.on_exhausted = maybe_stop
        self.faults.start()
        for process in self.background:
            process.start()
        self.workload.start()
        maybe_stop()
        return stop

    def held_versions(self) -> dict[str, np.ndarray]:
        """The columns ``key`` and ``version`` (the op_id that wrote it) of every copy a replica holds,
        hints included."""
        self.protocol.settle()
        stores = [store for replica in self.replicas for store in (replica.store, *replica.hints.values())]
        size = sum(len(store) for store in stores)
        keys = chain.from_iterable(store.keys() for store in stores)
        versions = (version[2] for store in stores for version in store.values())
        return {"key": np.fromiter(keys, np.int64, size), "version": np.fromiter(versions, np.int64, size)}


def _replica(index: int, node, scenario: Scenario, env, network: Network, streams: RandomStreams) -> Replica:
    """A node's replica: its own service time and concurrency if it has them, else the cluster's."""
    defaults = scenario.cluster.replica
    service = node.service_time or defaults.service_time
    sampler = (
        None if service.is_zero() else spec_sampler(service, streams.generator(f"node.{node.name}.service"))
    )
    concurrency = node.concurrency or defaults.concurrency
    return Replica(index, env, network, sampler, concurrency, tag_replies=tagged_replies(scenario))


def build(scenario: Scenario, streams: RandomStreams, trace: Collection[int] = ()) -> Model:
    """Return the model of ``scenario`` on a new SimPy environment, ready to run.

    Args:
        trace: the op ids whose messages are recorded (empty: none; ``range(n)``: the first n).
    """
    env = simpy.Environment()
    quorum = scenario.quorum
    # The fault machinery (checked delivery, failure detector) costs only the runs that need it.
    detecting = bool(scenario.faults) or quorum.failover != "strict"
    checked = detecting or len(trace) > 0  # tracing watches deliveries, and changes no outcome
    network = Network(env, scenario, streams, checked)
    nodes = scenario.cluster.nodes
    replicas = [_replica(i, node, scenario, env, network, streams) for i, node in enumerate(nodes)]
    recorder = Recorder()
    built = PROTOCOLS[quorum.protocol](env, scenario, network, replicas, recorder, streams, detecting)
    protocol = built.protocol
    if len(trace) > 0:
        network.tracer = protocol.tracer = Tracer(trace)
    workload = WORKLOADS[scenario.workload.arrival.type](env, scenario, protocol, streams)
    faults = FaultInjector(env, scenario, network, replicas, protocol, streams)
    sampler = NodeSampler(env, network, replicas, scenario.metrics.window)
    background = [*built.background, sampler]
    return Model(env, network, replicas, protocol, recorder, workload, faults, sampler, background)


PROTOCOLS = {"leaderless": leaderless, "leader": leader}  # quorum.protocol -> its builder
