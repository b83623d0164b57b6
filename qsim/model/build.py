"""Wiring the model: the parts of one simulation, built from a scenario, and how it runs."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import simpy

from qsim.distributions import spec_sampler
from qsim.model.coordinator import Coordinator, tagged_replies
from qsim.model.faults import FaultInjector
from qsim.model.network import Network
from qsim.model.recorder import Recorder
from qsim.model.repair import AntiEntropy, HintedHandoff
from qsim.model.replica import Replica
from qsim.model.ring import Ring
from qsim.model.sampler import NodeSampler
from qsim.model.timeouts import FailureDetector
from qsim.model.tracer import Tracer
from qsim.model.workload import WORKLOADS
from qsim.rng import RandomStreams
from qsim.scenario.schema import Scenario


@dataclass
class Model:
    """The parts of one simulation."""

    env: simpy.Environment
    network: Network
    replicas: list[Replica]
    coordinator: Coordinator
    recorder: Recorder
    workload: object
    faults: FaultInjector
    sampler: NodeSampler
    background: list = field(default_factory=list)  # periodic processes: repair, selection, sampling

    def run(self) -> None:
        """Run until the workload is exhausted and every operation has ended."""
        stop = self.env.event()

        def maybe_stop() -> None:
            if self.workload.exhausted and self.coordinator.outstanding == 0 and not stop.triggered:
                stop.succeed()

        self.coordinator.on_idle = maybe_stop
        self.workload.on_exhausted = maybe_stop
        self.faults.start()
        for process in self.background:
            process.start()
        self.workload.start()
        maybe_stop()
        if not stop.triggered:
            self.env.run(until=stop)

    def held_versions(self) -> list[tuple[int, int]]:
        """(key, op_id of the version) for every copy a replica holds, hints included."""
        held = []
        for replica in self.replicas:
            held += [(key, version[2]) for key, version in replica.store.items()]
            for versions in replica.hints.values():
                held += [(key, version[2]) for key, version in versions.items()]
        return held


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
    quorum, repair = scenario.quorum, scenario.repair
    # The fault machinery (checked delivery, failure detector) costs only the runs that need it.
    detecting = bool(scenario.faults) or quorum.failover != "strict"
    checked = detecting or len(trace) > 0  # tracing watches deliveries, and changes no outcome
    network = Network(env, scenario, streams, checked)
    nodes = scenario.cluster.nodes
    replicas = [_replica(i, node, scenario, env, network, streams) for i, node in enumerate(nodes)]
    ring = Ring(
        [n.name for n in nodes], scenario.cluster.vnodes, quorum.n, [n.region for n in nodes], quorum.replicas
    )
    recorder = Recorder()
    detector = FailureDetector(env, network.heard, len(nodes), quorum.suspicion) if detecting else None
    coordinator = Coordinator(env, scenario, network, ring, replicas, recorder, streams, detector)
    for replica in replicas:
        replica.connect(coordinator)
    if len(trace) > 0:
        network.tracer = coordinator.tracer = Tracer(trace)
    workload = WORKLOADS[scenario.workload.arrival.type](env, scenario, coordinator, streams)
    faults = FaultInjector(env, scenario, network, replicas, coordinator, streams)
    sampler = NodeSampler(env, network, replicas, scenario.metrics.window)
    background = [coordinator.selector, sampler]
    if quorum.failover == "sloppy" and repair.hinted_handoff:
        background.append(HintedHandoff(env, network, replicas, repair.handoff_interval))
    if repair.anti_entropy is not None:
        background.append(AntiEntropy(env, network, replicas, ring, repair.anti_entropy.interval))
    return Model(env, network, replicas, coordinator, recorder, workload, faults, sampler, background)
